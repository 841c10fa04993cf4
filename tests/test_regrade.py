"""The grading job (spec §1): every active customer graded from their purchases, changes kept
in the tier history, overrides untouched, retention callbacks for valued customers who drop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from contactcenter.regrade import regrade
from contactcenter.rules.config import SHIPPED, load_rules, parse_rules
from contactcenter.storage.db import sessionmaker
from contactcenter.storage.models import Customer, CustomerEvent, ScheduledWork, TierChange

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # Tuesday 1 December, 10:00 in Shanghai
RULES = load_rules()


async def _customers(engine: AsyncEngine, tiers: dict[int, tuple[str | None, str | None]],
                     n: int = 20) -> None:
    """Customer i (1..n) bought i times, i×100 in contract amount, i×10 in profit, this year."""
    async with sessionmaker(engine).begin() as session:
        for i in range(1, n + 1):
            tier, override = tiers.get(i, (None, None))
            session.add(Customer(name=f"c{i}", tier=tier, tier_override=override,
                                 language="en" if i == 1 else "zh-CN",
                                 created_at=NOW, updated_at=NOW))
        await session.flush()
        for i in range(1, n + 1):
            for k in range(i):
                session.add(CustomerEvent(
                    customer_id=i, kind="purchase", at=NOW - timedelta(days=10 + k),
                    data={"amount": 100, "profit": 10.0}, created_at=NOW))


async def test_weighted_grading_writes_history_and_keeps_overrides(engine: AsyncEngine) -> None:
    await _customers(engine, {20: ("B", None), 1: ("A", None), 2: ("B", "A"), 3: ("A", None)})
    sessions = sessionmaker(engine)
    async with sessions.begin() as session:
        # 3 was marked lost and has not bought since: not active, not ranked.
        session.add(CustomerEvent(customer_id=3, kind="customer-lost", at=NOW - timedelta(days=1),
                                  data={}, created_at=NOW))
        # Big purchases 13 months ago are outside the 12-month look-back.
        session.add(CustomerEvent(customer_id=4, kind="purchase", at=NOW - timedelta(days=400),
                                  data={"amount": 1e9, "profit": 1e9}, created_at=NOW))
        session.add(Customer(id=21, name="never bought", tier="B", created_at=NOW,
                             updated_at=NOW))
        session.add(Customer(id=22, name="lapsed", tier="A", tier_override="A", created_at=NOW,
                             updated_at=NOW))
        await session.flush()
        session.add(CustomerEvent(customer_id=22, kind="purchase", at=NOW - timedelta(days=400),
                                  data={"amount": 1e9}, created_at=NOW))
    seen: list[tuple[str, int]] = []
    summary = await regrade(sessions, RULES, NOW, batch=6,
                            progress=lambda phase, n: seen.append((phase, n)))
    # 20 active customers who bought ranked; 5% -> 1 A, next 15% -> 3 B, next 30% -> 6 C, the
    # rest D; nothing bought in the look-back (22) -> D whatever the ranks.
    assert summary.graded == 20 and summary.not_graded == 2  # lost, never bought
    assert summary.per_tier == {"A": 1, "B": 3, "C": 6, "D": 10}
    assert [p for p in seen if p[0] == "read"] == [("read", 6), ("read", 12), ("read", 18),
                                                  ("read", 22)]  # pages, never all at once
    async with sessions() as session:
        tiers = dict((await session.execute(select(Customer.id, Customer.tier))).all())
        overrides = dict((await session.execute(select(Customer.id, Customer.tier_override))).all())
        history = {(h.customer_id, h.tier_from, h.tier_to, h.reason) for h in
                   (await session.scalars(select(TierChange))).all()}
        work = (await session.scalars(select(ScheduledWork))).all()
    assert tiers[20] == "A" and [tiers[i] for i in (17, 18, 19)] == ["B"] * 3
    assert [tiers[i] for i in range(11, 17)] == ["C"] * 6
    assert tiers[1] == "D" and tiers[2] == "D" and tiers[4] == "D"
    assert tiers[3] == "A" and tiers[21] == "B"  # lost, never bought: left as they were
    assert tiers[22] == "D"
    assert overrides[2] == "A"  # the supervisor's override is never touched
    assert (20, "B", "A", "grading") in history and (1, "A", "D", "grading") in history
    assert (2, "B", "D", "grading") in history
    assert summary.moved_up == 1 and summary.moved_down == 3 and summary.first_graded == 16
    # Retention: only customer 1 (A -> D). Customers 2 and 22 are still A by override.
    (retention,) = work
    assert retention.rule_id == "retention" and retention.customer_id == 1
    assert retention.payload["category"] == "emotional"
    assert retention.due_at == NOW and retention.latest_at == NOW + timedelta(days=7)
    assert retention.payload["purpose"].startswith("A valued customer")  # customer 1: English

    again = await regrade(sessions, RULES, NOW)
    assert (again.moved_up, again.moved_down, again.first_graded,
            again.retention_callbacks) == (0, 0, 0, 0)
    async with sessions() as session:
        assert len((await session.scalars(select(TierChange))).all()) == len(history)


async def test_pyramid_scheme_from_the_rules_file(engine: AsyncEngine) -> None:
    rules = parse_rules(SHIPPED.read_text().replace('scheme = "weighted"', 'scheme = "pyramid"'))
    await _customers(engine, {})
    summary = await regrade(sessionmaker(engine), rules, NOW)
    # VIP top 1% -> 1 (the top one always), important to 5% -> none of 20, ordinary to 20% -> 3.
    assert summary.per_tier == {"A": 1, "C": 3, "D": 16}
