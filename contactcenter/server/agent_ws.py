"""`/agent/ws`: one agent's live connection.

Commands go from the socket into the router's input log; everything the server says to the agent
comes back through the broker, numbered per agent, so it reaches the agent on whichever node
holds the socket, and a reconnecting client gets exactly what it missed (or a snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import datetime
from typing import Any

from aiohttp import WSMsgType, web
from sqlalchemy import select

from contactcenter import metrics
from contactcenter.broker.base import Frame, agent_channel
from contactcenter.clock import utc
from contactcenter.contacts import message_public
from contactcenter.domain import AgentStatus, ContactState, Direction, Role
from contactcenter.outbound import send_message
from contactcenter.runtime import Runtime
from contactcenter.screenpop import build_screen_pop
from contactcenter.server.auth import authenticate
from contactcenter.server.keys import RUNTIME
from contactcenter.storage.models import Contact, Customer, Message, Queue, User
from contactcenter.users import user_public
from contactcenter.wire import dumps, loads

log = logging.getLogger(__name__)

AGENT_SOCKETS = web.AppKey("agent_sockets", dict)

_LIVE = [ContactState.OFFERED.value, ContactState.ACTIVE.value, ContactState.WRAPUP.value]
_COMMANDS = {"accept", "reject", "end"}


class AgentSocket:
    def __init__(
        self, rt: Runtime, user: User, ws: web.WebSocketResponse,
        registry: dict[int, AgentSocket], transport: asyncio.Transport | None,
    ) -> None:
        self.rt = rt
        self.registry = registry
        self.user = user
        # Read on every frame in and out: a plain int, not an ORM attribute lookup each time.
        self.agent_id: int = user.id
        self.ws = ws
        self.conn = uuid.uuid4().hex
        self.status = AgentStatus.AWAY.value
        # Frames as the broker numbered them, and resyncs ({"batch": [...]}) the client asked for.
        self._outbox: asyncio.Queue[Frame | dict[str, Any]] = asyncio.Queue()
        self._sent = 0
        self.transport = transport  # the socket's, which `_send_frames` writes to itself

    # -- outgoing ----------------------------------------------------------------------------
    def _on_broker(self, frame: Frame) -> None:
        if frame.kind == "status":
            self.status = frame.note
        self._outbox.put_nowait(frame)

    async def _sender(self) -> None:
        outbox = self._outbox
        while True:
            items = [await outbox.get()]
            while not outbox.empty():  # what a round delivered to this agent came in together
                items.append(outbox.get_nowait())
            frames: list[Frame] = []
            for item in items:
                if isinstance(item, dict):
                    # A resync the client asked for goes out whole, whatever was sent before.
                    await self._send_frames(frames)
                    frames = []
                    await self._send_caught_up(item["batch"])
                elif item.seq > self._sent:  # else the catch-up already carried it
                    if item.seq > self._sent + 1:
                        # A gap: an earlier frame is still on its way (from another node, or
                        # round pub/sub while this node's own came straight), or went only to
                        # a socket on another node. The replay buffer has it.
                        await self._send_frames(frames)
                        frames = []
                        await self._send_caught_up(await self._catch_up(self._sent))
                        if item.seq <= self._sent:
                            continue
                    frames.append(item)
                    self._sent = item.seq
            await self._send_frames(frames)

    async def _send_frames(self, frames: list[Frame]) -> None:
        """Frames that are ready together go to the socket in one write: a round's frames for
        one agent (an accept's, an end's and a wrap-up's answers, the next offer) were a system
        call each, and a wake-up each of the agent's machine. aiohttp writes a frame at a time,
        so several are framed here (`websocket_frames`); one goes through aiohttp."""
        if len(frames) == 1:
            await self.ws.send_str(frames[0].text)
        elif frames:
            transport = self.transport
            if transport is None or transport.is_closing() or self.ws.closed:
                raise ConnectionResetError("the agent's socket is closed")
            transport.write(websocket_frames([f.text for f in frames]))
        for f in frames:
            if f.kind == "offer":
                _observe_pop_latency(f.note)

    async def _send(self, message: dict[str, Any]) -> None:
        """A message the socket itself made (a catch-up's, a resync's), not yet encoded."""
        await self.ws.send_str(dumps(message))
        kind = message.get("type")
        if kind == "offer":
            _observe_pop_latency(message.get("contact", {}).get("created_at"))
        elif kind == "status" and isinstance(message.get("status"), str):
            self.status = message["status"]

    async def _send_caught_up(self, messages: list[dict[str, Any]]) -> None:
        """A catch-up's messages (`_catch_up`); live frames up to the last of them are done."""
        for message in messages:
            await self._send(message)
            self._sent = max(self._sent, message.get("seq") or 0)

    async def _catch_up(self, last_seq: int | None) -> list[dict[str, Any]]:
        """What a client that saw `last_seq` missed, or a snapshot when that is gone."""
        if last_seq is not None:
            missed = await self.rt.broker.replay(self.agent_id, last_seq)
            if missed is not None:
                return missed
        return [await self._snapshot()]

    async def _snapshot(self) -> dict[str, Any]:
        # Read the number first: later numbered messages are newer than this snapshot.
        seq = await self.rt.broker.last_seq(self.agent_id)
        async with self.rt.sessions() as session:
            contacts = (await session.scalars(
                select(Contact).where(Contact.agent_id == self.agent_id,
                                      Contact.state.in_(_LIVE)).order_by(Contact.id)
            )).all()
            items = []
            for contact in contacts:
                customer = await session.get(Customer, contact.customer_id)
                queue = await session.get(Queue, contact.queue_id)
                assert customer is not None
                items.append(await build_screen_pop(session, contact, customer, queue))
        return {"type": "snapshot", "seq": seq, "agent": user_public(self.user),
                "status": self.status, "contacts": items}

    async def _say(self, message: dict[str, Any]) -> None:
        await self.rt.broker.deliver(self.agent_id, message)

    # -- incoming ----------------------------------------------------------------------------
    async def _handle(self, raw: str) -> None:
        try:
            m = loads(raw)
        except ValueError:
            await self._say({"type": "error", "message": "messages must be JSON objects"})
            return
        if not isinstance(m, dict) or not isinstance(m.get("type"), str):
            await self._say({"type": "error", "message": "a message needs a string 'type'"})
            return
        kind = m["type"]
        submit = self.rt.broker.submit
        try:
            if kind == "status":
                if m.get("status") not in (AgentStatus.AVAILABLE, AgentStatus.AWAY):
                    raise ValueError("status must be 'available' or 'away'")
                await submit({"op": "status", "agent_id": self.agent_id, "status": m["status"]})
            elif kind in _COMMANDS:
                await submit({"op": kind, "agent_id": self.agent_id,
                              "contact_id": _int(m, "contact_id")})
            elif kind == "wrapup":
                disposition = m.get("disposition")
                if not isinstance(disposition, str) or not disposition:
                    raise ValueError("wrapup needs a 'disposition' code")
                notes = m.get("notes")
                if notes is not None and not isinstance(notes, str):
                    raise ValueError("notes must be text")
                await submit({"op": "complete", "agent_id": self.agent_id,
                              "contact_id": _int(m, "contact_id"), "disposition": disposition,
                              "notes": notes})
            elif kind == "transfer":
                to_queue, to_agent = m.get("queue_id"), m.get("agent_id")
                if (to_queue is None) == (to_agent is None):
                    raise ValueError("transfer needs exactly one of 'queue_id' or 'agent_id'")
                await submit({"op": "transfer", "agent_id": self.agent_id,
                              "contact_id": _int(m, "contact_id"),
                              "to_queue_id": None if to_queue is None else _int(m, "queue_id"),
                              "to_agent_id": None if to_agent is None else _int(m, "agent_id")})
            elif kind == "reply":
                await self._reply(_int(m, "contact_id"), m.get("body"))
            elif kind == "typing":
                await self._typing(_int(m, "contact_id"))
            elif kind == "resync":
                last = m.get("last_seq")
                batch = await self._catch_up(last if isinstance(last, int) else None)
                self._outbox.put_nowait({"batch": batch})
            elif kind == "ping":
                await self.ws.send_str(dumps({"type": "pong"}))
            else:
                raise ValueError(f"unknown message type {kind!r}")
        except ValueError as e:
            await self._say({"type": "error", "request": kind, "message": str(e)})

    async def _typing(self, contact_id: int) -> None:
        """Show the chat customer that the agent is writing (channels/chat.py listens)."""
        async with self.rt.sessions() as session:
            contact = await session.get(Contact, contact_id)
        if contact is None or contact.agent_id != self.agent_id or contact.state not in (
            ContactState.ACTIVE.value, ContactState.WRAPUP.value
        ):
            raise ValueError(f"contact {contact_id} is not active for you")
        if contact.channel == "chat" and contact.conversation_id is not None:
            await self.rt.broker.publish(f"chat:{contact.conversation_id}", {"type": "typing"})

    async def _reply(self, contact_id: int, body: Any) -> None:
        if not isinstance(body, str) or not body.strip():
            raise ValueError("reply needs a non-empty 'body'")
        if len(body) > 20_000:
            raise ValueError("reply body is longer than 20000 characters")
        now = utc(self.rt.clock.now())
        async with self.rt.sessions.begin() as session:
            contact = await session.get(Contact, contact_id)
            if contact is None or contact.agent_id != self.agent_id or contact.state not in (
                ContactState.ACTIVE.value, ContactState.WRAPUP.value
            ):
                raise ValueError(f"contact {contact_id} is not active for you")
            message = Message(contact_id=contact.id, conversation_id=contact.conversation_id,
                              direction=Direction.OUTBOUND.value, author_user_id=self.agent_id,
                              body=body, created_at=now, meta={}, status="queued")
            session.add(message)
            await session.flush()
            stored = message_public(message)
        await self._say({"type": "message", "contact_id": contact_id, "message": stored})
        self.rt.spawn(send_message(self.rt, stored["id"]))

    # -- lifecycle ---------------------------------------------------------------------------
    def announce(self) -> dict[str, Any]:
        return {
            "op": "connect", "conn": self.conn, "name": self.user.display_name,
            "agent": {"id": self.agent_id, "skills": list(self.user.skills),
                      "capacity": dict(self.user.capacity)},
            "status": self.status,
        }

    async def run(self, last_seq: int | None) -> None:
        sockets = self.registry
        previous = sockets.get(self.agent_id)
        sockets[self.agent_id] = self
        if previous is not None:
            await previous.ws.close(code=4000, message=b"replaced by a newer connection")
        # Subscribe before catching up, send the catch-up, then start the live sender: live
        # messages queue meanwhile and those the catch-up already covered are skipped.
        unsubscribe = self.rt.broker.subscribe(agent_channel(self.agent_id), self._on_broker)
        metrics.CONNECTED.inc()
        sender: asyncio.Task[None] | None = None
        try:
            missed = await self._catch_up(last_seq)
            # Nothing missed: the client's number is the last one (see `Broker.replay`).
            self._sent = 0 if missed else last_seq or 0
            await self._send_caught_up(missed)
            sender = asyncio.create_task(self._sender())
            await self.rt.broker.heartbeat([self.agent_id], 3 * self.rt.settings.heartbeat_seconds)
            await self.rt.broker.submit(self.announce())
            async for msg in self.ws:
                if msg.type == WSMsgType.TEXT:
                    await self._handle(msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            metrics.CONNECTED.dec()
            unsubscribe()
            if sender is not None:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
            if sockets.get(self.agent_id) is self:
                del sockets[self.agent_id]
                await self.rt.broker.clear_presence(self.agent_id)
            await self.rt.broker.submit(
                {"op": "disconnect", "agent_id": self.agent_id, "conn": self.conn}
            )


def websocket_frames(texts: list[str]) -> bytes:
    """Text messages as unmasked, unfragmented websocket frames back to back (RFC 6455 §5.2:
    FIN and opcode 1, then the length in 7, 16 or 64 bits), as a server sends them."""
    out = bytearray()
    for text in texts:
        data = text.encode()
        n = len(data)
        if n < 126:
            out += bytes((0x81, n))
        elif n < 1 << 16:
            out += b"\x81\x7e" + n.to_bytes(2, "big")
        else:
            out += b"\x81\x7f" + n.to_bytes(8, "big")
        out += data
    return bytes(out)


def _int(m: dict[str, Any], key: str) -> int:
    value = m.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key!r} must be an integer")
    return value


def _observe_pop_latency(created: str | None) -> None:
    if created:
        delay = time.time() - datetime.fromisoformat(created).timestamp()
        if 0 <= delay < 3600:  # a restored contact's age is not a screen-pop latency
            metrics.SCREEN_POP.observe(delay)


async def agent_ws(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    user = await authenticate(rt, request, Role.AGENT)
    last = request.query.get("last_seq")
    last_seq = int(last) if last is not None and last.isdigit() else None
    # No per-message deflate: it cost ~7% of the server's CPU at load for frames of a few KB.
    ws = web.WebSocketResponse(heartbeat=rt.settings.heartbeat_seconds, max_msg_size=1 << 20,
                               compress=False)
    await ws.prepare(request)
    await AgentSocket(rt, user, ws, request.app[AGENT_SOCKETS], request.transport).run(last_seq)
    return ws


async def refresh_presence(app: web.Application) -> None:
    """Every node keeps its own agents present; a dead node's agents expire on their own."""
    rt = app[RUNTIME]
    while True:
        sockets = app[AGENT_SOCKETS]
        if sockets:
            with contextlib.suppress(Exception):
                await rt.broker.heartbeat(list(sockets), 3 * rt.settings.heartbeat_seconds)
        await asyncio.sleep(rt.settings.heartbeat_seconds / 2)


def reannounce(app: web.Application) -> None:
    """A new router knows no agents: every node tells it about its own."""
    rt = app[RUNTIME]
    for sock in list(app[AGENT_SOCKETS].values()):
        asyncio.get_running_loop().create_task(rt.broker.submit(sock.announce()))
