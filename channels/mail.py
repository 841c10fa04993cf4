"""The email channel: our own SMTP server for mail in, a relay for mail out.

In: `aiosmtpd` serves SMTP on the server's own event loop (CC_INBOUND_SMTP_HOST/PORT). A
recipient is accepted only if it is CC_EMAIL_ADDRESS or `reply+<token>@CC_EMAIL_DOMAIN`; any
other is refused with 550 before the message is sent. A message is parsed (channels/mail_parse.py),
threaded and committed through `take_in` before `250` is answered, so a sending server that gets
no 250 retries, and its retry is a no-op (the Message-ID is the external id). A failure on our
side answers 451, which makes the sender try again later; an oversized message gets 552.

Threading, most specific first: In-Reply-To, then References newest first (any earlier message
of an email conversation, ours or the customer's, is stored as `email:<Message-ID>`), then the
`reply+<token>@` address (which survives Outlook dropping the headers). Nothing else: a new
subject, or the same subject without those, starts a new conversation.

A new conversation gets an acknowledgement (stored as an outbound message, sent like a reply);
agents' replies go out through the relay (CC_SMTP_*) with Message-ID, In-Reply-To, References and
Reply-To set so that the customer's answer threads back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import weakref
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any

import aiosmtplib
from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from channels.mail_parse import (
    ParsedMail,
    base_subject,
    is_real_id,
    parse_mail,
    reply_subject,
)
from contactcenter.clock import utc
from contactcenter.contacts import Inbound, Intake, take_in
from contactcenter.domain import Direction
from contactcenter.errors import Unavailable
from contactcenter.outbound import Outgoing, SendFailed, send_message
from contactcenter.phones import try_normalize_email
from contactcenter.runtime import Runtime
from contactcenter.server.keys import RUNTIME
from contactcenter.settings import Settings
from contactcenter.storage.models import Conversation, Customer, Message

log = logging.getLogger(__name__)

CHANNEL = "email"
_REPLY_LOCAL = re.compile(r"reply\+([a-z0-9]{1,64})")
# Senders that must never get an automatic answer (it would bounce or loop).
_NO_REPLY = re.compile(r"^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|bounces?)\b")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass
class InboundServer:
    """The listening SMTP server; `port` is the bound one (tests ask for port 0)."""

    port: int | None = None
    server: asyncio.AbstractServer | None = None
    connections: weakref.WeakSet[SMTP] = field(default_factory=weakref.WeakSet)


MAIL = web.AppKey("mail", InboundServer)


class _SMTP(SMTP):
    # RFC 5321 caps a line at 1000 octets, but unwrapped HTML mail with longer lines is common
    # and every big mail host accepts it; refusing it would lose customers' mail for a detail.
    line_length_limit = 64 * 1024


class Refused(Exception):
    """A permanent refusal of one message, with the SMTP reply to give."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


# -- addresses ---------------------------------------------------------------------------------


def reply_address(settings: Settings, token: str) -> str:
    return f"reply+{token}@{settings.email_domain}"


def reply_token(settings: Settings, address: str) -> str | None:
    local, _, domain = address.strip().lower().rpartition("@")
    m = _REPLY_LOCAL.fullmatch(local)
    return m.group(1) if m and domain == settings.email_domain.lower() else None


def accepts(settings: Settings, address: str) -> bool:
    return (address.strip().lower() == settings.email_address.lower()
            or reply_token(settings, address) is not None)


# -- inbound -----------------------------------------------------------------------------------


