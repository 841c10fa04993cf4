"""Grading every active customer (spec §1): metrics from purchase events, tiers by the rules'
scheme, changes written with their date to the tier history, retention callbacks for valued
customers who drop (§5).

Metrics per customer, from the `purchase` events of the last `grading.lookback_months`:
contract amount = sum of `data.amount`, profit contribution = sum of `data.profit`, purchase
frequency = number of purchases. Graded are the active customers with a purchase on record:
one with none at all has nothing to grade from and keeps the tier it was given (imported, set
by hand); one marked lost (a `customer-lost` event with no purchase after it) is not active and
keeps its tier too. A customer whose purchases are all older than the look-back gets D.

Two passes over the customers in id order: the first reads one page at a time into three
float columns (24 bytes a customer; 1M customers ≈ 30 MB, never an ORM object each), ranking
needs them all; the second writes the changed tiers a chunk at a time. `tier_override` is never
touched: a supervisor's override wins until cleared.
"""

from __future__ import annotations

import logging
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.customer_pages import pages
from contactcenter.rules.config import Rules, add_months
from contactcenter.rules.grading import grade_columns
from contactcenter.rules.health import needs_retention
from contactcenter.rules.periodic import job_callback
from contactcenter.rules.plan import CallbackPlan
from contactcenter.scheduler import schedule
from contactcenter.storage.models import Customer, CustomerEvent, TierChange
from contactcenter.templates import Templates

log = logging.getLogger(__name__)
TIER_ORDER = "ABCD"
_WRITE_CHUNK = 5000  # ids per IN list: within SQLite's 32766 parameters
Progress = Callable[[str, int], None]  # (phase "read" | "write", customers done so far)


@dataclass
class GradingSummary:
    graded: int = 0
    not_graded: int = 0  # marked lost, or no purchase on record
    per_tier: dict[str, int] = field(default_factory=dict)
    first_graded: int = 0
    moved_up: int = 0
    moved_down: int = 0
    retention_callbacks: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def text(self) -> str:
        tiers = ", ".join(f"{t}: {self.per_tier.get(t, 0)}" for t in TIER_ORDER)
        return (f"graded {self.graded} active customers ({tiers}); {self.moved_up} moved up, "
                f"{self.moved_down} moved down, {self.first_graded} graded for the first time; "
                f"{self.retention_callbacks} retention callbacks; {self.not_graded} not graded "
                f"(marked lost or no purchase on record), left as they were")


@lru_cache(maxsize=1)
def shipped_templates() -> Templates:
    return Templates.load()


def retention_plan(rules: Rules, templates: Templates | None, customer_id: int, language: str,
                   now: datetime) -> CallbackPlan:
    """§5: a retention callback within `retention_within_days`, once per customer and day."""
    texts = templates or shipped_templates()
    day = now.astimezone(rules.calendar.hours().zone).date().isoformat()
    return job_callback("retention", customer_id, day, now, rules.health.retention_within_days,
                        rules.health.retention_category,
                        texts.render("purpose_retention", language), rules)


def _sum_of(recent: Any, name: str) -> Any:
    """Sum of a purchase number over the look-back; a purchase without it counts 0."""
    value = func.coalesce(CustomerEvent.data[name].as_float(), 0.0)
    return func.coalesce(func.sum(case((recent, value), else_=0.0)), 0.0)


async def _read_metrics(
    sessions: async_sessionmaker[AsyncSession], since: datetime, now: datetime, batch: int,
    progress: Progress | None,
) -> tuple[array[int], array[float], array[float], array[float], int]:
    ids, amounts, profits, counts = array("q"), array("d"), array("d"), array("d")
    read = not_graded = 0
    async for session, page in pages(sessions, batch):
        recent = CustomerEvent.at > since
        metrics = {cid: (amount, profit, n) for cid, amount, profit, n in (await session.execute(
            select(CustomerEvent.customer_id,
                   _sum_of(recent, "amount"), _sum_of(recent, "profit"),
                   func.count(case((recent, 1))))
            .where(CustomerEvent.customer_id.between(page.low, page.high),
                   CustomerEvent.kind == "purchase", CustomerEvent.at <= now)
            .group_by(CustomerEvent.customer_id))).all()}
        for row in page.active:
            if row.id not in metrics:
                continue  # never bought: nothing to grade from
            amount, profit, n = metrics[row.id]
            ids.append(row.id)
            amounts.append(float(amount))
            profits.append(float(profit))
            counts.append(float(n))
        read += len(page.rows)
        not_graded += len(page.rows) - sum(1 for r in page.active if r.id in metrics)
        if progress is not None:
            progress("read", read)
    return ids, amounts, profits, counts, not_graded


async def _write_chunk(
    session: AsyncSession, chunk: dict[int, str], rules: Rules, templates: Templates | None,
    now: datetime, actor_id: int | None, summary: GradingSummary,
) -> None:
    current = (await session.execute(
        select(Customer.id, Customer.tier, Customer.tier_override, Customer.language)
        .where(Customer.id.in_(list(chunk))))).all()
    moves: dict[str, list[int]] = {}
    history = []
    retention = []
    for cid, old, override, language in current:
        new = chunk[cid]
        if new == old:
            continue
        moves.setdefault(new, []).append(cid)
        history.append({"customer_id": cid, "tier_from": old, "tier_to": new, "at": now,
                        "reason": "grading", "actor_user_id": actor_id})
        if old is None:
            summary.first_graded += 1
        elif TIER_ORDER.index(new) < TIER_ORDER.index(old):
            summary.moved_up += 1
        else:
            summary.moved_down += 1
        if override is None and needs_retention(old, new, rules):
            retention.append(retention_plan(rules, templates, cid, language, now))
    # Core statements on the tables: the ORM's bulk paths cost several times more per row here.
    customers = Customer.__table__
    for tier, ids in moves.items():
        await session.execute(update(customers).where(customers.c.id.in_(ids))
                              .values(tier=tier))
    if history:
        await session.execute(insert(TierChange.__table__), history)
    summary.retention_callbacks += await schedule(session, retention, now)


async def regrade(
    sessions: async_sessionmaker[AsyncSession], rules: Rules, now: datetime, *,
    templates: Templates | None = None, actor_id: int | None = None, batch: int = 5000,
    progress: Progress | None = None,
) -> GradingSummary:
    """Grade every active customer with the rules' scheme; idempotent (a rerun with the same
    purchases changes nothing and plans no second retention callback that day)."""
    since = add_months(now, -rules.grading.lookback_months)
    ids, amounts, profits, counts, not_graded = await _read_metrics(
        sessions, since, now, batch, progress)
    tiers = grade_columns(amounts, profits, counts, rules.grading.active())
    del amounts, profits, counts
    summary = GradingSummary(graded=len(ids), not_graded=not_graded,
                             per_tier=dict(sorted(Counter(tiers).items())))
    step = min(batch, _WRITE_CHUNK)
    for start in range(0, len(ids), step):
        chunk = dict(zip(ids[start:start + step], tiers[start:start + step], strict=True))
        async with sessions.begin() as session:
            await _write_chunk(session, chunk, rules, templates, now, actor_id, summary)
        if progress is not None:
            progress("write", min(start + step, len(ids)))
    log.info("regrade: %s", summary.text())
    return summary
