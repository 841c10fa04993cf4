"""Relationship-health jobs (spec §5, §2): the daily sweep over every customer that plans
cycle-anomaly, dormant and routine callbacks, and the coverage check of the supervisor board.

Definitions (docs/rules-jobs.md):
- cycle anomaly: purchases are the customer's `purchase` events (all of them); one open anomaly
  task at a time: none is planned while an earlier one is pending or its contact not final.
- dormant: the last contact of any kind is the latest of the customer's contacts (any channel,
  either direction), customer events and the day the record was created.
- routine: tiers with `routine_callback_days` (C) get one that many days after the last one,
  or after the record was created.
Customers marked lost are skipped: they get the retention callback instead.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.customer_pages import Page, pages
from contactcenter.domain import ContactState
from contactcenter.rules.config import Rules
from contactcenter.rules.health import coverage_gaps, cycle_anomaly_due, dormant_since
from contactcenter.rules.periodic import job_callback, routine_due
from contactcenter.rules.plan import CallbackPlan
from contactcenter.scheduler import schedule
from contactcenter.storage.models import (
    Contact,
    Customer,
    CustomerEvent,
    CustomerOwner,
    ScheduledWork,
)
from contactcenter.templates import Templates

CYCLE, DORMANT, ROUTINE = "cycle-anomaly", "dormant", "routine"
_FINAL = [s.value for s in ContactState if s.is_final]


@dataclass
class HealthSummary:
    customers: int = 0
    cycle_anomaly: int = 0
    dormant: int = 0
    routine: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


async def _open_anomalies(session: AsyncSession, page: Page) -> set[int]:
    pending = await session.scalars(select(ScheduledWork.customer_id).where(
        ScheduledWork.customer_id.between(page.low, page.high), ScheduledWork.rule_id == CYCLE,
        ScheduledWork.state == "pending"))
    in_work = await session.scalars(select(Contact.customer_id).where(
        Contact.customer_id.between(page.low, page.high),
        Contact.external_id.like(f"scheduled:{CYCLE}:%"), Contact.state.not_in(_FINAL)))
    return set(pending.all()) | set(in_work.all())


async def _last_contact(session: AsyncSession, page: Page) -> dict[int, datetime]:
    last = {r.id: r.created_at for r in page.rows}
    for customer_id, at in ((Contact.customer_id, Contact.created_at),
                            (CustomerEvent.customer_id, CustomerEvent.at)):
        for cid, latest in (await session.execute(
                select(customer_id, func.max(at))
                .where(customer_id.between(page.low, page.high))
                .group_by(customer_id))).all():
            if latest is not None and latest > last[cid]:
                last[cid] = latest
    return last


async def _page_plans(session: AsyncSession, page: Page, rules: Rules, templates: Templates,
                      now: datetime, summary: HealthSummary) -> list[CallbackPlan]:
    h = rules.health
    purchases: dict[int, list[datetime]] = defaultdict(list)
    for cid, at in (await session.execute(
            select(CustomerEvent.customer_id, CustomerEvent.at)
            .where(CustomerEvent.customer_id.between(page.low, page.high),
                   CustomerEvent.kind == "purchase", CustomerEvent.at <= now))).all():
        purchases[cid].append(at)
    anomalies_open = await _open_anomalies(session, page)
    last_contact = await _last_contact(session, page)
    last_routine = dict((await session.execute(
        select(ScheduledWork.customer_id, func.max(ScheduledWork.due_at))
        .where(ScheduledWork.customer_id.between(page.low, page.high),
               ScheduledWork.rule_id == ROUTINE)
        .group_by(ScheduledWork.customer_id))).all())
    plans = []
    for row in page.active:
        def plan(rule: str, occurrence: str, category: str, purpose: str,
                 row: Any = row) -> CallbackPlan:
            return job_callback(rule, row.id, occurrence, now, h.callback_within_days,
                                category, templates.render(purpose, row.language), rules)

        due = cycle_anomaly_due(purchases.get(row.id, []), rules)
        if due is not None and due <= now and row.id not in anomalies_open:
            last = max(purchases[row.id])
            plans.append(plan(CYCLE, f"{last:%Y-%m-%d}", h.cycle_category,
                              "purpose_cycle_anomaly"))
            summary.cycle_anomaly += 1
        if dormant_since(last_contact[row.id], rules) <= now:
            plans.append(plan(DORMANT, f"{last_contact[row.id]:%Y-%m-%d}", h.dormant_category,
                              "purpose_dormant"))
            summary.dormant += 1
        due = routine_due(row.effective_tier, last_routine.get(row.id), row.created_at, rules)
        if due is not None and due <= now:
            plans.append(plan(ROUTINE, f"{due:%Y-%m-%d}", h.routine_category, "purpose_routine"))
            summary.routine += 1
    return plans


async def sweep_health(sessions: async_sessionmaker[AsyncSession], rules: Rules,
                       templates: Templates, now: datetime, *, batch: int = 5000
                       ) -> HealthSummary:
    """Plan the due cycle-anomaly, dormant and routine callbacks of every customer. Keyed, so
    a second sweep the same day plans nothing new; counts are of callbacks found due (planned
    now or before)."""
    summary = HealthSummary()
    async for session, page in pages(sessions, batch):
        summary.customers += len(page.rows)
        await schedule(session, await _page_plans(session, page, rules, templates, now, summary),
                       now)
    return summary


async def coverage_gap_list(session: AsyncSession, rules: Rules, *, limit: int = 500
                            ) -> dict[str, Any]:
    """§5 coverage check for the supervisor board: customers of tiers needing several staff
    (A/B: 2) with fewer owners than that. Tiers needing one are not listed: an ownerless
    ordinary customer is not a gap the board should drown in."""
    needing = {t: s.min_owners for t, s in rules.tiers.items() if s.min_owners > 1}
    if not needing:
        return {"total": 0, "customers": []}
    tier = func.coalesce(Customer.tier_override, Customer.tier)
    owners = func.count(CustomerOwner.user_id)
    rows = (await session.execute(
        select(Customer.id, Customer.name, tier, owners)
        .outerjoin(CustomerOwner, CustomerOwner.customer_id == Customer.id)
        .where(tier.in_(list(needing)))
        .group_by(Customer.id, Customer.name, tier)
        .having(owners < max(needing.values())))).all()
    info = {r[0]: r for r in rows}
    gaps = coverage_gaps({cid: (r[2], r[3]) for cid, r in info.items()}, rules)
    return {"total": len(gaps), "customers": [
        {"id": cid, "name": info[cid][1], "tier": info[cid][2], "owners": info[cid][3],
         "needed": rules.tiers[info[cid][2]].min_owners} for cid in gaps[:limit]]}
