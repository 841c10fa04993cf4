"""Pure decisions of the periodic jobs (spec §1, §2, §5, §7): when the regrade is due, which
cases of a customer are open, and the callback tasks the jobs plan, each with its key."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from contactcenter.rules.config import Rules
from contactcenter.rules.plan import CallbackPlan

# Case kind -> (event that opens one, event that closes it, data field naming the case).
CASES: dict[str, tuple[str, str, str]] = {
    "repair": ("repair-dispatched", "repair-completed", "repair_id"),
    "complaint": ("complaint-written", "complaint-archived", "complaint_id"),
    "paid-service": ("paid-service-ordered", "paid-service-completed", "order_id"),
}
CASE_EVENT_KINDS = tuple(k for opened, closed, _ in CASES.values() for k in (opened, closed))


def regrade_period(now: datetime, rules: Rules) -> str | None:
    """The month whose scheduled regrade is due at `now` ("2026-12"), or None before the
    month's regrade moment (day_of_month at `at`, company time)."""
    local = now.astimezone(rules.calendar.hours().zone)
    r = rules.grading.regrade
    moment = datetime.combine(date(local.year, local.month, r.day_of_month), r.at, local.tzinfo)
    return f"{local:%Y-%m}" if local >= moment else None


@dataclass(frozen=True)
class CaseEvent:
    kind: str
    at: datetime
    data: dict[str, Any]
    id: int = 0


def open_cases(events: Iterable[CaseEvent]) -> list[str]:
    """The customer's open cases, e.g. ["repair:R-7"]. A case opens with its opening event and
    closes with its closing event naming the same id; a closing event without an id closes every
    open case of its kind (a system that sends no ids has one case at a time)."""
    opened: dict[str, str] = {}
    for e in sorted(events, key=lambda e: e.at):
        for case, (opens, closes, field) in CASES.items():
            case_id = str(e.data.get(field) or "")
            if e.kind == opens:
                opened[f"{case}:{case_id}"] = case
            elif e.kind == closes:
                for key in [k for k, c in opened.items() if c == case
                            and (not case_id or k == f"{case}:{case_id}")]:
                    del opened[key]
    return sorted(opened)


def job_callback(rule_id: str, customer_id: int, occurrence: str, at: datetime,
                 within_days: int, category: str, purpose: str, rules: Rules) -> CallbackPlan:
    """A callback a job decided on: due from `at`, latest `within_days` later, both clipped to
    business time; keyed (rule, customer, occurrence) so it is planned once."""
    due, latest = rules.calendar.hours().clip(at, at + timedelta(days=within_days))
    return CallbackPlan(key=f"{rule_id}:{customer_id}:{occurrence}", rule_id=rule_id,
                        customer_id=customer_id, due=due, latest=latest, category=category,
                        purpose=purpose)


def routine_due(tier: str | None, last_routine: datetime | None, since: datetime,
                rules: Rules) -> datetime | None:
    """§2 routine callback: `routine_callback_days` after the last one (or after `since`,
    when the customer became known); None for tiers without routine callbacks."""
    if tier not in rules.tiers:
        return None
    days = rules.tiers[tier].routine_callback_days  # type: ignore[index]
    if days <= 0:
        return None
    return (last_routine or since) + timedelta(days=days)
