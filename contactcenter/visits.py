"""Visits (spec §2, §4): planned, taken in with a booking call, and closed with an outcome.

- Planning (once a day per node; keyed, so exactly once): the next regular visit of every
  customer whose tier has `visit_every_days` (one open at a time, counted from the last one
  that took place), and the holiday visits whose window opens within the booking lead.
  Customers are read in id batches, as greetings are.
- Taking in: a planned item of kind `visit` (from this planning, or another module's
  VisitPlan, e.g. an introduction visit after an owner left) becomes a `visits` row as soon
  as its booking call is due, `booking_call_before_days` (tier) before the visit; the booking
  call is a callback item routed like any other and names the visit (`payload.visit_id`).
  The owner is the item's `owner_id`, else the customer's longest-serving owner.
- Outcome: the owner or a supervisor records it; a visit that took place gets a survey (§8).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.clock import utc
from contactcenter.errors import InvalidInput
from contactcenter.planned_work import open_visit, record_change
from contactcenter.rules.config import Rules
from contactcenter.rules.followups import (
    REGULAR_VISIT,
    VISIT_DONE,
    booking_window,
    regular_visit,
    survey_plan,
    upcoming_holiday_visits,
    visit_lead_days,
)
from contactcenter.rules.plan import Customer as Facts
from contactcenter.rules.plan import VisitPlan, WorkPlan
from contactcenter.runtime import Runtime
from contactcenter.scheduler import run_due, schedule
from contactcenter.storage.models import (
    Customer,
    CustomerOwner,
    ScheduledWork,
    User,
    Visit,
)

BOOKING_RULE = "visit-booking"
log = logging.getLogger(__name__)


def _visiting_tiers(rules: Rules) -> list[str]:
    return [t for t, s in rules.tiers.items() if s.visit_every_days or s.holiday_visit]


async def _batch_plans(session: AsyncSession, rules: Rules, after: int, batch: int,
                       today: date) -> tuple[int | None, list[VisitPlan]]:
    """(last customer id read or None when none is left, the batch's plans)."""
    tier = func.coalesce(Customer.tier_override, Customer.tier)
    rows = (await session.execute(
        select(Customer.id, tier.label("tier"), Customer.timezone, Customer.language)
        .where(Customer.id > after, tier.in_(_visiting_tiers(rules)))
        .order_by(Customer.id).limit(batch))).all()
    if not rows:
        return None, []
    ids = [r.id for r in rows]
    last: dict[int, date] = {}
    for customer_id, at in (await session.execute(
            select(Visit.customer_id, func.max(func.coalesce(Visit.done_at, Visit.due_at)))
            .where(Visit.customer_id.in_(ids), Visit.rule_id == REGULAR_VISIT,
                   Visit.state == "done")
            .group_by(Visit.customer_id))).all():
        last[customer_id] = at.astimezone(rules.calendar.hours().zone).date()
    open_ids = set((await session.scalars(
        select(ScheduledWork.customer_id).where(
            ScheduledWork.customer_id.in_(ids), ScheduledWork.rule_id == REGULAR_VISIT,
            ScheduledWork.kind == "visit", ScheduledWork.state == "pending")
        .union(select(Visit.customer_id).where(
            Visit.customer_id.in_(ids), Visit.rule_id == REGULAR_VISIT,
            Visit.state.in_(["pending", "booked"]))))).all())
    facts = [Facts(id=r.id, tier=r.tier, timezone=r.timezone, language=r.language)
             for r in rows]
    plans = [p for c in facts if c.id not in open_ids
             if (p := regular_visit(c, last.get(c.id), today, rules)) is not None]
    return ids[-1], plans + upcoming_holiday_visits(today, facts, rules)


async def plan_visits(rt: Runtime, today: date, *, batch: int = 5000) -> int:
    """Plan regular and holiday visits for every visited customer; returns how many are new."""
    now = utc(rt.clock.now())
    after: int | None = 0
    added = 0
    while after is not None:
        async with rt.sessions.begin() as session:
            after, plans = await _batch_plans(session, rt.rules, after, batch, today)
            added += await schedule(session, plans, now)
    return added


async def _first_owner(session: AsyncSession, customer_id: int) -> int | None:
    return await session.scalar(
        select(CustomerOwner.user_id).join(User, User.id == CustomerOwner.user_id)
        .where(CustomerOwner.customer_id == customer_id, User.active.is_(True))
        .order_by(CustomerOwner.since, CustomerOwner.user_id).limit(1))


async def take_in_due_visits(rt: Runtime) -> list[int]:
    """Planned visits whose booking call is due become visit rows with that call scheduled;
    returns the new visits' ids."""
    rules = rt.rules
    now = utc(rt.clock.now())
    created: list[int] = []

    async def take_in(session: AsyncSession, item: ScheduledWork) -> dict[str, Any]:
        customer = await session.get(Customer, item.customer_id)
        assert customer is not None
        visit = Visit(key=item.key, rule_id=item.rule_id, customer_id=customer.id,
                      owner_user_id=item.payload.get("owner_id")
                      or await _first_owner(session, customer.id),
                      due_at=item.due_at, latest_at=item.latest_at or item.due_at,
                      state="pending", created_at=now)
        session.add(visit)
        await session.flush()
        window = booking_window(visit.due_at, customer.effective_tier, now, rules)
        if window is not None:
            visit.booking_key = f"booking:{item.key}"
            await schedule(session, [WorkPlan(
                key=visit.booking_key, kind="callback", rule_id=BOOKING_RULE,
                customer_id=customer.id, due=window[0], latest=window[1],
                payload={"category": rules.visits.booking_category,
                         "purpose": rules.visits.booking_purpose.get(customer.language),
                         "visit_id": visit.id})], now)
        created.append(visit.id)
        return {"visit_id": visit.id}

    await run_due(rt.sessions, take_in, now, kinds=["visit"],
                  due_by=now + timedelta(days=visit_lead_days(rules)))
    return created


async def record_visit_outcome(
    session: AsyncSession, rules: Rules, visit_id: int, *, actor: User, outcome: str,
    notes: str | None, done_at: datetime | None, now: datetime,
) -> Visit:
    visit = await open_visit(session, visit_id, actor)
    done_at = done_at or now
    if done_at > now:
        raise InvalidInput("done_at: a visit cannot be done in the future")
    before = {"state": visit.state}
    visit.state, visit.outcome, visit.notes = "done", outcome, notes
    visit.done_at, visit.recorded_by = done_at, actor.id
    record_change(session, "visit", visit.key, "outcome", actor=actor, now=now, reason=notes,
                  before=before, after={"state": "done", "outcome": outcome})
    if outcome == VISIT_DONE and rules.satisfaction.after_visit:
        await schedule(session, [survey_plan("visit", visit.id, visit.customer_id, now)], now)
    await session.flush()
    return visit

