"""C9 repair-overrun (spec §3): a repair dispatched with a promised duration that has no
`repair-completed` event for the same repair by then gets a C9 callback, due at once.

Recording `repair-dispatched` plans a check (kind `repair-check`, keyed per customer and
repair: exactly once) at the end of the promised duration; when it comes due, each node's
loop claims it and either finds the completion (nothing to do) or schedules C9 in the same
transaction. A completion recorded after the promise but before the check ran also counts:
calling to ask what is happening with a finished repair would help nobody.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.clock import utc
from contactcenter.events import facts
from contactcenter.rules.followups import OVERRUN_CHECK
from contactcenter.rules.plan import Event, callbacks_for
from contactcenter.runtime import Runtime
from contactcenter.scheduler import run_due, schedule
from contactcenter.storage.models import Customer, CustomerEvent, ScheduledWork


async def run_repair_checks(rt: Runtime) -> int:
    """Do the due overrun checks; returns how many found the repair still open."""
    now = utc(rt.clock.now())
    overrun = 0

    async def check(session: AsyncSession, item: ScheduledWork) -> dict[str, Any]:
        nonlocal overrun
        repair_id = item.payload["repair_id"]
        completions = (await session.scalars(select(CustomerEvent).where(
            CustomerEvent.customer_id == item.customer_id,
            CustomerEvent.kind == "repair-completed"))).all()
        done = next((e for e in completions
                     if str(e.data.get("repair_id") or e.external_id) == repair_id), None)
        if done is not None:
            return {"completed": done.id, "in_time": done.at <= item.due_at}
        customer = await session.get(Customer, item.customer_id)
        assert customer is not None
        plans = callbacks_for(Event("repair-overrun", item.due_at, customer.id,
                                    f"repair:{repair_id}"), facts(customer), rt.rules)
        await schedule(session, plans, now)
        overrun += 1
        return {"overrun": [p.key for p in plans]}

    await run_due(rt.sessions, check, now, kinds=[OVERRUN_CHECK])
    return overrun
