"""The complaint workflow (§6) with a controlled clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from contactcenter.rules.complaints import (
    WorkflowError,
    ack_channel,
    complete_step,
    deadline,
    escalate_if_overdue,
    open_complaint,
    reassign_owner,
    take,
)
from contactcenter.rules.config import load_rules

RULES = load_rules()
SH = ZoneInfo("Asia/Shanghai")


def sh(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def test_steps_run_in_order_and_archive_needs_the_callback_outcome() -> None:
    c = open_complaint(1, "A", owner_id=7, at=sh("2026-11-23 10:00"))
    with pytest.raises(WorkflowError, match="at 'verify', not 'review'"):
        complete_step(c, "review", sh("2026-11-23 11:00"))
    with pytest.raises(WorkflowError, match="cannot be archived before its callback step"):
        complete_step(c, "archive", sh("2026-11-23 11:00"))
    for step in ("verify", "review", "rectify"):
        c = complete_step(c, step, sh("2026-11-23 11:00"))
    assert c.step == "callback"
    with pytest.raises(WorkflowError, match="outcome"):
        complete_step(c, "callback", sh("2026-11-23 12:00"))
    c = complete_step(c, "callback", sh("2026-11-23 12:00"), outcome="satisfied")
    assert (c.step, c.callback_outcome, c.archived) == ("archive", "satisfied", False)
    assert deadline(c, RULES) is None
    c = complete_step(c, "archive", sh("2026-11-23 13:00"))
    assert c.archived
    with pytest.raises(WorkflowError, match="already archived"):
        complete_step(c, "archive", sh("2026-11-23 14:00"))


@pytest.mark.parametrize(
    ("step", "started", "due"),
    [
        ("verify", "2026-11-23 16:00", "2026-11-24 11:00"),  # 4 working hours over the night
        ("review", "2026-11-27 10:00", "2026-11-30 10:00"),  # 1 working day over a weekend
        ("rectify", "2026-11-23 10:00", "2026-11-26 10:00"),  # 3 working days
        ("callback", "2025-09-30 10:00", "2025-10-09 10:00"),  # 1 working day over National Day
    ],
)
def test_deadlines_count_working_time(step: str, started: str, due: str) -> None:
    c = replace(open_complaint(1, "C", 7, sh(started)), step=step)
    assert deadline(c, RULES) == sh(due)


def test_a_missed_deadline_escalates_one_level_per_step() -> None:
    c = open_complaint(1, "C", 7, sh("2026-11-23 10:00"))
    assert escalate_if_overdue(c, sh("2026-11-23 13:59"), RULES).level == 1
    c = escalate_if_overdue(c, sh("2026-11-23 14:00"), RULES)
    assert c.level == 2  # supervisor
    assert escalate_if_overdue(c, sh("2026-11-25 10:00"), RULES).level == 2  # once per step
    c = complete_step(c, "verify", sh("2026-11-25 10:00"))
    c = escalate_if_overdue(c, sh("2026-11-27 10:00"), RULES)
    assert c.level == 3  # manager
    c = complete_step(c, "review", sh("2026-11-27 10:00"))
    assert escalate_if_overdue(c, sh("2026-12-31 10:00"), RULES).level == 3  # the top


def test_a_and_b_complaints_are_prioritised() -> None:
    assert [open_complaint(1, t, 7, sh("2026-11-23 10:00")).prioritised(RULES)
            for t in ("A", "B", "C", "D", None)] == [True, True, False, False, False]


def test_first_contact_keeps_ownership_unless_a_supervisor_moves_it() -> None:
    c = open_complaint(1, "C", 7, sh("2026-11-23 10:00"))
    with pytest.raises(WorkflowError):
        reassign_owner(c, 8, by_supervisor=False)
    assert reassign_owner(c, 8, by_supervisor=True).owner_id == 8


def test_the_first_agent_to_take_an_unowned_complaint_owns_it() -> None:
    c = open_complaint(1, "B", None, sh("2026-11-23 10:00"))  # came in writing: nobody yet
    c = take(c, 7)
    assert take(c, 7).owner_id == 7  # taking it again changes nothing
    with pytest.raises(WorkflowError, match="owned by user 7"):
        take(c, 8)
    assert take(reassign_owner(c, 8, by_supervisor=True), 8).owner_id == 8


@pytest.mark.parametrize(
    ("channel", "chat_live", "phone", "email", "via"),
    [
        ("sms", False, True, True, "sms"),
        ("email", False, True, True, "email"),
        ("email", False, True, False, "sms"),  # no address to answer: the phone
        ("chat", True, True, True, "chat"),  # the customer is still in the chat
        ("chat", False, True, True, "sms"),  # the chat is over: SMS
        ("chat", False, False, True, "email"),
        ("letter", False, True, True, "sms"),  # a letter or web form: SMS first
        ("voice", False, False, True, "email"),
        ("letter", False, False, False, None),  # nowhere to write
    ],
)
def test_the_acknowledgement_goes_out_on_the_complaints_own_channel(
        channel: str, chat_live: bool, phone: bool, email: bool, via: str | None) -> None:
    assert ack_channel(channel, chat_live=chat_live, has_phone=phone, has_email=email) == via
