"""What each node does in the background for the rules, every `CC_SCHEDULER_SECONDS`: plan the
greetings of today and tomorrow once a day, run the periodic account jobs (regrade, health
sweep, selections) once per period across nodes, turn due callbacks into contacts, send due
greetings and complaint acknowledgements, escalate complaints whose step missed its deadline.
Every node may run it: planning is keyed, claiming skips what another node holds and an
escalation is a conditional update, so each piece of work happens once."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from contactcenter.callbacks import run_callbacks
from contactcenter.clock import utc
from contactcenter.complaint_acks import send_due_acks
from contactcenter.complaints import escalate_overdue
from contactcenter.greetings import plan_greetings, send_due_greetings
from contactcenter.periodic_jobs import run_periodic_jobs
from contactcenter.repair_watch import flag_overrun_repairs
from contactcenter.runtime import Runtime

log = logging.getLogger(__name__)


async def run_once(rt: Runtime, planned: set[date],
                   jobs_seen: set[tuple[str, str]] | None = None) -> None:
    now = utc(rt.clock.now())
    today = datetime.fromtimestamp(rt.clock.now(), ZoneInfo(rt.rules.calendar.timezone)).date()
    # Tomorrow too: 09:00 in a customer's zone west of ours can come before our midnight.
    for day in (today, today + timedelta(days=1)):
        if day not in planned:
            read, added = await plan_greetings(rt.sessions, rt.rules, day, now)
            planned.add(day)
            log.info("greetings for %s planned: %d customers read, %d new", day, read, added)
    if rt.settings.periodic_jobs:
        await run_periodic_jobs(rt, set() if jobs_seen is None else jobs_seen)
        await flag_overrun_repairs(rt.sessions, rt.rules, now)
    await run_callbacks(rt)
    await send_due_greetings(rt)
    await send_due_acks(rt)
    await escalate_overdue(rt)


async def scheduler_loop(rt: Runtime) -> None:
    planned: set[date] = set()
    jobs_seen: set[tuple[str, str]] = set()
    while True:
        try:
            await run_once(rt, planned, jobs_seen)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduled work failed; retrying on the next round")
        await asyncio.sleep(rt.settings.scheduler_seconds)
