"""The REST API: roles on every endpoint, clear JSON errors for bad input, nothing lost."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from conftest import REDIS_URL
from harness import Api, Node, add_queue, add_user, login, start_node
from sqlalchemy import func, select
from statements import recorded

from contactcenter.clock import ManualClock
from contactcenter.server.api import api as registry
from contactcenter.storage.models import Contact, Customer


@pytest.fixture
async def node(stack: tuple[str, str | None, str]) -> AsyncIterator[Node]:
    n = await start_node(*stack, clock=ManualClock(1_795_000_000.0))
    await add_user(n, "agent")
    await add_user(n, "boss", role="supervisor")
    await add_user(n, "root", role="admin")
    yield n
    await n.stop()


@pytest.fixture
async def as_(node: Node) -> AsyncIterator[dict[str, Api]]:
    clients = {name: Api(node, await login(node, name)) for name in ("agent", "boss", "root")}
    yield clients
    for c in clients.values():
        await c.close()


async def _raw(node: Node, method: str, path: str, **kw: object) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.request(
        method, f"{node.url}{path}", **kw  # type: ignore[arg-type]
    ) as r:
        assert r.content_type == "application/json", await r.text()
        return r.status, await r.json()


async def test_login_gives_a_token_and_refuses_wrong_passwords(node: Node) -> None:
    status, body = await _raw(node, "POST", "/api/v1/auth/login",
                              json={"username": "agent", "password": "nope"})
    assert status == 401 and body["error"]["message"] == "wrong username or password"
    status, body = await _raw(node, "POST", "/api/v1/auth/login",
                              json={"username": "ghost", "password": "nope"})
    assert status == 401 and body["error"]["message"] == "wrong username or password"
    status, body = await _raw(node, "POST", "/api/v1/auth/login", json={"username": "agent"})
    assert status == 422 and "password" in body["error"]["message"]


async def test_every_endpoint_but_login_needs_a_token(node: Node) -> None:
    for ep in registry.endpoints:
        path = re.sub(r"\{\w+\}", "1", ep.path)
        status, body = await _raw(node, ep.method, f"/api/v1{path}", json={})
        if ep.role is None:
            assert status != 401, ep.path
        else:
            assert status == 401, (ep.method, ep.path, status)
            assert "token" in body["error"]["message"]


async def test_roles_are_enforced(as_: dict[str, Api]) -> None:
    status, body = await as_["agent"].call("POST", "/contacts", json={"from": "+8613800138000"})
    assert status == 403 and "supervisor" in body["error"]["message"]
    status, _ = await as_["boss"].call("POST", "/queues", json={"name": "q", "channels": ["api"]})
    assert status == 403
    status, _ = await as_["root"].call("POST", "/queues", json={"name": "q", "channels": ["api"]})
    assert status == 201
    status, _ = await as_["agent"].call("GET", "/agents")
    assert status == 403
    status, _ = await as_["boss"].call("GET", "/agents")
    assert status == 200


async def test_logout_revokes_the_token(node: Node) -> None:
    api = Api(node, await login(node, "agent"))
    assert (await api.call("GET", "/me"))[0] == 200
    assert (await api.call("POST", "/auth/logout"))[0] == 200
    status, body = await api.call("GET", "/me")
    assert status == 401 and "invalid" in body["error"]["message"]
    await api.close()


async def test_requests_arriving_together_read_a_token_once(node: Node) -> None:
    api = Api(node, await login(node, "agent"))
    try:
        with recorded(node.rt.engine) as statements:
            answers = await asyncio.gather(*(api.call("GET", "/me") for _ in range(20)))
            assert [status for status, _ in answers] == [200] * 20
            assert len(token_reads(statements)) == 1  # not yet cached: one read served all
            assert (await api.call("GET", "/me"))[0] == 200
            assert len(token_reads(statements)) == 1  # and cached after it
    finally:
        await api.close()


def token_reads(statements: list[str]) -> list[str]:
    return [s for s in statements
            if s.lstrip().upper().startswith("SELECT") and "auth_tokens" in s]


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [
        ("not json at all", 400, "not valid JSON"),
        ("[1, 2]", 400, "JSON object"),
        ('{"body": "no sender"}', 422, "from"),
        ('{"from": "+8613800138000", "channel": "pigeon"}', 422, "channel"),
        ('{"from": "+8613800138000", "queue": "nowhere"}', 404, "nowhere"),
        ('{"from": "", "body": "x"}', 422, "from"),
        ('{"from": "+8613800138000", "colour": "red"}', 422, "colour"),
    ],
    ids=["not-json", "not-object", "missing-from", "bad-channel", "unknown-queue",
         "empty-from", "unknown-field"],
)
async def test_bad_contacts_get_a_clear_4xx_and_store_nothing(
    node: Node, as_: dict[str, Api], payload: str, status: int, words: str
) -> None:
    await add_queue(node, "support")
    kept = await as_["boss"].post_contact("+8613900139000", "keep me")
    got, body = await as_["boss"].call("POST", "/contacts", data=payload,
                                       headers={"Content-Type": "application/json"})
    assert got == status, body
    assert words in body["error"]["message"]
    async with node.rt.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 1
        assert (await session.get(Contact, kept["id"])) is not None
        assert await session.scalar(select(func.count()).select_from(Customer)) == 1


async def test_a_queue_added_on_one_node_takes_contacts_on_the_other_at_once(
    pg_url: str,
) -> None:
    """Each node keeps the active queues a few seconds; an edit clears only its own node's."""
    prefix = f"cctest-{uuid.uuid4().hex[:8]}"
    clock = ManualClock(1_795_000_000.0)
    one = await start_node(pg_url, REDIS_URL, prefix, clock)
    two = await start_node(pg_url, REDIS_URL, prefix, clock)
    await add_user(one, "root", role="admin")
    admin_one, admin_two = Api(one, await login(one, "root")), Api(two, await login(two, "root"))
    try:
        await add_queue(one, "support")
        await admin_two.post_contact("+8613900139000", queue="support")  # two has read them
        status, billing = await admin_one.call("POST", "/queues", json={
            "name": "billing", "channels": ["api"], "dispositions": ["resolved"]})
        assert status == 201, billing
        contact = await admin_two.post_contact("+8613900139001", queue="billing")
        assert contact["queue_id"] == billing["id"]
        status, body = await admin_two.call("POST", "/contacts", json={
            "from": "+8613900139002", "queue": "no-such-queue"})
        assert status == 404 and "no active queue named 'no-such-queue'" in \
            body["error"]["message"]
    finally:
        await admin_one.close()
        await admin_two.close()
        await two.stop()
        await one.stop()


