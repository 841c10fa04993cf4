"""Web chat: an embeddable widget (`/chat/widget.js`) and the customer's socket (`/chat/ws`).

The customer is nobody we know. A chat session token — `Conversation.token`, a random secret
the widget keeps in the browser's localStorage — is the only key to a conversation, and a socket
sees that conversation and nothing else. What the customer types goes through `take_in` like any
inbound item; the agent's replies, typing and the contact's progress come back over the broker
channel `chat:<conversation id>`, to which every node's sockets for that conversation listen, so
a customer on one node hears an agent on another. The frames are in docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from sqlalchemy import select
from yarl import URL

from contactcenter.clock import utc
from contactcenter.contacts import Inbound, take_in
from contactcenter.domain import Channel, ContactState, EventKind
from contactcenter.errors import ContactCenterError, Forbidden, NotFound
from contactcenter.hours import is_open
from contactcenter.outbound import Outgoing, SendFailed
from contactcenter.phones import normalize_email, normalize_phone
from contactcenter.queues import active_queues, select_queue
from contactcenter.routing import ContactEvent
from contactcenter.runtime import Runtime
from contactcenter.server.keys import RUNTIME
from contactcenter.settings import Settings
from contactcenter.storage.models import Contact, Conversation, Message, Queue, User
from contactcenter.wire import dumps, loads

CHAT = Channel.CHAT.value
STATIC = Path(__file__).parent / "static"
CHAT_SOCKETS = web.AppKey("chat_sockets", set)

MAX_BODY = 4000  # characters in one customer line
MAX_NAME = 100
MAX_FRAME = 64 * 1024  # bytes; a bigger frame closes the socket (1009) before it is read
# A socket may send this many lines (and chat starts) at once, then one per REFILL_SECONDS.
BURST = 8
REFILL_SECONDS = 2.0
TYPING_EVERY = 3.0  # seconds; a customer's typing reaches the agent at most this often
HISTORY_LIMIT = 500  # messages a resuming customer gets back, the newest ones
DEFAULT_LANGUAGE = "zh-CN"

_CLOSE: dict[str, Any] = {}  # put in a socket's outbox: close it once the frames before are out
_WAITING = (ContactState.QUEUED.value, ContactState.OFFERED.value)
_STATUS_BY_EVENT = {
    EventKind.ENTERED: "waiting",
    EventKind.TRANSFERRED: "waiting",
    EventKind.ACCEPTED: "connected",
    EventKind.ENDED: "closed",
    EventKind.COMPLETED: "closed",
    EventKind.ABANDONED: "closed",
    EventKind.EXPIRED: "closed",
}


def conversation_channel(conversation_id: int) -> str:
    """The broker channel of one chat conversation (agent_ws publishes typing on it too)."""
    return f"chat:{conversation_id}"


class ChatError(Exception):
    """A frame refused with an error frame; the socket stays open."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Session:
    conversation_id: int
    token: str
    address: str  # the customer's phone, email or generated handle: the contacts' from
    topic: str | None  # the queue chosen before the chat
    language: str


