"""The rules file: loaded, validated, and every error named by its rule and field.

    callbacks[C3].within: '6x' is not a duration (use 30m, 4h, 3d, 6mo, 2wh or 1wd)

Nothing of the spec is hard-coded in Python: the numbers live in the TOML file
(shipped default: default_rules.toml, equal to the spec).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import holidays
from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from contactcenter.errors import InvalidInput
from contactcenter.hours import DAYS, BusinessHours
from contactcenter.rules.grading import Scheme

SHIPPED = Path(__file__).with_name("default_rules.toml")
TIERS = ("A", "B", "C", "D")
TRIGGERS = (
    "installation-completed", "purchase", "complaint-written", "proposal-written",
    "repair-dispatched", "repair-overrun", "repair-completed",
)
# Customer events that trigger no callback themselves but feed the jobs: purchases' amounts feed
# grading, open repairs/complaints/paid-service orders the service-needed selection, "lost"
# the retention callback (see docs/rules-jobs.md).
FACT_KINDS = (
    "visit-completed", "complaint-archived", "paid-service-ordered", "paid-service-completed",
    "customer-lost",
)
EVENT_KINDS = TRIGGERS + FACT_KINDS
_DURATION = re.compile(r"^(\d+)(m|h|d|mo|wh|wd)$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "mo": "months", "wh": "working hours",
          "wd": "working days"}
# Only to compare durations of different units (after <= within); never to compute a due time.
_NOMINAL = {"m": 60, "h": 3600, "d": 86400, "mo": 30 * 86400, "wh": 3600, "wd": 86400}


@dataclass(frozen=True)
class Duration:
    amount: int
    unit: str  # m h d mo wh wd

    @classmethod
    def parse(cls, value: object) -> Duration:
        if isinstance(value, Duration):
            return value
        text = str(value).strip()
        if text == "0":
            return cls(0, "m")
        match = _DURATION.match(text)
        if not match:
            raise ValueError(f"{value!r} is not a duration (use 30m, 4h, 3d, 6mo, 2wh or 1wd)")
        return cls(int(match.group(1)), match.group(2))

    @property
    def nominal_seconds(self) -> int:
        return self.amount * _NOMINAL[self.unit]

    def after(self, at: datetime, hours: BusinessHours | None) -> datetime:
        """`at` plus this duration; working units count business time only."""
        if self.unit in ("wh", "wd"):
            if hours is None:
                raise ValueError("working time needs business hours")
            if self.unit == "wh":
                return hours.add_working_time(at, timedelta(hours=self.amount))
            return _add_working_days(at, self.amount, hours)
        if self.unit == "mo":
            return add_months(at, self.amount)
        return at + timedelta(seconds=self.nominal_seconds)

    def __str__(self) -> str:
        return "0" if self.amount == 0 else f"{self.amount}{self.unit}"


def add_months(at: datetime, months: int) -> datetime:
    month = at.month - 1 + months
    year, month = at.year + month // 12, month % 12 + 1
    for day in (at.day, 30, 29, 28):  # 31 Jan + 1 month = 28/29 Feb
        try:
            return at.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _add_working_days(at: datetime, days: int, hours: BusinessHours) -> datetime:
    """The same time of day `days` business days later (end of day if that day is shorter)."""
    if days == 0:
        return at
    local = at.astimezone(hours.zone)
    day, left = local.date(), days
    while left:
        day += timedelta(days=1)
        if hours.ranges_on(day):
            left -= 1
    ranges = hours.ranges_on(day)
    wanted = local.timetz().replace(tzinfo=None)
    end = ranges[-1][1]
    return datetime.combine(day, min(max(wanted, ranges[0][0]), end), hours.zone)


DurationField = Annotated[Duration, BeforeValidator(Duration.parse)]
_env = SandboxedEnvironment()


def _clock(value: object) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a time of day (HH:MM)") from None


Clock = Annotated[time, BeforeValidator(_clock)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Texts(Strict):
    """One text per language; Jinja2 syntax is checked on load."""

    en: str
    zh_cn: str = Field(alias="zh-CN")

    @field_validator("en", "zh_cn")
    @classmethod
    def _parses(cls, text: str) -> str:
        try:
            _env.parse(text)
        except TemplateSyntaxError as e:
            raise ValueError(f"template does not parse: {e.message}") from None
        return text

    def get(self, language: str | None) -> str:
        return self.zh_cn if (language or "").lower().startswith("zh") else self.en


class Calendar(Strict):
    timezone: str
    holidays: str | None = "CN"
    quiet_hours: tuple[Clock, Clock]
    business_hours: dict[str, list[tuple[str, str]]]

    @model_validator(mode="after")
    def _valid_hours(self) -> Calendar:
        self.hours()  # raises with the field named
        return self

    def hours(self) -> BusinessHours:
        try:
            parsed = BusinessHours.parse({"timezone": self.timezone, "holidays": self.holidays,
                                          "weekly": self.business_hours})
        except InvalidInput as e:
            raise ValueError(
                e.message.replace("business_hours.weekly", "business_hours")
            ) from None
        if parsed is None or not any(parsed.weekly):
            raise ValueError("business_hours: no opening hours at all")
        return parsed


class Regrade(Strict):
    day_of_month: int = Field(ge=1, le=28)
    at: Clock


class Grading(Strict):
    scheme: Literal["weighted", "pyramid"]
    weights: dict[str, float]
    weighted: list[tuple[str, float]]
    pyramid: list[tuple[str, float]]
    regrade: Regrade
    # Purchases of the last N months count (amount, profit, frequency); the spec names none.
    lookback_months: int = Field(12, ge=1)

    @model_validator(mode="after")
    def _schemes(self) -> Grading:
        for name in ("weighted", "pyramid"):
            cuts = getattr(self, name)
            if [t for t, _ in cuts] != list(TIERS):
                raise ValueError(f"{name}: tiers must be A, B, C, D in that order")
            try:
                Scheme(self.weights, cuts)
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None
        return self

    def active(self) -> Scheme:
        return Scheme(self.weights, getattr(self, self.scheme))


class TierService(Strict):
    queue_boost: float
    complaint_priority: bool
    visit_every_days: int = Field(ge=0)
    booking_call_before_days: int = Field(ge=0)
    holiday_visit: bool
    holiday_sms: bool
    routine_callback_days: int = Field(ge=0)
    min_owners: int = Field(ge=1)


class CallbackRule(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str
    trigger: Literal[TRIGGERS]  # type: ignore[valid-type]
    after: DurationField
    within: DurationField
    category: str
    purpose: Texts

    @model_validator(mode="after")
    def _window(self) -> CallbackRule:
        if self.after.nominal_seconds > self.within.nominal_seconds:
            raise ValueError(f"after ({self.after}) is later than within ({self.within})")
        return self


class Repairs(Strict):
    promised_duration: DurationField


def _holiday_names(country: str | None) -> set[str]:
    if country is None:
        return set()
    names: set[str] = set()
    for year in (2025, 2026, 2027):
        names |= set(holidays.country_holidays(country, years=year).values())
    return names


class HolidayGreeting(Strict):
    tiers: list[Literal[TIERS]]  # type: ignore[valid-type]
    at: Clock
    holidays: list[str]
    template: Texts


class BirthdayGreeting(Strict):
    tiers: list[Literal[TIERS]]  # type: ignore[valid-type]
    at: Clock
    feb29_in_common_years: str = Field(pattern=r"^(02-28|03-01)$")
    template: Texts


class WeekendGreeting(Strict):
    enabled: bool
    tag: str
    weekday: Literal[DAYS]  # type: ignore[valid-type]
    at: Clock
    template: Texts


class Greetings(Strict):
    holiday: HolidayGreeting
    birthday: BirthdayGreeting
    weekend: WeekendGreeting


class Visits(Strict):
    holiday_visit_days_before: int = Field(ge=1)
    introduction_within_days: int = Field(ge=1)
    booking_category: str
    booking_purpose: Texts


class Health(Strict):
    cycle_min_purchases: int = Field(ge=2)
    cycle_grace_days: int = Field(ge=0)
    dormant_days: int = Field(ge=1)
    retention_within_days: int = Field(ge=1)
    cycle_category: str
    dormant_category: str
    retention_category: str
    routine_category: str = "emotional"
    # Window of the cycle-anomaly, dormant and routine callbacks (the spec gives none).
    callback_within_days: int = Field(7, ge=1)


class ComplaintDeadlines(Strict):
    verify: DurationField
    review: DurationField
    rectify: DurationField
    callback: DurationField


class Complaints(Strict):
    ack_within: DurationField
    levels: list[str] = Field(min_length=3, max_length=3)
    deadlines: ComplaintDeadlines


class Selection(Strict):
    random_share_per_month: float = Field(ge=0, le=1)
    random_seed: int
    low_satisfaction_max_score: int = Field(ge=1, le=5)
    low_satisfaction_within: DurationField
    categories: list[str] = Field(min_length=1)
    script: Texts
    random_category: str = "emotional"
    service_needed_category: str = "service"
    service_needed_max_per_month: int = Field(0, ge=0)  # 0 = no limit
    within_days: int = Field(7, ge=1)  # window of random and service-needed callbacks


class Satisfaction(Strict):
    survey_open_days: int = Field(ge=1)
    mediation_max_score: int = Field(ge=1, le=5)
    mediation_category: str
    mediation_purpose: Texts
    after_callback: bool
    after_visit: bool
    template: Texts


class Retries(Strict):
    no_answer_attempts: int = Field(ge=0)
    no_answer_every: DurationField
    sms_backoff: list[DurationField]


class Rules(Strict):
    version: Literal[1]
    calendar: Calendar
    grading: Grading
    tiers: dict[Literal[TIERS], TierService]  # type: ignore[valid-type]
    callbacks: list[CallbackRule]
    repairs: Repairs
    greetings: Greetings
    visits: Visits
    health: Health
    complaints: Complaints
    selection: Selection
    satisfaction: Satisfaction
    retries: Retries

    @model_validator(mode="after")
    def _consistent(self) -> Rules:
        problems = []
        missing = set(TIERS) - set(self.tiers)
        if missing:
            problems.append(f"tiers: missing {', '.join(sorted(missing))}")
        seen: set[str] = set()
        for rule in self.callbacks:
            if rule.id in seen:
                problems.append(f"callbacks[{rule.id}]: the id is used twice")
            seen.add(rule.id)
            if rule.category not in self.selection.categories:
                problems.append(f"callbacks[{rule.id}].category: {rule.category!r} is not one "
                                f"of selection.categories")
        for field in ("cycle_category", "dormant_category", "retention_category",
                      "routine_category"):
            if getattr(self.health, field) not in self.selection.categories:
                problems.append(f"health.{field}: not one of selection.categories")
        for field in ("random_category", "service_needed_category"):
            if getattr(self.selection, field) not in self.selection.categories:
                problems.append(f"selection.{field}: not one of selection.categories")
        for where, category in (("visits.booking_category", self.visits.booking_category),
                                ("satisfaction.mediation_category",
                                 self.satisfaction.mediation_category)):
            if category not in self.selection.categories:
                problems.append(f"{where}: {category!r} is not one of selection.categories")
        known = _holiday_names(self.calendar.holidays)
        for name in self.greetings.holiday.holidays:
            if name not in known:
                problems.append(f"greetings.holiday.holidays: {name!r} is not a holiday of "
                                f"{self.calendar.holidays} (known: {', '.join(sorted(known))})")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def callback(self, rule_id: str) -> CallbackRule:
        return next(r for r in self.callbacks if r.id == rule_id)


class RulesError(InvalidInput):
    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems), problems=problems)
        self.problems = problems


def parse_rules(text: str, source: str = "rules") -> Rules:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RulesError(source, [f"not valid TOML: {e}"]) from None
    try:
        return Rules.model_validate(raw)
    except ValidationError as e:
        problems = [line for err in e.errors() for line in _describe(err, raw).split("\n")]
        raise RulesError(source, problems) from None


def load_rules(path: Path | None = None) -> Rules:
    path = path or SHIPPED
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RulesError(str(path), [str(e)]) from None
    return parse_rules(text, str(path))


def _describe(err: Any, raw: dict[str, Any]) -> str:
    """A pydantic error as `callbacks[C3].within: message`, naming rules by id, not index."""
    parts: list[str] = []
    node: Any = raw
    for key in err["loc"]:
        if isinstance(key, int) and isinstance(node, list):
            item = node[key] if key < len(node) else None
            label = item.get("id") if isinstance(item, dict) and "id" in item else key
            parts[-1:] = [f"{parts[-1]}[{label}]"] if parts else [f"[{label}]"]
            node = item
        else:
            parts.append(str(key))
            node = node.get(key) if isinstance(node, dict) else None
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        message = "is required"
    elif err["type"] == "extra_forbidden":
        message = "is not a known field (a typo?)"
    where = ".".join(parts).replace(".[", "[")
    return f"{where}: {message}" if where else message
