"""Periodic jobs run exactly once per period across all nodes.

Every node's background loop may offer to run a job (the monthly regrade, the daily health
sweep); a row keyed (name, period) decides which node does it: the insert that wins claims the
run. A run whose node died before finishing is taken over once it is `stale` old; the jobs are
idempotent (their work is keyed), so a second attempt redoes nothing that was done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.storage.models import JobRun

STALE = timedelta(hours=2)


async def claim(sessions: async_sessionmaker[AsyncSession], name: str, period: str, node: str,
                now: datetime, *, stale: timedelta = STALE) -> bool:
    """True if this node now holds the run of `name` for `period`."""
    async with sessions.begin() as session:
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        won = (await session.execute(
            insert(JobRun).values(name=name, period=period, node=node, started_at=now)
            .on_conflict_do_nothing(index_elements=["name", "period"])
            .returning(JobRun.id))).first()
        if won is not None:
            return True
        taken_over = await session.execute(
            update(JobRun)
            .where(JobRun.name == name, JobRun.period == period, JobRun.finished_at.is_(None),
                   JobRun.started_at <= now - stale)
            .values(node=node, started_at=now))
        return bool(taken_over.rowcount)  # type: ignore[attr-defined]


async def finish(sessions: async_sessionmaker[AsyncSession], name: str, period: str,
                 now: datetime, result: dict[str, Any]) -> None:
    async with sessions.begin() as session:
        await session.execute(update(JobRun).where(JobRun.name == name, JobRun.period == period)
                              .values(finished_at=now, result=result))


async def run_once_per_period(
    sessions: async_sessionmaker[AsyncSession], name: str, period: str, node: str,
    now: datetime, job: Callable[[], Awaitable[dict[str, Any]]],
) -> dict[str, Any] | None:
    """Run `job` if no node has run it for `period` yet; its result, or None if not run here.
    A job that fails stays unfinished and is retried once stale."""
    if not await claim(sessions, name, period, node, now):
        return None
    result = await job()
    await finish(sessions, name, period, now, result)
    return result