class _Handler:
    """aiosmtpd hooks: which recipients we take, and what happens to a message."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if not accepts(self.rt.settings, address):
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            await receive(self.rt, raw, mail_from=envelope.mail_from or "",
                          rcpt_tos=list(envelope.rcpt_tos))
        except Refused as e:
            return e.reply
        except Unavailable as e:
            return f"451 4.3.2 {e.message}"
        except Exception:
            log.exception("inbound mail from %s could not be stored", envelope.mail_from)
            return "451 4.3.0 temporary failure, please try again later"
        return "250 2.0.0 OK: message accepted"


async def receive(rt: Runtime, raw: bytes, *, mail_from: str, rcpt_tos: list[str]) -> Intake:
    """Parse, thread and store one message (committed when this returns)."""
    mail = parse_mail(raw)
    settings = rt.settings
    if mail_from.strip() == "<>":  # aiosmtpd's spelling of the null sender of a bounce
        mail_from = ""
    address = mail.from_address or try_normalize_email(mail_from)
    if address is None:
        raise Refused("550 5.1.7 the message has no usable From address")
    tokens = [t for t in (reply_token(settings, a) for a in [*rcpt_tos, *mail.to, *mail.cc])
              if t]
    conversation_id = await find_conversation(rt, mail.thread_ids, tokens)
    meta: dict[str, Any] = {"message_id": mail.message_id, "subject": mail.subject,
                            "date": mail.date, "to": _public(settings, mail.to),
                            "cc": _public(settings, mail.cc)}
    if mail.visible is not None:
        meta["visible"] = mail.visible  # the text above the quoted earlier mail
    if mail.from_html:
        meta["from_html"] = True
    if mail.automatic:
        meta["automatic"] = True
    intake = await take_in(rt, Inbound(
        channel=CHANNEL, address=address, body=mail.text, subject=mail.subject or None,
        to=settings.email_address, external_id=mail.key, display_name=mail.from_name,
        conversation_id=conversation_id,
        conversation_token=secrets.token_hex(10) if conversation_id is None else None,
        meta=meta, attachments=mail.attachments,
    ))
    if conversation_id is None and not intake.duplicate and _wants_ack(settings, mail, address,
                                                                       mail_from):
        rt.spawn(acknowledge(rt, intake, mail))
    return intake


def _public(settings: Settings, addresses: list[str]) -> list[str]:
    # A reply+<token>@ address is the customer's secret key to the thread: agents see ours.
    shown = [settings.email_address if reply_token(settings, a) else a for a in addresses]
    return list(dict.fromkeys(shown))


async def find_conversation(rt: Runtime, thread_ids: list[str], tokens: list[str]) -> int | None:
    """The email conversation this message continues, if its headers or address name one."""
    if not thread_ids and not tokens:
        return None
    keys = [f"{CHANNEL}:{i}" for i in thread_ids]
    async with rt.sessions() as session:
        if keys:
            rows = (await session.execute(
                select(Message.external_id, Message.conversation_id)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Message.external_id.in_(keys), Conversation.channel == CHANNEL)
            )).all()
            found = {key: conversation for key, conversation in rows}
            for key in keys:
                if key in found:
                    return found[key]
        for token in tokens:
            conversation = await session.scalar(select(Conversation.id).where(
                Conversation.token == token, Conversation.channel == CHANNEL))
            if conversation is not None:
                return conversation
    return None


def _wants_ack(settings: Settings, mail: ParsedMail, address: str, mail_from: str) -> bool:
    local, _, domain = address.rpartition("@")
    return not (
        mail.automatic
        or not mail_from  # a bounce (null envelope sender)
        or _NO_REPLY.match(local) is not None
        or domain == settings.email_domain.lower()
        or address == settings.email_address.lower()
    )


async def acknowledge(rt: Runtime, intake: Intake, mail: ParsedMail) -> None:
    """Tell the customer a new conversation was received; stored as an outbound message of the
    conversation (so agents see what was said), then sent like any reply."""
    try:
        message_id = await _store_ack(rt, intake, mail)
    except Exception:  # the mail itself is safely stored; only the courtesy is lost
        log.exception("the acknowledgement of conversation %s was not stored",
                      intake.conversation_id)
        return
    await send_message(rt, message_id)


async def _store_ack(rt: Runtime, intake: Intake, mail: ParsedMail) -> int:
    settings = rt.settings
    async with rt.sessions.begin() as session:
        customer = await session.get(Customer, intake.contact["customer_id"])
        assert customer is not None
        if customer.source == "auto":
            # A stranger's language was only a default; the mail itself says more.
            language = "zh-CN" if _CJK.search(mail.subject + mail.text) else "en"
        else:
            language = customer.language
        topic = base_subject(mail.subject) or (mail.visible or mail.text).strip()[:60]
        values = {"name": customer.name, "company": settings.company_name, "subject": topic}
        subject = rt.templates.render("email_ack_subject", language, **values)
        message = Message(
            conversation_id=intake.conversation_id, contact_id=intake.contact["id"],
            direction=Direction.OUTBOUND.value, body=rt.templates.render(
                "email_ack_body", language, **values),
            created_at=utc(rt.clock.now()), meta={"automatic": "ack", "subject": subject},
            status="queued",
        )
        session.add(message)
        await session.flush()
        return message.id


# -- outbound ----------------------------------------------------------------------------------


class MailSender:
    """Sends agents' replies (and acknowledgements) through the configured relay."""

    provider = "smtp"

    async def send(self, rt: Runtime, out: Outgoing) -> str | None:
        settings = rt.settings
        to = try_normalize_email(out.to or "")
        if to is None:
            raise SendFailed(f"no email address to send to ({out.to!r})", retry=False)
        message = EmailMessage()
        message["From"] = formataddr((settings.company_name, settings.email_address))
        message["To"] = to
        message["Subject"] = out.meta.get("subject") or reply_subject(out.subject)
        message["Date"] = format_datetime(utc(rt.clock.now()))
        message_id = make_msgid(domain=settings.email_domain)
        message["Message-ID"] = message_id
        customer_id = await _last_customer_id(rt, out)
        if customer_id is not None:
            message["In-Reply-To"] = f"<{customer_id}>"
        chain = [i for i in out.in_reply_to if is_real_id(i)]
        if chain:
            # RFC 5322 §3.6.4: keep the first id and the latest ones when trimming.
            kept = chain if len(chain) <= 20 else [chain[0], *chain[-19:]]
            message["References"] = " ".join(f"<{i}>" for i in kept)
        if out.conversation_token:
            message["Reply-To"] = reply_address(settings, out.conversation_token)
        if out.meta.get("automatic"):
            message["Auto-Submitted"] = "auto-replied"  # RFC 3834: no auto-reply to this
            message["X-Auto-Response-Suppress"] = "All"
        message.set_content(out.body)
        await _relay(settings, message, to)
        return message_id.strip("<>")


