"""Customer events in (a purchase, a repair completed, a written complaint…) and the work the
rules plan from them, stored in the same transaction so no event is recorded unplanned."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.complaints import open_complaint
from contactcenter.customers import get_customer
from contactcenter.errors import InvalidInput
from contactcenter.regrade import retention_plan
from contactcenter.rules.config import EVENT_KINDS, Duration, Rules
from contactcenter.rules.followups import overrun_check
from contactcenter.rules.health import needs_retention
from contactcenter.rules.plan import UNGRADED, CallbackPlan, Event, WorkPlan, callbacks_for
from contactcenter.rules.plan import Customer as Facts
from contactcenter.scheduler import schedule
from contactcenter.storage.models import Customer, CustomerEvent
from contactcenter.templates import Templates

# Numbers a purchase may carry; grading sums them (docs/rules-jobs.md).
PURCHASE_NUMBERS = ("amount", "profit")


def check_event_data(kind: str, data: dict[str, Any]) -> None:
    """What the jobs read from an event's data must be readable: refuse it at the door (422)
    rather than fail a month later in the regrade."""
    if kind == "purchase":
        for name in PURCHASE_NUMBERS:
            value = data.get(name)
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, int | float)):
                raise InvalidInput(f"data.{name}: must be a number, not {value!r}")
    if kind == "repair-dispatched" and "promised_duration" in data:
        try:
            Duration.parse(data["promised_duration"])
        except ValueError as e:
            raise InvalidInput(f"data.promised_duration: {e}") from None


def opted_out(customer: Customer, purpose: str) -> bool:
    """Whether the customer withdrew consent for `purpose` (e.g. sms-marketing)."""
    return any(c.purpose == purpose and not c.granted for c in customer.consents)


def facts(customer: Customer) -> Facts:
    return Facts(id=customer.id, tier=customer.effective_tier or UNGRADED,
                 timezone=customer.timezone,
                 language=customer.language, birthday=customer.birthday,
                 tags=frozenset(t.tag for t in customer.tags),
                 marketing_opt_out=opted_out(customer, "sms-marketing"))


async def record_event(
    session: AsyncSession, rules: Rules, *, customer_id: int, kind: str, at: datetime,
    now: datetime, external_id: str | None = None, data: dict[str, Any] | None = None,
    actor_id: int | None = None, templates: Templates | None = None,
) -> tuple[CustomerEvent, list[CallbackPlan], bool]:
    """Store the event and schedule what it makes due; (event, plans, created). A repeated
    `external_id` returns the stored event and plans nothing more. A valued customer marked
    lost gets a retention callback (§5)."""
    if kind not in EVENT_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(EVENT_KINDS)}")
    check_event_data(kind, data or {})
    if external_id is not None:
        seen = await session.scalar(
            select(CustomerEvent).where(CustomerEvent.external_id == external_id))
        if seen is not None:
            return seen, [], False
    customer = await get_customer(session, customer_id)
    event = CustomerEvent(customer_id=customer.id, kind=kind, at=at, external_id=external_id,
                          data=data or {}, created_at=now, actor_user_id=actor_id)
    session.add(event)
    await session.flush()
    plans = callbacks_for(Event(kind, at, customer.id, f"event:{event.id}"), facts(customer),
                          rules)
    if kind == "customer-lost" and needs_retention(customer.effective_tier, None, rules):
        plans.append(retention_plan(rules, templates, customer.id, customer.language, now))
    await schedule(session, plans, now)
    if kind == "complaint-written":  # §6: a written complaint opens its workflow at once
        data = event.data
        await open_complaint(session, rules, customer=customer, now=now, owner_id=None,
                             actor_id=actor_id, event_id=event.id,
                             channel=str(data.get("channel") or "letter")[:16],
                             summary=str(data.get("summary") or data.get("text") or ""))
    if kind == "repair-dispatched":
        await schedule(session, [overrun_check_for(event, rules)], now)
    return event, plans, True


def overrun_check_for(event: CustomerEvent, rules: Rules) -> WorkPlan:
    """C9's check at the end of the promised duration. The repair is named by `data.repair_id`
    (else the event's external id); its `repair-completed` event carries the same repair_id."""
    repair_id = str(event.data.get("repair_id") or event.external_id or f"event:{event.id}")
    # `check_event_data` has refused an unreadable promised_duration at the door.
    return overrun_check(event.customer_id, repair_id, event.at, event.data, rules)
