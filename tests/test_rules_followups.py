"""What follows a callback or a visit (spec §2, §4, §8, §9), against the shipped rules:
Mon-Fri 09:00-18:00 in Shanghai, 3 retries 2 h apart, A every 90 days, B every 180, booking
calls 7 days before, mediation within 1 working day, repairs promised in 4 h."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from contactcenter.rules.config import SHIPPED, RulesError, load_rules, parse_rules
from contactcenter.rules.followups import (
    NextStep,
    after_outcome,
    booking_window,
    chosen_window,
    mediation_callback,
    overrun_check,
    regular_visit,
    upcoming_holiday_visits,
)
from contactcenter.rules.plan import Customer

RULES = load_rules()
SH = ZoneInfo("Asia/Shanghai")
MON = datetime(2026, 11, 23, 10, tzinfo=SH)  # Monday 23 November 2026, 10:00


def at(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


@pytest.mark.parametrize(
    ("outcome", "attempt", "now", "call_back_at", "expected"),
    [
        ("reached", 1, MON, None, NextStep(survey=True)),
        ("wrong-number", 1, MON, None, NextStep()),
        # §9: no answer -> 2 h later, late once the next slot comes; 3 retries, then closed.
        ("no-answer", 1, MON, None, NextStep(at(11, 23, 12), at(11, 23, 14), attempt=2)),
        ("no-answer", 3, MON, None, NextStep(at(11, 23, 12), at(11, 23, 14), attempt=4)),
        ("no-answer", 4, MON, None, NextStep(closed_as="unreachable")),
        # 18:30 is closed: Tuesday's opening, then 2 h.
        ("no-answer", 1, at(11, 23, 16, 30), None,
         NextStep(at(11, 24, 9), at(11, 24, 11), attempt=2)),
        # Friday 17:00 -> 19:00 is closed -> Monday.
        ("no-answer", 2, at(11, 27, 17), None,
         NextStep(at(11, 30, 9), at(11, 30, 11), attempt=3)),
        # The customer's time, late at the close of that day.
        ("call-back", 2, MON, at(11, 24, 15), NextStep(at(11, 24, 15), at(11, 24, 18))),
        # 20:00 is outside business hours: the next business day, all of it.
        ("call-back", 1, MON, at(11, 24, 20), NextStep(at(11, 25, 9), at(11, 25, 18))),
        # A time already past is due now.
        ("call-back", 1, MON, at(11, 23, 9), NextStep(MON, at(11, 23, 18))),
    ],
)
def test_what_an_outcome_leads_to(outcome: str, attempt: int, now: datetime,
                                  call_back_at: datetime | None, expected: NextStep) -> None:
    assert after_outcome(outcome, attempt, now, RULES, call_back_at=call_back_at) == expected


def test_a_call_back_needs_its_time() -> None:
    with pytest.raises(ValueError, match="call-back"):
        after_outcome("call-back", 1, MON, RULES)


@pytest.mark.parametrize(
    ("due", "latest", "now", "expected"),
    [
        (at(11, 24, 13), at(11, 24, 18), MON, (at(11, 24, 13), at(11, 24, 18))),  # afternoon
        (at(11, 24, 13), None, MON, (at(11, 24, 13), at(11, 24, 18))),
        (at(11, 28, 10), None, MON, (at(11, 30, 9), at(11, 30, 18))),  # Saturday -> Monday
        (at(2, 14, 10), None, at(2, 13, 10), (at(2, 14, 10), at(2, 14, 18))),  # 调休 Saturday
        (at(10, 1, 10), None, at(9, 30, 10), (at(10, 8, 9), at(10, 8, 18))),  # National Day
        (at(11, 24, 9), at(11, 26, 12), MON, (at(11, 24, 9), at(11, 26, 12))),
    ],
)
def test_a_chosen_window_is_kept_inside_business_hours(
    due: datetime, latest: datetime | None, now: datetime, expected: tuple[datetime, datetime]
) -> None:
    assert chosen_window(due, latest, now, RULES) == expected


def test_a_window_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="before"):
        chosen_window(at(11, 24, 15), at(11, 24, 13), MON, RULES)


@pytest.mark.parametrize(
    ("visit_due", "tier", "expected"),
    [
        # A week before, in business time; the visit day's opening is not before the visit.
        (at(12, 7, 9), "A", (at(11, 30, 9), at(12, 4, 18))),
        (at(12, 7, 9), "B", (at(11, 30, 9), at(12, 4, 18))),
        (at(12, 7, 9), "C", None),  # C/D get no visits, and no booking calls
        (at(12, 7, 9), None, None),
        # A visit due tomorrow (an introduction visit): book it now.
        (at(11, 24, 9), "A", (MON, at(11, 23, 18))),
    ],
)
def test_the_booking_call_comes_a_week_before_the_visit(
    visit_due: datetime, tier: str | None, expected: tuple[datetime, datetime] | None
) -> None:
    assert booking_window(visit_due, tier, MON, RULES) == expected


@pytest.mark.parametrize(
    ("tier", "last", "expected"),
    [
        ("A", None, ("2026-11-30", at(11, 30, 9), at(11, 30, 18))),  # first: booking call today
        ("A", date(2026, 9, 1), ("2026-11-30", at(11, 30, 9), at(11, 30, 18))),  # +90 days
        # +180 days is Sunday 28 February 2027: on Monday 1 March.
        ("B", date(2026, 9, 1), ("2027-02-28", at(3, 1, 9, year=2027),
                                 at(3, 1, 18, year=2027))),
        ("A", date(2026, 1, 1), ("2026-11-23", at(11, 23, 9), at(11, 23, 18))),  # missed: today
        ("C", None, None),
        ("D", date(2026, 1, 1), None),
    ],
)
def test_regular_visits_per_tier(tier: str, last: date | None,
                                 expected: tuple[str, datetime, datetime] | None) -> None:
    plan = regular_visit(Customer(id=1, tier=tier), last, MON.date(), RULES)
    if expected is None:
        assert plan is None
        return
    assert plan is not None
    day, due, latest = expected
    assert (plan.key, plan.due, plan.latest) == (f"regular-visit:1:{day}", due, latest)


def test_holiday_visits_are_planned_when_their_booking_call_is_near() -> None:
    people = [Customer(id=1, tier="A"), Customer(id=2, tier="B"), Customer(id=3, tier="C")]
    # New Year's Day 2027: the visit window is the week before it, from Friday 25 December.
    plans = upcoming_holiday_visits(date(2026, 12, 20), people, RULES)
    assert [(p.key, p.due, p.latest) for p in plans] == [
        ("holiday-visit:1:2027-01-01", at(12, 25, 9), at(12, 31, 18)),
        ("holiday-visit:2:2027-01-01", at(12, 25, 9), at(12, 31, 18)),
    ]
    assert upcoming_holiday_visits(date(2026, 12, 10), people, RULES) == []  # not yet


def test_a_low_score_gets_a_mediation_callback_within_a_working_day() -> None:
    plan = mediation_callback(7, Customer(id=1, tier="C", language="en"), MON, RULES)
    assert (plan.key, plan.kind, plan.due, plan.latest) == (
        "mediation:1:survey:7", "callback", MON, at(11, 24, 10))
    assert plan.payload["category"] == "mediation"
    assert plan.payload["purpose"].startswith("The customer gave a low satisfaction score")


@pytest.mark.parametrize(
    ("data", "due"),
    [({}, at(11, 23, 14)), ({"promised_duration": "6h"}, at(11, 23, 16)),
     ({"promised_duration": "1wd"}, at(11, 24, 10))],
)
def test_the_overrun_check_comes_at_the_end_of_the_promised_duration(
    data: dict[str, str], due: datetime
) -> None:
    plan = overrun_check(1, "R-9", MON, data, RULES)
    assert (plan.key, plan.kind, plan.rule_id, plan.due) == ("repair-check:1:R-9",
                                                              "repair-check", "C9", due)


def test_a_bad_promised_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        overrun_check(1, "R-9", MON, {"promised_duration": "soon"}, RULES)


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [('booking_category = "service"', 'booking_category = "chat"',
      "visits.booking_category: 'chat' is not one of selection.categories"),
     ('mediation_category = "mediation"', 'mediation_category = "calm"',
      "satisfaction.mediation_category: 'calm' is not one of selection.categories"),
     ("after_visit = true", "", "satisfaction.after_visit: is required")],
)
def test_the_follow_up_settings_are_checked(replace: str, by: str, expected: str) -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    assert replace in text
    with pytest.raises(RulesError) as e:
        parse_rules(text.replace(replace, by, 1), "test.toml")
    assert expected in e.value.problems
