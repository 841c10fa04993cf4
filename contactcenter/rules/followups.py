"""What follows a callback or a visit (spec §2, §4, §8, §9): pure decisions over the rules.

- A callback's outcome decides the next step: a retry after *no answer* (until the rules'
  attempts are used up: then *unreachable*), a new call at the time the customer asked for,
  or a satisfaction survey after *reached*.
- Regular visits per tier, holiday visits in the days ahead, the booking call before a visit.
- The check that a dispatched repair finished within its promised duration (C9).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from contactcenter.rules.config import Duration, Rules
from contactcenter.rules.plan import Customer, VisitPlan, WorkPlan, holiday_visits
from contactcenter.rules.selection import next_attempt_after_no_answer

REACHED, NO_ANSWER, WRONG_NUMBER, CALL_BACK = "reached", "no-answer", "wrong-number", "call-back"
OUTCOMES = (REACHED, NO_ANSWER, WRONG_NUMBER, CALL_BACK)
UNREACHABLE = "unreachable"
# A visit's outcome: it took place, or the owner went and could not hold it.
VISIT_DONE = "done"
VISIT_OUTCOMES = (VISIT_DONE, "customer-absent", "declined")
REGULAR_VISIT = "regular-visit"
OVERRUN_CHECK = "repair-check"


@dataclass(frozen=True)
class NextStep:
    """What an outcome leads to: a new callback (`due`..`latest`, `attempt`), a close as
    unreachable, and whether the customer gets a satisfaction survey."""

    due: datetime | None = None
    latest: datetime | None = None
    attempt: int = 1
    closed_as: str | None = None
    survey: bool = False


def close_of_day(at: datetime, rules: Rules) -> datetime:
    """The end of business on `at`'s day (the latest time for "call me back at 15:00");
    `at` itself when the day's business is already over."""
    hours = rules.calendar.hours()
    local = at.astimezone(hours.zone)
    ends = [end for _, end in hours.ranges_on(local.date()) if local.time() < end]
    return datetime.combine(local.date(), max(ends), hours.zone) if ends else at


def after_outcome(outcome: str, attempt: int, now: datetime, rules: Rules, *,
                  call_back_at: datetime | None = None) -> NextStep:
    """§9: *no answer* is retried `retries.no_answer_attempts` times, `no_answer_every` apart,
    in business hours, then closed as unreachable; `attempt` counts the calls made so far."""
    if outcome == REACHED:
        return NextStep(survey=rules.satisfaction.after_callback)
    if outcome == NO_ANSWER:
        due = next_attempt_after_no_answer(attempt, now, rules)
        if due is None:
            return NextStep(closed_as=UNREACHABLE)
        hours = rules.calendar.hours()
        # Late once the slot of the following retry has come.
        _, latest = hours.clip(due, rules.retries.no_answer_every.after(due, hours))
        return NextStep(due=due, latest=latest, attempt=attempt + 1)
    if outcome == CALL_BACK:
        if call_back_at is None:
            raise ValueError("a call-back needs the time the customer asked for")
        due, latest = chosen_window(call_back_at, None, now, rules)
        return NextStep(due=due, latest=latest)
    return NextStep()


def chosen_window(due: datetime, latest: datetime | None, now: datetime, rules: Rules
                  ) -> tuple[datetime, datetime]:
    """A time a person chose ("Tuesday afternoon": due Tuesday 13:00, latest 18:00; "at 15:00":
    latest the close of that day), never before now, clipped to business hours (§9)."""
    due = max(due, now)
    latest = close_of_day(due, rules) if latest is None else latest
    if latest < due:
        raise ValueError("latest is before due")
    return rules.calendar.hours().clip(due, latest)


def survey_plan(subject: str, subject_id: int, customer_id: int, now: datetime) -> WorkPlan:
    """§8: ask about one callback contact or one visit, once."""
    return WorkPlan(key=f"survey:{subject}:{subject_id}", kind="survey", rule_id="satisfaction",
                    customer_id=customer_id, due=now, latest=None,
                    payload={"subject": subject, "subject_id": subject_id})


