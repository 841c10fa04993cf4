"""What each node does in the background for the rules, every `CC_SCHEDULER_SECONDS`: plan the
visits once a day and the greetings of today and tomorrow, run the periodic account jobs
(regrade, health sweep, selections) once per period across nodes, check repairs past their
promised time, take in visits whose booking call is due, turn due callbacks into contacts, send
due greetings, campaign emails, satisfaction surveys and complaint acknowledgements, escalate
complaints whose step missed its deadline. Every node may run it: planning is keyed, claiming
skips what another node holds and an escalation is a conditional update, so each piece of work
happens once."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from contactcenter.callbacks import run_callbacks
from contactcenter.campaign_email import send_due_campaign_email
from contactcenter.clock import utc
from contactcenter.complaint_acks import send_due_acks
from contactcenter.complaints import escalate_overdue
from contactcenter.greetings import plan_greetings, send_due_greetings
from contactcenter.periodic_jobs import run_periodic_jobs
from contactcenter.repairs import run_repair_checks
from contactcenter.runtime import Runtime
from contactcenter.surveys import send_due_surveys
from contactcenter.visits import plan_visits, take_in_due_visits

log = logging.getLogger(__name__)


Planned = set[date | tuple[str, date]]  # greeting days, and ("visits", day)


async def run_once(rt: Runtime, planned: Planned,
                   jobs_seen: set[tuple[str, str]] | None = None) -> None:
    now = utc(rt.clock.now())
    today = datetime.fromtimestamp(rt.clock.now(), ZoneInfo(rt.rules.calendar.timezone)).date()
    if ("visits", today) not in planned:
        log.info("visits for %s planned: %d new", today, await plan_visits(rt, today))
        planned.add(("visits", today))
    # Tomorrow too: 09:00 in a customer's zone west of ours can come before our midnight.
    for day in (today, today + timedelta(days=1)):
        if day not in planned:
            read, added = await plan_greetings(rt.sessions, rt.rules, day, now)
            planned.add(day)
            log.info("greetings for %s planned: %d customers read, %d new", day, read, added)
    if rt.settings.periodic_jobs:
        await run_periodic_jobs(rt, set() if jobs_seen is None else jobs_seen)
    await run_repair_checks(rt)
    await take_in_due_visits(rt)  # before the callbacks: their booking calls are callbacks
    await run_callbacks(rt)
    await send_due_greetings(rt)
    await send_due_campaign_email(rt)
    await send_due_surveys(rt)
    await send_due_acks(rt)
    await escalate_overdue(rt)


async def scheduler_loop(rt: Runtime) -> None:
    planned: Planned = set()
    jobs_seen: set[tuple[str, str]] = set()
    while True:
        try:
            await run_once(rt, planned, jobs_seen)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduled work failed; retrying on the next round")
        await asyncio.sleep(rt.settings.scheduler_seconds)
