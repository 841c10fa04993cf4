"""Complaints stored and worked (spec §6): the pure workflow of `rules.complaints` applied to
the `complaints` row under a row lock, each step recorded in `complaint_steps`.

A complaint opens from a written complaint event or from an agent's contact. Opening stores,
in the same transaction, a keyed `complaint-ack` item due at once: the acknowledgement is then
sent on the complaint's own channel by whichever node claims it first (exactly once), right
after the opening and otherwise on the next round of the background job, inside
`[complaints].ack_within`.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.clock import utc
from contactcenter.errors import Conflict, Forbidden, NotFound
from contactcenter.rules import complaints as workflow
from contactcenter.rules.config import Rules
from contactcenter.runtime import Runtime
from contactcenter.storage.models import Complaint, ComplaintStep, Customer, ScheduledWork

log = logging.getLogger(__name__)
ACK_KIND = "complaint-ack"


def as_workflow(row: Complaint) -> workflow.Complaint:
    return workflow.Complaint(
        id=row.id, customer_tier=row.tier, owner_id=row.owner_user_id, step=row.step,
        step_started=row.step_started_at, level=row.level, escalated_for=row.escalated_for,
        callback_outcome=row.callback_outcome, archived=row.archived_at is not None)


def _step_row(c: workflow.Complaint, rules: Rules) -> ComplaintStep:
    return ComplaintStep(complaint_id=c.id, step=c.step, owner_user_id=c.owner_id,
                         started_at=c.step_started, deadline_at=workflow.deadline(c, rules),
                         level=c.level)


async def open_complaint(
    session: AsyncSession, rules: Rules, *, customer: Customer, channel: str, summary: str,
    now: datetime, owner_id: int | None, actor_id: int | None, contact_id: int | None = None,
    event_id: int | None = None,
) -> Complaint:
    """Store a new complaint at its verify step and plan its acknowledgement."""
    row = Complaint(customer_id=customer.id, contact_id=contact_id, event_id=event_id,
                    channel=channel, summary=summary, tier=customer.effective_tier,
                    owner_user_id=owner_id, step="verify", step_started_at=now, level=1,
                    created_at=now, created_by_user_id=actor_id)
    session.add(row)
    await session.flush()
    c = workflow.open_complaint(row.id, row.tier, owner_id, now)
    row.deadline_at = workflow.deadline(c, rules)
    session.add(_step_row(c, rules))
    session.add(ScheduledWork(
        key=f"{ACK_KIND}:{row.id}", kind=ACK_KIND, rule_id=ACK_KIND, customer_id=customer.id,
        due_at=now, latest_at=rules.complaints.ack_within.after(now, None),
        payload={"complaint_id": row.id}, state="pending", created_at=now))
    await session.flush()
    return row


async def locked(session: AsyncSession, complaint_id: int) -> Complaint:
    row = await session.scalar(
        select(Complaint).where(Complaint.id == complaint_id).with_for_update())
    if row is None:
        raise NotFound(f"complaint {complaint_id} not found", complaint_id=complaint_id)
    return row


def _apply(row: Complaint, c: workflow.Complaint, rules: Rules, now: datetime) -> None:
    row.owner_user_id, row.step, row.step_started_at = c.owner_id, c.step, c.step_started
    row.level, row.escalated_for, row.callback_outcome = c.level, c.escalated_for, \
        c.callback_outcome
    row.deadline_at = None if c.archived else workflow.deadline(c, rules)
    if c.archived and row.archived_at is None:
        row.archived_at = now


def _act(fn: Any, *args: Any, **kw: Any) -> workflow.Complaint:
    try:
        return fn(*args, **kw)
    except workflow.WorkflowError as e:
        raise Conflict(str(e)) from None


async def _current_step(session: AsyncSession, complaint_id: int, step: str) -> ComplaintStep:
    record = await session.scalar(select(ComplaintStep).where(
        ComplaintStep.complaint_id == complaint_id, ComplaintStep.step == step))
    assert record is not None, f"complaint {complaint_id} has no {step} record"
    return record


async def take(session: AsyncSession, rules: Rules, complaint_id: int, agent_id: int,
               now: datetime) -> Complaint:
    """First-contact ownership: an unowned complaint becomes the taking agent's."""
    row = await locked(session, complaint_id)
    c = _act(workflow.take, as_workflow(row), agent_id)
    _apply(row, c, rules, now)
    (await _current_step(session, row.id, row.step)).owner_user_id = agent_id
    return row