def visit_lead_days(rules: Rules) -> int:
    """How far ahead a planned visit is taken in: its booking call comes that long before."""
    return max((t.booking_call_before_days for t in rules.tiers.values()), default=0)


def booking_window(visit_due: datetime, tier: str | None, now: datetime, rules: Rules
                   ) -> tuple[datetime, datetime] | None:
    """§2: the booking call `booking_call_before_days` before the visit, in business hours,
    never in the past; None for a tier without one."""
    service = rules.tiers.get(tier) if tier else None  # type: ignore[call-overload]
    if service is None or service.booking_call_before_days == 0:
        return None
    start = visit_due - timedelta(days=service.booking_call_before_days)
    return rules.calendar.hours().clip(max(start, now), max(visit_due, now))


def regular_visit(customer: Customer, last: date | None, today: date, rules: Rules
                  ) -> VisitPlan | None:
    """§2: the next regular visit, `visit_every_days` after the last one (the first one as
    soon as its booking call can be made); a missed one is due today. Keyed by its day."""
    service = rules.tiers.get(customer.tier) if customer.tier else None  # type: ignore[call-overload]
    if service is None or service.visit_every_days == 0:
        return None
    if last is None:
        day = today + timedelta(days=service.booking_call_before_days)
    else:
        day = max(last + timedelta(days=service.visit_every_days), today)
    hours = rules.calendar.hours()
    start = datetime.combine(day, time(0), hours.zone)
    due, latest = hours.clip(start, start + timedelta(days=1))
    return VisitPlan(key=f"{REGULAR_VISIT}:{customer.id}:{day.isoformat()}",
                     rule_id=REGULAR_VISIT, customer_id=customer.id, due=due, latest=latest)


def upcoming_holiday_visits(today: date, customers: Iterable[Customer], rules: Rules
                            ) -> list[VisitPlan]:
    """§4: the holiday visits whose window is open or opens within the booking lead, this
    year's and next year's (the days before New Year's Day are in December)."""
    hours = rules.calendar.hours()
    start = datetime.combine(today, time(0), hours.zone)
    horizon = start + timedelta(days=visit_lead_days(rules) + 1)
    people = list(customers)
    return [p for year in (today.year, today.year + 1)
            for p in holiday_visits(year, people, rules)
            if p.latest >= start and p.due < horizon]


def mediation_callback(survey_id: int, customer: Customer, now: datetime, rules: Rules
                       ) -> WorkPlan:
    """§7/§8: a low score gets a mediation callback within `low_satisfaction_within`."""
    hours = rules.calendar.hours()
    due, latest = hours.clip(now, rules.selection.low_satisfaction_within.after(now, hours))
    s = rules.satisfaction
    return WorkPlan(key=f"mediation:{customer.id}:survey:{survey_id}", kind="callback",
                    rule_id="mediation", customer_id=customer.id, due=due, latest=latest,
                    payload={"category": s.mediation_category,
                             "purpose": s.mediation_purpose.get(customer.language),
                             "survey_id": survey_id})


def overrun_check(customer_id: int, repair_id: str, dispatched_at: datetime,
                  data: dict[str, Any], rules: Rules) -> WorkPlan:
    """C9: a check at the end of the promised duration (the event's `promised_duration`,
    else `repairs.promised_duration`); it finds the repair completed, or plans C9."""
    promised = Duration.parse(data.get("promised_duration", rules.repairs.promised_duration))
    due = promised.after(dispatched_at, rules.calendar.hours())
    return WorkPlan(key=f"{OVERRUN_CHECK}:{customer_id}:{repair_id}", kind=OVERRUN_CHECK,
                    rule_id="C9", customer_id=customer_id, due=due, latest=None,
                    payload={"repair_id": repair_id, "promised": str(promised)})
