"""Planning the day's greeting SMS (spec §4) for every customer, in batches.

Customers are read in id order, `batch` at a time (keyset pagination: no OFFSET, no cursor held
open), turned into the rules' facts, planned and scheduled; memory stays at one batch whatever
the number of customers. Planning is idempotent (scheduled work is keyed), so a rerun after a
crash, or on another node, adds nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.clock import utc
from contactcenter.events import facts
from contactcenter.offboarding import NEW_OWNER_RULE
from contactcenter.outbound import Outgoing, send_automatic, store_automatic_sms
from contactcenter.personal_text import render_for
from contactcenter.rules.config import Rules
from contactcenter.rules.plan import UNGRADED, greetings_on, release
from contactcenter.rules.plan import Customer as Facts
from contactcenter.runtime import Runtime
from contactcenter.scheduler import run_due, schedule
from contactcenter.storage.models import (
    Consent,
    Customer,
    CustomerTag,
    ScheduledWork,
)

OPT_OUT_PURPOSE = "sms-marketing"
# Service messages, not greetings or campaigns: an opt-out does not stop them (spec §9).
SERVICE_RULES = frozenset({NEW_OWNER_RULE})
log = logging.getLogger(__name__)


async def _facts(session: AsyncSession, after_id: int, batch: int) -> list[Facts]:
    rows = (await session.execute(
        select(Customer.id, Customer.tier, Customer.tier_override, Customer.timezone,
               Customer.language, Customer.birthday)
        .where(Customer.id > after_id).order_by(Customer.id).limit(batch)
    )).all()
    if not rows:
        return []
    ids = [r.id for r in rows]
    tags: dict[int, set[str]] = defaultdict(set)
    for customer_id, tag in (await session.execute(
            select(CustomerTag.customer_id, CustomerTag.tag)
            .where(CustomerTag.customer_id.between(ids[0], ids[-1])))).all():
        tags[customer_id].add(tag)
    opted_out = set((await session.scalars(
        select(Consent.customer_id).where(
            Consent.customer_id.between(ids[0], ids[-1]),
            Consent.purpose == OPT_OUT_PURPOSE, Consent.granted.is_(False)))).all())
    return [Facts(id=r.id, tier=r.tier_override or r.tier or UNGRADED, timezone=r.timezone,
                  language=r.language, birthday=r.birthday, tags=frozenset(tags[r.id]),
                  marketing_opt_out=r.id in opted_out) for r in rows]


async def plan_greetings(
    sessions: async_sessionmaker[AsyncSession], rules: Rules, day: date, now: datetime, *,
    batch: int = 5000, progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Schedule `day`'s greetings; returns (customers read, items newly scheduled)."""
    after, read, scheduled = 0, 0, 0
    while True:
        async with sessions.begin() as session:
            facts = await _facts(session, after, batch)
            if not facts:
                return read, scheduled
            scheduled += await schedule(session, greetings_on(day, facts, rules), now)
        read += len(facts)
        after = facts[-1].id
        if progress is not None:
            progress(read, scheduled)


async def send_due_greetings(rt: Runtime) -> int:
    """Store and send the greeting SMS that are due; returns how many went out.

    Each item becomes an outbound message in the claiming transaction (exactly once); the
    provider send follows the commit, with the usual retries and status. A customer who opted
    out since the planning gets nothing; one whose quiet hours began meanwhile waits for their
    end."""
    sender = rt.senders.get("sms")
    if sender is None or not rt.settings.sms_from:
        return 0
    now = utc(rt.clock.now())
    ready: list[Outgoing] = []

    async def store(session: AsyncSession, item: ScheduledWork) -> dict[str, object] | None:
        customer = await session.get(Customer, item.customer_id)
        if customer is None or not customer.phones:
            return {"skipped": "no phone number"}
        who = facts(customer)
        if who.marketing_opt_out and item.rule_id not in SERVICE_RULES:
            return {"skipped": "opted out"}
        allowed = release(now, who, rt.rules)
        if allowed > now:
            item.due_at = allowed
            return None
        body = render_for(item.payload["template"], customer, rt.settings.company_name,
                          item.payload.get("values"))
        out = await store_automatic_sms(
            session, rt, customer, to=customer.phones[0].number, body=body, now=now,
            meta={"automatic": "greeting" if item.rule_id not in SERVICE_RULES else "service",
                  "rule": item.rule_id})
        ready.append(out)
        return {"message_id": out.message_id}

    await run_due(rt.sessions, store, now, kinds=["sms"])
    send_automatic(rt, ready)  # committed: now they may leave
    return len(ready)
