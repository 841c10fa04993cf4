"""Satisfaction by SMS (spec §8): after a reached callback or a visit that took place, the
customer gets an SMS asking for a 1-5 reply; the reply is matched to them by phone number.

- Asking is planned work (kind `survey`, keyed per callback contact or visit: exactly once);
  the node's loop sends it through the automatic-SMS path greetings use, waiting out the
  customer's quiet hours. It is a service message about their own case, so a marketing
  opt-out (STOP/退订/TD) does not block it (§9).
- A reply is matched by normalised number to the customer and to their latest survey still
  open (`satisfaction.survey_open_days`). A bare score is stored and not routed; a score with
  more text is stored and routed as usual. A score at or below `mediation_max_score` plans a
  mediation callback; any score marks the visit it asked about verified (it took place).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.callback_outcomes import usable_phone
from contactcenter.clock import utc
from contactcenter.events import facts
from contactcenter.outbound import Outgoing, send_automatic, store_automatic_sms
from contactcenter.phones import try_normalize_phone
from contactcenter.rules.followups import mediation_callback
from contactcenter.rules.health import parse_survey_reply
from contactcenter.rules.plan import release
from contactcenter.runtime import Runtime
from contactcenter.scheduler import run_due, schedule
from contactcenter.storage.models import (
    Customer,
    CustomerPhone,
    ScheduledWork,
    Survey,
    Visit,
)

KIND = "survey"
log = logging.getLogger(__name__)
_env = SandboxedEnvironment()


async def send_due_surveys(rt: Runtime) -> int:
    """Store and send the surveys that are due; returns how many went out."""
    if rt.senders.get("sms") is None or not rt.settings.sms_from:
        return 0
    now = utc(rt.clock.now())
    rules = rt.rules
    ready: list[Outgoing] = []

    async def store(session: AsyncSession, item: ScheduledWork) -> dict[str, Any] | None:
        customer = await session.get(Customer, item.customer_id)
        phone = await usable_phone(session, customer) if customer is not None else None
        if customer is None or phone is None:
            return {"skipped": "no phone number"}
        allowed = release(now, facts(customer), rules)
        if allowed > now:
            item.due_at = allowed
            return None
        body = _env.from_string(rules.satisfaction.template.get(customer.language)).render(
            name=customer.honorific or customer.name, company=rt.settings.company_name)
        out = await store_automatic_sms(session, rt, customer, to=phone, body=body, now=now,
                                        meta={"automatic": KIND, "key": item.key})
        survey = Survey(key=item.key, customer_id=customer.id, subject=item.payload["subject"],
                        subject_id=item.payload["subject_id"], phone=phone,
                        message_id=out.message_id, sent_at=now,
                        open_until=now + timedelta(days=rules.satisfaction.survey_open_days))
        session.add(survey)
        await session.flush()
        ready.append(out)
        return {"survey_id": survey.id, "message_id": out.message_id}

    await run_due(rt.sessions, store, now, kinds=[KIND])
    send_automatic(rt, ready)
    return len(ready)


async def take_reply(rt: Runtime, *, sid: str, sender: str, body: str) -> bool:
    """An inbound SMS that may answer a survey. True when it is only the score: stored here,
    and not to be routed to an agent. A redelivered MessageSid answers as the first did."""
    number = try_normalize_phone(sender)
    reply = parse_survey_reply(body)
    if number is None or reply.score is None:
        return False
    key = f"sms:{sid}"
    now = utc(rt.clock.now())
    try:
        async with rt.sessions.begin() as session:
            survey = await session.scalar(
                select(Survey)
                .join(CustomerPhone, CustomerPhone.customer_id == Survey.customer_id)
                .where(CustomerPhone.number == number,
                       or_(Survey.reply_sid == key,
                           Survey.replied_at.is_(None) & (Survey.open_until >= now)))
                .order_by(Survey.sent_at.desc(), Survey.id.desc()).limit(1)
                .with_for_update(of=Survey))
            if survey is None:
                return False
            if survey.reply_sid == key:
                return reply.only_the_score
            survey.score, survey.replied_at, survey.reply_number = reply.score, now, number
            survey.reply_text, survey.reply_sid = body, key
            await _follow_score(session, rt, survey, now)
    except IntegrityError:
        return reply.only_the_score  # the same MessageSid, stored by a concurrent delivery
    log.info("survey %s answered with %s", survey.id, reply.score)
    return reply.only_the_score


async def _follow_score(session: AsyncSession, rt: Runtime, survey: Survey, now: datetime
                        ) -> None:
    if survey.subject == "visit":
        visit = await session.get(Visit, survey.subject_id)
        if visit is not None and visit.verified_at is None:
            visit.verified_at = now  # 001: the customer's own number confirms the visit
    assert survey.score is not None
    if survey.score <= rt.rules.satisfaction.mediation_max_score:
        customer = await session.get(Customer, survey.customer_id)
        assert customer is not None
        plan = mediation_callback(survey.id, facts(customer), now, rt.rules)
        await schedule(session, [plan], now)
        survey.mediation_key = plan.key
    await session.flush()
