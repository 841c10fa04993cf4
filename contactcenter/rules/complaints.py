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
    # First-contact ownership (首问负责): the agent who first takes it stays its owner unless a
    # supervisor moves it; None while nobody has taken it (it came in writing).
    owner_id: int | None
    step: str
    step_started: datetime
    level: int = 1  # 1 team, 2 supervisor, 3 manager
    escalated_for: str | None = None  # the step whose deadline already escalated
    callback_outcome: str | None = None
    archived: bool = False  # the archive step is done: the complaint is closed

    def prioritised(self, rules: Rules) -> bool:
        """A/B complaints are routed ahead of other work."""
        tier = self.customer_tier
        return tier is not None and rules.tiers[tier].complaint_priority  # type: ignore[index]


def open_complaint(complaint_id: int, tier: str | None, owner_id: int | None, at: datetime
                   ) -> Complaint:
    return Complaint(complaint_id, tier, owner_id, "verify", at)


def take(c: Complaint, agent_id: int) -> Complaint:
    """The first agent to take an unowned complaint owns it; taking it again is harmless."""
    if c.owner_id is not None and c.owner_id != agent_id:
        raise WorkflowError(f"complaint {c.id} is owned by user {c.owner_id}; only a supervisor "
                            f"may move it")
    return replace(c, owner_id=agent_id)


def deadline(c: Complaint, rules: Rules) -> datetime | None:
    """When the current step must be done; the archive step has no deadline."""
    if c.step == "archive":
        return None
    limit = getattr(rules.complaints.deadlines, c.step)
    return limit.after(c.step_started, rules.calendar.hours())


def complete_step(c: Complaint, step: str, at: datetime, *, outcome: str | None = None
                  ) -> Complaint:
    """Finish the current step and begin the next; finishing `archive` closes the complaint."""
    if c.archived:
        raise WorkflowError(f"complaint {c.id} is already archived")
    if step == "archive" and c.step != "archive":
        raise WorkflowError(f"complaint {c.id} cannot be archived before its callback step is "
                            f"done with an outcome (it is at {c.step!r})")
    if step != c.step:
        raise WorkflowError(f"complaint {c.id} is at {c.step!r}, not {step!r}")
    if step == "callback" and not outcome:
        raise WorkflowError("the callback step needs an outcome before the complaint is archived")
    if step == "archive":
        return replace(c, archived=True)
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


def ack_channel(channel: str, *, chat_live: bool, has_phone: bool, has_email: bool
                ) -> str | None:
    """Where the automatic acknowledgement goes: the complaint's own channel when we can write
    to the customer there, else an SMS, else an email; None when we have no address at all.
    A chat whose session has ended cannot be answered in it; a call, a letter or a web form
    has no channel of its own to answer on."""
    if channel == "chat" and chat_live:
        return "chat"
    if channel == "email" and has_email:
        return "email"
    if has_phone:
        return "sms"
    return "email" if has_email else None
