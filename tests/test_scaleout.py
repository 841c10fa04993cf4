"""Two real server processes sharing PostgreSQL and Redis, agents on both, contacts into both.

The router runs on one node at a time; these tests check from the outside (sockets, the event
log) that no contact is offered to two agents at once and no agent goes over capacity, and that
the other node takes over routing when the leader dies.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import websockets
from conftest import REDIS_URL
from harness import PASSWORD, Agent
from sqlalchemy import select

from contactcenter.storage.db import make_engine, sessionmaker
from contactcenter.storage.models import ContactEvent, Queue
from contactcenter.users import create_user


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    url: str

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")


async def _spawn(db_url: str, prefix: str, name: str, log_dir: Path) -> Process:
    port = _free_port()
    env = {**os.environ, "CC_DATABASE_URL": db_url, "CC_REDIS_URL": REDIS_URL,
           "CC_REDIS_PREFIX": prefix, "CC_PORT": str(port), "CC_NODE_ID": name,
           "CC_LOG_LEVEL": "WARNING"}
    log = log_dir / f"{name}.log"
    # Popen returns at once; a file, not a pipe, so a chatty node can never block on it.
    proc = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "contactcenter.cli", "serve"], env=env,
        stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            if proc.poll() is not None:
                raise RuntimeError(f"node {name} died: {log.read_text()}")
            try:
                async with http.get(f"{url}/healthz") as r:
                    if r.status == 200:
                        return Process(proc, url)
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"node {name} did not come up")


@pytest.fixture
async def cluster(
    pg_url: str, tmp_path: Path
) -> AsyncIterator[tuple[list[Process], dict[str, int], int]]:
    engine = make_engine(pg_url)
    sessions = sessionmaker(engine)
    now = datetime.now(UTC)
    users: dict[str, int] = {}
    async with sessions.begin() as session:
        for i in range(6):
            user = await create_user(session, username=f"agent{i}", password=PASSWORD,
                                     role="agent", now=now, capacity={"api": 1})
            users[user.username] = user.id
        await create_user(session, username="boss", password=PASSWORD, role="supervisor",
                          now=now)
        queue = Queue(name="support", channels=["api"], dispositions=["resolved"])
        session.add(queue)
        await session.flush()
        queue_id = queue.id
    await engine.dispose()
    prefix = f"cctest-{uuid.uuid4().hex[:8]}"
    nodes = [await _spawn(pg_url, prefix, name, tmp_path) for name in ("node1", "node2")]
    yield nodes, users, queue_id
    for node in nodes:
        if node.proc.poll() is None:
            node.proc.send_signal(signal.SIGTERM)
    for node in nodes:
        try:
            node.proc.wait(10)
        except subprocess.TimeoutExpired:
            node.proc.kill()


async def _token(url: str, username: str) -> str:
    async with aiohttp.ClientSession() as http, http.post(
        f"{url}/api/v1/auth/login", json={"username": username, "password": PASSWORD}
    ) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["token"]


class WorkingAgent:
    """Accepts every offer, works it briefly and wraps up; records what it was offered."""

    def __init__(self, agent: Agent, name: str) -> None:
        self.agent, self.name = agent, name
        self.offers: list[int] = []
        self.holding: set[int] = set()
        self.overlaps: list[tuple[int, set[int]]] = []
        self.done: set[int] = set()

    async def run(self) -> None:
        rng = random.Random(self.name)
        ws = self.agent.ws
        try:
            async for raw in ws:
                m = json.loads(raw)
                if m.get("type") == "offer":
                    cid = m["contact"]["id"]
                    if self.holding:  # capacity is 1: a second offer would be a violation
                        self.overlaps.append((cid, set(self.holding)))
                    self.holding.add(cid)
                    self.offers.append(cid)
                    await self.agent.send(type="accept", contact_id=cid)
                elif m.get("type") == "contact":
                    c = m["contact"]
                    if c["state"] == "active":
                        await asyncio.sleep(rng.uniform(0, 0.05))
                        await self.agent.send(type="end", contact_id=c["id"])
                    elif c["state"] == "wrapup":
                        await self.agent.send(type="wrapup", contact_id=c["id"],
                                              disposition="resolved")
                    elif c["state"] == "closed":
                        self.holding.discard(c["id"])
                        self.done.add(c["id"])
                elif m.get("type") == "offer_revoked":
                    self.holding.discard(m["contact_id"])
        except websockets.ConnectionClosed:
            pass


async def _start_agents(nodes: list[Process], users: dict[str, int]) -> list[WorkingAgent]:
    workers = []
    for i, (name, user_id) in enumerate(sorted(users.items())):
        node = nodes[i % len(nodes)]
        agent = await Agent.connect(node, await _token(node.url, name), user_id)  # type: ignore[arg-type]
        assert (await agent.recv())["type"] == "snapshot"
        await agent.expect("status", status="away")
        await agent.available()
        workers.append(WorkingAgent(agent, name))
    return workers


async def _post(http: aiohttp.ClientSession, node: Process, token: str, n: int) -> int:
    async with http.post(f"{node.url}/api/v1/contacts",
                         json={"from": f"+86138{n:08d}", "body": f"contact {n}"},
                         headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["contact"]["id"]


async def _routing_nodes(nodes: list[Process]) -> list[str]:
    leaders = []
    async with aiohttp.ClientSession() as http:
        for node in nodes:
            if node.proc.poll() is None:
                async with http.get(f"{node.url}/healthz") as r:
                    body = await r.json()
                    if body["routing"]:
                        leaders.append(body["node"])
    return leaders


async def test_two_nodes_offer_each_contact_to_one_agent_at_a_time(
    cluster: tuple[list[Process], dict[str, int], int], pg_url: str
) -> None:
    nodes, users, _ = cluster
    await asyncio.sleep(1.5)  # one of the two has taken the routing lease
    assert len(await _routing_nodes(nodes)) == 1

    workers = await _start_agents(nodes, users)
    tasks = [asyncio.create_task(w.run()) for w in workers]
    tokens = [await _token(node.url, "boss") for node in nodes]
    async with aiohttp.ClientSession() as http:
        ids = await asyncio.gather(*(
            _post(http, nodes[n % 2], tokens[n % 2], n) for n in range(60)
        ))
    for _ in range(300):
        if set(ids) <= set().union(*(w.done for w in workers)):
            break
        await asyncio.sleep(0.1)
    for w in workers:
        await w.agent.close()
    await asyncio.gather(*tasks)

    done = [cid for w in workers for cid in w.done]
    assert sorted(done) == sorted(ids), "every contact handled exactly once"
    assert all(not w.overlaps for w in workers), [w.overlaps for w in workers]
    # Agents on both nodes got work that arrived at both nodes.
    assert all(w.offers for w in workers)

    # The event log agrees: per contact, offers never overlap; per agent, load never > 1.
    engine = make_engine(pg_url)
    async with sessionmaker(engine)() as session:
        events = (await session.scalars(select(ContactEvent).order_by(ContactEvent.id))).all()
    await engine.dispose()
    offered_to: dict[int, int | None] = defaultdict(lambda: None)
    load: dict[int, int] = defaultdict(int)
    for e in events:
        if e.kind == "offered":
            assert offered_to[e.contact_id] is None, f"contact {e.contact_id} offered twice"
            offered_to[e.contact_id] = e.agent_id
            load[e.agent_id] += 1
            assert load[e.agent_id] <= 1, f"agent {e.agent_id} over capacity"
        elif e.kind in ("rejected", "offer-timeout"):
            load[offered_to[e.contact_id]] -= 1  # type: ignore[index]
            offered_to[e.contact_id] = None
        elif e.kind == "completed":
            load[offered_to[e.contact_id]] -= 1  # type: ignore[index]
    assert sum(1 for e in events if e.kind == "accepted") == len(ids)


async def test_the_other_node_takes_over_routing_when_the_leader_dies(
    cluster: tuple[list[Process], dict[str, int], int],
) -> None:
    nodes, users, _ = cluster
    await asyncio.sleep(1.5)
    leaders = await _routing_nodes(nodes)
    assert len(leaders) == 1
    leader, survivor = nodes if leaders == ["node1"] else nodes[::-1]
    token = await _token(survivor.url, "boss")
    name, user_id = sorted(users.items())[0]
    agent = await Agent.connect(survivor, await _token(survivor.url, name), user_id)  # type: ignore[arg-type]
    await agent.recv()
    await agent.available()

    leader.proc.kill()  # no goodbye: the lease has to expire
    async with aiohttp.ClientSession() as http:
        contact_id = await _post(http, survivor, token, 1)
    offer = await agent.expect("offer", timeout=20)
    assert offer["contact"]["id"] == contact_id
    assert len(await _routing_nodes([survivor])) == 1
    await agent.close()
