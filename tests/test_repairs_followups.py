"""C9 repair-overrun checks (spec §3) through POST /api/v1/events, the batched follow-ups
read for the screen-pop (§10), and the new endpoints' OpenAPI entries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from harness import Api, Node, add_user, login, start_node
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from statements import recorded

from contactcenter.clock import ManualClock
from contactcenter.followups import read_followups
from contactcenter.repairs import run_repair_checks
from contactcenter.storage import direct
from contactcenter.storage.db import sessionmaker
from contactcenter.storage.models import (
    CallbackOutcome,
    Contact,
    Customer,
    CustomerEvent,
    Queue,
    ScheduledWork,
    Survey,
    Visit,
)

SH = ZoneInfo("Asia/Shanghai")
MON = datetime(2026, 11, 23, 10, tzinfo=SH)


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(MON)


@pytest.fixture
async def node(stack: tuple[str, str | None, str], clock: ManualClock) -> AsyncIterator[Node]:
    n = await start_node(*stack, clock=clock, scheduler_seconds=3600)
    yield n
    await n.stop()


@pytest.fixture
async def api(node: Node) -> AsyncIterator[Api]:
    await add_user(node, "li")
    client = Api(node, await login(node, "li"))
    async with node.rt.sessions.begin() as session:
        session.add(Customer(name="王芳", created_at=MON, updated_at=MON))
    yield client
    await client.close()


async def event_(api: Api, kind: str, repair: str | None, **extra: Any) -> tuple[int, Any]:
    data = {"repair_id": repair} if repair else {}
    return await api.call("POST", "/events", json={
        "customer_id": 1, "kind": kind, "data": {**data, **extra.pop("data", {})}, **extra})


async def test_a_repair_still_open_after_its_promised_time_gets_a_c9_callback(
    node: Node, api: Api, clock: ManualClock
) -> None:
    for repair in ("R1", "R2", "R3"):
        status, _ = await event_(api, "repair-dispatched", repair)
        assert status == 201
    status, _ = await event_(api, "repair-dispatched", "R4", data={"promised_duration": "1d"})
    assert status == 201
    clock.set(MON + timedelta(hours=3))
    await event_(api, "repair-completed", "R1")  # in time
    clock.set(MON + timedelta(hours=4))
    assert await run_repair_checks(node.rt) == 2  # R2 and R3; R4 was promised in a day
    clock.set(MON + timedelta(hours=4, minutes=30))
    await event_(api, "repair-completed", "R2")  # too late: the call is planned already
    assert await run_repair_checks(node.rt) == 0
    async with node.rt.sessions() as session:
        work = {w.key: w for w in (await session.scalars(select(ScheduledWork))).all()}
    assert work["repair-check:1:R1"].result == {"completed": 5, "in_time": True}  # event 5
    c9 = {k: w for k, w in work.items() if w.rule_id == "C9" and w.kind == "callback"}
    assert sorted(c9) == ["C9:1:repair:R2", "C9:1:repair:R3"]
    due = datetime(2026, 11, 23, 14, tzinfo=SH)
    assert {(w.due_at, w.latest_at, w.payload["category"]) for w in c9.values()} == {
        (due, due + timedelta(hours=1), "mediation")}
    assert work["repair-check:1:R4"].state == "pending"
    assert work["repair-check:1:R4"].due_at == MON + timedelta(days=1)

    # The completion of R4 comes in time: its check finds it and plans nothing.
    await event_(api, "repair-completed", "R4")
    clock.set(MON + timedelta(days=1))
    assert await run_repair_checks(node.rt) == 0


async def test_a_bad_promised_duration_stores_nothing(node: Node, api: Api) -> None:
    status, body = await event_(api, "repair-dispatched", "R1",
                                data={"promised_duration": "soon"})
    assert status == 422 and "promised_duration" in body["error"]["message"]
    async with node.rt.sessions() as session:
        assert (await session.scalars(select(CustomerEvent))).all() == []
        assert (await session.scalars(select(ScheduledWork))).all() == []


async def test_followups_of_many_customers_in_one_query(engine: AsyncEngine) -> None:
    sessions = sessionmaker(engine)
    t0 = datetime(2026, 11, 1, 2, tzinfo=UTC)
    async with sessions.begin() as session:
        session.add(Queue(name="callbacks", channels=["callback"]))
        for name in ("a", "b", "c"):
            session.add(Customer(name=name, created_at=t0, updated_at=t0))
        await session.flush()
        for i in range(7):  # customer 1: seven callbacks, the last one answered
            session.add(ScheduledWork(
                key=f"manual:1:{i}", kind="callback", rule_id="manual", customer_id=1,
                due_at=t0 + timedelta(days=i), payload={}, state="done", created_at=t0))
        session.add(ScheduledWork(key="C10:2:x", kind="callback", rule_id="C10",
                                  customer_id=2, due_at=t0, payload={}, created_at=t0))
        session.add(ScheduledWork(key="greet", kind="sms", rule_id="birthday", customer_id=1,
                                  due_at=t0, payload={}, created_at=t0))
        session.add(Contact(channel="callback", state="closed", customer_id=1, queue_id=1,
                            external_id="scheduled:manual:1:6", created_at=t0))
        await session.flush()
        session.add(CallbackOutcome(contact_id=1, work_key="manual:1:6", customer_id=1,
                                    outcome="reached", recorded_at=t0 + timedelta(days=6)))
        session.add(Visit(key="regular-visit:2:x", rule_id="regular-visit", customer_id=2,
                          due_at=t0, latest_at=t0 + timedelta(hours=9), state="done",
                          outcome="done", notes="ok", done_at=t0, created_at=t0))
        session.add(Survey(key="survey:visit:1", customer_id=2, subject="visit", subject_id=1,
                           phone="+8613800138000", sent_at=t0, open_until=t0 + timedelta(days=7),
                           score=4, replied_at=t0 + timedelta(hours=1), reply_text="4"))

    with recorded(engine) as statements:
        async with sessions() as session:
            got = await direct.read_now(await session.connection(), lambda reads: read_followups(
                reads, [3, 2, 1, 2], per_kind=5))
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1

    assert sorted(got) == [1, 2, 3]
    assert got[3] == {"callbacks": [], "visits": [], "surveys": []}
    one = got[1]["callbacks"]
    assert [c["at"] for c in one] == [(t0 + timedelta(days=i)).isoformat()
                                      for i in (6, 5, 4, 3, 2)]  # newest five
    assert (one[0]["outcome"], one[0]["rule"], one[1]["outcome"]) == ("reached", "manual", None)
    assert got[1]["visits"] == [] and got[1]["surveys"] == []
    two = got[2]
    assert [c["rule"] for c in two["callbacks"]] == ["C10"]
    assert [(v["outcome"], v["notes"], v["state"]) for v in two["visits"]] == [
        ("done", "ok", "done")]
    assert [(s["score"], s["about"], s["about_id"], s["reply"], s["replied_at"])
            for s in two["surveys"]] == [
        (4, "visit", 1, "4", (t0 + timedelta(hours=1)).isoformat())]
    async with sessions() as session:
        assert await direct.read_now(await session.connection(),
                                     lambda reads: read_followups(reads, [])) == {}


async def test_the_new_endpoints_are_in_the_openapi_document(node: Node, api: Api) -> None:
    status, doc = await api.call("GET", "/openapi.json")
    assert status == 200
    for path, method in (("/contacts/{contact_id}/callback-outcome", "post"),
                         ("/customers/{customer_id}/callbacks", "post"),
                         ("/customers/{customer_id}/callbacks", "get"),
                         ("/callbacks/worklist", "get"), ("/callbacks/{callback_id}/move", "post"),
                         ("/callbacks/{callback_id}/cancel", "post"), ("/visits", "get"),
                         ("/visits/{visit_id}/outcome", "post")):
        op = doc["paths"]["/api/v1" + path][method]
        assert op["security"] == [{"bearer": []}] and op["description"].startswith("Role: ")
    outcome = doc["components"]["schemas"]["OutcomeIn"]["properties"]["outcome"]
    assert outcome["enum"] == ["reached", "no-answer", "wrong-number", "call-back"]
