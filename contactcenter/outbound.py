"""Outbound messages: an agent's reply leaves on the contact's own channel.

The message is stored first (status `queued`), then handed to the channel's `Sender`. A failure
the provider may recover from is retried with backoff; every change of status reaches the agent
as a `message_status` frame, so a failed send is visible, not silent.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.clock import utc
from contactcenter.deliveries import record_delivery
from contactcenter.runtime import Runtime
from contactcenter.storage.models import Contact, Conversation, Customer, Message

log = logging.getLogger(__name__)


class SendFailed(Exception):
    def __init__(self, error: str, *, retry: bool = True) -> None:
        super().__init__(error)
        self.error = error
        self.retry = retry


@dataclass(frozen=True)
class Outgoing:
    """Everything a channel needs to send one message, read in one place."""

    message_id: int
    contact_id: int | None  # None for automated messages (greetings) outside any contact
    conversation_id: int | None
    channel: str
    to: str | None  # the customer's address: where the contact came from
    via: str | None  # our address the customer wrote or called to
    body: str
    subject: str | None
    language: str
    conversation_token: str | None
    in_reply_to: list[str] = field(default_factory=list)  # earlier provider ids, oldest first
    meta: dict[str, Any] = field(default_factory=dict)


class Sender(Protocol):
    async def send(self, rt: Runtime, out: Outgoing) -> str | None:
        """Send; return the provider's id for this message (for status callbacks), or raise
        SendFailed."""
        ...


async def load_outgoing(rt: Runtime, message_id: int) -> Outgoing:
    async with rt.sessions() as session:
        message = await session.get(Message, message_id)
        assert message is not None and message.contact_id is not None
        contact = await session.get(Contact, message.contact_id)
        assert contact is not None
        customer = await session.get(Customer, contact.customer_id)
        conversation = (await session.get(Conversation, contact.conversation_id)
                        if contact.conversation_id else None)
        earlier = (await session.scalars(
            select(Message.external_id).where(Message.conversation_id == message.conversation_id,
                                              Message.external_id.is_not(None),
                                              Message.id < message.id).order_by(Message.id)
        )).all() if message.conversation_id else []
    return Outgoing(
        message_id=message.id, contact_id=contact.id, conversation_id=contact.conversation_id,
        channel=contact.channel, to=contact.from_address, via=contact.to_address,
        body=message.body, subject=conversation.subject if conversation else contact.subject,
        language=customer.language if customer else "zh-CN",
        conversation_token=conversation.token if conversation else None,
        in_reply_to=[e.split(":", 1)[1] for e in earlier if e],
        meta=dict(message.meta or {}),
    )


async def store_automatic_sms(session: AsyncSession, rt: Runtime, customer: Customer, *,
                              to: str, body: str, meta: dict[str, Any], now: datetime
                              ) -> Outgoing:
    """An SMS the server sends on its own (a greeting, a survey), stored as a closed
    conversation of its own; send it with `send_automatic` once the transaction commits."""
    return await store_automatic(session, customer, channel="sms", to=to,
                                 via=rt.settings.sms_from, body=body, meta=meta, now=now)


async def store_automatic(session: AsyncSession, customer: Customer, *, channel: str, to: str,
                          via: str | None, body: str, meta: dict[str, Any], now: datetime,
                          subject: str | None = None) -> Outgoing:
    """A message the server sends on its own on `channel`, stored as a closed conversation of
    its own; send it with `send_automatic` once the transaction commits. An email conversation
    gets a token: the `reply+<token>@` Reply-To threads the customer's answer back into it."""
    conversation = Conversation(customer_id=customer.id, channel=channel, status="closed",
                                subject=subject, created_at=now, last_message_at=now,
                                token=secrets.token_hex(10) if channel == "email" else None)
    session.add(conversation)
    await session.flush()
    message = Message(conversation_id=conversation.id, direction="outbound", body=body,
                      status="queued", created_at=now, meta=meta)
    session.add(message)
    await session.flush()
    return Outgoing(message_id=message.id, contact_id=None, conversation_id=conversation.id,
                    channel=channel, to=to, via=via, body=body, subject=subject,
                    language=customer.language, conversation_token=conversation.token,
                    meta=meta)


