"""Mandatory-contact events (spec §4, 001: 遇油价调整、天气变化、重要节日必访): an operator names an
event and a segment of customers (tiers, tags, owner); the system plans one callback task or
one SMS per customer of the segment, keyed (event, customer), so each happens exactly once.

The segment: customers whose effective tier is one of `tiers`, who carry any of `tags`, and
whom `owner_id` owns; an empty criterion does not narrow. Customers marked lost are left out.
SMS respect opt-outs (checked at send time) and quiet hours; the text is a template that may
use {{ name }} and {{ company }}.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.customer_pages import lost_between
from contactcenter.errors import InvalidInput, NotFound
from contactcenter.rules.config import Rules
from contactcenter.rules.periodic import job_callback
from contactcenter.rules.plan import CallbackPlan, SmsPlan, release
from contactcenter.rules.plan import Customer as Facts
from contactcenter.scheduler import schedule
from contactcenter.storage.models import (
    Conversation,
    Customer,
    CustomerOwner,
    CustomerTag,
    Message,
    ScheduledWork,
    SegmentEvent,
)

RULE = "segment"
_env = SandboxedEnvironment()


@dataclass(frozen=True)
class Segment:
    tiers: Sequence[str] = ()
    tags: Sequence[str] = ()
    owner_id: int | None = None

    def where(self) -> list[Any]:
        conditions: list[Any] = []
        if self.tiers:
            conditions.append(func.coalesce(Customer.tier_override, Customer.tier)
                              .in_(list(self.tiers)))
        if self.tags:
            conditions.append(select(CustomerTag.customer_id).where(
                CustomerTag.customer_id == Customer.id, CustomerTag.tag.in_(list(self.tags)))
                .exists())
        if self.owner_id is not None:
            conditions.append(select(CustomerOwner.customer_id).where(
                CustomerOwner.customer_id == Customer.id,
                CustomerOwner.user_id == self.owner_id).exists())
        return conditions


async def raise_event(
    session: AsyncSession, rules: Rules, *, name: str, action: str, text: str,
    segment: Segment, category: str, within_days: int, actor_id: int | None, now: datetime,
    batch: int = 2000,
) -> SegmentEvent:
    """Store the event and plan its callbacks or SMS for every customer of the segment."""
    if action not in ("callback", "sms"):
        raise InvalidInput("action must be callback or sms", field="action")
    if action == "callback" and category not in rules.selection.categories:
        raise InvalidInput(f"category must be one of {', '.join(rules.selection.categories)}",
                           field="category")
    try:
        _env.parse(text)
    except TemplateSyntaxError as e:
        raise InvalidInput(f"text: does not parse as a template: {e.message}",
                           field="text") from None
    event = SegmentEvent(name=name, action=action, text=text, created_at=now,
                         actor_user_id=actor_id, customers=0,
                         segment={"tiers": list(segment.tiers), "tags": list(segment.tags),
                                  "owner_id": segment.owner_id})
    session.add(event)
    await session.flush()
    after = 0
    while True:
        rows = (await session.execute(
            select(Customer.id, Customer.timezone, Customer.language)
            .where(Customer.id > after, *segment.where()).order_by(Customer.id).limit(batch)
        )).all()
        if not rows:
            return event
        after = rows[-1].id
        lost = await lost_between(session, rows[0].id, rows[-1].id)
        plans: list[CallbackPlan | SmsPlan] = []
        for r in rows:
            if r.id in lost:
                continue
            if action == "sms":
                who = Facts(id=r.id, tier=None, timezone=r.timezone, language=r.language)
                plans.append(SmsPlan(key=f"{RULE}:{r.id}:{event.id}", rule_id=RULE,
                                     customer_id=r.id, send_at=release(now, who, rules),
                                     template=text))
            else:
                plans.append(job_callback(RULE, r.id, str(event.id), now, within_days, category,
                                          f"{name}: {text}", rules))
        event.customers += await schedule(session, plans, now)


async def campaign_report(session: AsyncSession, event_id: int, *, reply_days: int,
                          limit: int) -> dict[str, Any]:
    """Who an SMS event (a campaign such as the annual conference's invitations, spec §4) went
    to and who answered: a customer replied when an SMS of theirs came in after the invitation
    was sent and within `reply_days`. Derived from the scheduled items and the messages, so
    nothing has to be recorded as replies arrive."""
    event = await session.get(SegmentEvent, event_id)
    if event is None:
        raise NotFound(f"segment event {event_id} not found")
    items = (await session.execute(
        select(ScheduledWork.customer_id, ScheduledWork.state, ScheduledWork.done_at,
               ScheduledWork.result)
        .where(ScheduledWork.key.like(f"{RULE}:%:{event.id}"), ScheduledWork.kind == "sms")
        .order_by(ScheduledWork.customer_id))).all()
    sent = {i.customer_id: i.done_at for i in items
            if i.state == "done" and (i.result or {}).get("message_id") is not None}
    window = timedelta(days=reply_days)
    replies: dict[int, tuple[datetime, str]] = {}
    ids = sorted(sent)
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        for customer_id, at, body in await session.execute(
            select(Conversation.customer_id, Message.created_at, Message.body)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.customer_id.in_(chunk), Conversation.channel == "sms",
                   Message.direction == "inbound", Message.created_at > min(
                       sent[c] for c in chunk))
            .order_by(Message.created_at)):
            if (customer_id not in replies
                    and sent[customer_id] < at <= sent[customer_id] + window):
                replies[customer_id] = (at, body)
    names = dict((await session.execute(
        select(Customer.id, Customer.name).where(Customer.id.in_(ids[:limit])))).all())
    return {
        "event": {"id": event.id, "name": event.name, "action": event.action,
                  "text": event.text, "segment": event.segment,
                  "created_at": event.created_at.isoformat()},
        "planned": len(items),
        "pending": sum(1 for i in items if i.state == "pending"),
        "skipped": sum(1 for i in items if i.state == "done" and i.customer_id not in sent),
        "sent": len(sent),
        "replied": len(replies),
        "reply_rate": round(len(replies) / len(sent), 4) if sent else None,
        "reply_days": reply_days,
        "customers": [
            {"customer_id": c, "name": names.get(c), "sent_at": sent[c].isoformat(),
             "replied_at": replies[c][0].isoformat() if c in replies else None,
             "reply": replies[c][1] if c in replies else None}
            for c in ids[:limit]],
    }
