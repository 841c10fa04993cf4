"""The periodic account jobs, offered by every node's background loop and run by one node per
period (`jobruns.py`): the monthly regrade (rules `[grading].regrade`), the daily health sweep
and service-needed selection, the monthly random selection."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from contactcenter.clock import utc
from contactcenter.health_jobs import sweep_health
from contactcenter.jobruns import run_once_per_period
from contactcenter.regrade import regrade
from contactcenter.rules.periodic import regrade_period
from contactcenter.runtime import Runtime
from contactcenter.selection_jobs import select_random, select_service_needed

log = logging.getLogger(__name__)
Job = Callable[[], Awaitable[dict[str, Any]]]


def due_jobs(rt: Runtime, now: datetime) -> list[tuple[str, str, Job]]:
    """(name, period, job) of every periodic job; a period is run once."""
    rules, sessions, texts = rt.rules, rt.sessions, rt.templates
    local = now.astimezone(rules.calendar.hours().zone)
    day, month = local.date().isoformat(), f"{local:%Y-%m}"

    async def grading() -> dict[str, Any]:
        return (await regrade(sessions, rules, now, templates=texts)).as_dict()

    async def health() -> dict[str, Any]:
        return (await sweep_health(sessions, rules, texts, now)).as_dict()

    async def random_selection() -> dict[str, Any]:
        return {"planned": await select_random(sessions, rules, texts, now)}

    async def service_needed() -> dict[str, Any]:
        return {"planned": await select_service_needed(sessions, rules, texts, now)}

    jobs: list[tuple[str, str, Job]] = []
    period = regrade_period(now, rules)
    if period is not None:
        jobs.append(("grading", period, grading))
    # After the regrade, so the health sweep reads this month's tiers.
    jobs += [("health", day, health), ("random-selection", month, random_selection),
             ("service-needed", day, service_needed)]
    return jobs


async def run_periodic_jobs(rt: Runtime, seen: set[tuple[str, str]]) -> dict[str, Any]:
    """Run the jobs due now that no node has run for their period. `seen` remembers what this
    node already offered, so a quiet round costs no query."""
    now = utc(rt.clock.now())
    results: dict[str, Any] = {}
    for name, period, job in due_jobs(rt, now):
        if (name, period) in seen:
            continue
        result = await run_once_per_period(rt.sessions, name, period, rt.node_id, now, job)
        seen.add((name, period))
        if result is not None:
            results[name] = result
            log.info("%s for %s: %s", name, period, result)
    return results
