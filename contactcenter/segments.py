"""Mandatory-contact events (spec §4, 001: 遇油价调整、天气变化、重要节日必访): an operator names an
event and a segment of customers (tiers, tags, owner); the system plans one callback task or
one SMS or one email per customer of the segment, keyed (event, customer), so each happens
exactly once.

The segment: customers whose effective tier is one of `tiers`, who carry any of `tags`, and
whom `owner_id` owns; an empty criterion does not narrow. Customers marked lost are left out.
SMS and email respect the marketing opt-outs (`sms-marketing`, `email-marketing`, checked at
send time), SMS also quiet hours; the text (and an email's subject) is a template that may use
{{ name }} and {{ company }} (contactcenter/personal_text.py). Customers without a phone number
or email address are planned too and skipped at send time, so the report counts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.customer_pages import lost_between
from contactcenter.errors import InvalidInput, NotFound
from contactcenter.personal_text import check_template
from contactcenter.rules.config import Rules
from contactcenter.rules.periodic import job_callback
from contactcenter.rules.plan import CallbackPlan, SmsPlan, WorkPlan, release
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
ACTIONS = ("callback", "sms", "email")
EMAIL_KIND = "email"  # the scheduled work kind of a campaign email


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
    subject: str | None = None, batch: int = 2000,
) -> SegmentEvent:
    """Store the event and plan its callbacks, SMS or emails for every customer of the
    segment."""
    if action not in ACTIONS:
        raise InvalidInput(f"action must be one of {', '.join(ACTIONS)}", field="action")
    if action == "email":
        if not (subject or "").strip():
            raise InvalidInput("subject is required for an email event", field="subject")
        check_template(subject or "", "subject")
    if action == "callback" and category not in rules.selection.categories:
        raise InvalidInput(f"category must be one of {', '.join(rules.selection.categories)}",
                           field="category")
    check_template(text, "text")
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
        plans: list[CallbackPlan | SmsPlan | WorkPlan] = []
        for r in rows:
            if r.id in lost:
                continue
            if action == "sms":
                who = Facts(id=r.id, tier=None, timezone=r.timezone, language=r.language)
                plans.append(SmsPlan(key=f"{RULE}:{r.id}:{event.id}", rule_id=RULE,
                                     customer_id=r.id, send_at=release(now, who, rules),
                                     template=text))
            elif action == "email":  # no quiet hours: an email waits in the inbox
                plans.append(WorkPlan(key=f"{RULE}:{r.id}:{event.id}", kind=EMAIL_KIND,
                                      rule_id=RULE, customer_id=r.id, due=now, latest=None,
                                      payload={"template": text, "subject": subject}))
            else:
                plans.append(job_callback(RULE, r.id, str(event.id), now, within_days, category,
                                          f"{name}: {text}", rules))
        event.customers += await schedule(session, plans, now)


async def campaign_report(session: AsyncSession, event_id: int, *, reply_days: int,
                          limit: int) -> dict[str, Any]:
    """Who an SMS or email event (a campaign such as the annual conference's invitations,
    spec §4) went to and who answered: a customer replied when a message of theirs came in on
    the campaign's channel after the invitation was sent and within `reply_days`. Derived from
    the scheduled items and the messages, so nothing has to be recorded as replies arrive. A
    callback event has no messages: it reports nothing planned."""
    event = await session.get(SegmentEvent, event_id)
    if event is None:
        raise NotFound(f"segment event {event_id} not found")
    channel = event.action  # "sms" or "email"; the work kind of its items is the same word
    items = (await session.execute(
        select(ScheduledWork.customer_id, ScheduledWork.state, ScheduledWork.done_at,
               ScheduledWork.result)
        .where(ScheduledWork.key.like(f"{RULE}:%:{event.id}"), ScheduledWork.kind == channel)
        .order_by(ScheduledWork.customer_id))).all() if channel in ("sms", EMAIL_KIND) else []
    sent = {i.customer_id: i.done_at for i in items
            if i.state == "done" and (i.result or {}).get("message_id") is not None}
    window = timedelta(days=reply_days)
    replies: dict[int, tuple[datetime, str]] = {}
    ids = sorted(sent)
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        for customer_id, at, body, meta in await session.execute(
            select(Conversation.customer_id, Message.created_at, Message.body, Message.meta)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.customer_id.in_(chunk), Conversation.channel == channel,
                   Message.direction == "inbound", Message.created_at > min(
                       sent[c] for c in chunk))
            .order_by(Message.created_at)):
            if (customer_id not in replies
                    and sent[customer_id] < at <= sent[customer_id] + window):
                # An email's answer without the invitation it quotes (channels/mail_parse.py).
                replies[customer_id] = (at, (meta or {}).get("visible") or body)
    names = dict((await session.execute(
        select(Customer.id, Customer.name).where(Customer.id.in_(ids[:limit])))).all())
    described: dict[str, Any] = {"id": event.id, "name": event.name, "action": event.action,
                                 "text": event.text, "segment": event.segment,
                                 "created_at": event.created_at.isoformat()}
    if channel == EMAIL_KIND:  # the subject lives in the items' payload, the same in each
        described["subject"] = await email_subject(session, event.id)
    return {
        "event": described,
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


async def email_subject(session: AsyncSession, event_id: int) -> str | None:
    payload = await session.scalar(
        select(ScheduledWork.payload).where(ScheduledWork.key.like(f"{RULE}:%:{event_id}"),
                                            ScheduledWork.kind == EMAIL_KIND).limit(1))
    return (payload or {}).get("subject")