def send_automatic(rt: Runtime, ready: list[Outgoing]) -> None:
    """Send committed automatic messages in the background, each on its channel with the usual
    retries."""
    for out in ready:
        sender = rt.senders.get(out.channel)
        if sender is not None:
            rt.spawn(send_with_retries(rt, out.message_id, out.channel,
                                       lambda out=out, sender=sender: sender.send(rt, out)))


async def send_message(rt: Runtime, message_id: int) -> None:
    """Send a stored outbound reply on its contact's channel, with retries."""
    out = await load_outgoing(rt, message_id)
    sender = rt.senders.get(out.channel)
    if sender is None:  # api and callback contacts: the reply is a record, nothing to send
        await set_status(rt, message_id, "stored", None, attempts=0)
        return
    await send_with_retries(rt, message_id, out.channel, lambda: sender.send(rt, out))


async def send_with_retries(
    rt: Runtime, message_id: int, channel: str, attempt_send: Callable[[], Awaitable[str | None]]
) -> bool:
    """Try `attempt_send` per `CC_SEND_RETRY_SECONDS`, recording each outcome on the stored
    message (and telling its author). Any outbound message uses this: replies, acknowledgements,
    greetings. Returns whether it was sent."""
    delays = [0.0, *rt.settings.send_retry_seconds]
    for attempt, delay in enumerate(delays, start=1):
        if delay:
            await asyncio.sleep(delay)
        final = attempt == len(delays)
        try:
            provider_id = await attempt_send()
        except SendFailed as e:
            final = final or not e.retry
            await set_status(rt, message_id, "failed" if final else "retrying", e.error,
                             attempts=attempt)
            if final:
                return False
            continue
        except Exception as e:
            log.exception("sending message %s on %s failed", message_id, channel)
            await set_status(rt, message_id, "failed" if final else "retrying",
                             f"{type(e).__name__}: {e}", attempts=attempt)
            if final:
                return False
            continue
        await set_status(rt, message_id, "sent", None, attempts=attempt,
                         external_id=f"{channel}:{provider_id}" if provider_id else None)
        return True
    return False


async def set_status(
    rt: Runtime, message_id: int, status: str, error: str | None, *, attempts: int | None = None,
    external_id: str | None = None,
) -> None:
    """Record a delivery status and tell the agent who wrote the message."""
    async with rt.sessions.begin() as session:
        message = await session.get(Message, message_id)
        if message is None:
            return
        message.status, message.error = status, error
        message.updated_at = utc(rt.clock.now())
        if attempts is not None:
            message.attempts = attempts
        if external_id is not None:  # so the provider's status reports find it
            message.external_id = external_id
        if message.external_id:  # sent through a provider: time it (§9 provider reliability)
            channel = message.external_id.split(":", 1)[0]
            provider = getattr(rt.senders.get(channel), "provider", channel)
            await record_delivery(session, message.id, channel, provider, status,
                                  message.updated_at)
        agent_id, contact_id = message.author_user_id, message.contact_id
    if agent_id is not None:
        await rt.broker.deliver(agent_id, {"type": "message_status", "contact_id": contact_id,
                                           "message_id": message_id, "status": status,
                                           "error": error})


async def status_by_provider_id(
    rt: Runtime, channel: str, provider_id: str, status: str, error: str | None
) -> bool:
    """A provider's delivery report (e.g. Twilio's StatusCallback); False if unknown."""
    async with rt.sessions() as session:
        message_id = await session.scalar(
            select(Message.id).where(Message.external_id == f"{channel}:{provider_id}")
        )
    if message_id is None:
        return False
    await set_status(rt, message_id, status, error)
    return True
