from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from contactcenter.contacts import Inbound, message_public, take_in
from contactcenter.domain import Channel, ContactState, Role
from contactcenter.errors import Conflict, Forbidden, InvalidInput, NotFound
from contactcenter.screenpop import contact_summary
from contactcenter.server.api import api
from contactcenter.server.endpoint import Call
from contactcenter.storage.models import Contact, ContactEvent, Message, User


class ContactIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    channel: Channel = Channel.API
    from_: str = Field(alias="from", min_length=1, max_length=254,
                       description="the customer's phone number, email or handle")
    body: str = Field("", max_length=20_000)
    subject: str | None = Field(None, max_length=300)
    queue: str | None = Field(None, description="queue name; else chosen by channel and skill")
    skill: str | None = None
    external_id: str | None = Field(None, max_length=128,
                                    description="the integration's id; a repeat is a no-op")
    name: str | None = Field(None, max_length=200)


class ContactList(BaseModel):
    state: ContactState | None = None
    channel: Channel | None = None
    queue_id: int | None = None
    agent_id: int | None = None
    customer_id: int | None = None
    before_id: int | None = Field(None, description="page: contacts older than this id")
    limit: int = Field(50, ge=1, le=500)


def _can_see_all(user: User) -> bool:
    return Role(user.role).includes(Role.SUPERVISOR)


@api.route("POST", "/contacts", role=Role.SUPERVISOR, body=ContactIn, status=201,
           summary="Create an inbound contact from an integration; it is queued and routed "
                   "(200 with the stored contact when external_id repeats)")
async def create(call: Call) -> Any:
    b: ContactIn = call.body
    intake = await take_in(call.rt, Inbound(
        channel=b.channel.value, address=b.from_, body=b.body, subject=b.subject, queue=b.queue,
        skill=b.skill, external_id=b.external_id, display_name=b.name,
    ))
    if intake.duplicate:  # a repeat of an external id: the stored contact, nothing new
        return web.json_response({"contact": intake.contact, "created": False}, status=200)
    return {"contact": intake.contact, "created": True}


@api.route("GET", "/contacts", role=Role.AGENT, query=ContactList,
           summary="List contacts, newest first (agents see their own)")
async def list_contacts(call: Call) -> dict[str, Any]:
    q: ContactList = call.query
    stmt = select(Contact).order_by(Contact.id.desc()).limit(q.limit)
    if not _can_see_all(call.actor):
        stmt = stmt.where(Contact.agent_id == call.actor.id)
    elif q.agent_id is not None:
        stmt = stmt.where(Contact.agent_id == q.agent_id)
    for column, value in ((Contact.state, q.state), (Contact.channel, q.channel),
                          (Contact.queue_id, q.queue_id), (Contact.customer_id, q.customer_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    if q.before_id is not None:
        stmt = stmt.where(Contact.id < q.before_id)
    async with call.rt.sessions() as session:
        rows = (await session.scalars(stmt)).all()
    return {"contacts": [{**contact_summary(c), "agent_id": c.agent_id,
                          "disposition": c.disposition} for c in rows]}


@api.route("GET", "/contacts/{contact_id}", role=Role.AGENT,
           summary="A contact with its event log and messages")
async def read(call: Call) -> dict[str, Any]:
    async with call.rt.sessions() as session:
        contact = await session.get(Contact, call.params["contact_id"])
        if contact is None:
            raise NotFound(f"no contact {call.params['contact_id']}")
        if not _can_see_all(call.actor) and contact.agent_id != call.actor.id:
            raise Forbidden("agents may read only contacts assigned to them")
        events = (await session.scalars(select(ContactEvent).where(
            ContactEvent.contact_id == contact.id).order_by(ContactEvent.id))).all()
        messages = (await session.scalars(select(Message).where(
            Message.contact_id == contact.id).order_by(Message.id))).all()
    return {
        "contact": {**contact_summary(contact), "agent_id": contact.agent_id,
                    "disposition": contact.disposition, "notes": contact.notes,
                    "answered_at": contact.answered_at, "ended_at": contact.ended_at,
                    "closed_at": contact.closed_at},
        "events": [{"at": e.at.isoformat(), "kind": e.kind, "queue_id": e.queue_id,
                    "agent_id": e.agent_id, "data": e.data} for e in events],
        "messages": [message_public(m) for m in messages],
    }


@api.route("POST", "/contacts/{contact_id}/abandon", role=Role.SUPERVISOR, status=202,
           summary="The customer left (hung up, closed the chat) before or during service")
async def abandon(call: Call) -> dict[str, Any]:
    async with call.rt.sessions() as session:
        contact = await session.get(Contact, call.params["contact_id"])
    if contact is None:
        raise NotFound(f"no contact {call.params['contact_id']}")
    if ContactState(contact.state).is_final:
        raise Conflict(f"contact {contact.id} is already {contact.state}")
    await call.rt.broker.submit({"op": "customer_left", "contact_id": contact.id})
    return {"accepted": True}


class ReassignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue_id: int | None = Field(None, description="back to waiting in this queue")
    agent_id: int | None = Field(None, description="offered to this agent only")


@api.route("POST", "/contacts/{contact_id}/reassign", role=Role.SUPERVISOR, body=ReassignIn,
           status=202, summary="Move a contact an agent is working to another queue or agent "
                               "(a transfer on the agent's behalf)")
async def reassign(call: Call) -> dict[str, Any]:
    b: ReassignIn = call.body
    if (b.queue_id is None) == (b.agent_id is None):
        raise InvalidInput("give exactly one of queue_id and agent_id")
    async with call.rt.sessions() as session:
        contact = await session.get(Contact, call.params["contact_id"])
        if contact is None:
            raise NotFound(f"no contact {call.params['contact_id']}")
        if contact.state != ContactState.ACTIVE.value or contact.agent_id is None:
            raise Conflict(f"contact {contact.id} is {contact.state}: only one an agent is "
                           "working can be reassigned", state=contact.state)
        if b.agent_id is not None:
            target = await session.get(User, b.agent_id)
            if target is None or not target.active:
                raise InvalidInput(f"agent_id: no active user {b.agent_id}")
            if target.id == contact.agent_id:
                raise Conflict(f"contact {contact.id} is already with agent {target.id}")
        elif not await call.rt.queue_cache.is_active(session, b.queue_id):
            raise InvalidInput(f"queue_id: no active queue {b.queue_id}")
    # The router refuses what no longer holds when it gets there (the agent ended meanwhile, the
    # queue is full); the holding agent is told, and the board shows where the contact is.
    await call.rt.broker.submit({"op": "transfer", "agent_id": contact.agent_id,
                                 "contact_id": contact.id, "to_queue_id": b.queue_id,
                                 "to_agent_id": b.agent_id})
    return {"accepted": True}
