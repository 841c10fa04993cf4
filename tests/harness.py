"""A real server on a loopback port, and clients that talk to it as agents and integrations do."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import websockets
from aiohttp import web

from contactcenter.clock import Clock, utc
from contactcenter.runtime import Runtime
from contactcenter.server.app import create_app
from contactcenter.settings import Settings
from contactcenter.storage.models import Queue
from contactcenter.users import create_user

PASSWORD = "correct horse battery"


@dataclass
class Node:
    rt: Runtime
    runner: web.AppRunner
    url: str

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_node(
    db_url: str, redis_url: str | None, prefix: str, clock: Clock, **settings_: Any
) -> Node:
    """A server node on a free loopback port; `settings_` override Settings fields (e.g. the
    Twilio ones from fake_twilio.twilio_settings, or an SMTP port)."""
    settings_.setdefault("inbound_smtp_port", 0)  # each node its own free port, not 2525
    # The tests run the regrade, health sweep and selections themselves, at the time they set.
    settings_.setdefault("periodic_jobs", False)
    settings = Settings(database_url=db_url, redis_url=redis_url, redis_prefix=prefix,
                        node_id=f"test-{uuid.uuid4().hex[:6]}", **settings_)
    rt = Runtime.build(settings, clock=clock)
    runner = web.AppRunner(create_app(rt), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return Node(rt, runner, f"http://127.0.0.1:{port}")


async def add_user(node: Node, username: str, role: str = "agent", **kw: Any) -> int:
    async with node.rt.sessions.begin() as session:
        user = await create_user(session, username=username, password=PASSWORD, role=role,
                                 now=utc(node.rt.clock.now()), **kw)
        return user.id


async def add_queue(node: Node, name: str, **kw: Any) -> int:
    kw.setdefault("channels", ["api", "sms", "chat", "email", "voice"])
    kw.setdefault("dispositions", ["resolved", "follow-up"])
    async with node.rt.sessions.begin() as session:
        queue = Queue(name=name, **kw)
        session.add(queue)
        await session.flush()
        queue_id = queue.id
    node.rt.queue_cache.clear()
    await node.rt.broker.submit({"op": "reload"})
    return queue_id


async def login(node: Node, username: str, password: str = PASSWORD) -> str:
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{node.url}/api/v1/auth/login",
                            json={"username": username, "password": password})
        assert r.status == 200, await r.text()
        return (await r.json())["token"]


@dataclass
class Api:
    node: Node
    token: str
    http: aiohttp.ClientSession = field(default_factory=aiohttp.ClientSession)

    async def call(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        async with self.http.request(method, f"{self.node.url}/api/v1{path}", headers=headers,
                                     **kw) as r:
            text = await r.text()
            return r.status, json.loads(text) if text else None

    async def post_contact(self, sender: str, body: str = "hello", **kw: Any) -> dict[str, Any]:
        status, data = await self.call("POST", "/contacts", json={"from": sender, "body": body,
                                                                  **kw})
        assert status == 201, data
        return data["contact"]

    async def close(self) -> None:
        await self.http.close()


class Agent:
    """An agent's browser, played by a `websockets` client."""

    def __init__(self, ws: websockets.ClientConnection, user_id: int) -> None:
        self.ws = ws
        self.user_id = user_id
        self.seen: list[dict[str, Any]] = []
        self.last_seq = 0

    @classmethod
    async def connect(cls, node: Node, token: str, user_id: int, *,
                      last_seq: int | None = None) -> Agent:
        q = f"?token={token}" + (f"&last_seq={last_seq}" if last_seq is not None else "")
        agent = cls(await websockets.connect(f"{node.ws_url}/agent/ws{q}"), user_id)
        return agent

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.seen.append(message)
        if isinstance(message.get("seq"), int):
            self.last_seq = message["seq"]
        return message

    async def expect(self, types: str | Iterable[str], timeout: float = 10.0,
                     **match: Any) -> dict[str, Any]:
        """The next message of one of these types (others are recorded and skipped)."""
        wanted = {types} if isinstance(types, str) else set(types)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"no {wanted} {match} within {timeout}s; saw {self.seen}")
            try:
                m = await self.recv(left)
            except TimeoutError:
                continue
            if m.get("type") in wanted and all(_get(m, k) == v for k, v in match.items()):
                return m

    async def nothing_for(self, seconds: float, types: str = "offer") -> None:
        try:
            m = await self.expect(types, timeout=seconds)
        except AssertionError:
            return
        raise AssertionError(f"unexpected {m}")

    async def available(self) -> None:
        await self.send(type="status", status="available")
        await self.expect("status", status="available")

    async def close(self) -> None:
        await self.ws.close()


def _get(m: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("__"):
        m = m.get(part) if isinstance(m, dict) else None  # type: ignore[assignment]
    return m
