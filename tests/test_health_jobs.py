"""The daily health sweep (spec §5, §2), the selection jobs (§7) and the once-per-period runs,
on a controlled clock: each case says what the spec makes due and checks it is planned once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from contactcenter.health_jobs import sweep_health
from contactcenter.jobruns import claim, run_once_per_period
from contactcenter.rules.config import SHIPPED, load_rules, parse_rules
from contactcenter.rules.periodic import CaseEvent, open_cases, regrade_period
from contactcenter.selection_jobs import select_random, select_service_needed
from contactcenter.storage.db import sessionmaker
from contactcenter.storage.models import Contact, Customer, CustomerEvent, Queue, ScheduledWork
from contactcenter.templates import Templates

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
RULES = load_rules()
TEXTS = Templates.load()


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def _add(engine: AsyncEngine, customers: list[dict], events: list[tuple[int, str, float,
                                                                               dict]] = (),
               contacts: list[tuple[int, float, str, str | None]] = ()) -> None:
    async with sessionmaker(engine).begin() as session:
        for c in customers:
            session.add(Customer(**{"created_at": NOW, "updated_at": NOW, **c}))
        queue = Queue(name="q")
        session.add(queue)
        await session.flush()
        for cid, kind, days, data in events:
            session.add(CustomerEvent(customer_id=cid, kind=kind, at=ago(days), data=data,
                                      created_at=NOW))
        for cid, days, state, external_id in contacts:
            session.add(Contact(channel="callback", state=state, customer_id=cid,
                                queue_id=queue.id, created_at=ago(days),
                                external_id=external_id))


async def _keys(engine: AsyncEngine) -> set[str]:
    async with sessionmaker(engine)() as session:
        return set((await session.scalars(select(ScheduledWork.key))).all())


async def test_health_sweep_plans_cycle_dormant_and_routine_callbacks(engine: AsyncEngine
                                                                      ) -> None:
    purchases = [(1, "purchase", d, {}) for d in (94, 64, 34)]  # every 30 days; due at 34-30-3
    purchases += [(2, "purchase", d, {}) for d in (62, 32, 2)]  # every 30 days, on time
    purchases += [(3, "purchase", d, {}) for d in (100, 50)]  # two purchases: no rhythm yet
    purchases += [(6, "purchase", d, {}) for d in (94, 64, 34)]  # overdue, task still open
    await _add(engine, [
        {"id": 1, "name": "overdue", "tier": "D"},
        {"id": 2, "name": "on time", "tier": "D"},
        {"id": 3, "name": "two purchases", "tier": "D"},
        {"id": 4, "name": "silent", "tier": "D", "created_at": ago(400)},
        {"id": 5, "name": "called lately", "tier": "D", "created_at": ago(400)},
        {"id": 6, "name": "anomaly open", "tier": "D"},
        {"id": 7, "name": "C for a year", "tier": "C", "created_at": ago(366)},
        {"id": 8, "name": "new C", "tier": "C", "created_at": ago(30)},
        {"id": 9, "name": "lost", "tier": "D", "created_at": ago(400)},
    ], [*purchases, (9, "customer-lost", 300, {})], [
        (5, 20, "closed", None),
        (6, 1, "queued", "scheduled:cycle-anomaly:6:2026-10-20"),
        (7, 10, "closed", None),
    ])
    summary = await sweep_health(sessionmaker(engine), RULES, TEXTS, NOW, batch=4)
    expected = {
        "cycle-anomaly:1:2026-10-20",  # last purchase 20 Oct + 30 + 3 days = 22 Nov: overdue
        "dormant:4:2025-10-19",  # nothing for 400 days (since the card was made)
        "routine:7:2026-11-22",  # C: 365 days after the card was made
    }  # 9 is lost: the retention callback is theirs, not the dormant one
    assert await _keys(engine) == expected
    assert (summary.cycle_anomaly, summary.dormant, summary.routine) == (1, 1, 1)
    assert summary.customers == 9
    async with sessionmaker(engine)() as session:
        item = await session.scalar(select(ScheduledWork).where(
            ScheduledWork.rule_id == "dormant"))
    assert item.payload["category"] == "emotional" and item.due_at == NOW
    assert item.latest_at == NOW + timedelta(days=7)

    await sweep_health(sessionmaker(engine), RULES, TEXTS, NOW + timedelta(hours=5))
    assert await _keys(engine) == expected  # keyed: a second sweep the same day adds nothing


def test_open_cases_from_events() -> None:
    t = [NOW + timedelta(hours=h) for h in range(6)]
    cases = [
        ([CaseEvent("repair-dispatched", t[0], {"repair_id": "R1"})], ["repair:R1"]),
        ([CaseEvent("repair-dispatched", t[0], {"repair_id": "R1"}),
          CaseEvent("repair-completed", t[1], {"repair_id": "R1"})], []),
        ([CaseEvent("repair-dispatched", t[0], {"repair_id": "R1"}),
          CaseEvent("repair-completed", t[1], {"repair_id": "R2"})], ["repair:R1"]),
        ([CaseEvent("repair-dispatched", t[0], {}),
          CaseEvent("repair-completed", t[1], {})], []),  # no ids: one case at a time
        ([CaseEvent("complaint-written", t[0], {}),
          CaseEvent("paid-service-ordered", t[1], {"order_id": 7})],
         ["complaint:", "paid-service:7"]),
        ([CaseEvent("complaint-archived", t[2], {}),
          CaseEvent("complaint-written", t[0], {})], []),  # in time order, not list order
        ([CaseEvent("purchase", t[0], {})], []),
    ]
    for events, expected in cases:
        assert open_cases(events) == expected, events


async def test_service_needed_selection_once_per_month_within_quota(engine: AsyncEngine) -> None:
    await _add(engine, [{"id": i, "name": f"c{i}"} for i in range(1, 6)], [
        (1, "repair-dispatched", 3, {"repair_id": "R1"}),
        (2, "repair-dispatched", 3, {"repair_id": "R2"}),
        (2, "repair-completed", 1, {"repair_id": "R2"}),
        (3, "complaint-written", 2, {}),
        (4, "paid-service-ordered", 2, {"order_id": "P4"}),
        (5, "purchase", 2, {}),
    ])
    sessions = sessionmaker(engine)
    assert await select_service_needed(sessions, RULES, TEXTS, NOW, batch=2) == 3
    assert await _keys(engine) == {f"service-needed:{i}:2026-11" for i in (1, 3, 4)}
    assert await select_service_needed(sessions, RULES, TEXTS, NOW + timedelta(days=1)) == 0
    async with sessions() as session:
        purpose = await session.scalar(select(ScheduledWork.payload).where(
            ScheduledWork.customer_id == 1))
    assert "repair:R1" in purpose["purpose"] and purpose["category"] == "service"

    capped = parse_rules(SHIPPED.read_text().replace("service_needed_max_per_month = 0",
                                                     "service_needed_max_per_month = 4"))
    december = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    assert await select_service_needed(sessions, capped, TEXTS, december, batch=2) == 3
    capped2 = parse_rules(SHIPPED.read_text().replace("service_needed_max_per_month = 0",
                                                      "service_needed_max_per_month = 2"))
    january = datetime(2027, 1, 4, 2, 0, tzinfo=UTC)
    assert await select_service_needed(sessions, capped2, TEXTS, january, batch=2) == 2


async def test_random_selection_is_reproducible_and_once_per_month(engine: AsyncEngine) -> None:
    await _add(engine, [{"id": i, "name": f"c{i}"} for i in range(1, 301)],
               [(7, "customer-lost", 1, {})])
    sessions = sessionmaker(engine)
    assert await select_random(sessions, RULES, TEXTS, NOW, batch=50) == 3  # 1% of 299
    first = await _keys(engine)
    assert await select_random(sessions, RULES, TEXTS, NOW + timedelta(days=3)) == 0
    assert await _keys(engine) == first
    assert all(k.startswith("random:") and k.endswith(":2026-11") for k in first)
    assert "random:7:2026-11" not in first  # lost customers are not drawn
    assert await select_random(sessions, RULES, TEXTS, datetime(2026, 12, 2, tzinfo=UTC)) == 3


@pytest.mark.parametrize(
    ("local", "period"),
    [("2026-12-01T01:59", None), ("2026-12-01T02:00", "2026-12"), ("2026-12-17T08:00", "2026-12"),
     ("2027-01-01T00:30", None)],
)
def test_the_regrade_is_due_from_the_1st_at_0200_company_time(local: str,
                                                              period: str | None) -> None:
    from zoneinfo import ZoneInfo

    at = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    assert regrade_period(at, RULES) == period


async def test_a_period_runs_on_one_node_only_and_a_dead_run_is_taken_over(
    engine: AsyncEngine
) -> None:
    sessions = sessionmaker(engine)
    runs: list[str] = []

    async def job(node: str) -> dict[str, str]:
        runs.append(node)
        return {"by": node}

    assert await run_once_per_period(sessions, "grading", "2026-12", "n1", NOW,
                                     lambda: job("n1")) == {"by": "n1"}
    assert await run_once_per_period(sessions, "grading", "2026-12", "n2", NOW,
                                     lambda: job("n2")) is None
    assert runs == ["n1"]
    # n3 claims a run and dies; n4 may take it over only once it is stale (2 h).
    assert await claim(sessions, "health", "2026-11-23", "n3", NOW)
    assert not await claim(sessions, "health", "2026-11-23", "n4", NOW + timedelta(hours=1))
    assert await claim(sessions, "health", "2026-11-23", "n4", NOW + timedelta(hours=3))
