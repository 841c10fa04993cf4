"""Relationship health (§5) and satisfaction replies (§8)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from contactcenter.rules.config import load_rules
from contactcenter.rules.health import (
    Agent,
    NoOneToReassignTo,
    Owned,
    coverage_gaps,
    cycle_anomaly_due,
    dormant_since,
    needs_retention,
    parse_survey_reply,
    reassign,
)

RULES = load_rules()
SH = ZoneInfo("Asia/Shanghai")


def day(n: int) -> datetime:
    return datetime(2026, 1, 1, 10, tzinfo=SH) + timedelta(days=n)


@pytest.mark.parametrize(
    ("purchases", "due"),
    [
        ([day(0), day(30)], None),  # fewer than 3 purchases: no rhythm yet
        ([day(0), day(30), day(60)], day(93)),  # every 30 days, +3 days grace
        ([day(0), day(10), day(40), day(50)], day(63)),  # median of 10, 30, 10 = 10
        ([day(60), day(0), day(30)], day(93)),  # order does not matter
    ],
)
def test_cycle_anomaly(purchases: list[datetime], due: datetime | None) -> None:
    assert cycle_anomaly_due(purchases, RULES) == due


def test_dormant_after_180_days() -> None:
    assert dormant_since(day(0), RULES) == day(180)


@pytest.mark.parametrize(
    ("before", "after", "retain"),
    [("A", "C", True), ("B", "D", True), ("A", "B", False), ("C", "D", False),
     ("D", "A", False), ("B", None, True)],
)
def test_lost_high_value_customers_get_a_retention_callback(
    before: str, after: str | None, retain: bool
) -> None:
    assert needs_retention(before, after, RULES) is retain


def test_orphans_go_to_least_loaded_teammates_keeping_minimum_owners() -> None:
    leaving = Agent(1, "north", active=False, owned=3)
    team = [leaving, Agent(2, "north", True, owned=10), Agent(3, "north", True, owned=2),
            Agent(4, "south", True, owned=0), Agent(5, "north", False, owned=0)]
    customers = [Owned(100, "C", frozenset({1})), Owned(101, "A", frozenset({1})),
                 Owned(102, "B", frozenset({1, 3}))]
    moves = {m.customer_id: m.added for m in reassign(leaving, team, customers, RULES)}
    # The A customer needs two owners: agent 3 (least loaded), then agent 2. The B customer
    # keeps agent 3 and gets agent 2. The C customer needs one: agent 3 is least loaded then.
    assert moves == {101: (3, 2), 102: (2,), 100: (3,)}
    assert all(m for m in moves.values())  # nothing left ownerless


def test_no_teammate_left_is_an_error_not_a_silent_orphan() -> None:
    leaving = Agent(1, "north", active=False, owned=1)
    with pytest.raises(NoOneToReassignTo):
        reassign(leaving, [leaving, Agent(4, "south", True, 0)],
                 [Owned(100, "C", frozenset({1}))], RULES)


def test_coverage_gaps_flag_a_and_b_with_one_owner() -> None:
    assert coverage_gaps({1: ("A", 1), 2: ("B", 2), 3: ("C", 1), 4: ("B", 0)}, RULES) == [1, 4]


@pytest.mark.parametrize(
    ("text", "score", "only"),
    [("4", 4, True), (" 5 ", 5, True), ("5分", 5, True), ("3!", 3, True), ("1。", 1, True),
     ("2 the technician was late", 2, False), ("5 很满意,谢谢", 5, False),
     ("thanks", None, False), ("10", None, False), ("0", None, False), ("", None, False)],
)
def test_survey_replies(text: str, score: int | None, only: bool) -> None:
    reply = parse_survey_reply(text)
    assert (reply.score, reply.only_the_score) == (score, only)
