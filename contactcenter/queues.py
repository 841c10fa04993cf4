"""Queues: from their stored rows to the routing core's specs, and which queue takes a contact."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.domain import Strategy
from contactcenter.errors import ContactCenterError, InvalidInput, NotFound
from contactcenter.routing import QueueSpec
from contactcenter.settings import Settings
from contactcenter.storage.models import Queue


def queue_spec(queue: Queue, settings: Settings) -> QueueSpec:
    return QueueSpec(
        id=queue.id,
        name=queue.name,
        required_skills=frozenset(queue.required_skills or ()),
        strategy=Strategy(queue.strategy),
        base_priority=queue.base_priority or 0,
        max_length=queue.max_length,
        offer_timeout=queue.offer_timeout_seconds or settings.offer_timeout_seconds,
        wrapup_seconds=queue.wrapup_seconds or settings.wrapup_seconds,
        sticky_seconds=queue.sticky_seconds or 0,
        dispositions=tuple(queue.dispositions or ("resolved",)),
    )


async def active_queues(session: AsyncSession) -> Sequence[Queue]:
    return (await session.scalars(select(Queue).where(Queue.active).order_by(Queue.id))).all()


class QueueCache:
    """Active queues for the intake path, re-read at most every `ttl` seconds: queues change
    rarely, contacts arrive all the time. An edit through this node's API clears it at once;
    other nodes see it within `ttl`, and a queue added there at once (`select_each`)."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._queues: Sequence[Queue] = ()
        self._read_at = float("-inf")
        self._cleared = 0  # clears so far: a read that overlapped one may predate the edit

    async def get(self, session: AsyncSession, *, since: float | None = None) -> Sequence[Queue]:
        """The active queues; read again when older than `ttl` or read before `since`."""
        while (time.monotonic() - self._read_at >= self.ttl
               or (since is not None and self._read_at < since)):
            started, cleared = time.monotonic(), self._cleared
            queues = await active_queues(session)
            if cleared == self._cleared:
                self._queues, self._read_at = queues, started
            # else an edit was committed while we read: read again rather than keep the old
        return self._queues

    async def select_each(
        self, session: AsyncSession, wanted: Sequence[tuple[str, str | None, str | None]],
        *, since: float,
    ) -> list[Queue | ContactCenterError]:
        """`select_queue` for each (channel, name, skill): the queue or why there is none.

        A miss looks again in the database when the list was read before `since` (a monotonic
        time: when the request began), as another node's edit clears only that node's cache: a
        queue added there a moment ago is found here at once, not `ttl` later."""
        queues = await self.get(session)
        chosen = _select_each(queues, wanted)
        if any(isinstance(c, NotFound) for c in chosen) and self._read_at < since:
            chosen = _select_each(await self.get(session, since=since), wanted)
        return chosen

    async def is_active(self, session: AsyncSession, queue_id: int) -> bool:
        """Whether the queue is active; a miss looks again in the database, as `select_each`."""
        if any(q.id == queue_id for q in await self.get(session)):
            return True
        return any(q.id == queue_id for q in await self.get(session, since=time.monotonic()))

    def clear(self) -> None:
        self._read_at = float("-inf")
        self._cleared += 1


def _select_each(
    queues: Sequence[Queue], wanted: Sequence[tuple[str, str | None, str | None]]
) -> list[Queue | ContactCenterError]:
    chosen: list[Queue | ContactCenterError] = []
    for channel, name, skill in wanted:
        try:
            chosen.append(select_queue(queues, channel, name=name, skill=skill))
        except ContactCenterError as e:
            chosen.append(e)
    return chosen


def select_queue(
    queues: Sequence[Queue], channel: str, *, name: str | None = None, skill: str | None = None
) -> Queue:
    """By name if given; else the first queue taking the channel (and needing the skill)."""
    if name is not None:
        for q in queues:
            if q.name == name:
                if channel not in q.channels:
                    raise InvalidInput(f"queue {name!r} does not take {channel} contacts")
                return q
        raise NotFound(f"no active queue named {name!r}")
    for q in queues:
        if channel in q.channels and (skill is None or skill in q.required_skills):
            return q
    wanted = f"{channel} contacts" + (f" needing skill {skill!r}" if skill else "")
    raise NotFound(f"no active queue takes {wanted}")
