"""Selection jobs (spec §7), each with its quota and each keyed once per customer and period:

- random: `selection.random_share_per_month` of the active customers, drawn reproducibly
  (`rules/selection.py: random_selection`), key `random:<customer>:<YYYY-MM>`;
- service needed: customers with an open repair, complaint or paid-service order
  (`rules/periodic.py: open_cases` over their events), at most
  `selection.service_needed_max_per_month` a month (0 = no limit), key
  `service-needed:<customer>:<YYYY-MM>`.
The low-satisfaction and emotional (dormant) selections live with the survey replies and the
health sweep.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.customer_pages import pages
from contactcenter.rules.config import Rules
from contactcenter.rules.periodic import CASE_EVENT_KINDS, CaseEvent, job_callback, open_cases
from contactcenter.rules.plan import CallbackPlan
from contactcenter.rules.selection import random_selection
from contactcenter.scheduler import schedule
from contactcenter.storage.models import Customer, CustomerEvent, ScheduledWork
from contactcenter.templates import Templates

RANDOM, SERVICE_NEEDED = "random", "service-needed"
_CHUNK = 1000


def _month(now: datetime, rules: Rules) -> date:
    return now.astimezone(rules.calendar.hours().zone).date().replace(day=1)


async def select_random(sessions: async_sessionmaker[AsyncSession], rules: Rules,
                        templates: Templates, now: datetime, *, batch: int = 5000) -> int:
    """Plan this month's random sample; returns how many callbacks are new."""
    month = _month(now, rules)
    active: list[int] = []
    async for _, page in pages(sessions, batch):
        active.extend(r.id for r in page.active)
    chosen = random_selection(active, month, rules)
    del active
    added = 0
    s = rules.selection
    for i in range(0, len(chosen), _CHUNK):
        async with sessions.begin() as session:
            languages = dict((await session.execute(
                select(Customer.id, Customer.language)
                .where(Customer.id.in_(chosen[i:i + _CHUNK])))).all())
            added += await schedule(session, [
                job_callback(RANDOM, cid, f"{month:%Y-%m}", now, s.within_days,
                             s.random_category, templates.render("purpose_random", language),
                             rules) for cid, language in languages.items()], now)
    return added


async def _planned_this_month(session: AsyncSession, month: date) -> int:
    return await session.scalar(select(func.count()).select_from(ScheduledWork).where(
        ScheduledWork.rule_id == SERVICE_NEEDED,
        ScheduledWork.key.like(f"{SERVICE_NEEDED}:%:{month:%Y-%m}"))) or 0


async def select_service_needed(sessions: async_sessionmaker[AsyncSession], rules: Rules,
                                templates: Templates, now: datetime, *, batch: int = 5000
                                ) -> int:
    """Plan a service callback for customers with an open case, within the month's quota;
    returns how many are new."""
    month = _month(now, rules)
    s = rules.selection
    added = 0
    async for session, page in pages(sessions, batch):
        if s.service_needed_max_per_month and (
                await _planned_this_month(session, month) >= s.service_needed_max_per_month):
            break
        events: dict[int, list[CaseEvent]] = defaultdict(list)
        for cid, kind, at, data in (await session.execute(
                select(CustomerEvent.customer_id, CustomerEvent.kind, CustomerEvent.at,
                       CustomerEvent.data)
                .where(CustomerEvent.customer_id.between(page.low, page.high),
                       CustomerEvent.kind.in_(CASE_EVENT_KINDS), CustomerEvent.at <= now))):
            events[cid].append(CaseEvent(kind, at, data or {}))
        plans: list[CallbackPlan] = []
        for row in page.active:
            cases = open_cases(events.get(row.id, []))
            if cases:
                plans.append(job_callback(
                    SERVICE_NEEDED, row.id, f"{month:%Y-%m}", now, s.within_days,
                    s.service_needed_category,
                    templates.render("purpose_service_needed", row.language,
                                     cases=", ".join(cases)), rules))
        if s.service_needed_max_per_month:
            room = s.service_needed_max_per_month - await _planned_this_month(session, month)
            plans = plans[:max(room, 0)]
        added += await schedule(session, plans, now)
    return added