async def _last_customer_id(rt: Runtime, out: Outgoing) -> str | None:
    if out.conversation_id is None:
        return None
    async with rt.sessions() as session:
        keys = (await session.scalars(
            select(Message.external_id).where(
                Message.conversation_id == out.conversation_id,
                Message.direction == Direction.INBOUND.value,
                Message.external_id.is_not(None), Message.id < out.message_id,
            ).order_by(Message.id.desc()).limit(20)
        )).all()
    for key in keys:
        message_id = (key or "").split(":", 1)[1]
        if is_real_id(message_id):
            return message_id
    return None


async def _relay(settings: Settings, message: EmailMessage, to: str) -> None:
    implicit_tls = settings.smtp_port == 465 and not settings.smtp_starttls
    try:
        await aiosmtplib.send(
            message, sender=settings.email_address, recipients=[to],
            hostname=settings.smtp_host, port=settings.smtp_port,
            username=settings.smtp_username, password=settings.smtp_password,
            start_tls=settings.smtp_starttls, use_tls=implicit_tls, timeout=30,
        )
    except aiosmtplib.SMTPRecipientsRefused as e:
        codes = [r.code for r in e.recipients]
        raise SendFailed(f"the relay refused {to}: " + "; ".join(
            f"{r.code} {r.message}" for r in e.recipients), retry=any(c < 500 for c in codes),
        ) from None
    except aiosmtplib.SMTPResponseException as e:
        raise SendFailed(f"the relay answered {e.code} {e.message}", retry=e.code < 500) from None
    except (aiosmtplib.SMTPException, OSError) as e:
        raise SendFailed(f"the relay {settings.smtp_host}:{settings.smtp_port} could not be "
                         f"reached: {e}") from None


# -- lifecycle ---------------------------------------------------------------------------------


async def _start(app: web.Application) -> None:
    rt = app[RUNTIME]
    rt.senders[CHANNEL] = MailSender()
    settings = rt.settings
    state = app[MAIL]
    handler = _Handler(rt)
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        smtp = _SMTP(handler, enable_SMTPUTF8=True, data_size_limit=settings.inbound_smtp_max_bytes,
                    hostname=settings.email_domain, ident="contactcenter", loop=loop)
        state.connections.add(smtp)
        return smtp

    try:
        server = await loop.create_server(protocol, settings.inbound_smtp_host,
                                          settings.inbound_smtp_port)
    except OSError as e:
        # Several nodes on one host share the database: one of them serving mail is enough.
        log.error("inbound SMTP not started on %s:%s: %s", settings.inbound_smtp_host,
                  settings.inbound_smtp_port, e)
        return
    state.server = server
    state.port = server.sockets[0].getsockname()[1]
    log.info("inbound SMTP on %s:%s", settings.inbound_smtp_host, state.port)


async def _stop(app: web.Application) -> None:
    state = app[MAIL]
    if state.server is None:
        return
    state.server.close()
    for smtp in list(state.connections):
        if smtp.transport is not None:
            smtp.transport.close()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(state.server.wait_closed(), 5)
    state.server = None


def mount(app: web.Application) -> None:
    app[MAIL] = InboundServer()
    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
