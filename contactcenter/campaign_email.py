"""Sending the email of a segment event (a campaign such as the annual conference's invitations,
spec §4): each due item becomes an outbound message in the claiming transaction (exactly once),
in an email conversation of its own whose token and Message-ID let the customer's answer thread
back into it (channels/mail.py); the relay send follows the commit with the usual retries.

A campaign is marketing: a customer who withdrew `email-marketing` gets nothing, checked at
send time, and one without an email address is skipped (both recorded on the item, so the
campaign report counts them)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.clock import utc
from contactcenter.events import opted_out
from contactcenter.outbound import Outgoing, send_automatic, store_automatic
from contactcenter.personal_text import render_for
from contactcenter.runtime import Runtime
from contactcenter.scheduler import run_due
from contactcenter.segments import EMAIL_KIND
from contactcenter.storage.models import Customer, ScheduledWork

OPT_OUT_PURPOSE = "email-marketing"


async def send_due_campaign_email(rt: Runtime) -> int:
    """Store and send the campaign emails that are due; returns how many went out."""
    if "email" not in rt.senders:
        return 0  # no email channel on this node: the items wait for one that has it
    now = utc(rt.clock.now())
    company = rt.settings.company_name
    ready: list[Outgoing] = []

    async def store(session: AsyncSession, item: ScheduledWork) -> dict[str, object] | None:
        customer = await session.get(Customer, item.customer_id)
        if customer is None or not customer.emails:
            return {"skipped": "no email address"}
        if opted_out(customer, OPT_OUT_PURPOSE):
            return {"skipped": "opted out"}
        subject = render_for(item.payload["subject"], customer, company)
        out = await store_automatic(
            session, customer, channel="email", to=customer.emails[0].address, via=None,
            body=render_for(item.payload["template"], customer, company), now=now,
            subject=subject,
            meta={"automatic": "campaign", "rule": item.rule_id, "subject": subject})
        ready.append(out)
        return {"message_id": out.message_id}

    await run_due(rt.sessions, store, now, kinds=[EMAIL_KIND])
    send_automatic(rt, ready)  # committed: now they may leave
    return len(ready)
