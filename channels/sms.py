"""SMS through Twilio Messaging.

In: `POST /twilio/sms` (signed). The message is committed, keyed by its MessageSid, before the
empty TwiML answer goes back, so Twilio's retries cover a crash and a retry is a no-op. It joins
the customer's SMS conversation of the last `CC_SMS_CONVERSATION_HOURS`, or starts one that is
routed to the first queue taking `sms`.

Out: agents' replies leave through the Twilio REST client (`rt.senders["sms"]`), with a status
callback to `POST /twilio/sms/status` that records delivery on the message.

Keywords: a whole message STOP, TD or 退订 opts the number out of greetings and campaigns (the
`sms-marketing` consent), START opts back in; both are acknowledged by SMS. Such a message is
service to the customer, not work for an agent: it is stored on the customer's conversation (on
the contact in progress there, if any, whose agent sees it) and no contact is queued for it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from channels.twilio import rest_client, signed_form, twiml
from contactcenter.clock import utc
from contactcenter.contacts import Inbound, message_public, take_in
from contactcenter.customers import audit, find_or_create_by_address
from contactcenter.domain import ContactState, Direction
from contactcenter.errors import BadRequest
from contactcenter.outbound import Outgoing, SendFailed, send_with_retries, status_by_provider_id
from contactcenter.runtime import Runtime
from contactcenter.server.keys import RUNTIME
from contactcenter.storage.models import (
    Consent,
    Contact,
    Conversation,
    Customer,
    Message,
)
from contactcenter.surveys import take_reply as take_survey_reply

log = logging.getLogger(__name__)

CHANNEL = "sms"
WEBHOOK_PATH = "/twilio/sms"
STATUS_PATH = "/twilio/sms/status"
# The purpose greetings and campaigns check (the customer card's `consents`).
CONSENT_PURPOSE = "sms-marketing"
# Whole-message keywords, compared case-folded after NFKC (so full-width ＳＴＯＰ counts), mapped
# to how they are recorded in the consent's source.
OPT_OUT = {"stop": "STOP", "td": "TD", "退订": "退订"}
OPT_IN = {"start": "START"}
MAX_MEDIA = 10  # Twilio delivers at most ten media items per message
# The REST client sets no timeout of its own; a hung request must not hold a send forever.
SEND_TIMEOUT_SECONDS = 30.0

_SID = re.compile(r"[A-Za-z0-9]{2,64}")
_IN_PROGRESS = [s.value for s in ContactState if not s.is_final]
# Twilio may call the status callback out of order; a late "sent" must not undo "delivered".
_STATUS_RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 0,
    "retrying": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
    "canceled": 3,
    "read": 4,
}


class TwilioSms:
    """The Sender of `sms`, also used for the keyword acknowledgements: one REST client (one
    connection pool) per application, opened and closed with it."""

    provider = "twilio"  # named in the delivery report per provider

    def __init__(self) -> None:
        self._client: Client | None = None

    def open(self, rt: Runtime) -> None:
        self._client = rest_client(rt)

    async def send(self, rt: Runtime, out: Outgoing) -> str:
        return await self.create(rt, to=out.to, from_=out.via, body=out.body)

    async def create(self, rt: Runtime, *, to: str | None, from_: str | None, body: str) -> str:
        """Send one SMS; its MessageSid, or SendFailed (retry only when Twilio may recover)."""
        s = rt.settings
        if not (s.twilio_account_sid and s.twilio_auth_token):
            raise SendFailed(
                "Twilio is not configured (CC_TWILIO_ACCOUNT_SID, CC_TWILIO_AUTH_TOKEN)",
                retry=False,
            )
        if not to or not from_:
            raise SendFailed(
                "the contact has no customer number or no number of ours to send from", retry=False
            )
        if self._client is None:
            raise SendFailed("the SMS client is closed (the server is stopping)", retry=False)
        try:
            async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
                message = await self._client.messages.create_async(
                    to=to, from_=from_, body=body, status_callback=status_callback_url(rt)
                )
        except (TwilioRestException, TwilioServiceException) as e:
            text = e.msg if isinstance(e, TwilioRestException) else (e.detail or e.title)
            # 4xx means this request will never work (21211 invalid number, 21610 opted out);
            # 429 and 5xx are Twilio's own trouble.
            raise SendFailed(
                f"Twilio error {e.code}: {text}"[:300], retry=e.status == 429 or e.status >= 500
            ) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise SendFailed(f"cannot reach Twilio: {type(e).__name__} {e}"[:300]) from None
        if not message.sid:
            raise SendFailed("Twilio answered without a MessageSid")
        return message.sid

    async def close(self) -> None:
        http = self._client.http_client if self._client is not None else None
        if isinstance(http, AsyncTwilioHttpClient):
            await http.close()
        self._client = None


SMS = web.AppKey("sms", TwilioSms)


def status_callback_url(rt: Runtime) -> str:
    return rt.settings.public_url.rstrip("/") + STATUS_PATH


# ---------------------------------------------------------------------------------------------
# Inbound


def _field(
    form: MultiDictProxy[str],
    name: str,
    *,
    required: bool = False,
    max_length: int = 254,
    strip: bool = True,
) -> str:
    value = form.get(name, "")
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a form field")
    value = value.strip() if strip else value
    if required and not value:
        raise BadRequest(f"the webhook has no {name}")
    if len(value) > max_length or "\x00" in value:
        raise BadRequest(f"{name} is not a valid value")
    return value


def _media(form: MultiDictProxy[str]) -> dict[str, Any]:
    """The message's media as Twilio hosts them; the URLs are kept, the files are not fetched."""
    raw = _field(form, "NumMedia") or "0"
    if not (raw.isascii() and raw.isdigit()) or int(raw) > MAX_MEDIA:
        raise BadRequest(f"NumMedia must be a number from 0 to {MAX_MEDIA}")
    media = []
    for i in range(int(raw)):
        url = _field(form, f"MediaUrl{i}", required=True, max_length=2000)
        content_type = _field(form, f"MediaContentType{i}", max_length=128)
        media.append({"url": url, "content_type": content_type or None})
    return {"media": media} if media else {}


