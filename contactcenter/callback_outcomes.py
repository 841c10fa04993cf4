"""The outcome of a callback contact (spec §9), recorded by the agent who held it or by a
supervisor, once per contact, and what follows from it in the same transaction:

- reached       done; a satisfaction survey when the rules ask for one (§8); a booking call
                marks its visit booked (and moves it to `visit_at` when the customer chose one)
                and gets no survey of its own: the visit will
- no-answer     a new callback `retries.no_answer_every` later in business hours, until
                `retries.no_answer_attempts` retries are used; then closed as unreachable
- wrong-number  the number is marked wrong on the customer (audited); callbacks and surveys
                skip it from then on
- call-back     a new callback due when the customer asked, same purpose and category

A retry or call-back is a new scheduled callback with a key derived from the first one's
(`<first key>:retry:<attempt>`, `<first key>:call-back:<contact>`), so it exists at most once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.customers import audit
from contactcenter.domain import Channel, ContactState
from contactcenter.errors import Conflict, Forbidden, InvalidInput, NotFound
from contactcenter.planned_work import is_supervisor, move_visit, record_change
from contactcenter.rules.config import Rules
from contactcenter.rules.followups import (
    CALL_BACK,
    REACHED,
    WRONG_NUMBER,
    after_outcome,
    survey_plan,
)
from contactcenter.rules.plan import WorkPlan
from contactcenter.scheduler import schedule
from contactcenter.storage.models import (
    CallbackOutcome,
    Contact,
    Customer,
    ScheduledWork,
    User,
    Visit,
    WrongNumber,
)

SCHEDULED_PREFIX = "scheduled:"  # a callback contact's external_id: scheduled:<work key>


async def usable_phone(session: AsyncSession, customer: Customer) -> str | None:
    """The customer's first number not marked wrong."""
    wrong = set((await session.scalars(
        select(WrongNumber.number).where(WrongNumber.customer_id == customer.id))).all())
    return next((p.number for p in customer.phones if p.number not in wrong), None)


async def _callback_contact(session: AsyncSession, contact_id: int, actor: User) -> Contact:
    contact = await session.get(Contact, contact_id, with_for_update=True)
    if contact is None:
        raise NotFound(f"contact {contact_id} not found", contact_id=contact_id)
    if contact.channel != Channel.CALLBACK.value:
        raise Conflict(f"contact {contact_id} is not a callback (channel {contact.channel})")
    if contact.state in (ContactState.QUEUED.value, ContactState.OFFERED.value):
        # Nobody has called yet; an outcome now would leave the queued call to be made anyway.
        raise Conflict(f"callback {contact_id} is {contact.state}: nobody has taken it yet",
                       state=contact.state)
    if not is_supervisor(actor) and contact.agent_id != actor.id:
        raise Forbidden("only the agent who holds or held this callback, or a supervisor, "
                        "may record its outcome")
    if await session.scalar(select(CallbackOutcome.id).where(
            CallbackOutcome.contact_id == contact_id)):
        raise Conflict(f"the outcome of contact {contact_id} is already recorded")
    return contact


async def _mark_wrong(session: AsyncSession, contact: Contact, actor: User, now: datetime
                      ) -> None:
    number = contact.from_address
    if not number:
        return
    known = set((await session.scalars(select(WrongNumber.number).where(
        WrongNumber.customer_id == contact.customer_id))).all())
    if number in known:
        return
    session.add(WrongNumber(customer_id=contact.customer_id, number=number, marked_at=now,
                            actor_user_id=actor.id, contact_id=contact.id))
    audit(session, contact.customer_id, "update", actor_id=actor.id, now=now,
          before={"wrong_numbers": sorted(known)},
          after={"wrong_numbers": sorted(known | {number})})


async def record_outcome(
    session: AsyncSession, rules: Rules, *, contact_id: int, actor: User, outcome: str,
    now: datetime, call_back_at: datetime | None = None, visit_at: datetime | None = None,
    notes: str | None = None,
) -> CallbackOutcome:
    contact = await _callback_contact(session, contact_id, actor)
    if outcome == CALL_BACK and call_back_at is None:
        raise InvalidInput("call_back_at: required for the outcome call-back")
    key = (contact.external_id or "").removeprefix(SCHEDULED_PREFIX)
    item = await session.scalar(select(ScheduledWork).where(ScheduledWork.key == key)) \
        if contact.external_id and contact.external_id.startswith(SCHEDULED_PREFIX) else None
    payload: dict[str, Any] = dict(item.payload) if item is not None else {}
    attempt = int(payload.get("attempt", 1))
    origin = payload.get("origin") or (item.key if item is not None else f"contact:{contact.id}")
    if visit_at is not None and (outcome != REACHED or payload.get("visit_id") is None):
        raise InvalidInput("visit_at: only for a visit's booking call that reached the customer")
    step = after_outcome(outcome, attempt, now, rules, call_back_at=call_back_at)
    record = CallbackOutcome(
        contact_id=contact.id, work_key=item.key if item is not None else None,
        customer_id=contact.customer_id, agent_id=contact.agent_id or actor.id,
        outcome=outcome, attempt=attempt, number=contact.from_address,
        call_back_at=step.due if outcome == CALL_BACK else None, closed_as=step.closed_as,
        notes=notes, recorded_at=now)
    if step.due is not None:
        meta = contact.meta or {}
        record.next_key = (f"{origin}:retry:{step.attempt}" if outcome != CALL_BACK
                           else f"{origin}:call-back:{contact.id}")
        await schedule(session, [WorkPlan(
            key=record.next_key, kind="callback", rule_id=item.rule_id if item else "callback",
            customer_id=contact.customer_id, due=step.due, latest=step.latest,
            payload={**payload, "category": payload.get("category", meta.get("category", "")),
                     "purpose": payload.get("purpose", meta.get("purpose", contact.subject or "")),
                     "attempt": step.attempt, "origin": origin},
        )], now)
    if outcome == WRONG_NUMBER:
        await _mark_wrong(session, contact, actor, now)
    if outcome == REACHED and payload.get("visit_id") is not None:
        await _book_visit(session, rules, payload["visit_id"], actor, visit_at, now)
    # A booking call is not asked about: the visit it books will be.
    if step.survey and payload.get("visit_id") is None:
        await schedule(session, [survey_plan("callback", contact.id, contact.customer_id, now)],
                       now)
    session.add(record)
    await session.flush()
    return record


async def _book_visit(session: AsyncSession, rules: Rules, visit_id: int, actor: User,
                      visit_at: datetime | None, now: datetime) -> None:
    """The booking call reached the customer: the visit is booked, at the time agreed."""
    visit = await session.get(Visit, visit_id, with_for_update=True)
    if visit is None or visit.state not in ("pending", "booked"):
        return
    if visit_at is not None:
        await move_visit(session, rules, visit, actor=actor, due=visit_at, latest=None,
                         reason="booking call", now=now, action="booked")
        return
    record_change(session, "visit", visit.key, "booked", actor=actor, now=now,
                  reason="booking call", before={"state": visit.state},
                  after={"state": "booked"})
    visit.state = "booked"
