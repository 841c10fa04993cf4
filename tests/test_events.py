"""An event in, the rules' callbacks scheduled, and at the due time a callback contact offered
to an agent with its purpose, category and script: the scheduling slice end to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from harness import Agent, Api, Node, add_queue, add_user, login, start_node
from sqlalchemy import func, select

from contactcenter.callbacks import run_callbacks
from contactcenter.clock import ManualClock, utc
from contactcenter.customers import CustomerIn, create_customer
from contactcenter.storage.models import Contact, ScheduledWork

SH = ZoneInfo("Asia/Shanghai")
FRIDAY = datetime(2025, 9, 26, 16, 0, tzinfo=SH)  # a repair finished before National Day


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(FRIDAY)


@pytest.fixture
async def node(stack: tuple[str, str | None, str], clock: ManualClock) -> AsyncIterator[Node]:
    n = await start_node(*stack, clock=clock, scheduler_seconds=3600)  # the test runs it
    yield n
    await n.stop()


@pytest.fixture
async def api(node: Node) -> AsyncIterator[Api]:
    await add_user(node, "li")
    client = Api(node, await login(node, "li"))
    yield client
    await client.close()


async def _customer(node: Node) -> int:
    async with node.rt.sessions.begin() as session:
        c = await create_customer(session, CustomerIn(name="王芳", honorific="王女士",
                                                      phones=["13800138000"]),
                                  actor_id=None, now=utc(node.rt.clock.now()))
        return c.id


async def test_repair_completed_schedules_c10_inside_business_time(node: Node, api: Api) -> None:
    customer_id = await _customer(node)
    status, body = await api.call("POST", "/events", json={
        "customer_id": customer_id, "kind": "repair-completed", "external_id": "rep-1"})
    assert status == 201, body
    (c10,) = body["scheduled"]
    assert c10["rule"] == "C10"
    assert datetime.fromisoformat(c10["due"]) == datetime(2025, 9, 29, 16, 0, tzinfo=SH)
    assert datetime.fromisoformat(c10["latest"]) == datetime(2025, 9, 30, 18, 0, tzinfo=SH)
    assert c10["category"] == "explanation"

    status, again = await api.call("POST", "/events", json={
        "customer_id": customer_id, "kind": "repair-completed", "external_id": "rep-1"})
    assert status == 200 and again["created"] is False and again["scheduled"] == []
    async with node.rt.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ScheduledWork)) == 1


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [({"customer_id": 1, "kind": "bought"}, 422, "purchase"),
     ({"customer_id": 999, "kind": "purchase"}, 404, "999"),
     ({"customer_id": 1, "kind": "purchase", "at": "2025-09-26 16:00"}, 422, "at")],
)
async def test_bad_events_are_refused(node: Node, api: Api, payload: dict, status: int,
                                      words: str) -> None:
    await _customer(node)
    got, body = await api.call("POST", "/events", json=payload)
    assert got == status and words in body["error"]["message"]


async def test_a_due_callback_is_offered_to_an_agent_once(
    node: Node, api: Api, clock: ManualClock
) -> None:
    await add_queue(node, "callbacks", channels=["callback"])
    customer_id = await _customer(node)
    await api.call("POST", "/events", json={"customer_id": customer_id,
                                            "kind": "repair-completed"})
    assert await run_callbacks(node.rt) == []  # not due yet

    clock.set(datetime(2025, 9, 29, 16, 0, tzinfo=SH))
    user_id = await add_user(node, "wu")
    agent = await Agent.connect(node, await login(node, "wu"), user_id)
    await agent.recv()
    await agent.available()
    (contact_id,) = await run_callbacks(node.rt)
    offer = await agent.expect("offer")
    meta = offer["contact"]["meta"]
    assert offer["contact"]["id"] == contact_id and offer["contact"]["channel"] == "callback"
    assert meta["rule"] == "C10" and meta["category"] == "explanation"
    assert meta["purpose"] == "确认维修效果。"  # the customer's language
    assert meta["script"].startswith("您好!请问是王女士吗?") and "{agent}" in meta["script"]
    assert offer["customer"]["id"] == customer_id

    assert await run_callbacks(node.rt) == []  # done once; a second round finds nothing
    await asyncio.sleep(0.1)
    async with node.rt.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 1
        assert (await session.scalar(select(ScheduledWork.state))) == "done"
    await agent.close()


async def test_the_screen_pop_carries_purchases_repairs_and_complaints(
    node: Node, api: Api
) -> None:
    """The offer shows what happened to the customer besides contacts, newest first."""
    customer_id = await _customer(node)
    for kind, external, at in (
        ("purchase", "order-1", "2025-03-01T10:00:00+08:00"),
        ("purchase", "order-2", "2025-06-01T10:00:00+08:00"),
        ("repair-dispatched", "rep-9", "2025-09-25T10:00:00+08:00"),
    ):
        status, body = await api.call("POST", "/events", json={
            "customer_id": customer_id, "kind": kind, "external_id": external, "at": at,
            "data": {"product": "洗衣机 <b>X1</b>"} if kind == "purchase" else {}})
        assert status == 201, body
    status, body = await api.call("POST", "/events", json={
        "customer_id": customer_id, "kind": "complaint-written", "external_id": "letter-4",
        "data": {"summary": "安装师傅迟到两小时", "channel": "letter"}})
    assert status == 201, body
    queue = await add_queue(node, "api-queue", channels=["api"])
    assert queue
    agent_id = await add_user(node, "wang")
    agent = await Agent.connect(node, await login(node, "wang"), agent_id)
    try:
        await agent.available()
        await add_user(node, "zhou", role="supervisor")
        integration = Api(node, await login(node, "zhou"))
        await integration.post_contact("+8613800138000", "我的洗衣机又坏了")
        await integration.close()
        offer = await agent.expect("offer")
        timeline = offer["timeline"]
        assert [p["data"]["product"] for p in timeline["purchases"]] == ["洗衣机 <b>X1</b>"] * 2
        assert [p["at"][:10] for p in timeline["purchases"]] == ["2025-06-01", "2025-03-01"]
        assert [r["kind"] for r in timeline["repairs"]] == ["repair-dispatched"]
        (complaint,) = timeline["complaints"]
        assert complaint["summary"] == "安装师傅迟到两小时" and complaint["step"] == "verify"
        assert complaint["archived_at"] is None
        # The purchases, the dispatch and the complaint planned C2-C4, C8 and C6: the latest 5
        callbacks = timeline["callbacks"]
        assert len(callbacks) == 5 and {c["state"] for c in callbacks} == {"pending"}
        assert [c["at"] for c in callbacks] == sorted((c["at"] for c in callbacks), reverse=True)
        assert "C6" in {c["rule"] for c in callbacks}
        assert timeline["visits"] == [] and timeline["surveys"] == []
    finally:
        await agent.close()
