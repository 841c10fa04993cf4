"""Complaints (spec §6): open from a contact, list, read, take, complete steps, reassign."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select

from contactcenter import complaints
from contactcenter.clock import utc
from contactcenter.complaint_acks import send_due_acks
from contactcenter.customers import get_customer
from contactcenter.domain import Role
from contactcenter.errors import Forbidden, InvalidInput, NotFound
from contactcenter.rules.complaints import STEPS
from contactcenter.runtime import Runtime
from contactcenter.server.api import api
from contactcenter.server.endpoint import Call
from contactcenter.storage.models import (
    Complaint,
    ComplaintStep,
    Contact,
    Message,
    ScheduledWork,
    User,
)

ComplaintChannel = Literal["voice", "sms", "email", "chat", "api", "callback", "letter", "web"]
Step = Literal["verify", "review", "rectify", "callback", "archive"]


class ComplaintIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: int
    contact_id: int | None = Field(None, description="the contact the agent is working")
    channel: ComplaintChannel | None = Field(
        None, description="where the complaint came in; default the contact's channel")
    summary: str = Field(min_length=1, max_length=20_000)


class ComplaintList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: Step | None = None
    level: int | None = Field(None, ge=1, le=3)
    owner_id: int | None = None
    customer_id: int | None = None
    archived: bool | None = Field(None, description="true: archived only; false: open only")
    before_id: int | None = Field(None, description="page: complaints older than this id")
    limit: int = Field(50, ge=1, le=500)


class StepDone(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: Step
    outcome: str | None = Field(None, max_length=300,
                                description="required for the callback step")


class Reassign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner_id: int


def _is_supervisor(user: User) -> bool:
    return Role(user.role).includes(Role.SUPERVISOR)


def complaint_public(rt: Runtime, row: Complaint) -> dict[str, Any]:
    levels = rt.rules.complaints.levels
    tier = row.tier
    return {
        "id": row.id, "customer_id": row.customer_id, "contact_id": row.contact_id,
        "event_id": row.event_id, "channel": row.channel, "summary": row.summary,
        "tier": tier, "owner_id": row.owner_user_id, "step": row.step,
        "step_started_at": row.step_started_at.isoformat(),
        "deadline_at": row.deadline_at.isoformat() if row.deadline_at else None,
        "level": row.level, "level_name": levels[row.level - 1],
        "prioritised": complaints.as_workflow(row).prioritised(rt.rules),
        "callback_outcome": row.callback_outcome,
        "archived_at": row.archived_at.isoformat() if row.archived_at else None,
        "created_at": row.created_at.isoformat(),
    }


def _step(record: ComplaintStep) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value else None
    return {"step": record.step, "owner_id": record.owner_user_id,
            "started_at": iso(record.started_at), "deadline_at": iso(record.deadline_at),
            "done_at": iso(record.done_at), "done_by": record.done_by_user_id,
            "outcome": record.outcome, "level": record.level,
            "escalated_at": iso(record.escalated_at)}


def _may_see(user: User, row: Complaint) -> None:
    if not _is_supervisor(user) and row.owner_user_id not in (None, user.id):
        raise Forbidden("agents may read only their own complaints and unowned ones")


@api.route("POST", "/complaints", role=Role.AGENT, body=ComplaintIn, status=201,
           summary="Open a complaint from a contact; the agent owns it (first contact) and "
                   "the customer is acknowledged on its channel")
async def open_one(call: Call) -> dict[str, Any]:
    b: ComplaintIn = call.body
    now = utc(call.rt.clock.now())
    async with call.rt.sessions.begin() as session:
        customer = await get_customer(session, b.customer_id)
        channel = b.channel
        if b.contact_id is not None:
            contact = await session.get(Contact, b.contact_id)
            if contact is None:
                raise InvalidInput(f"contact_id: no contact {b.contact_id}")
            if contact.customer_id != customer.id:
                raise InvalidInput(f"contact_id: contact {b.contact_id} is not customer "
                                   f"{customer.id}'s")
            if contact.agent_id != call.actor.id and not _is_supervisor(call.actor):
                raise Forbidden(f"contact {b.contact_id} is not assigned to you")
            channel = channel or contact.channel  # type: ignore[assignment]
        if channel is None:
            raise InvalidInput("channel: give the channel, or the contact it came in on")
        row = await complaints.open_complaint(
            session, call.rt.rules, customer=customer, channel=channel, summary=b.summary,
            now=now, owner_id=call.actor.id, actor_id=call.actor.id, contact_id=b.contact_id)
        body = complaint_public(call.rt, row)
    await send_due_acks(call.rt)
    return {"complaint": body}


@api.route("GET", "/complaints", role=Role.AGENT, query=ComplaintList,
           summary="List complaints, newest first, by step, escalation level, owner or "
                   "customer (agents see theirs and unowned ones)")
async def list_complaints(call: Call) -> dict[str, Any]:
    q: ComplaintList = call.query
    stmt = select(Complaint).order_by(Complaint.id.desc()).limit(q.limit)
    if not _is_supervisor(call.actor):
        stmt = stmt.where(or_(Complaint.owner_user_id == call.actor.id,
                              Complaint.owner_user_id.is_(None)))
    for column, value in ((Complaint.step, q.step), (Complaint.level, q.level),
                          (Complaint.owner_user_id, q.owner_id),
                          (Complaint.customer_id, q.customer_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    if q.archived is not None:
        stmt = stmt.where(Complaint.archived_at.is_not(None) if q.archived
                          else Complaint.archived_at.is_(None))
    if q.before_id is not None:
        stmt = stmt.where(Complaint.id < q.before_id)
    async with call.rt.sessions() as session:
        rows = (await session.scalars(stmt)).all()
    return {"complaints": [complaint_public(call.rt, r) for r in rows]}


@api.route("GET", "/complaints/{complaint_id}", role=Role.AGENT,
           summary="A complaint with its steps and its acknowledgement")
async def read(call: Call) -> dict[str, Any]:
    complaint_id = call.params["complaint_id"]
    async with call.rt.sessions() as session:
        row = await session.get(Complaint, complaint_id)
        if row is None:
            raise NotFound(f"complaint {complaint_id} not found")
        _may_see(call.actor, row)
        steps = (await session.scalars(select(ComplaintStep).where(
            ComplaintStep.complaint_id == row.id).order_by(ComplaintStep.id))).all()
        ack = await session.scalar(select(ScheduledWork).where(
            ScheduledWork.key == f"{complaints.ACK_KIND}:{row.id}"))
        message_id = (ack.result or {}).get("message_id") if ack else None
        message = await session.get(Message, message_id) if message_id else None
        body = complaint_public(call.rt, row)
    body["steps"] = sorted((_step(s) for s in steps), key=lambda s: STEPS.index(s["step"]))
    body["acknowledgement"] = None if ack is None else {
        "state": ack.state, "due_at": ack.due_at.isoformat(),
        "channel": (ack.result or {}).get("channel"),
        "skipped": (ack.result or {}).get("skipped"),
        "message_id": message_id, "status": message.status if message else None,
    }
    return {"complaint": body}


@api.route("POST", "/complaints/{complaint_id}/take", role=Role.AGENT,
           summary="Take an unowned complaint: the first agent to take it owns it")
async def take(call: Call) -> dict[str, Any]:
    async with call.rt.sessions.begin() as session:
        row = await complaints.take(session, call.rt.rules, call.params["complaint_id"],
                                    call.actor.id, utc(call.rt.clock.now()))
        return {"complaint": complaint_public(call.rt, row)}


@api.route("POST", "/complaints/{complaint_id}/complete", role=Role.AGENT, body=StepDone,
           summary="Complete the current step (the callback step needs an outcome; archive "
                   "is refused with 409 until it has one)")
async def complete(call: Call) -> dict[str, Any]:
    b: StepDone = call.body
    async with call.rt.sessions.begin() as session:
        row = await complaints.complete_step(
            session, call.rt.rules, call.params["complaint_id"], b.step,
            actor_id=call.actor.id, supervisor=_is_supervisor(call.actor),
            now=utc(call.rt.clock.now()), outcome=b.outcome)
        return {"complaint": complaint_public(call.rt, row)}


@api.route("POST", "/complaints/{complaint_id}/reassign", role=Role.SUPERVISOR, body=Reassign,
           summary="Move a complaint to another owner (first-contact ownership otherwise "
                   "stays)")
async def reassign(call: Call) -> dict[str, Any]:
    b: Reassign = call.body
    async with call.rt.sessions.begin() as session:
        owner = await session.get(User, b.owner_id)
        if owner is None or not owner.active:
            raise InvalidInput(f"owner_id: no active user {b.owner_id}")
        row = await complaints.reassign(session, call.rt.rules, call.params["complaint_id"],
                                        owner.id, utc(call.rt.clock.now()))
        return {"complaint": complaint_public(call.rt, row)}
