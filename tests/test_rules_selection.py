"""Random selection (§7) and no-answer retries (§9)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from contactcenter.rules.config import load_rules
from contactcenter.rules.selection import (
    low_satisfaction,
    next_attempt_after_no_answer,
    random_selection,
)

RULES = load_rules()
SH = ZoneInfo("Asia/Shanghai")


def test_random_selection_is_one_percent_and_reproducible() -> None:
    ids = range(1, 10_001)
    november = random_selection(ids, date(2026, 11, 1), RULES)
    assert len(november) == 100 and len(set(november)) == 100
    assert november == random_selection(reversed(ids), date(2026, 11, 15), RULES)
    assert november != random_selection(ids, date(2026, 12, 1), RULES)
    assert random_selection(range(1, 11), date(2026, 11, 1), RULES) != []  # at least one
    assert random_selection([], date(2026, 11, 1), RULES) == []


def test_low_satisfaction_is_two_or_less() -> None:
    assert [low_satisfaction(s, RULES) for s in range(1, 6)] == [True, True, False, False, False]


def test_no_answer_is_retried_three_times_two_hours_apart_then_unreachable() -> None:
    at = datetime(2026, 11, 23, 10, tzinfo=SH)
    assert next_attempt_after_no_answer(1, at, RULES) == datetime(2026, 11, 23, 12, tzinfo=SH)
    assert next_attempt_after_no_answer(3, at, RULES) == datetime(2026, 11, 23, 12, tzinfo=SH)
    assert next_attempt_after_no_answer(4, at, RULES) is None  # 1 call + 3 retries done
    late = datetime(2026, 11, 27, 17, tzinfo=SH)  # a Friday: 19:00 is closed, so Monday 09:00
    assert next_attempt_after_no_answer(2, late, RULES) == datetime(2026, 11, 30, 9, tzinfo=SH)