async def test_unknown_routes_and_ids_are_json_404s(node: Node, as_: dict[str, Api]) -> None:
    status, body = await _raw(node, "GET", "/api/v1/nothing-here")
    assert status == 404 and body["error"]["code"] == "not-found"
    status, body = await as_["agent"].call("GET", "/customers/12345")
    assert status == 404 and "12345" in body["error"]["message"]
    status, body = await as_["agent"].call("GET", "/customers/abc")
    assert status == 404


async def test_customer_edits_are_audited_and_searchable(as_: dict[str, Api]) -> None:
    agent = as_["agent"]
    status, body = await agent.call("POST", "/customers", json={"name": "x", "tier": "A"})
    assert status == 403 and "supervisor" in body["error"]["message"]
    agent = as_["boss"]  # tiers are a supervisor's call
    status, created = await agent.call("POST", "/customers", json={
        "name": "李伟", "phones": ["138 0013 8000"], "emails": ["Li.Wei@Example.com"],
        "birthday": "1980-02-29", "tier": "B"})
    assert status == 201, created
    cid = created["id"]
    assert created["phones"][0]["number"] == "+8613800138000"
    status, body = await agent.call("POST", "/customers", json={
        "name": "Someone", "phones": ["+86 138 0013 8000"]})
    assert status == 409 and str(cid) in body["error"]["message"]

    status, body = await as_["agent"].call("PATCH", f"/customers/{cid}", json={"tier": "A"})
    assert status == 403
    status, edited = await agent.call("PATCH", f"/customers/{cid}", json={
        "employer": "长城公司", "tier": "A"})
    assert status == 200 and edited["employer"] == "长城公司"
    status, trail = await agent.call("GET", f"/customers/{cid}/audit")
    update = next(e for e in trail["audit"] if e["action"] == "update")
    assert {k: update["before"][k] for k in ("employer", "tier")} == {"employer": None, "tier": "B"}
    assert {k: update["after"][k] for k in ("employer", "tier")} == {"employer": "长城公司",
                                                                     "tier": "A"}
    assert "name" not in update["after"]  # only what changed is recorded

    for q in ("李", "13800138000", "li.wei@"):
        status, found = await agent.call("GET", "/customers", params={"q": q})
        assert [c["id"] for c in found["customers"]] == [cid], q
    status, body = await agent.call("PATCH", f"/customers/{cid}", json={"birthday": "soon"})
    assert status == 422 and "birthday" in body["error"]["message"]


async def test_openapi_document_lists_every_endpoint(node: Node) -> None:
    status, doc = await _raw(node, "GET", "/api/v1/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    for ep in registry.endpoints:
        op = doc["paths"][f"/api/v1{ep.path}"][ep.method.lower()]
        assert ("security" in op) == (ep.role is not None)
    assert "ContactIn" in doc["components"]["schemas"]


async def test_health_and_metrics(node: Node, as_: dict[str, Api]) -> None:
    status, health = await _raw(node, "GET", "/healthz")
    assert status == 200 and health["database"] and health["broker"]
    await add_queue(node, "support")
    await as_["boss"].post_contact("+8613700137000")
    async with aiohttp.ClientSession() as http, http.get(f"{node.url}/metrics") as r:
        text = await r.text()
    for name in ("cc_contact_events_total", "cc_offers_total", "cc_screen_pop_seconds",
                 "cc_connected_agents", "cc_http_requests_total"):
        assert name in text
