"""Callbacks and visits by hand: an agent creates a callback for a customer at a chosen time,
moves or cancels a pending callback or visit; every such change is kept with who, when and
why (`work_changes`). Also the lists people work from: a customer's callbacks, one's own
callback worklist, an owner's visits in a date range.

Who may touch what: a supervisor anything; an agent the callbacks of customers they own or
that they created, and the visits they own.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.customers import get_customer
from contactcenter.domain import Role
from contactcenter.errors import Conflict, Forbidden, InvalidInput, NotFound
from contactcenter.rules.config import Rules
from contactcenter.rules.followups import chosen_window
from contactcenter.rules.plan import WorkPlan
from contactcenter.scheduler import schedule
from contactcenter.storage.models import (
    CallbackOutcome,
    CustomerOwner,
    ScheduledWork,
    User,
    Visit,
    WorkChange,
)

CALLBACK, VISIT = "callback", "visit"
MANUAL_RULE = "manual"


def is_supervisor(user: User) -> bool:
    return Role(user.role).includes(Role.SUPERVISOR)


def iso(value: datetime | None) -> str | None:
    """UTC, whether the value was just computed in the company's zone or read back."""
    return None if value is None else value.astimezone(UTC).isoformat()


def record_change(session: AsyncSession, subject: str, key: str, action: str, *, actor: User,
                  now: datetime, reason: str | None, before: dict[str, Any] | None,
                  after: dict[str, Any] | None) -> None:
    session.add(WorkChange(subject=subject, subject_key=key, action=action,
                           actor_user_id=actor.id, at=now, reason=reason, before=before,
                           after=after))


def _window(due: datetime, latest: datetime | None, now: datetime, rules: Rules
            ) -> tuple[datetime, datetime]:
    try:
        return chosen_window(due, latest, now, rules)
    except ValueError as e:
        raise InvalidInput(f"latest: {e}") from None


# ---------------------------------------------------------------------------------------------
# Callbacks


async def create_callback(
    session: AsyncSession, rules: Rules, *, customer_id: int, actor: User, due: datetime,
    latest: datetime | None, category: str, purpose: str, reason: str | None, now: datetime,
) -> ScheduledWork:
    """A callback by hand ("call me back Tuesday afternoon"), routed like any other when due."""
    if category not in rules.selection.categories:
        raise InvalidInput(f"category must be one of {', '.join(rules.selection.categories)}")
    customer = await get_customer(session, customer_id)
    start, end = _window(due, latest, now, rules)
    key = f"{MANUAL_RULE}:{customer.id}:{uuid.uuid4().hex}"
    await schedule(session, [WorkPlan(
        key=key, kind=CALLBACK, rule_id=MANUAL_RULE, customer_id=customer.id, due=start,
        latest=end, payload={"category": category, "purpose": purpose, "created_by": actor.id},
    )], now)
    record_change(session, CALLBACK, key, "created", actor=actor, now=now, reason=reason,
                  before=None, after={"due": iso(start), "latest": iso(end)})
    item = await session.scalar(select(ScheduledWork).where(ScheduledWork.key == key))
    assert item is not None
    return item


async def _may_handle_callback(session: AsyncSession, item: ScheduledWork, user: User) -> bool:
    if is_supervisor(user) or item.payload.get("created_by") == user.id:
        return True
    return bool(await session.scalar(select(CustomerOwner.user_id).where(
        CustomerOwner.customer_id == item.customer_id, CustomerOwner.user_id == user.id)))


async def pending_callback(session: AsyncSession, work_id: int, user: User) -> ScheduledWork:
    item = await session.get(ScheduledWork, work_id, with_for_update=True)
    if item is None or item.kind != CALLBACK:
        raise NotFound(f"callback {work_id} not found", callback_id=work_id)
    if not await _may_handle_callback(session, item, user):
        raise Forbidden("only a supervisor, an owner of the customer or the agent who created "
                        "it may change this callback")
    if item.state != "pending":
        raise Conflict(f"callback {work_id} is {item.state}: only a pending one can change",
                       state=item.state)
    return item


async def move_callback(session: AsyncSession, rules: Rules, work_id: int, *, actor: User,
                        due: datetime, latest: datetime | None, reason: str, now: datetime
                        ) -> ScheduledWork:
    item = await pending_callback(session, work_id, actor)
    before = {"due": iso(item.due_at), "latest": iso(item.latest_at)}
    item.due_at, item.latest_at = _window(due, latest, now, rules)
    record_change(session, CALLBACK, item.key, "moved", actor=actor, now=now, reason=reason,
                  before=before, after={"due": iso(item.due_at), "latest": iso(item.latest_at)})
    return item


