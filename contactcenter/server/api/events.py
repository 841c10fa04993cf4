from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contactcenter.clock import utc
from contactcenter.complaint_acks import send_due_acks
from contactcenter.domain import Role
from contactcenter.events import record_event
from contactcenter.rules.config import EVENT_KINDS
from contactcenter.server.api import api
from contactcenter.server.endpoint import Call


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: int
    kind: str = Field(description=", ".join(EVENT_KINDS))
    at: AwareDatetime | None = Field(None, description="when it happened; default now")
    external_id: str | None = Field(None, max_length=128,
                                    description="the sending system's id; a repeat is a no-op")
    data: dict[str, Any] = Field({}, description="anything the sender wants kept; for "
                                 "complaint-written: channel (letter, email, web…) and summary")


@api.route("POST", "/events", role=Role.AGENT, body=EventIn, status=201,
           summary="Record a customer event; the callbacks the rules make due are scheduled")
async def post_event(call: Call) -> Any:
    b: EventIn = call.body
    now = utc(call.rt.clock.now())
    async with call.rt.sessions.begin() as session:
        event, plans, created = await record_event(
            session, call.rt.rules, customer_id=b.customer_id, kind=b.kind, at=b.at or now,
            now=now, external_id=b.external_id, data=b.data, actor_id=call.actor.id,
            templates=call.rt.templates)
        body = {
            "event": {"id": event.id, "customer_id": event.customer_id, "kind": event.kind,
                      "at": event.at.isoformat(), "external_id": event.external_id},
            "scheduled": [{"key": p.key, "rule": p.rule_id, "due": p.due.isoformat(),
                           "latest": p.latest.isoformat(), "category": p.category,
                           "purpose": p.purpose} for p in plans],
            "created": created,
        }
    if created and b.kind == "complaint-written":
        await send_due_acks(call.rt)  # now, not on the next round of the background job
    return body if created else web.json_response(body, status=200)
