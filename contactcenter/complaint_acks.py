"""The automatic acknowledgement of a complaint (spec §6: 即时受理, within 1 minute), on the
complaint's own channel: chat while the customer's session is live, email for an emailed
complaint, otherwise SMS (see `rules.complaints.ack_channel`).

Like the greetings, each due `complaint-ack` item becomes a stored outbound message in the
claiming transaction, and the provider send follows the commit with the usual retries and
delivery status. It is a service message about the customer's own case, so a marketing opt-out
does not stop it, and quiet hours do not apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.clock import utc
from contactcenter.complaints import ACK_KIND
from contactcenter.domain import ContactState
from contactcenter.outbound import Outgoing, Sender, send_with_retries
from contactcenter.rules.complaints import ack_channel
from contactcenter.runtime import Runtime
from contactcenter.scheduler import run_due
from contactcenter.storage.models import (
    Complaint,
    Contact,
    Conversation,
    Customer,
    Message,
    ScheduledWork,
)

_LIVE_CHAT = {ContactState.QUEUED.value, ContactState.OFFERED.value, ContactState.ACTIVE.value}


@dataclass(frozen=True)
class _Route:
    channel: str
    to: str
    via: str | None
    conversation: Conversation | None  # the complaint's own thread, when it has one
    contact_id: int | None


async def _route(rt: Runtime, session: AsyncSession, complaint: Complaint, customer: Customer
                 ) -> _Route | None:
    contact = (await session.get(Contact, complaint.contact_id)
               if complaint.contact_id is not None else None)
    own = contact if contact is not None and contact.channel == complaint.channel else None
    conversation = (await session.get(Conversation, own.conversation_id)
                    if own is not None and own.conversation_id is not None else None)
    phone = (own.from_address if own is not None and own.channel == "sms" else None) or \
        (customer.phones[0].number if customer.phones else None)
    sms_via = (own.to_address if own is not None and own.channel == "sms" else None) or \
        rt.settings.sms_from
    email = (own.from_address if own is not None and own.channel == "email" else None) or \
        (customer.emails[0].address if customer.emails else None)
    chat_live = own is not None and own.channel == "chat" and conversation is not None and \
        own.state in _LIVE_CHAT and "chat" in rt.senders
    channel = ack_channel(
        complaint.channel, chat_live=chat_live,
        has_phone=bool(phone and sms_via and "sms" in rt.senders),
        has_email=bool(email and "email" in rt.senders))
    if channel is None:
        return None
    to = {"chat": own.from_address if own else None, "email": email, "sms": phone}[channel]
    same_thread = own is not None and own.channel == channel
    return _Route(channel=channel, to=to or "", via=sms_via if channel == "sms" else None,
                  conversation=conversation if same_thread else None,
                  contact_id=own.id if same_thread and own is not None else None)


async def send_due_acks(rt: Runtime) -> int:
    """Store and send the complaint acknowledgements that are due; returns how many left."""
    now = utc(rt.clock.now())
    ready: list[tuple[Outgoing, Sender]] = []

    async def store(session: AsyncSession, item: ScheduledWork) -> dict[str, object] | None:
        complaint = await session.get(Complaint, item.payload["complaint_id"])
        customer = await session.get(Customer, item.customer_id)
        assert complaint is not None and customer is not None
        route = await _route(rt, session, complaint, customer)
        if route is None:
            return {"skipped": "no channel to acknowledge on"}
        out = await _store_message(rt, session, complaint, customer, route, now)
        ready.append((out, rt.senders[route.channel]))
        return {"message_id": out.message_id, "channel": route.channel}

    await run_due(rt.sessions, store, now, kinds=[ACK_KIND])
    for out, sender in ready:  # committed: now they may leave
        rt.spawn(send_with_retries(rt, out.message_id, out.channel,
                                   lambda out=out, sender=sender: sender.send(rt, out)))
    return len(ready)


async def _store_message(rt: Runtime, session: AsyncSession, complaint: Complaint,
                         customer: Customer, route: _Route, now: datetime) -> Outgoing:
    values = {"name": customer.honorific or customer.name, "company": rt.settings.company_name,
              "number": complaint.id}
    body = rt.templates.render("complaint_ack", customer.language, **values)
    subject = rt.templates.render("complaint_ack_subject", customer.language, **values)
    conversation = route.conversation
    if conversation is None:
        conversation = Conversation(customer_id=customer.id, channel=route.channel,
                                    status="closed", subject=subject, created_at=now,
                                    last_message_at=now)
        session.add(conversation)
        await session.flush()
    meta = {"automatic": "complaint-ack", "complaint_id": complaint.id, "subject": subject}
    message = Message(conversation_id=conversation.id, contact_id=route.contact_id,
                      direction="outbound", body=body, status="queued", created_at=now,
                      meta=meta)
    session.add(message)
    await session.flush()
    return Outgoing(message_id=message.id, contact_id=route.contact_id,
                    conversation_id=conversation.id, channel=route.channel, to=route.to,
                    via=route.via, body=body, subject=subject, language=customer.language,
                    conversation_token=conversation.token, meta=meta)