async def cancel_callback(session: AsyncSession, work_id: int, *, actor: User, reason: str,
                          now: datetime) -> ScheduledWork:
    item = await pending_callback(session, work_id, actor)
    item.state, item.done_at = "cancelled", now
    item.result = {"cancelled_by": actor.id, "reason": reason}
    record_change(session, CALLBACK, item.key, "cancelled", actor=actor, now=now, reason=reason,
                  before={"state": "pending"}, after={"state": "cancelled"})
    return item


def callback_view(item: ScheduledWork, outcome: CallbackOutcome | None) -> dict[str, Any]:
    p = item.payload or {}
    return {
        "id": item.id, "key": item.key, "rule": item.rule_id, "customer_id": item.customer_id,
        "state": item.state, "due": iso(item.due_at), "latest": iso(item.latest_at),
        "category": p.get("category"), "purpose": p.get("purpose"),
        "attempt": p.get("attempt", 1), "visit_id": p.get("visit_id"),
        "contact_id": (item.result or {}).get("contact_id"),
        "outcome": None if outcome is None else outcome_view(outcome),
    }


def outcome_view(o: CallbackOutcome) -> dict[str, Any]:
    return {"outcome": o.outcome, "contact_id": o.contact_id, "agent_id": o.agent_id,
            "attempt": o.attempt, "recorded_at": iso(o.recorded_at), "notes": o.notes,
            "call_back_at": iso(o.call_back_at), "next_key": o.next_key,
            "closed_as": o.closed_as}


async def _with_outcomes(session: AsyncSession, items: list[ScheduledWork]
                         ) -> list[dict[str, Any]]:
    keys = [i.key for i in items]
    outcomes = {o.work_key: o for o in (await session.scalars(
        select(CallbackOutcome).where(CallbackOutcome.work_key.in_(keys)))).all()} if keys else {}
    return [callback_view(i, outcomes.get(i.key)) for i in items]


async def customer_callbacks(session: AsyncSession, customer_id: int, limit: int
                             ) -> list[dict[str, Any]]:
    await get_customer(session, customer_id)
    items = (await session.scalars(
        select(ScheduledWork).where(ScheduledWork.customer_id == customer_id,
                                    ScheduledWork.kind == CALLBACK)
        .order_by(ScheduledWork.due_at.desc(), ScheduledWork.id.desc()).limit(limit))).all()
    return await _with_outcomes(session, list(items))


async def worklist(session: AsyncSession, user: User, now: datetime, end_of_today: datetime,
                   limit: int) -> dict[str, list[dict[str, Any]]]:
    """The user's open callbacks (customers they own, or created by them): still planned, or
    released to the queue with no outcome yet; split into overdue (past the latest time), due
    now and later today."""
    mine = or_(
        ScheduledWork.customer_id.in_(
            select(CustomerOwner.customer_id).where(CustomerOwner.user_id == user.id)),
        ScheduledWork.key.in_(
            select(WorkChange.subject_key).where(WorkChange.subject == CALLBACK,
                                                 WorkChange.action == "created",
                                                 WorkChange.actor_user_id == user.id)),
    )
    no_outcome = ~exists().where(CallbackOutcome.work_key == ScheduledWork.key)
    items = (await session.scalars(
        select(ScheduledWork)
        .where(ScheduledWork.kind == CALLBACK, ScheduledWork.due_at < end_of_today, mine,
               or_(ScheduledWork.state == "pending",
                   (ScheduledWork.state == "done") & no_outcome))
        .order_by(ScheduledWork.due_at, ScheduledWork.id).limit(limit))).all()
    views = await _with_outcomes(session, list(items))
    out: dict[str, list[dict[str, Any]]] = {"overdue": [], "due": [], "today": []}
    for item, view in zip(items, views, strict=True):
        if item.latest_at is not None and item.latest_at < now:
            out["overdue"].append(view)
        elif item.due_at <= now:
            out["due"].append(view)
        else:
            out["today"].append(view)
    return out


# ---------------------------------------------------------------------------------------------
# Visits


