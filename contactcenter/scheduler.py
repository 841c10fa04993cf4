"""The durable scheduler: work the rules planned is stored, then claimed and done exactly once.

- Planning stores each item under its unique key (rule, customer, occurrence) with
  INSERT … ON CONFLICT DO NOTHING: planning again, on a restart or on another node, adds nothing.
- Running claims due items with SELECT … FOR UPDATE SKIP LOCKED (PostgreSQL; on SQLite,
  which has no row locks, by a write that takes its one write lock and keeps what is still
  pending), performs each item's effect (a callback contact, an SMS message row, a visit) in
  the same transaction and marks it done. A crash before the commit leaves the item pending
  and its effect undone; after the commit, both are there. Two claimers, on two nodes or in
  one process, never do the same item.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.rules.plan import CallbackPlan, SmsPlan, VisitPlan, WorkPlan
from contactcenter.storage.models import ScheduledWork

Plan = CallbackPlan | SmsPlan | VisitPlan | WorkPlan
# Does one item's effect inside the claiming transaction; returns what to record as its result,
# or None to leave the item pending (it may have moved the item's due_at: quiet hours).
Handler = Callable[[AsyncSession, ScheduledWork], Awaitable[dict[str, Any] | None]]


def _row(plan: Plan, now: datetime) -> dict[str, Any]:
    if isinstance(plan, CallbackPlan):
        kind, due, latest = "callback", plan.due, plan.latest
        payload = {"category": plan.category, "purpose": plan.purpose}
    elif isinstance(plan, SmsPlan):
        kind, due, latest = "sms", plan.send_at, None
        payload = {"template": plan.template, "values": plan.values}
    elif isinstance(plan, WorkPlan):
        kind, due, latest, payload = plan.kind, plan.due, plan.latest, plan.payload
    else:
        kind, due, latest = "visit", plan.due, plan.latest
        payload = {}
    return {"key": plan.key, "kind": kind, "rule_id": plan.rule_id,
            "customer_id": plan.customer_id, "due_at": due, "latest_at": latest,
            "payload": payload, "state": "pending", "created_at": now}


async def schedule(session: AsyncSession, plans: Iterable[Plan], now: datetime) -> int:
    """Store planned work; returns how many items were new (the rest were planned before)."""
    rows = [_row(p, now) for p in plans]
    if not rows:
        return 0
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(ScheduledWork).on_conflict_do_nothing(index_elements=["key"])
    result = await session.execute(stmt.returning(ScheduledWork.id), rows)
    return len(result.all())


async def run_due(
    sessions: async_sessionmaker[AsyncSession], handler: Handler, now: datetime, *,
    limit: int = 500, kinds: Iterable[str] | None = None, due_by: datetime | None = None,
) -> int:
    """Claim up to `limit` due items (of `kinds`, default all), do each, mark it done; one
    transaction. Returns how many were done. `due_by` (default `now`) claims items ahead of
    their due time: a visit is taken in when its booking call is due, days before it."""
    async with sessions.begin() as session:
        due = [ScheduledWork.state == "pending", ScheduledWork.due_at <= (due_by or now)]
        if kinds is not None:
            due.append(ScheduledWork.kind.in_(list(kinds)))
        items = (await session.scalars(
            select(ScheduledWork)
            .where(*due)
            .order_by(ScheduledWork.due_at, ScheduledWork.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )).all()
        if items and session.bind.dialect.name == "sqlite":
            items = await _still_pending(session, items)
        done = 0
        for item in items:
            result = await handler(session, item)
            if result is not None:
                item.result, item.state, item.done_at = result, "done", now
                done += 1
        return done


async def _still_pending(session: AsyncSession, items: Sequence[ScheduledWork],
                         ) -> list[ScheduledWork]:
    """SQLite ignores FOR UPDATE, and sqlite3 begins the transaction at its first write, so
    the SELECT above read outside it: another claimer in this process (the background job
    and a request that sends at once) may have done these items since. A write takes SQLite's
    one write lock, waiting for that claimer to commit; what it finds still pending is ours."""
    ids = [item.id for item in items]
    mine = set((await session.scalars(
        update(ScheduledWork)
        .where(ScheduledWork.id.in_(ids), ScheduledWork.state == "pending")
        .values(state="pending")
        .returning(ScheduledWork.id)
        .execution_options(synchronize_session=False))).all())
    return [item for item in items if item.id in mine]