async def complete_step(
    session: AsyncSession, rules: Rules, complaint_id: int, step: str, *, actor_id: int,
    supervisor: bool, now: datetime, outcome: str | None,
) -> Complaint:
    """The owner (or a supervisor) finishes `step`; an unowned complaint is taken by the agent
    who works it first."""
    row = await locked(session, complaint_id)
    c = as_workflow(row)
    if c.owner_id is None and not supervisor:
        c = _act(workflow.take, c, actor_id)
    elif c.owner_id != actor_id and not supervisor:
        raise Forbidden(f"complaint {complaint_id} is owned by user {c.owner_id}; only its "
                        f"owner or a supervisor may complete its steps")
    done = _act(workflow.complete_step, c, step, now, outcome=outcome)
    record = await _current_step(session, row.id, step)
    record.owner_user_id = record.owner_user_id or c.owner_id
    record.done_at, record.done_by_user_id, record.outcome = now, actor_id, outcome
    _apply(row, done, rules, now)
    if not done.archived:
        session.add(_step_row(done, rules))
    await session.flush()
    return row


async def reassign(session: AsyncSession, rules: Rules, complaint_id: int, new_owner: int,
                   now: datetime) -> Complaint:
    """A supervisor moves the complaint (and its current step) to another owner."""
    row = await locked(session, complaint_id)
    c = _act(workflow.reassign_owner, as_workflow(row), new_owner, by_supervisor=True)
    _apply(row, c, rules, now)
    if row.archived_at is None:
        (await _current_step(session, row.id, row.step)).owner_user_id = new_owner
    return row


async def escalate_overdue(rt: Runtime, *, limit: int = 500) -> list[tuple[int, str, int]]:
    """Escalate every complaint whose current step missed its deadline, one level per step.

    Candidates are read without locks; each escalation is a conditional UPDATE that only
    matches while the step has not escalated yet, so when several nodes run this at once each
    (complaint, step) escalates once: the later UPDATE waits for the first, re-reads the row
    and matches nothing. Rows are visited in id order so two nodes never deadlock.
    Returns (complaint, step, new level) for the escalations this call made."""
    now = utc(rt.clock.now())
    made: list[tuple[int, str, int]] = []
    async with rt.sessions.begin() as session:
        rows = (await session.scalars(
            select(Complaint).where(
                Complaint.deadline_at <= now, Complaint.archived_at.is_(None),
                or_(Complaint.escalated_for.is_(None), Complaint.escalated_for != Complaint.step))
            .order_by(Complaint.id).limit(limit))).all()
        for row in rows:
            before = as_workflow(row)
            after = workflow.escalate_if_overdue(before, now, rt.rules)
            if after.escalated_for != after.step:
                continue  # not yet overdue by the rules (a changed rules file)
            result = await session.execute(
                update(Complaint)
                .where(Complaint.id == row.id, Complaint.step == before.step,
                       or_(Complaint.escalated_for.is_(None),
                           Complaint.escalated_for != before.step))
                .values(level=after.level, escalated_for=after.escalated_for)
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                continue  # another node did it
            await session.execute(
                update(ComplaintStep)
                .where(ComplaintStep.complaint_id == row.id, ComplaintStep.step == before.step)
                .values(level=after.level, escalated_at=now)
                .execution_options(synchronize_session=False))
            made.append((row.id, before.step, after.level))
    for complaint_id, step, level in made:
        log.info("complaint %s escalated to level %s (%s) at step %s", complaint_id, level,
                 rt.rules.complaints.levels[level - 1], step)
    return made