def visit_view(v: Visit) -> dict[str, Any]:
    return {"id": v.id, "key": v.key, "rule": v.rule_id, "customer_id": v.customer_id,
            "owner_id": v.owner_user_id, "state": v.state, "due": iso(v.due_at),
            "latest": iso(v.latest_at), "outcome": v.outcome, "notes": v.notes,
            "done_at": iso(v.done_at), "verified_at": iso(v.verified_at),
            "booking_key": v.booking_key}


async def create_visit(
    session: AsyncSession, rules: Rules, *, customer_id: int, actor: User, due: datetime,
    latest: datetime | None, owner_id: int | None, notes: str | None, reason: str | None,
    now: datetime,
) -> Visit:
    """A visit by hand, agreed with the customer ("come on Tuesday afternoon"): booked at once,
    so it needs no booking call. An agent books visits for themselves; a supervisor for anyone
    active."""
    customer = await get_customer(session, customer_id)
    owner = actor.id if owner_id is None else owner_id
    if owner != actor.id and not is_supervisor(actor):
        raise Forbidden("an agent books visits for themselves; a supervisor for anyone")
    if owner != actor.id:
        user = await session.get(User, owner)
        if user is None or not user.active:
            raise InvalidInput(f"owner_id: no active user {owner}")
    start, end = _window(due, latest, now, rules)
    visit = Visit(key=f"{MANUAL_RULE}-visit:{customer.id}:{uuid.uuid4().hex}",
                  rule_id=MANUAL_RULE, customer_id=customer.id, owner_user_id=owner,
                  due_at=start, latest_at=end, state="booked", notes=notes, created_at=now)
    session.add(visit)
    await session.flush()
    record_change(session, VISIT, visit.key, "created", actor=actor, now=now, reason=reason,
                  before=None, after={"due": iso(start), "latest": iso(end), "owner": owner,
                                      "state": "booked"})
    return visit


async def open_visit(session: AsyncSession, visit_id: int, user: User) -> Visit:
    visit = await session.get(Visit, visit_id, with_for_update=True)
    if visit is None:
        raise NotFound(f"visit {visit_id} not found", visit_id=visit_id)
    if not (is_supervisor(user) or visit.owner_user_id == user.id):
        raise Forbidden("only the visit's owner or a supervisor may change it")
    if visit.state not in ("pending", "booked"):
        raise Conflict(f"visit {visit_id} is {visit.state}", state=visit.state)
    return visit


async def move_visit(session: AsyncSession, rules: Rules, visit: Visit, *, actor: User,
                     due: datetime, latest: datetime | None, reason: str | None,
                     now: datetime, action: str = "moved") -> Visit:
    before = {"due": iso(visit.due_at), "latest": iso(visit.latest_at), "state": visit.state}
    visit.due_at, visit.latest_at = _window(due, latest, now, rules)
    if action == "booked":
        visit.state = "booked"
    record_change(session, VISIT, visit.key, action, actor=actor, now=now, reason=reason,
                  before=before, after={"due": iso(visit.due_at), "latest": iso(visit.latest_at),
                                        "state": visit.state})
    return visit


async def cancel_visit(session: AsyncSession, visit: Visit, *, actor: User, reason: str,
                       now: datetime) -> Visit:
    before = {"state": visit.state}
    visit.state = "cancelled"
    if visit.booking_key is not None:  # nobody needs to call to book a visit that is off
        booking = await session.scalar(select(ScheduledWork).where(
            ScheduledWork.key == visit.booking_key, ScheduledWork.state == "pending"))
        if booking is not None:
            booking.state, booking.done_at = "cancelled", now
            booking.result = {"cancelled_with_visit": visit.id}
    record_change(session, VISIT, visit.key, "cancelled", actor=actor, now=now, reason=reason,
                  before=before, after={"state": "cancelled"})
    return visit


async def owner_visits(session: AsyncSession, owner_id: int, start: datetime, end: datetime,
                       limit: int) -> list[dict[str, Any]]:
    rows = (await session.scalars(
        select(Visit).where(Visit.owner_user_id == owner_id, Visit.due_at >= start,
                            Visit.due_at < end)
        .order_by(Visit.due_at, Visit.id).limit(limit))).all()
    return [visit_view(v) for v in rows]


async def work_changes(session: AsyncSession, subject: str, key: str) -> list[dict[str, Any]]:
    rows = (await session.scalars(select(WorkChange).where(
        WorkChange.subject == subject, WorkChange.subject_key == key).order_by(WorkChange.id)
    )).all()
    return [{"action": c.action, "by": c.actor_user_id, "at": iso(c.at), "reason": c.reason,
             "before": c.before, "after": c.after} for c in rows]

