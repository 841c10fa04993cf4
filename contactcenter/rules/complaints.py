"""The complaint workflow (spec §6): verify → review → rectify → callback → archive.

Each step has a named owner and a deadline counted in working time from when the step began;
a step not done by its deadline escalates the complaint one level (team → supervisor →
manager). A complaint cannot be archived before its callback step is done with an outcome.
Pure: the caller stores the `Complaint` and passes the time in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from contactcenter.rules.config import Rules

STEPS = ("verify", "review", "rectify", "callback", "archive")


class WorkflowError(Exception):
    pass


@dataclass(frozen=True)
class Complaint:
    id: int
    customer_tier: str | None
    owner_id: int  # first-contact ownership (首问负责): stays unless a supervisor moves it
    step: str
    step_started: datetime
    level: int = 1  # 1 team, 2 supervisor, 3 manager
    escalated_for: str | None = None  # the step whose deadline already escalated
    callback_outcome: str | None = None

    def prioritised(self, rules: Rules) -> bool:
        """A/B complaints are routed ahead of other work."""
        tier = self.customer_tier
        return tier is not None and rules.tiers[tier].complaint_priority  # type: ignore[index]


def open_complaint(complaint_id: int, tier: str | None, owner_id: int, at: datetime) -> Complaint:
    return Complaint(complaint_id, tier, owner_id, "verify", at)


def deadline(c: Complaint, rules: Rules) -> datetime | None:
    if c.step == "archive":
        return None
    limit = getattr(rules.complaints.deadlines, c.step)
    return limit.after(c.step_started, rules.calendar.hours())


def complete_step(c: Complaint, step: str, at: datetime, *, outcome: str | None = None
                  ) -> Complaint:
    """Finish the current step and begin the next."""
    if step != c.step:
        raise WorkflowError(f"complaint {c.id} is at {c.step!r}, not {step!r}")
    if step == "archive":
        raise WorkflowError(f"complaint {c.id} is already archived")
    if step == "callback" and not outcome:
        raise WorkflowError("the callback step needs an outcome before the complaint is archived")
    nxt = STEPS[STEPS.index(step) + 1]
    return replace(c, step=nxt, step_started=at, escalated_for=None,
                   callback_outcome=outcome if step == "callback" else c.callback_outcome)


def escalate_if_overdue(c: Complaint, now: datetime, rules: Rules) -> Complaint:
    """One level up per step that missed its deadline; the top level is the last."""
    due = deadline(c, rules)
    if due is None or now < due or c.escalated_for == c.step:
        return c
    return replace(c, level=min(c.level + 1, len(rules.complaints.levels)),
                   escalated_for=c.step)


def reassign_owner(c: Complaint, new_owner: int, *, by_supervisor: bool) -> Complaint:
    if not by_supervisor:
        raise WorkflowError("only a supervisor may move a complaint to another owner")
    return replace(c, owner_id=new_owner)
