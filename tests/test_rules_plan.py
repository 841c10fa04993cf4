"""Planning by the spec, with a controlled clock: each case can be checked against
shared/spec/callback-rules.md by reading the table."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from contactcenter.rules.config import load_rules
from contactcenter.rules.plan import (
    Customer,
    Event,
    callbacks_for,
    greetings_on,
    holiday_starts,
    holiday_visits,
    release,
)

SH = ZoneInfo("Asia/Shanghai")
RULES = load_rules()
WANG = Customer(1, "C", birthday=date(1980, 2, 29))
SMITH = Customer(2, "D", timezone="Europe/London", language="en", birthday=date(1975, 11, 23))
VIP = Customer(3, "A", birthday=date(1970, 5, 4))
QUIT = Customer(4, "C", marketing_opt_out=True, birthday=date(1990, 11, 23))


def sh(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def plan(kind: str, at: str, customer: Customer = WANG) -> dict[str, tuple[datetime, datetime]]:
    event = Event(kind, sh(at), customer.id, f"{kind}:1")
    return {p.rule_id: (p.due, p.latest) for p in callbacks_for(event, customer, RULES)}


def test_c2_to_c4_windows_from_one_purchase() -> None:
    # Purchase Monday 2026-03-02 10:00.
    assert plan("purchase", "2026-03-02 10:00") == {
        "C2": (sh("2026-03-09 10:00"), sh("2026-03-16 10:00")),  # 7-14 days
        "C3": (sh("2026-07-02 10:00"), sh("2026-09-02 10:00")),  # 4-6 months
        "C4": (sh("2027-01-04 09:00"), sh("2027-03-02 10:00")),  # 10-12 months; 2 Jan 2027 is
    }                                                             # a Saturday: next business day


def test_c10_after_a_repair_done_on_a_friday_before_national_day() -> None:
    # Friday 2025-09-26 16:00 + 3-5 days = Mon 29 Sep 16:00 .. Wed 1 Oct 16:00; 1 Oct is a
    # holiday, so the window ends with the last business hour on Tue 30 Sep.
    assert plan("repair-completed", "2025-09-26 16:00") == {
        "C10": (sh("2025-09-29 16:00"), sh("2025-09-30 18:00"))}


def test_c10_window_with_no_business_time_moves_to_the_next_business_day() -> None:
    # Sunday 2025-09-28 20:00 + 3-5 days lies wholly in the National Day week.
    assert plan("repair-completed", "2025-09-28 20:00") == {
        "C10": (sh("2025-10-09 09:00"), sh("2025-10-09 18:00"))}


@pytest.mark.parametrize(
    ("kind", "at", "rule", "due", "latest"),
    [
        ("complaint-written", "2026-11-23 17:00", "C6", "2026-11-23 17:00", "2026-11-24 10:00"),
        ("complaint-written", "2026-11-21 11:00", "C6", "2026-11-23 09:00", "2026-11-23 11:00"),
        ("proposal-written", "2026-11-27 15:00", "C7", "2026-11-27 15:00", "2026-11-30 15:00"),
        ("repair-dispatched", "2026-11-23 10:00", "C8", "2026-11-23 10:00", "2026-11-23 11:00"),
        ("installation-completed", "2026-11-23 10:00", "C1", "2026-11-23 10:00",
         "2026-11-24 10:00"),
        # A make-up Saturday (2025-10-11) is a working day: "within 1 working day" of Friday
        # 10 Oct 15:00 ends on that Saturday.
        ("proposal-written", "2025-10-10 15:00", "C7", "2025-10-10 15:00", "2025-10-11 15:00"),
    ],
    ids=["c6-two-working-hours", "c6-on-a-saturday", "c7-over-the-weekend", "c8-within-an-hour",
         "c1-within-a-day", "make-up-saturday-works"],
)
def test_immediate_callbacks_count_working_time(
    kind: str, at: str, rule: str, due: str, latest: str
) -> None:
    assert plan(kind, at)[rule] == (sh(due), sh(latest))


def test_opted_out_customer_still_gets_a_repair_callback_but_no_greeting() -> None:
    assert "C10" in plan("repair-completed", "2026-11-20 10:00", QUIT)
    assert [p.customer_id for p in greetings_on(date(2026, 11, 23), [QUIT, SMITH], RULES)] == [2]


def test_spring_festival_moves_with_the_lunar_calendar() -> None:
    assert holiday_starts(RULES, 2025)["Chinese New Year (Spring Festival)"] == date(2025, 1, 29)
    assert holiday_starts(RULES, 2026)["Chinese New Year (Spring Festival)"] == date(2026, 2, 17)


def test_holiday_greeting_goes_to_c_and_d_at_nine_local_time() -> None:
    plans = greetings_on(date(2026, 2, 17), [WANG, SMITH, VIP], RULES)
    holiday = {p.customer_id: p for p in plans if p.rule_id == "holiday"}
    assert set(holiday) == {1, 2}  # A gets a visit instead
    assert holiday[1].send_at == sh("2026-02-17 09:00")
    assert holiday[2].send_at == datetime(2026, 2, 17, 9, 0, tzinfo=ZoneInfo("Europe/London"))
    assert holiday[2].values == {"holiday": "Chinese New Year (Spring Festival)"}
    assert "{{ holiday }}" in holiday[2].template


def test_birthday_on_29_february_is_greeted_on_the_28th_in_common_years() -> None:
    assert [p.customer_id for p in greetings_on(date(2027, 2, 28), [WANG], RULES)] == [1]
    assert greetings_on(date(2027, 3, 1), [WANG], RULES) == []
    assert greetings_on(date(2028, 2, 28), [WANG], RULES) == []  # a leap year has the 29th
    assert [p.key for p in greetings_on(date(2028, 2, 29), [WANG], RULES)] == ["birthday:1:2028"]


def test_birthday_greeting_for_every_tier() -> None:
    assert [p.customer_id for p in greetings_on(date(2026, 5, 4), [VIP], RULES)] == [3]


@pytest.mark.parametrize(
    ("at", "released"),
    [
        ("2026-11-23 21:30", "2026-11-24 09:00"),
        ("2026-11-24 03:00", "2026-11-24 09:00"),
        ("2026-11-24 09:00", "2026-11-24 09:00"),
        ("2026-11-24 20:59", "2026-11-24 20:59"),
    ],
)
def test_a_greeting_due_in_quiet_hours_waits_for_nine(at: str, released: str) -> None:
    assert release(sh(at), WANG, RULES) == sh(released)


def test_weekend_greeting_is_off_by_default() -> None:
    member = Customer(5, "C", tags=frozenset({"member"}))
    assert greetings_on(date(2026, 11, 28), [member], RULES) == []


def test_holiday_visit_for_a_and_b_in_the_week_before() -> None:
    visits = [v for v in holiday_visits(2025, [VIP, WANG], RULES) if "2025-10-01" in v.key]
    assert [v.customer_id for v in visits] == [3]
    # The week before 1 Oct 2025: from Wed 24 Sep 09:00 to Tue 30 Sep 18:00 (28 Sep is a
    # make-up working Sunday, inside the window anyway).
    assert (visits[0].due, visits[0].latest) == (sh("2025-09-24 09:00"), sh("2025-09-30 18:00"))


def test_keys_make_each_occurrence_unique() -> None:
    day = date(2026, 11, 23)
    first = greetings_on(day, [SMITH], RULES)
    assert first == greetings_on(day, [SMITH], RULES)  # deterministic: same keys on a rerun
    assert first[0].key == "birthday:2:2026"
