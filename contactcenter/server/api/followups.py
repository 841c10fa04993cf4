"""Callback outcomes, callbacks and visits by hand, and the lists to work from."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select

from contactcenter.callback_outcomes import record_outcome
from contactcenter.clock import utc
from contactcenter.domain import Role
from contactcenter.errors import Forbidden, InvalidInput, NotFound
from contactcenter.planned_work import (
    CALLBACK,
    VISIT,
    callback_view,
    cancel_callback,
    cancel_visit,
    create_callback,
    create_visit,
    customer_callbacks,
    is_supervisor,
    move_callback,
    move_visit,
    open_visit,
    outcome_view,
    owner_visits,
    visit_view,
    work_changes,
    worklist,
)
from contactcenter.rules.followups import OUTCOMES, VISIT_OUTCOMES
from contactcenter.server.api import api
from contactcenter.server.endpoint import Call
from contactcenter.storage.models import CallbackOutcome, ScheduledWork, Visit
from contactcenter.visits import record_visit_outcome

Outcome = Literal[OUTCOMES]  # type: ignore[valid-type]
VisitOutcome = Literal[VISIT_OUTCOMES]  # type: ignore[valid-type]
Reason = Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*$",
               description="why: kept with who and when")
Notes = Field(None, max_length=20_000, pattern=r"^[^\x00]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OutcomeIn(Strict):
    outcome: Outcome = Field(description="reached, no-answer, wrong-number or call-back")
    call_back_at: AwareDatetime | None = Field(None, description="call-back: when the "
                                               "customer asked to be called")
    visit_at: AwareDatetime | None = Field(None, description="reached on a booking call: the "
                                           "time agreed for the visit")
    notes: str | None = Notes


class CallbackIn(Strict):
    due: AwareDatetime = Field(description="earliest time to call")
    latest: AwareDatetime | None = Field(None, description="default: close of business that "
                                         "day")
    category: str = Field(description="one of the rules' selection.categories")
    purpose: str = Field(min_length=1, max_length=500, pattern=r"^[^\x00]*$")
    reason: str | None = Field(None, max_length=2000, pattern=r"^[^\x00]*$")


class VisitIn(Strict):
    due: AwareDatetime = Field(description="when the visit may start")
    latest: AwareDatetime | None = Field(None, description="default: close of business that "
                                         "day")
    owner_id: int | None = Field(None, description="who visits; default the caller (another "
                                 "owner needs a supervisor)")
    notes: str | None = Notes
    reason: str | None = Field(None, max_length=2000, pattern=r"^[^\x00]*$")


class MoveIn(Strict):
    due: AwareDatetime
    latest: AwareDatetime | None = None
    reason: str = Reason


class CancelIn(Strict):
    reason: str = Reason


class VisitOutcomeIn(Strict):
    outcome: VisitOutcome = Field(description="done (it took place), customer-absent, "
                                  "declined")
    notes: str | None = Notes
    done_at: AwareDatetime | None = Field(None, description="default now")


class Page(BaseModel):
    limit: int = Field(50, ge=1, le=500)


class VisitRange(BaseModel):
    owner_id: int | None = Field(None, description="default: the caller; others' need a "
                                 "supervisor")
    start: date = Field(description="first day (company time zone)")
    end: date = Field(description="last day, included")
    limit: int = Field(500, ge=1, le=2000)


def _now(call: Call) -> datetime:
    return utc(call.rt.clock.now())


@api.route("POST", "/contacts/{contact_id}/callback-outcome", role=Role.AGENT, body=OutcomeIn,
           status=201, tag="callbacks",
           summary="Record the outcome of a callback contact (its agent or a supervisor); "
                   "plans the retry, call-back or survey it leads to")
async def post_callback_outcome(call: Call) -> dict[str, Any]:
    b: OutcomeIn = call.body
    async with call.rt.sessions.begin() as session:
        record = await record_outcome(
            session, call.rt.rules, contact_id=call.params["contact_id"], actor=call.actor,
            outcome=b.outcome, now=_now(call), call_back_at=b.call_back_at,
            visit_at=b.visit_at, notes=b.notes)
        return {"outcome": outcome_view(record)}


@api.route("POST", "/customers/{customer_id}/callbacks", role=Role.AGENT, body=CallbackIn,
           status=201, tag="callbacks",
           summary="Create a callback by hand at a chosen time or window")
async def post_callback(call: Call) -> dict[str, Any]:
    b: CallbackIn = call.body
    async with call.rt.sessions.begin() as session:
        item = await create_callback(
            session, call.rt.rules, customer_id=call.params["customer_id"], actor=call.actor,
            due=b.due, latest=b.latest, category=b.category, purpose=b.purpose,
            reason=b.reason, now=_now(call))
        return {"callback": callback_view(item, None)}


@api.route("POST", "/customers/{customer_id}/visits", role=Role.AGENT, body=VisitIn,
           status=201, tag="visits",
           summary="Book a visit by hand at a time agreed with the customer")
async def post_visit(call: Call) -> dict[str, Any]:
    b: VisitIn = call.body
    async with call.rt.sessions.begin() as session:
        visit = await create_visit(
            session, call.rt.rules, customer_id=call.params["customer_id"], actor=call.actor,
            due=b.due, latest=b.latest, owner_id=b.owner_id, notes=b.notes, reason=b.reason,
            now=_now(call))
        return {"visit": visit_view(visit)}


@api.route("GET", "/customers/{customer_id}/callbacks", role=Role.AGENT, query=Page,
           tag="callbacks", summary="A customer's callbacks with their outcomes, newest first")
async def get_customer_callbacks(call: Call) -> dict[str, Any]:
    async with call.rt.sessions() as session:
        return {"callbacks": await customer_callbacks(session, call.params["customer_id"],
                                                      call.query.limit)}


@api.route("GET", "/callbacks/worklist", role=Role.AGENT, query=Page,
           summary="The caller's open callbacks: overdue, due now, later today")
async def get_worklist(call: Call) -> dict[str, Any]:
    now = _now(call)
    zone = call.rt.rules.calendar.hours().zone
    end = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), time(0), zone)
    async with call.rt.sessions() as session:
        return await worklist(session, call.actor, now, end, call.query.limit)


@api.route("GET", "/callbacks/{callback_id}", role=Role.AGENT,
           summary="One callback with its outcome and every change made to it")
async def get_callback(call: Call) -> dict[str, Any]:
    async with call.rt.sessions() as session:
        item = await session.get(ScheduledWork, call.params["callback_id"])
        if item is None or item.kind != CALLBACK:
            raise NotFound(f"callback {call.params['callback_id']} not found")
        outcome = await session.scalar(
            select(CallbackOutcome).where(CallbackOutcome.work_key == item.key))
        return {"callback": callback_view(item, outcome),
                "changes": await work_changes(session, CALLBACK, item.key)}


@api.route("POST", "/callbacks/{callback_id}/move", role=Role.AGENT, body=MoveIn,
           summary="Move a pending callback to another time, with the reason")
async def post_move_callback(call: Call) -> dict[str, Any]:
    b: MoveIn = call.body
    async with call.rt.sessions.begin() as session:
        item = await move_callback(session, call.rt.rules, call.params["callback_id"],
                                   actor=call.actor, due=b.due, latest=b.latest,
                                   reason=b.reason, now=_now(call))
        return {"callback": callback_view(item, None)}


@api.route("POST", "/callbacks/{callback_id}/cancel", role=Role.AGENT, body=CancelIn,
           summary="Cancel a pending callback, with the reason")
async def post_cancel_callback(call: Call) -> dict[str, Any]:
    async with call.rt.sessions.begin() as session:
        item = await cancel_callback(session, call.params["callback_id"], actor=call.actor,
                                     reason=call.body.reason, now=_now(call))
        return {"callback": callback_view(item, None)}


@api.route("GET", "/visits", role=Role.AGENT, query=VisitRange,
           summary="An owner's visits due in a date range (a calendar)")
async def get_visits(call: Call) -> dict[str, Any]:
    q: VisitRange = call.query
    owner = q.owner_id if q.owner_id is not None else call.actor.id
    if owner != call.actor.id and not is_supervisor(call.actor):
        raise Forbidden("agents see their own visits only")
    if q.end < q.start:
        raise InvalidInput("end: before start")
    zone = call.rt.rules.calendar.hours().zone
    start = datetime.combine(q.start, time(0), zone)
    end = datetime.combine(q.end + timedelta(days=1), time(0), zone)
    async with call.rt.sessions() as session:
        return {"visits": await owner_visits(session, owner, start, end, q.limit)}


@api.route("GET", "/visits/{visit_id}", role=Role.AGENT,
           summary="One visit with its outcome and every change made to it")
async def get_visit(call: Call) -> dict[str, Any]:
    async with call.rt.sessions() as session:
        visit = await session.get(Visit, call.params["visit_id"])
        if visit is None:
            raise NotFound(f"visit {call.params['visit_id']} not found")
        if visit.owner_user_id != call.actor.id and not is_supervisor(call.actor):
            raise Forbidden("only the visit's owner or a supervisor may read it")
        return {"visit": visit_view(visit),
                "changes": await work_changes(session, VISIT, visit.key)}


@api.route("POST", "/visits/{visit_id}/move", role=Role.AGENT, body=MoveIn,
           summary="Move a pending or booked visit (its owner or a supervisor), with the reason")
async def post_move_visit(call: Call) -> dict[str, Any]:
    b: MoveIn = call.body
    async with call.rt.sessions.begin() as session:
        visit = await open_visit(session, call.params["visit_id"], call.actor)
        await move_visit(session, call.rt.rules, visit, actor=call.actor, due=b.due,
                         latest=b.latest, reason=b.reason, now=_now(call))
        return {"visit": visit_view(visit)}


@api.route("POST", "/visits/{visit_id}/cancel", role=Role.AGENT, body=CancelIn,
           summary="Cancel a pending or booked visit, with the reason")
async def post_cancel_visit(call: Call) -> dict[str, Any]:
    async with call.rt.sessions.begin() as session:
        visit = await open_visit(session, call.params["visit_id"], call.actor)
        await cancel_visit(session, visit, actor=call.actor, reason=call.body.reason,
                           now=_now(call))
        return {"visit": visit_view(visit)}


@api.route("POST", "/visits/{visit_id}/outcome", role=Role.AGENT, body=VisitOutcomeIn,
           status=201, summary="Record a visit's outcome (its owner or a supervisor); a visit "
                               "that took place gets a satisfaction survey")
async def post_visit_outcome(call: Call) -> dict[str, Any]:
    b: VisitOutcomeIn = call.body
    async with call.rt.sessions.begin() as session:
        visit = await record_visit_outcome(
            session, call.rt.rules, call.params["visit_id"], actor=call.actor,
            outcome=b.outcome, notes=b.notes, done_at=b.done_at, now=_now(call))
        return {"visit": visit_view(visit)}
