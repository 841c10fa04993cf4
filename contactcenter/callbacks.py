"""Scheduled callbacks become work for agents: each node's loop claims due callback items and,
in the same transaction, creates an outbound contact on channel `callback`, queued and routed
like any inbound one, carrying the rule's purpose, category and the callback script."""

from __future__ import annotations

import logging
from typing import Any

from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.callback_outcomes import usable_phone
from contactcenter.clock import utc
from contactcenter.domain import Channel, ContactState, Direction
from contactcenter.errors import NotFound
from contactcenter.queues import select_queue
from contactcenter.runtime import Runtime
from contactcenter.scheduler import run_due
from contactcenter.screenpop import build_screen_pop
from contactcenter.storage.models import Contact, Customer, Queue, ScheduledWork

log = logging.getLogger(__name__)
_env = SandboxedEnvironment()


def script_for(rt: Runtime, customer: Customer) -> str:
    """The callback script (spec §7) in the customer's language; `{agent}` is left for the
    console to fill with the name of the agent who takes the call."""
    template = rt.rules.selection.script.get(customer.language)
    return _env.from_string(template).render(
        honorific=customer.honorific or customer.name, company=rt.settings.company_name,
        agent="{agent}")


async def _create_callback(rt: Runtime, session: AsyncSession, queue: Queue,
                           item: ScheduledWork) -> dict[str, Any]:
    customer = await session.get(Customer, item.customer_id)
    assert customer is not None
    phone = await usable_phone(session, customer)  # not one an agent found wrong
    contact = Contact(
        channel=Channel.CALLBACK.value, direction=Direction.OUTBOUND.value,
        state=ContactState.QUEUED.value, customer_id=customer.id, queue_id=queue.id,
        tier=customer.effective_tier, from_address=phone, subject=item.payload["purpose"],
        body=item.payload["purpose"], external_id=f"scheduled:{item.key}",
        created_at=item.due_at,
        meta={"rule": item.rule_id, "category": item.payload["category"],
              "purpose": item.payload["purpose"], "due_at": item.due_at.isoformat(),
              "latest_at": item.latest_at.isoformat() if item.latest_at else None,
              "script": script_for(rt, customer)},
    )
    session.add(contact)
    await session.flush()
    return {"contact_id": contact.id}


async def run_callbacks(rt: Runtime) -> list[int]:
    """Turn due callback items into queued contacts; returns their ids."""
    async with rt.sessions() as session:
        try:
            queue = select_queue(await rt.queue_cache.get(session), Channel.CALLBACK.value)
        except NotFound:
            if await session.scalar(select(ScheduledWork.id).where(
                    ScheduledWork.kind == "callback", ScheduledWork.state == "pending",
                    ScheduledWork.due_at <= utc(rt.clock.now())).limit(1)):
                log.warning("callbacks are due but no active queue takes channel 'callback'")
            return []
    created: list[int] = []  # valid only once run_due has committed

    async def create(session: AsyncSession, item: ScheduledWork) -> dict[str, Any]:
        result = await _create_callback(rt, session, queue, item)
        created.append(result["contact_id"])
        return result

    if not await run_due(rt.sessions, create, utc(rt.clock.now()), kinds=["callback"]):
        return []
    # Committed; now routed. Should this node die before the submit, the router's sweep of
    # queued contacts picks them up.
    async with rt.sessions() as session:
        contacts = (await session.scalars(
            select(Contact).where(Contact.id.in_(created)).order_by(Contact.id))).all()
        enqueue = []
        for contact in contacts:
            customer = await session.get(Customer, contact.customer_id)
            assert customer is not None
            pop = await build_screen_pop(session, contact, customer, queue)
            enqueue.append({"op": "enqueue", "pop": pop, "contact": {
                "id": contact.id, "queue_id": queue.id, "channel": contact.channel,
                "entered_at": contact.created_at.timestamp(), "tier": contact.tier,
                "owner_ids": [o.user_id for o in customer.owners]}})
    await rt.broker.submit_many(enqueue)
    return [c.id for c in contacts]
