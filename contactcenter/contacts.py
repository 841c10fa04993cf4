"""Inbound contacts: the one path by which every channel puts work into a queue.

The contact is committed before anything is acknowledged (a provider's retry then finds it by
its external id and is a no-op), and the screen-pop is built here, on the node that took the
contact in, so the router only forwards it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from contactcenter.clock import utc
from contactcenter.customers import find_or_create_by_address
from contactcenter.domain import ContactState, Direction
from contactcenter.errors import Unavailable
from contactcenter.queues import active_queues, select_queue
from contactcenter.runtime import Runtime
from contactcenter.screenpop import build_screen_pop, contact_summary
from contactcenter.storage.models import Contact, Message, Queue


@dataclass(frozen=True)
class Inbound:
    channel: str
    address: str  # phone number, email address or chat handle of the customer
    body: str = ""
    subject: str | None = None
    to: str | None = None
    queue: str | None = None
    skill: str | None = None
    external_id: str | None = None
    display_name: str | None = None


async def take_in(rt: Runtime, inbound: Inbound) -> tuple[dict[str, Any], bool]:
    """Store and route an inbound contact; returns (contact summary, created)."""
    if inbound.external_id is not None:
        existing = await _by_external_id(rt, inbound.channel, inbound.external_id)
        if existing is not None:
            return existing, False
    now = rt.clock.now()
    at = utc(now)
    try:
        async with rt.sessions.begin() as session:
            queue = select_queue(
                await active_queues(session), inbound.channel, name=inbound.queue,
                skill=inbound.skill,
            )
            _refuse_when_full(rt, queue)
            customer, created = await find_or_create_by_address(
                session, inbound.channel, inbound.address, now=at,
                display_name=inbound.display_name,
            )
            contact = Contact(
                channel=inbound.channel, direction=Direction.INBOUND.value,
                state=ContactState.QUEUED.value, customer_id=customer.id, queue_id=queue.id,
                tier=customer.effective_tier, from_address=inbound.address, to_address=inbound.to,
                subject=inbound.subject, body=inbound.body, external_id=inbound.external_id,
                created_at=at,
            )
            session.add(contact)
            await session.flush()
            if inbound.body:
                session.add(Message(contact_id=contact.id, direction=Direction.INBOUND.value,
                                    body=inbound.body, created_at=at, meta={}))
            pop = await build_screen_pop(session, contact, customer, queue, is_new=created)
            spec = {
                "id": contact.id, "queue_id": queue.id, "channel": contact.channel,
                "entered_at": now, "tier": contact.tier,
                "owner_ids": [o.user_id for o in customer.owners],
            }
    except IntegrityError:
        # Two deliveries of one provider message raced; the other one stored it.
        if inbound.external_id is not None:
            existing = await _by_external_id(rt, inbound.channel, inbound.external_id)
            if existing is not None:
                return existing, False
        raise
    await rt.broker.submit({"op": "enqueue", "contact": spec, "pop": pop})
    return pop["contact"], True


def _refuse_when_full(rt: Runtime, queue: Queue) -> None:
    """Say no before storing anything when the queue is full (per the latest live snapshot,
    at most a second old); a contact that slips through is expired by the router itself."""
    if queue.max_length is None:
        return
    waiting = next((q["waiting"] for q in rt.live_stats.get("queues", ())
                    if q["id"] == queue.id), 0)
    if waiting >= queue.max_length:
        raise Unavailable(f"queue {queue.name!r} is full ({waiting} waiting); try again later")


async def _by_external_id(rt: Runtime, channel: str, external_id: str) -> dict[str, Any] | None:
    async with rt.sessions() as session:
        contact = await session.scalar(
            select(Contact).where(Contact.channel == channel, Contact.external_id == external_id)
        )
        return contact_summary(contact) if contact else None
