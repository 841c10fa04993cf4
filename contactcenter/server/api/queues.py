from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from contactcenter.domain import Channel, Role, Strategy
from contactcenter.errors import Conflict, NotFound
from contactcenter.hours import BusinessHours
from contactcenter.server.api import api
from contactcenter.server.endpoint import Call
from contactcenter.storage.models import Queue


class QueueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[\w.-]+$")
    description: str = ""
    channels: list[Channel] = Field(min_length=1)
    required_skills: list[str] = []
    strategy: Strategy = Strategy.LONGEST_IDLE
    base_priority: float = 0
    sl_threshold_seconds: int = Field(20, ge=1)
    max_length: int | None = Field(None, ge=1)
    offer_timeout_seconds: float | None = Field(None, gt=0)
    wrapup_seconds: float | None = Field(None, gt=0)
    sticky_seconds: float = Field(0, ge=0)
    dispositions: list[str] = Field(["resolved"], min_length=1)
    business_hours: dict[str, Any] = {}
    active: bool = True


class QueuePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    channels: list[Channel] | None = Field(None, min_length=1)
    required_skills: list[str] | None = None
    strategy: Strategy | None = None
    base_priority: float | None = None
    sl_threshold_seconds: int | None = Field(None, ge=1)
    max_length: int | None = Field(None, ge=1)
    offer_timeout_seconds: float | None = Field(None, gt=0)
    wrapup_seconds: float | None = Field(None, gt=0)
    sticky_seconds: float | None = Field(None, ge=0)
    dispositions: list[str] | None = Field(None, min_length=1)
    business_hours: dict[str, Any] | None = None
    active: bool | None = None


def queue_public(q: Queue) -> dict[str, Any]:
    return {c.name: getattr(q, c.name) for c in Queue.__table__.columns}


@api.route("GET", "/queues", role=Role.AGENT, summary="All queues")
async def list_queues(call: Call) -> dict[str, Any]:
    async with call.rt.sessions() as session:
        return {"queues": [queue_public(q) for q in
                           (await session.scalars(select(Queue).order_by(Queue.id))).all()]}


@api.route("POST", "/queues", role=Role.ADMIN, body=QueueIn, status=201, summary="Create a queue")
async def create_queue(call: Call) -> dict[str, Any]:
    data = call.body.model_dump(mode="json")
    BusinessHours.parse(data["business_hours"])  # a clear 422 naming the bad field
    async with call.rt.sessions.begin() as session:
        if await session.scalar(select(Queue.id).where(Queue.name == data["name"])):
            raise Conflict(f"queue {data['name']!r} already exists")
        queue = Queue(**data)
        session.add(queue)
        await session.flush()
        result = queue_public(queue)
    call.rt.queue_cache.clear()
    await call.rt.broker.submit({"op": "reload"})
    return result


@api.route("PATCH", "/queues/{queue_id}", role=Role.ADMIN, body=QueuePatch,
           summary="Change a queue's settings; routing picks them up at once")
async def edit_queue(call: Call) -> dict[str, Any]:
    async with call.rt.sessions.begin() as session:
        queue = await session.get(Queue, call.params["queue_id"])
        if queue is None:
            raise NotFound(f"no queue {call.params['queue_id']}")
        changes = call.body.model_dump(mode="json", exclude_unset=True)
        BusinessHours.parse(changes.get("business_hours"))
        for key, value in changes.items():
            setattr(queue, key, value)
        result = queue_public(queue)
    call.rt.queue_cache.clear()
    await call.rt.broker.submit({"op": "reload"})
    return result
