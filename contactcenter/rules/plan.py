"""What work a rule makes due, and when: pure functions over the rules and plain facts.

Each planned item carries a `key` = (rule, customer, occurrence): the scheduler stores it under
a unique constraint, so an item is created at most once across restarts and processes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from contactcenter.hours import DAYS
from contactcenter.rules.config import Rules

UNGRADED = "D"  # grading puts everyone not in A-C into D; a customer not yet graded is too


@dataclass(frozen=True)
class Customer:
    """The facts about a customer the rules read."""

    id: int
    tier: str | None
    timezone: str = "Asia/Shanghai"
    language: str = "zh-CN"
    birthday: date | None = None
    tags: frozenset[str] = frozenset()
    marketing_opt_out: bool = False  # STOP/退订/TD: no greetings or campaigns


@dataclass(frozen=True)
class Event:
    kind: str  # a callback trigger, e.g. "purchase", "repair-completed"
    at: datetime
    customer_id: int
    occurrence: str  # what makes this event unique, e.g. "purchase:1234"


@dataclass(frozen=True)
class CallbackPlan:
    key: str
    rule_id: str
    customer_id: int
    due: datetime
    latest: datetime
    category: str
    purpose: str


@dataclass(frozen=True)
class SmsPlan:
    key: str
    rule_id: str
    customer_id: int
    send_at: datetime
    template: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VisitPlan:
    key: str
    rule_id: str
    customer_id: int
    due: datetime
    latest: datetime


@dataclass(frozen=True)
class WorkPlan:
    """Any other planned item, with the payload its handler reads (a retried callback that
    counts its attempts, a booking call naming its visit, a check of a repair's duration)."""

    key: str
    kind: str
    rule_id: str
    customer_id: int
    due: datetime
    latest: datetime | None
    payload: dict[str, Any] = field(default_factory=dict)


def callbacks_for(event: Event, customer: Customer, rules: Rules) -> list[CallbackPlan]:
    """§3: the callback tasks an event makes due, windows clipped to business time (§9).

    Service callbacks go to opted-out customers too: opting out stops greetings and campaigns,
    not service about their own purchases and repairs.
    """
    hours = rules.calendar.hours()
    plans = []
    for rule in rules.callbacks:
        if rule.trigger != event.kind:
            continue
        earliest = rule.after.after(event.at, hours)
        latest = rule.within.after(event.at, hours)
        due, last = hours.clip(earliest, latest)
        plans.append(CallbackPlan(
            key=f"{rule.id}:{customer.id}:{event.occurrence}", rule_id=rule.id,
            customer_id=customer.id, due=due, latest=last, category=rule.category,
            purpose=rule.purpose.get(customer.language),
        ))
    return plans


@lru_cache(maxsize=32)
def _holiday_dates(country: str, year: int) -> dict[str, date]:
    """First date of each named holiday in a year."""
    firsts: dict[str, date] = {}
    for day, name in sorted(holidays.country_holidays(country, years=year).items()):
        firsts.setdefault(name, day)
    return firsts


def holiday_starts(rules: Rules, year: int) -> dict[str, date]:
    """The greeting holidays of a year and the day each begins (lunar ones move every year)."""
    country = rules.calendar.holidays
    if country is None:
        return {}
    firsts = _holiday_dates(country, year)
    return {name: firsts[name] for name in rules.greetings.holiday.holidays if name in firsts}


def release(at: datetime, customer: Customer, rules: Rules) -> datetime:
    """No automated SMS in quiet hours (customer's time zone): it waits for their end."""
    start, end = rules.calendar.quiet_hours
    local = at.astimezone(ZoneInfo(customer.timezone))
    t = local.time()
    quiet = (start <= t or t < end) if start > end else (start <= t < end)
    if not quiet:
        return at
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, ZoneInfo(customer.timezone))


def _local(day: date, at: time, customer: Customer) -> datetime:
    return datetime.combine(day, at, ZoneInfo(customer.timezone))


def greetings_on(day: date, customers: Iterable[Customer], rules: Rules) -> list[SmsPlan]:
    """§4: greeting SMS due on `day` (holiday, birthday, weekend), opt-outs and quiet hours
    respected. Call once per day; the keys make a second call harmless."""
    g = rules.greetings
    holiday_today = [name for name, first in holiday_starts(rules, day.year).items()
                     if first == day]
    birthday_dates = {day}
    if (day.month, day.day) == tuple(map(int, g.birthday.feb29_in_common_years.split("-"))) \
            and not _is_leap(day.year):
        birthday_dates.add(date(2000, 2, 29))  # a 29 February birthday, greeted today
    weekend = g.weekend.enabled and DAYS[day.weekday()] == g.weekend.weekday
    plans: list[SmsPlan] = []
    for c in customers:
        if c.marketing_opt_out:
            continue
        for name in holiday_today:
            if c.tier in g.holiday.tiers and rules.tiers[c.tier].holiday_sms:
                plans.append(SmsPlan(
                    key=f"holiday:{c.id}:{day.isoformat()}:{name}", rule_id="holiday",
                    customer_id=c.id, send_at=release(_local(day, g.holiday.at, c), c, rules),
                    template=g.holiday.template.get(c.language), values={"holiday": name},
                ))
        if c.birthday is not None and c.tier in g.birthday.tiers and any(
            (c.birthday.month, c.birthday.day) == (d.month, d.day) for d in birthday_dates
        ):
            plans.append(SmsPlan(
                key=f"birthday:{c.id}:{day.year}", rule_id="birthday", customer_id=c.id,
                send_at=release(_local(day, g.birthday.at, c), c, rules),
                template=g.birthday.template.get(c.language),
            ))
        if weekend and g.weekend.tag in c.tags:
            plans.append(SmsPlan(
                key=f"weekend:{c.id}:{day.isoformat()}", rule_id="weekend", customer_id=c.id,
                send_at=release(_local(day, g.weekend.at, c), c, rules),
                template=g.weekend.template.get(c.language),
            ))
    return plans


def holiday_visits(year: int, customers: Iterable[Customer], rules: Rules) -> list[VisitPlan]:
    """§4: A/B customers get a holiday visit, due in the days before each statutory holiday."""
    hours = rules.calendar.hours()
    before = timedelta(days=rules.visits.holiday_visit_days_before)
    plans = []
    for first in holiday_starts(rules, year).values():
        start = datetime.combine(first, time(0), hours.zone)
        due, latest = hours.clip(start - before, start)
        for c in customers:
            if c.tier is not None and rules.tiers[c.tier].holiday_visit:
                plans.append(VisitPlan(key=f"holiday-visit:{c.id}:{first.isoformat()}",
                                       rule_id="holiday-visit", customer_id=c.id, due=due,
                                       latest=latest))
    return plans


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