def keyword(body: str) -> tuple[bool, str] | None:
    """(opt in?, keyword as recorded) when the whole message is an opt-out/in keyword."""
    word = unicodedata.normalize("NFKC", body).strip().casefold()
    if word in OPT_OUT:
        return False, OPT_OUT[word]
    if word in OPT_IN:
        return True, OPT_IN[word]
    return None


async def sms_webhook(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    form = await signed_form(rt, request)
    sid = _field(form, "MessageSid", required=True)
    if not _SID.fullmatch(sid):
        raise BadRequest("MessageSid is not a Twilio SID")
    sender = _field(form, "From", required=True)
    to = _field(form, "To") or None
    body = _field(form, "Body", max_length=10_000, strip=False)  # stored as the customer typed
    meta = _media(form)
    found = keyword(body)
    if found is None and await take_survey_reply(rt, sid=sid, sender=sender, body=body):
        return twiml(MessagingResponse())  # a bare satisfaction score: stored, not routed
    if found is None:
        await take_in(
            rt,
            Inbound(
                channel=CHANNEL,
                address=sender,
                body=body,
                to=to,
                external_id=sid,
                meta=meta,
                join_within=timedelta(hours=rt.settings.sms_conversation_hours),
            ),
        )
    else:
        opt_in, word = found
        await _take_keyword(
            rt,
            request.app[SMS],
            sid=sid,
            sender=sender,
            to=to,
            body=body,
            meta=meta,
            opt_in=opt_in,
            word=word,
        )
    return twiml(MessagingResponse())


async def _take_keyword(
    rt: Runtime,
    sms: TwilioSms,
    *,
    sid: str,
    sender: str,
    to: str | None,
    body: str,
    meta: dict[str, Any],
    opt_in: bool,
    word: str,
) -> None:
    """Record the consent, store the keyword and its acknowledgement, then send the latter.

    All in one transaction keyed by the MessageSid, so a retried webhook neither changes the
    consent twice nor sends a second acknowledgement.
    """
    key = f"{CHANNEL}:{sid}"
    at = utc(rt.clock.now())
    window = timedelta(hours=rt.settings.sms_conversation_hours)
    try:
        async with rt.sessions.begin() as session:
            if await session.scalar(select(Message.id).where(Message.external_id == key)):
                return
            customer, _ = await find_or_create_by_address(session, CHANNEL, sender, now=at)
            _set_consent(session, customer, opt_in, f"{CHANNEL}:{word}", at)
            conversation = await _conversation(session, customer.id, window, at)
            live = await session.scalar(
                select(Contact)
                .where(Contact.conversation_id == conversation.id, Contact.state.in_(_IN_PROGRESS))
                .order_by(Contact.id.desc())
                .limit(1)
            )
            template = "sms_opt_in" if opt_in else "sms_opt_out"
            ack_body = rt.templates.render(
                template, customer.language, company=rt.settings.company_name
            )
            common = {
                "conversation_id": conversation.id,
                "contact_id": live.id if live else None,
                "created_at": at,
            }
            inbound = Message(
                direction=Direction.INBOUND.value,
                body=body,
                external_id=key,
                meta={**meta, "keyword": word},
                **common,
            )
            ack = Message(
                direction=Direction.OUTBOUND.value,
                body=ack_body,
                status="queued",
                meta={"auto": template},
                **common,
            )
            session.add_all([inbound, ack])
            await session.flush()
            frames = [message_public(inbound), message_public(ack)]
            agent_id, contact_id = (live.agent_id, live.id) if live else (None, None)
            ack_id = ack.id
    except IntegrityError:
        # A concurrent delivery of the same MessageSid stored it first.
        async with rt.sessions() as session:
            if await session.scalar(select(Message.id).where(Message.external_id == key)):
                return
        raise
    log.info(
        "sms %s from %s: %s, %s consent %s",
        sid,
        sender,
        word,
        CONSENT_PURPOSE,
        "granted" if opt_in else "withdrawn",
    )
    if agent_id is not None:
        for frame in frames:
            await rt.broker.deliver(
                agent_id, {"type": "message", "contact_id": contact_id, "message": frame}
            )
    rt.spawn(_send_ack(rt, sms, ack_id, to=sender, from_=to, body=ack_body))


def _set_consent(
    session: AsyncSession, customer: Customer, granted: bool, source: str, at: datetime
) -> None:
    row = next((c for c in customer.consents if c.purpose == CONSENT_PURPOSE), None)
    before = {c.purpose: c.granted for c in customer.consents}
    if row is None:
        customer.consents.append(
            Consent(purpose=CONSENT_PURPOSE, granted=granted, at=at, source=source)
        )
    elif row.granted != granted:
        # `at` says when the customer last said yes or no, so a repeated STOP leaves it.
        row.granted, row.at, row.source = granted, at, source
    else:
        return
    customer.updated_at = at
    after = {**before, CONSENT_PURPOSE: granted}
    # The card's audit trail shows who changed what; here the customer did, by SMS.
    audit(session, customer.id, "update", actor_id=None, now=at,
          before={"consents": dict(sorted(before.items()))},
          after={"consents": dict(sorted(after.items()))})


async def _conversation(
    session: AsyncSession, customer_id: int, window: timedelta, at: datetime
) -> Conversation:
    """The conversation take_in would join (latest on SMS within the window) or a new one."""
    recent = await session.scalar(
        select(Conversation)
        .where(
            Conversation.customer_id == customer_id,
            Conversation.channel == CHANNEL,
            Conversation.last_message_at >= at - window,
        )
        .order_by(Conversation.last_message_at.desc())
        .limit(1)
    )
    if recent is not None:
        recent.last_message_at = at
        return recent
    conversation = Conversation(
        customer_id=customer_id, channel=CHANNEL, status="open", created_at=at, last_message_at=at
    )
    session.add(conversation)
    await session.flush()
    return conversation


async def _send_ack(
    rt: Runtime, sms: TwilioSms, message_id: int, *, to: str, from_: str | None, body: str
) -> None:
    """An acknowledgement may belong to no contact, so it is sent directly, with the same
    retries and status records as any outbound message."""
    if not await send_with_retries(rt, message_id, CHANNEL,
                                   lambda: sms.create(rt, to=to, from_=from_, body=body)):
        log.warning("sms acknowledgement %s to %s failed", message_id, to)


# ---------------------------------------------------------------------------------------------
# Delivery status


async def status_webhook(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    form = await signed_form(rt, request)
    sid = _field(form, "MessageSid", required=True)
    status = _field(form, "MessageStatus", required=True, max_length=32).lower()
    code = _field(form, "ErrorCode", max_length=16)
    detail = _field(form, "ErrorMessage", max_length=250)
    error = (f"Twilio error {code}" + (f": {detail}" if detail else "")) if code else None
    rank = _STATUS_RANK.get(status)
    if rank is None:
        log.info("sms %s: status %r is not recorded", sid, status)
        return web.Response(status=204)
    async with rt.sessions() as session:
        current = await session.scalar(
            select(Message.status).where(Message.external_id == f"{CHANNEL}:{sid}")
        )
    if current is not None and _STATUS_RANK.get(current, 0) > rank:
        return web.Response(status=204)  # a late report of an earlier step
    if not await status_by_provider_id(rt, CHANNEL, sid, status, error):
        # Not ours, or the report beat our own "sent" record; the next report carries on.
        log.info("sms status %s for unknown message %s", status, sid)
    return web.Response(status=204)


# ---------------------------------------------------------------------------------------------


async def _start(app: web.Application) -> None:
    rt = app[RUNTIME]
    app[SMS].open(rt)
    rt.senders[CHANNEL] = app[SMS]


async def _stop(app: web.Application) -> None:
    await app[SMS].close()


def mount(app: web.Application) -> None:
    app[SMS] = TwilioSms()
    app.router.add_post(WEBHOOK_PATH, sms_webhook)
    app.router.add_post(STATUS_PATH, status_webhook)
    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
