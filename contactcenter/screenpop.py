"""The screen-pop: what an agent sees the moment a contact is offered."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.customers import customer_card, read_histories
from contactcenter.storage import direct
from contactcenter.storage.models import Contact, Customer, Queue
from contactcenter.timeline import read_timelines

# Past contacts in a screen-pop: what the offer card shows. The console reads more when the
# agent opens the contact; every row here is paid for on every contact (docs/benchmarks.md).
HISTORY = 5


def pop_history(latest: list[dict[str, Any]], contact_id: int) -> list[dict[str, Any]]:
    """The offer's history from the customer's latest `HISTORY + 1` contacts (read that many,
    after the contact being offered was stored: it may be among them): the others, newest
    first. The intake reads the history before storing its contacts, and so needs none of this."""
    return [h for h in latest if h["contact_id"] != contact_id][:HISTORY]


def contact_summary(contact: Contact, queue: Queue | None = None) -> dict[str, Any]:
    return {
        "id": contact.id,
        "channel": contact.channel,
        "direction": contact.direction,
        "state": contact.state,
        "queue_id": contact.queue_id,
        "queue": queue.name if queue else None,
        "customer_id": contact.customer_id,
        "from": contact.from_address,
        "to": contact.to_address,
        "subject": contact.subject,
        "body": contact.body,
        "created_at": contact.created_at.isoformat(),
        "meta": contact.meta or {},  # channel details; a callback's purpose, category, script
    }


async def build_screen_pop(
    session: AsyncSession, contact: Contact, customer: Customer, queue: Queue | None, *,
    is_new: bool = False,
) -> dict[str, Any]:
    reads = direct.Reads(await session.connection())  # the history and timeline together
    histories = read_histories(reads, [customer.id], limit=HISTORY + 1)
    timelines = read_timelines(reads, [customer.id])
    await reads.run()
    card = customer_card(customer)
    card["is_new"] = is_new or card.get("is_new", False)
    return {"contact": contact_summary(contact, queue), "customer": card,
            "history": pop_history(histories()[customer.id], contact.id),
            "timeline": timelines()[customer.id]}
