"""Inbound contacts: the one path by which every channel puts work into a queue.

An inbound item (a call, an SMS, a mail, a chat line, an integration's post) is committed before
anything is acknowledged, keyed by its provider id so that a retry is a no-op. It belongs to a
conversation: when that conversation already has a contact in progress, the message joins it and
reaches the agent who holds it; otherwise a new contact is queued and routed, with its
screen-pop built here, on the node that took it in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.clock import utc
from contactcenter.customers import find_or_create_by_address
from contactcenter.domain import ContactState, Direction
from contactcenter.errors import NotFound, Unavailable
from contactcenter.queues import active_queues, select_queue
from contactcenter.runtime import Runtime
from contactcenter.screenpop import build_screen_pop, contact_summary
from contactcenter.storage.models import Attachment, Contact, Conversation, Message, Queue

_IN_PROGRESS = [s.value for s in ContactState if not s.is_final]


@dataclass(frozen=True)
class AttachmentIn:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Inbound:
    channel: str
    address: str  # phone number, email address or chat handle of the customer
    body: str = ""
    subject: str | None = None
    to: str | None = None
    queue: str | None = None
    skill: str | None = None
    external_id: str | None = None  # the provider's id of this call/message: repeats are no-ops
    display_name: str | None = None
    # The thread, when the adapter knows it (email headers, a chat session)…
    conversation_id: int | None = None
    # …or: join the customer's latest conversation on this channel if it was this recent (SMS).
    join_within: timedelta | None = None
    conversation_token: str | None = None  # for a new conversation (chat session, reply+token)
    meta: dict[str, Any] = field(default_factory=dict)  # of the message (media URLs, headers)
    contact_meta: dict[str, Any] | None = None  # of the contact (IVR choice, call details)
    attachments: Sequence[AttachmentIn] = ()


@dataclass(frozen=True)
class Intake:
    contact: dict[str, Any]  # summary of the contact the item went to
    conversation_id: int
    message_id: int | None
    new_contact: bool  # a contact was queued for it (else it joined one in progress)
    duplicate: bool  # the provider id was seen before: nothing was stored


async def take_in(rt: Runtime, inbound: Inbound) -> Intake:
    """Store an inbound item and route it; see the module docstring."""
    if inbound.external_id is not None:
        seen = await _seen(rt, inbound)
        if seen is not None:
            return seen
    now = rt.clock.now()
    at = utc(now)
    try:
        async with rt.sessions.begin() as session:
            queue = select_queue(
                await active_queues(session), inbound.channel, name=inbound.queue,
                skill=inbound.skill,
            )
            customer, created = await find_or_create_by_address(
                session, inbound.channel, inbound.address, now=at,
                display_name=inbound.display_name,
            )
            conversation = await _conversation(session, inbound, customer.id, at)
            live = await session.scalar(
                select(Contact).where(Contact.conversation_id == conversation.id,
                                      Contact.state.in_(_IN_PROGRESS))
                .order_by(Contact.id.desc()).limit(1)
            )
            if live is None:
                _refuse_when_full(rt, queue)
                live = Contact(
                    channel=inbound.channel, direction=Direction.INBOUND.value,
                    state=ContactState.QUEUED.value, customer_id=customer.id,
                    queue_id=queue.id, conversation_id=conversation.id,
                    tier=customer.effective_tier, from_address=inbound.address,
                    to_address=inbound.to, subject=inbound.subject, body=inbound.body,
                    external_id=inbound.external_id, meta=inbound.contact_meta, created_at=at,
                )
                session.add(live)
                await session.flush()
                new_contact = True
            else:
                new_contact = False
            message = await _store_message(session, inbound, live, conversation, at)
            summary = contact_summary(live, queue)
            if new_contact:
                pop = await build_screen_pop(session, live, customer, queue, is_new=created)
                spec = {
                    "id": live.id, "queue_id": queue.id, "channel": live.channel,
                    "entered_at": now, "tier": live.tier,
                    "owner_ids": [o.user_id for o in customer.owners],
                }
            agent_id = live.agent_id
            result = Intake(summary, conversation.id, message.id if message else None,
                            new_contact, duplicate=False)
    except IntegrityError:
        # Two deliveries of one provider item raced; the other one stored it.
        if inbound.external_id is not None:
            seen = await _seen(rt, inbound)
            if seen is not None:
                return seen
        raise
    if new_contact:
        await rt.broker.submit({"op": "enqueue", "contact": spec, "pop": pop})
    elif agent_id is not None and message is not None:
        await rt.broker.deliver(agent_id, {"type": "message", "contact_id": live.id,
                                           "message": message_public(message)})
    return result


async def _conversation(
    session: AsyncSession, inbound: Inbound, customer_id: int, at: Any
) -> Conversation:
    if inbound.conversation_id is not None:
        conversation = await session.get(Conversation, inbound.conversation_id)
        if conversation is None:
            raise NotFound(f"no conversation {inbound.conversation_id}")
        conversation.last_message_at = at
        return conversation
    if inbound.join_within is not None:
        recent = await session.scalar(
            select(Conversation).where(
                Conversation.customer_id == customer_id,
                Conversation.channel == inbound.channel,
                Conversation.last_message_at >= at - inbound.join_within,
            ).order_by(Conversation.last_message_at.desc()).limit(1)
        )
        if recent is not None:
            recent.last_message_at = at
            return recent
    conversation = Conversation(customer_id=customer_id, channel=inbound.channel, status="open",
                                token=inbound.conversation_token, subject=inbound.subject,
                                created_at=at, last_message_at=at)
    session.add(conversation)
    await session.flush()
    return conversation


async def _store_message(
    session: AsyncSession, inbound: Inbound, contact: Contact, conversation: Conversation,
    at: Any,
) -> Message | None:
    if not inbound.body and not inbound.attachments and not inbound.meta:
        return None  # a call: the contact is the record
    message = Message(
        conversation_id=conversation.id, contact_id=contact.id,
        direction=Direction.INBOUND.value, body=inbound.body, created_at=at,
        external_id=_message_key(inbound), meta=dict(inbound.meta),
    )
    session.add(message)
    await session.flush()
    for a in inbound.attachments:
        session.add(Attachment(message_id=message.id, filename=a.filename,
                               content_type=a.content_type, size=len(a.content),
                               content=a.content))
    return message


def _message_key(inbound: Inbound) -> str | None:
    # Namespaced by channel: a Twilio SID and a mail Message-ID share one unique column.
    return None if inbound.external_id is None else f"{inbound.channel}:{inbound.external_id}"


async def _seen(rt: Runtime, inbound: Inbound) -> Intake | None:
    async with rt.sessions() as session:
        message = await session.scalar(
            select(Message).where(Message.external_id == _message_key(inbound))
        )
        if message is not None and message.contact_id is not None:
            contact = await session.get(Contact, message.contact_id)
        else:
            contact = await session.scalar(select(Contact).where(
                Contact.channel == inbound.channel, Contact.external_id == inbound.external_id))
        if contact is None:
            return None
        return Intake(contact_summary(contact), contact.conversation_id or 0,
                      message.id if message else None, new_contact=False, duplicate=True)


def _refuse_when_full(rt: Runtime, queue: Queue) -> None:
    """Say no before storing anything when the queue is full (per the latest live snapshot,
    at most a second old); a contact that slips through is expired by the router itself."""
    if queue.max_length is None:
        return
    waiting = next((q["waiting"] for q in rt.live_stats.get("queues", ())
                    if q["id"] == queue.id), 0)
    if waiting >= queue.max_length:
        raise Unavailable(f"queue {queue.name!r} is full ({waiting} waiting); try again later")


def message_public(message: Message) -> dict[str, Any]:
    return {
        "id": message.id, "direction": message.direction, "body": message.body,
        "author_user_id": message.author_user_id, "private": message.private,
        "status": message.status, "error": message.error, "meta": message.meta or {},
        "created_at": message.created_at.isoformat(),
    }