class ChatSocket:
    """One customer's browser tab."""

    def __init__(self, rt: Runtime, ws: web.WebSocketResponse) -> None:
        self.rt = rt
        self.ws = ws
        self.session: _Session | None = None
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._sent_ids: set[int] = set()
        self._sender: asyncio.Task[None] | None = None
        self._unsubscribe: Any = None
        self._allowance = float(BURST)
        self._checked = rt.clock.now()
        self._typing_at: float | None = None

    # -- outgoing ----------------------------------------------------------------------------
    async def _say(self, frame: dict[str, Any]) -> None:
        # Once a session is open every frame goes through the one ordered outbox.
        if self._sender is not None:
            self._outbox.put_nowait(frame)
        else:
            await self.ws.send_str(dumps(frame))

    async def _send_loop(self) -> None:
        while True:
            frame = await self._outbox.get()
            if frame is _CLOSE:
                await self.ws.close()
                return
            if frame.get("type") == "message":
                message_id = frame["message"]["id"]
                if message_id in self._sent_ids:
                    continue  # the history, or another path, already carried it
                self._sent_ids.add(message_id)
            await self.ws.send_str(dumps(frame))

    # -- incoming ----------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.TEXT:
                    await self._handle(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await self._say(_error("bad-frame", "frames must be JSON text"))
                elif msg.type == WSMsgType.ERROR:
                    break
        except ConnectionResetError:
            pass  # the customer went away while we answered: nothing to clean up but below
        finally:
            if self._unsubscribe is not None:
                self._unsubscribe()
            if self._sender is not None:
                self._sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await self._sender

    async def _handle(self, raw: str) -> None:
        try:
            m = loads(raw)
        except ValueError:
            m = None
        if not isinstance(m, dict) or not isinstance(m.get("type"), str):
            await self._say(_error("bad-frame", "a frame is a JSON object with a string 'type'"))
            return
        kind = m["type"]
        try:
            if kind == "start":
                await self._start(m)
            elif kind == "resume":
                await self._resume(m)
            elif kind == "message":
                await self._message(m)
            elif kind == "typing":
                await self._typing()
            elif kind == "end":
                await self._end()
            elif kind == "ping":
                await self._say({"type": "pong"})
            else:
                raise ChatError("bad-frame", f"unknown frame type {kind!r}")
        except (ChatError, ContactCenterError) as e:
            error = _error(e.code, e.message, request=kind)
            if kind == "message" and isinstance(m.get("id"), str):
                error["id"] = m["id"]  # so the widget can mark that line as not sent
            await self._say(error)

    def _spend(self) -> None:
        """A token bucket per socket, on the runtime's clock."""
        now = self.rt.clock.now()
        self._allowance = min(BURST, self._allowance + max(0.0, now - self._checked)
                              / REFILL_SECONDS)
        self._checked = now
        if self._allowance < 1:
            raise ChatError("rate-limited",
                            f"too many messages; one per {REFILL_SECONDS:g} s after {BURST}")
        self._allowance -= 1

    def _need_session(self) -> _Session:
        if self.session is None:
            raise ChatError("no-session", "send 'start' or 'resume' first")
        return self.session

    async def _start(self, m: dict[str, Any]) -> None:
        if self.session is not None:
            raise ChatError("bad-frame", "this socket already has a chat")
        name = _text(m, "name", MAX_NAME)
        phone_raw, email_raw = _text(m, "phone", 64), _text(m, "email", 254)
        phone = normalize_phone(phone_raw) if phone_raw else None
        email = normalize_email(email_raw) if email_raw else None
        body = _body(m, required=False)
        page = _text(m, "page", 500)
        language = _language(m)
        queue = await _chat_queue(self.rt, _text(m, "topic", 64), fallback=False)
        # The customer card is found by phone or email on every line (take_in); an address that
        # is neither would make a new customer each time, so one of them is required.
        address = phone or email
        if address is None:
            raise ChatError("contact-required", "leave a phone number or an email address")
        open_now = is_open(queue.business_hours, utc(self.rt.clock.now()))
        if not open_now and not body:
            raise ChatError("message-required",
                            "we are closed now: leave a message and we will answer")
        self._spend()
        token = secrets.token_urlsafe(32)
        meta = _meta(topic=queue.name, name=name, email=email if phone else None, page=page,
                     out_of_hours=not open_now)
        intake = await take_in(self.rt, Inbound(
            channel=CHAT, address=address, body=body, queue=queue.name, display_name=name,
            conversation_token=token, contact_meta=meta,
        ))
        await self._open(_Session(intake.conversation_id, token, address, queue.name, language))
        if not open_now:
            await self._say(self._closed_notice())

    async def _resume(self, m: dict[str, Any]) -> None:
        if self.session is not None:
            raise ChatError("bad-frame", "this socket already has a chat")
        token = m.get("token")
        found = await _find_chat(self.rt, token) if isinstance(token, str) else None
        if found is None:
            await self.ws.send_str(dumps(_error("unknown-session",
                                                "this chat does not exist; start a new one")))
            await self.ws.close(code=4404, message=b"unknown session")
            return
        conversation_id, address, topic = found
        await self._open(_Session(conversation_id, str(token), address, topic, _language(m)))

    async def _open(self, session: _Session) -> None:
        # Listen before reading the history: a line that lands in between comes twice and the
        # sender drops the repeat, instead of being lost.
        self._unsubscribe = self.rt.broker.subscribe(
            conversation_channel(session.conversation_id), self._outbox.put_nowait)
        self.session = session
        history, status = await _history(self.rt, session.conversation_id)
        self._sent_ids.update(h["id"] for h in history)
        await self.ws.send_str(dumps({"type": "session", "token": session.token,
                                      "topic": session.topic, "status": status,
                                      "history": history}))
        self._sender = asyncio.create_task(self._send_loop())

    async def _message(self, m: dict[str, Any]) -> None:
        session = self._need_session()
        body = _body(m, required=True)
        client_id = _text(m, "id", 64)
        self._spend()
        queue = await _chat_queue(self.rt, session.topic, fallback=True)
        open_now = is_open(queue.business_hours, utc(self.rt.clock.now()))
        cid = session.conversation_id
        intake = await take_in(self.rt, Inbound(
            channel=CHAT, address=session.address, body=body, queue=queue.name,
            conversation_id=cid,
            # Namespaced by conversation: a resent line is stored once, and one customer's
            # ids can never collide with (or probe) another's.
            external_id=f"{cid}:{client_id}" if client_id else None,
            contact_meta=_meta(topic=queue.name, out_of_hours=not open_now),
        ))
        if intake.message_id is None:
            return
        frame = {"type": "message", "message": {
            "id": intake.message_id, "from": "customer", "body": body,
            "at": utc(self.rt.clock.now()).isoformat(), "client_id": client_id}}
        if intake.duplicate:
            await self._say(frame)  # only this socket missed the answer to its first try
            return
        await self.rt.broker.publish(conversation_channel(cid), frame)  # and the other tabs
        if intake.new_contact and not open_now:
            await self._say(self._closed_notice())

    async def _typing(self) -> None:
        session = self._need_session()
        now = self.rt.clock.now()
        if self._typing_at is not None and now - self._typing_at < TYPING_EVERY:
            return
        self._typing_at = now
        contact = await _live_contact(self.rt, session.conversation_id)
        if contact is not None and contact.state == ContactState.ACTIVE.value and contact.agent_id:
            await self.rt.broker.deliver(contact.agent_id,
                                         {"type": "customer_typing", "contact_id": contact.id})

    async def _end(self) -> None:
        session = self._need_session()
        contact = await _live_contact(self.rt, session.conversation_id)
        if contact is not None and contact.state in (*_WAITING, ContactState.ACTIVE.value):
            await self.rt.broker.submit({"op": "customer_left", "contact_id": contact.id})
        await self._say({"type": "ended"})
        self._outbox.put_nowait(_CLOSE)  # after what is queued: "ended" is the last frame

    def _closed_notice(self) -> dict[str, Any]:
        language = self.session.language if self.session else DEFAULT_LANGUAGE
        return {"type": "closed", "text": self.rt.templates.render(
            "chat_closed", language, company=self.rt.settings.company_name)}


# -- helpers -----------------------------------------------------------------------------------
def _error(code: str, message: str, **more: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, **more}


def _text(m: dict[str, Any], key: str, limit: int) -> str | None:
    value = m.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ChatError("invalid", f"{key!r} must be text")
    value = value.strip()
    if len(value) > limit:
        raise ChatError("invalid", f"{key!r} is longer than {limit} characters")
    return value or None


def _body(m: dict[str, Any], *, required: bool) -> str:
    body = m.get("body", m.get("message"))
    if body is None and not required:
        return ""
    if not isinstance(body, str):
        raise ChatError("invalid", "the message must be text")
    if len(body) > MAX_BODY:
        raise ChatError("too-long", f"a message may have at most {MAX_BODY} characters")
    if required and not body.strip():
        raise ChatError("invalid", "the message is empty")
    return body.strip()


def _language(m: dict[str, Any]) -> str:
    value = m.get("language")
    return value if isinstance(value, str) and 0 < len(value) <= 16 else DEFAULT_LANGUAGE


def _meta(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v not in (None, False)}


async def _chat_queue(rt: Runtime, topic: str | None, *, fallback: bool) -> Queue:
    """The topic's queue; for a running chat whose queue has gone, the default chat queue."""
    async with rt.sessions() as session:
        queues = await active_queues(session)
    try:
        return select_queue(queues, CHAT, name=topic)
    except NotFound:
        if not fallback or topic is None:
            raise
        return select_queue(queues, CHAT)


async def _find_chat(rt: Runtime, token: str) -> tuple[int, str, str | None] | None:
    """(conversation id, customer address, topic) of the chat this token opens, if any."""
    if not 0 < len(token) <= 64:
        return None
    async with rt.sessions() as session:
        # Only chat threads: an email reply+<token>@ address is no key to a chat.
        conversation = await session.scalar(select(Conversation).where(
            Conversation.token == token, Conversation.channel == CHAT))
        if conversation is None:
            return None
        last = await session.scalar(
            select(Contact).where(Contact.conversation_id == conversation.id)
            .order_by(Contact.id.desc()).limit(1))
        if last is None:
            return None
        queue = await session.get(Queue, last.queue_id)
        return conversation.id, last.from_address or "", queue.name if queue else None


async def _live_contact(rt: Runtime, conversation_id: int) -> Contact | None:
    async with rt.sessions() as session:
        return await session.scalar(
            select(Contact).where(Contact.conversation_id == conversation_id,
                                  Contact.state.in_([*_WAITING, ContactState.ACTIVE.value,
                                                     ContactState.WRAPUP.value]))
            .order_by(Contact.id.desc()).limit(1))


async def _history(rt: Runtime, conversation_id: int) -> tuple[list[dict[str, Any]], str]:
    """The conversation as the customer sees it (no private notes), and where it stands."""
    async with rt.sessions() as session:
        messages = (await session.scalars(
            select(Message).where(Message.conversation_id == conversation_id,
                                  Message.private.is_(False))
            .order_by(Message.id.desc()).limit(HISTORY_LIMIT))).all()
    contact = await _live_contact(rt, conversation_id)
    if contact is None or contact.state == ContactState.WRAPUP.value:
        status = "closed"
    else:
        status = "waiting" if contact.state in _WAITING else "connected"
    return [_public(m) for m in reversed(messages)], status


def _public(message: Message) -> dict[str, Any]:
    client_id = None
    if message.direction == "inbound" and message.external_id:
        client_id = message.external_id.split(":", 2)[-1]  # chat:<conversation>:<client id>
    return {"id": message.id, "from": "customer" if message.direction == "inbound" else "agent",
            "body": message.body, "at": message.created_at.isoformat(), "client_id": client_id}


def _origin_allowed(settings: Settings, origin: str | None) -> bool:
    allowed = settings.chat_allowed_origins
    if not allowed:
        return True
    own = str(URL(settings.public_url).origin())
    return origin is not None and origin.rstrip("/") in {o.rstrip("/") for o in [*allowed, own]}


def _cors(request: web.Request) -> dict[str, str]:
    origin = request.headers.get("Origin")
    if not request.app[RUNTIME].settings.chat_allowed_origins:
        return {"Access-Control-Allow-Origin": "*"}
    if origin and _origin_allowed(request.app[RUNTIME].settings, origin):
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Vary": "Origin"}


# -- outbound and contact events ----------------------------------------------------------------
class ChatSender:
    """An agent's reply reaches the customer's sockets on whichever node they are; a customer
    who is away reads it in the history when the widget resumes."""

    async def send(self, rt: Runtime, out: Outgoing) -> str | None:
        if out.conversation_id is None:
            raise SendFailed("a chat contact without a conversation", retry=False)
        await rt.broker.publish(conversation_channel(out.conversation_id), {
            "type": "message", "message": {
                "id": out.message_id, "from": "agent", "body": out.body,
                "at": utc(rt.clock.now()).isoformat(), "client_id": None}})
        return None


async def on_contact_event(rt: Runtime, event: ContactEvent) -> None:
    """Tell the customer where their chat stands: waiting, with an agent, or closed."""
    status = _STATUS_BY_EVENT.get(event.kind)
    if status is None:
        return
    async with rt.sessions() as session:
        contact = await session.get(Contact, event.contact_id)
        agent = await session.get(User, event.agent_id) if status == "connected" and \
            event.agent_id is not None else None
    if contact is None or contact.conversation_id is None:
        return
    frame: dict[str, Any] = {"type": "status", "status": status}
    if agent is not None:
        frame["agent"] = agent.display_name or agent.username
    await rt.broker.publish(conversation_channel(contact.conversation_id), frame)


# -- HTTP ----------------------------------------------------------------------------------------
async def widget_js(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "widget.js", headers={
        "Content-Type": "text/javascript; charset=utf-8",
        "Cache-Control": "public, max-age=300",
        "Access-Control-Allow-Origin": "*",
        # Sites that isolate themselves (COEP) may still load it.
        "Cross-Origin-Resource-Policy": "cross-origin",
    })


async def topics(request: web.Request) -> web.Response:
    """The pre-chat choice: active queues taking chat, by the name customers should see."""
    rt = request.app[RUNTIME]
    async with rt.sessions() as session:
        queues = [q for q in await active_queues(session) if CHAT in (q.channels or ())]
    at = utc(rt.clock.now())
    language = request.query.get("lang") or DEFAULT_LANGUAGE
    body = {
        "topics": [{"topic": q.name, "name": _display_name(q),
                    "open": is_open(q.business_hours, at)} for q in queues],
        "closed_text": rt.templates.render("chat_closed", language,
                                           company=rt.settings.company_name),
    }
    return web.json_response(body, headers=_cors(request))


def _display_name(queue: Queue) -> str:
    # Queues have no separate public title: the first line of the description serves.
    lines = (queue.description or "").strip().splitlines()
    return lines[0].strip()[:80] if lines else queue.name


async def chat_ws(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    if not _origin_allowed(rt.settings, request.headers.get("Origin")):
        raise Forbidden("this site may not open a chat (see CC_CHAT_ALLOWED_ORIGINS)")
    ws = web.WebSocketResponse(heartbeat=rt.settings.heartbeat_seconds, max_msg_size=MAX_FRAME)
    await ws.prepare(request)
    sockets = request.app[CHAT_SOCKETS]
    sockets.add(ws)
    try:
        await ChatSocket(rt, ws).run()
    finally:
        sockets.discard(ws)
    return ws


async def _start_channel(app: web.Application) -> None:
    rt = app[RUNTIME]
    rt.senders[CHAT] = ChatSender()
    rt.event_hooks[CHAT] = on_contact_event


async def _close_sockets(app: web.Application) -> None:
    for ws in list(app[CHAT_SOCKETS]):
        await ws.close(code=1001, message=b"server shutting down")


def mount(app: web.Application) -> None:
    app[CHAT_SOCKETS] = set()
    app.router.add_get("/chat/widget.js", widget_js)
    app.router.add_get("/chat/topics", topics)
    app.router.add_get("/chat/ws", chat_ws)
    app.on_startup.append(_start_channel)
    app.on_shutdown.append(_close_sockets)
