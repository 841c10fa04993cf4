"""C9 (spec §3): an on-site repair still open after its promised duration gets a callback at
once. Every scheduler round looks at the repairs dispatched in the last `LOOK_BACK` and
records a `repair-overrun` event for each overdue one, keyed `overrun:<dispatch event id>`,
which plans C9 like any event does; the key makes it once, whichever node sees it first."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.events import record_event
from contactcenter.rules.config import Rules
from contactcenter.rules.periodic import CASES, CaseEvent, overrun_repairs
from contactcenter.storage.models import CustomerEvent

LOOK_BACK = timedelta(days=30)  # a repair open longer than this is a case, not an overrun
OPENS, CLOSES, _ = CASES["repair"]


async def _recent(session: AsyncSession, now: datetime) -> dict[int, list[CaseEvent]]:
    dispatched = (await session.execute(
        select(CustomerEvent.customer_id).where(
            CustomerEvent.kind == OPENS, CustomerEvent.at > now - LOOK_BACK,
            CustomerEvent.at <= now).distinct())).scalars().all()
    flagged = set((await session.scalars(select(CustomerEvent.external_id).where(
        CustomerEvent.kind == "repair-overrun", CustomerEvent.at > now - LOOK_BACK))).all())
    events: dict[int, list[CaseEvent]] = defaultdict(list)
    for i in range(0, len(dispatched), 1000):
        for eid, cid, kind, at, data in (await session.execute(
                select(CustomerEvent.id, CustomerEvent.customer_id, CustomerEvent.kind,
                       CustomerEvent.at, CustomerEvent.data)
                .where(CustomerEvent.customer_id.in_(dispatched[i:i + 1000]),
                       CustomerEvent.kind.in_([OPENS, CLOSES]),
                       CustomerEvent.at > now - LOOK_BACK, CustomerEvent.at <= now))):
            if kind == OPENS and f"overrun:{eid}" in flagged:
                continue
            events[cid].append(CaseEvent(kind, at, data or {}, eid))
    return events


async def flag_overrun_repairs(sessions: async_sessionmaker[AsyncSession], rules: Rules,
                               now: datetime) -> int:
    """Record the repair-overrun events now due; returns how many were new."""
    async with sessions.begin() as session:
        recent = await _recent(session, now)
        flagged = 0
        for cid, events in recent.items():
            for dispatch, deadline in overrun_repairs(events, now, rules):
                try:
                    async with session.begin_nested():  # another node may record it first
                        _, _, created = await record_event(
                            session, rules, customer_id=cid, kind="repair-overrun",
                            at=deadline, now=now, external_id=f"overrun:{dispatch.id}",
                            data={"dispatch_event_id": dispatch.id,
                                  "repair_id": dispatch.data.get("repair_id")})
                except IntegrityError:
                    continue
                flagged += created
        return flagged
