"""Callback outcomes over REST (spec §9): the agent who held the callback records it; no answer
is retried 3 times 2 h apart then closed as unreachable, a call-back is planned at the time
asked, a wrong number is marked on the customer; manual callbacks are created, moved and
cancelled with their reasons kept, and each agent's worklist shows what is overdue, due and
left for today. Every test runs on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from callback_agent import available_agent, take, wrap_up
from harness import Agent, Api, Node, add_queue, add_user, login, start_node
from sqlalchemy import func, select

from contactcenter.callbacks import run_callbacks
from contactcenter.clock import ManualClock, utc
from contactcenter.customers import CustomerIn, create_customer
from contactcenter.storage.models import (
    AuditEntry,
    CallbackOutcome,
    Contact,
    ScheduledWork,
    WrongNumber,
)

SH = ZoneInfo("Asia/Shanghai")
MON = datetime(2026, 11, 23, 10, tzinfo=SH)  # a Monday, 10:00 in Shanghai


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SH)


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(MON)


@pytest.fixture
async def node(stack: tuple[str, str | None, str], clock: ManualClock) -> AsyncIterator[Node]:
    # The tests run the scheduler and move the clock by days: tokens outlive the jumps.
    n = await start_node(*stack, clock=clock, scheduler_seconds=3600, token_ttl_hours=24 * 400)
    await add_queue(n, "callbacks", channels=["callback"])
    yield n
    await n.stop()


class Desk:
    """The people and the customer of these tests: agents li and wu, supervisor boss, and
    王芳, owned by li, with two phone numbers."""

    def __init__(self, node: Node, apis: dict[str, Api], ids: dict[str, int]) -> None:
        self.node, self.apis, self.ids = node, apis, ids

    async def call(self, who: str, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.apis[who].call(method, path, **kw)

    async def outcome(self, who: str, contact_id: int, outcome: str, **kw: Any
                      ) -> tuple[int, Any]:
        return await self.call(who, "POST", f"/contacts/{contact_id}/callback-outcome",
                               json={"outcome": outcome, **kw})

    async def item(self, key: str) -> ScheduledWork | None:
        async with self.node.rt.sessions() as session:
            return await session.scalar(select(ScheduledWork).where(ScheduledWork.key == key))

    async def count(self, model: Any) -> int:
        async with self.node.rt.sessions() as session:
            return await session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
async def desk(node: Node) -> AsyncIterator[Desk]:
    ids = {"li": await add_user(node, "li"), "wu": await add_user(node, "wu"),
           "boss": await add_user(node, "boss", "supervisor")}
    async with node.rt.sessions.begin() as session:
        customer = await create_customer(session, CustomerIn(
            name="王芳", honorific="王女士", phones=["13800138000", "13900139000"],
            owner_ids=[ids["li"]]), actor_id=None, now=utc(node.rt.clock.now()))
        ids["wang"] = customer.id
    apis = {name: Api(node, await login(node, name)) for name in ("li", "wu", "boss")}
    yield Desk(node, apis, ids)
    for api in apis.values():
        await api.close()


@pytest.fixture
async def li(node: Node, desk: Desk) -> AsyncIterator[Agent]:
    """Agent li at the console, available for callbacks."""
    agent = await available_agent(node, desk.apis["li"].token, desk.ids["li"])
    yield agent
    await agent.close()


async def manual(desk: Desk, who: str = "li", **body: Any) -> dict[str, Any]:
    body = {"due": MON.isoformat(), "category": "service", "purpose": "问问新设备用得怎么样",
            **body}
    status, data = await desk.call(who, "POST", f"/customers/{desk.ids['wang']}/callbacks",
                                   json=body)
    assert status == 201, data
    return data["callback"]


def window(item: dict[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(item["due"]), datetime.fromisoformat(item["latest"])


async def dialled(node: Node, contact_id: int) -> str | None:
    async with node.rt.sessions() as session:
        contact = await session.get(Contact, contact_id)
        assert contact is not None
        return contact.from_address


async def released(node: Node, agent: Agent | None = None) -> int:
    """Run the scheduler's callback step once; the one contact it made, taken by `agent`."""
    (contact_id,) = await run_callbacks(node.rt)
    if agent is not None:
        await take(agent, contact_id)
    return contact_id


async def test_the_agent_who_held_the_callback_records_no_answer_and_it_is_retried(
    node: Node, desk: Desk, li: Agent, clock: ManualClock
) -> None:
    first = await manual(desk)
    contact_id = await released(node)
    status, body = await desk.outcome("boss", contact_id, "no-answer")
    assert status == 409 and "nobody has taken it" in body["error"]["message"]
    await take(li, contact_id)

    status, body = await desk.outcome("wu", contact_id, "no-answer")
    assert status == 403 and "supervisor" in body["error"]["message"]
    status, body = await desk.outcome("li", contact_id, "no-answer", notes="rang out")
    assert status == 201, body
    retry_key = f"{first['key']}:retry:2"
    assert body["outcome"] | {"recorded_at": None} == {
        "outcome": "no-answer", "contact_id": contact_id, "agent_id": desk.ids["li"],
        "attempt": 1, "recorded_at": None, "notes": "rang out", "call_back_at": None,
        "next_key": retry_key, "closed_as": None}
    status, body = await desk.outcome("li", contact_id, "reached")
    assert status == 409 and "already" in body["error"]["message"]  # once per contact
    await wrap_up(li, contact_id)

    retry = await desk.item(retry_key)
    assert retry is not None and retry.state == "pending"
    assert (retry.due_at, retry.latest_at) == (at(23, 12), at(23, 14))
    assert retry.payload["purpose"] == "问问新设备用得怎么样"
    assert retry.payload["category"] == "service" and retry.payload["attempt"] == 2
    assert await run_callbacks(node.rt) == []  # not before 12:00

    # Attempts 2, 3 and 4 go unanswered too: then unreachable. The last one li wraps up
    # without an outcome, and the supervisor records it afterwards.
    for attempt, due, who in ((2, at(23, 12), "li"), (3, at(23, 14), "li"),
                              (4, at(23, 16), "boss")):
        clock.set(due)
        contact_id = await released(node, li)
        if who == "boss":
            await wrap_up(li, contact_id)
        status, body = await desk.outcome(who, contact_id, "no-answer")
        assert status == 201, body
        assert body["outcome"]["attempt"] == attempt
        assert body["outcome"]["agent_id"] == desk.ids["li"]
        if who == "li":
            await wrap_up(li, contact_id)
    assert body["outcome"]["closed_as"] == "unreachable" and body["outcome"]["next_key"] is None
    clock.set(at(24, 18))
    assert await run_callbacks(node.rt) == []
    async with node.rt.sessions() as session:
        keys = (await session.scalars(select(ScheduledWork.key).where(
            ScheduledWork.kind == "callback").order_by(ScheduledWork.id))).all()
    assert keys == [first["key"]] + [f"{first['key']}:retry:{n}" for n in (2, 3, 4)]
    assert await desk.count(Contact) == 4


async def test_call_back_wrong_number_and_reached(node: Node, desk: Desk, li: Agent,
                                                  clock: ManualClock) -> None:
    first = await manual(desk, category="explanation")
    contact_id = await released(node, li)
    status, body = await desk.outcome("boss", contact_id, "call-back")
    assert status == 422 and "call_back_at" in body["error"]["message"]
    status, body = await desk.outcome("boss", contact_id, "call-back",
                                      call_back_at=at(24, 15).isoformat())
    assert status == 201, body
    assert datetime.fromisoformat(body["outcome"]["call_back_at"]) == at(24, 15)
    again = await desk.item(f"{first['key']}:call-back:{contact_id}")
    assert again is not None and (again.due_at, again.latest_at) == (at(24, 15), at(24, 18))
    assert again.payload["category"] == "explanation"
    await wrap_up(li, contact_id)

    clock.set(at(24, 15))
    contact_id = await released(node, li)
    assert await dialled(node, contact_id) == "+8613800138000"
    status, body = await desk.outcome("boss", contact_id, "wrong-number")
    assert status == 201, body
    async with node.rt.sessions() as session:
        wrong = (await session.scalars(select(WrongNumber.number))).all()
        trail = (await session.scalars(select(AuditEntry).where(
            AuditEntry.entity_id == desk.ids["wang"]).order_by(AuditEntry.id))).all()
    assert wrong == ["+8613800138000"]
    assert (trail[-1].action, trail[-1].actor_user_id, trail[-1].after) == (
        "update", desk.ids["boss"], {"wrong_numbers": ["+8613800138000"]})
    await wrap_up(li, contact_id)

    await manual(desk, due=at(24, 16).isoformat())  # the next call uses the other number
    clock.set(at(24, 16))
    contact_id = await released(node, li)
    assert await dialled(node, contact_id) == "+8613900139000"
    status, body = await desk.outcome("boss", contact_id, "reached")
    assert status == 201 and body["outcome"]["next_key"] is None
    survey = await desk.item(f"survey:callback:{contact_id}")
    assert survey is not None and survey.kind == "survey" and survey.state == "pending"

    status, body = await desk.call("li", "GET", f"/customers/{desk.ids['wang']}/callbacks")
    assert status == 200
    assert [(c["rule"], c["state"], c["outcome"] and c["outcome"]["outcome"])
            for c in body["callbacks"]] == [
        ("manual", "done", "reached"), ("manual", "done", "wrong-number"),
        ("manual", "done", "call-back")]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [({"outcome": "maybe"}, 422, "outcome"),
     ({"outcome": "call-back", "call_back_at": "tomorrow"}, 422, "call_back_at"),
     ({"outcome": "reached", "extra": 1}, 422, "extra"),
     ({"outcome": "reached", "visit_at": "2026-11-30T10:00:00+08:00"}, 422, "booking call")],
)
async def test_bad_outcomes_are_refused(node: Node, desk: Desk, li: Agent,
                                        body: dict[str, Any], status: int, words: str) -> None:
    await manual(desk)
    contact_id = await released(node, li)
    got, answer = await desk.call("boss", "POST", f"/contacts/{contact_id}/callback-outcome",
                                  json=body)
    assert got == status and words in str(answer["error"])
    assert await desk.count(CallbackOutcome) == 0


async def test_only_callback_contacts_have_callback_outcomes(node: Node, desk: Desk) -> None:
    await add_queue(node, "web", channels=["api"])
    contact = await desk.apis["boss"].post_contact("+8613700137000")
    status, body = await desk.outcome("boss", contact["id"], "reached")
    assert status == 409 and "not a callback" in body["error"]["message"]
    status, body = await desk.outcome("boss", 9999, "reached")
    assert status == 404


async def test_manual_callbacks_are_moved_and_cancelled_with_reasons(
    node: Node, desk: Desk
) -> None:
    tuesday_afternoon = await manual(desk, due=at(24, 13).isoformat(),
                                     latest=at(24, 18).isoformat(), reason="客户要求周二下午")
    assert window(tuesday_afternoon) == (at(24, 13), at(24, 18))
    path = f"/callbacks/{tuesday_afternoon['id']}"
    status, body = await desk.call("wu", "POST", f"{path}/move",
                                   json={"due": at(25, 10).isoformat(), "reason": "x"})
    assert status == 403  # neither the creator nor an owner
    status, body = await desk.call("li", "POST", f"{path}/move",
                                   json={"due": at(25, 10).isoformat()})
    assert status == 422 and "reason" in str(body["error"])
    status, body = await desk.call("li", "POST", f"{path}/move",
                                   json={"due": at(28, 10).isoformat(), "reason": "客户出差"})
    assert status == 200
    # Saturday: moved to Monday's business day.
    assert window(body["callback"]) == (at(30, 9), at(30, 18))
    status, body = await desk.call("boss", "POST", f"{path}/cancel",
                                   json={"reason": "客户已来电"})
    assert status == 200 and body["callback"]["state"] == "cancelled"
    status, body = await desk.call("li", "POST", f"{path}/cancel", json={"reason": "again"})
    assert status == 409
    status, body = await desk.call("li", "GET", path)
    assert status == 200
    assert [(c["action"], c["by"], c["reason"]) for c in body["changes"]] == [
        ("created", desk.ids["li"], "客户要求周二下午"),
        ("moved", desk.ids["li"], "客户出差"),
        ("cancelled", desk.ids["boss"], "客户已来电")]
    assert window(body["changes"][1]["before"]) == (at(24, 13), at(24, 18))


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [({"category": "gossip"}, 422, "category"),
     ({"due": at(24, 15).isoformat(), "latest": at(24, 13).isoformat()}, 422, "latest"),
     ({"due": "2026-11-24T15:00"}, 422, "due"),
     ({"purpose": ""}, 422, "purpose")],
)
async def test_bad_manual_callbacks_are_refused(desk: Desk, body: dict[str, Any], status: int,
                                                words: str) -> None:
    full = {"due": MON.isoformat(), "category": "service", "purpose": "p", **body}
    got, answer = await desk.call("li", "POST", f"/customers/{desk.ids['wang']}/callbacks",
                                  json=full)
    assert got == status and words in str(answer["error"])
    got, _ = await desk.call("li", "POST", "/customers/999/callbacks",
                             json={**full, "category": "service", "purpose": "p",
                                   "due": MON.isoformat(), "latest": None})
    assert got == 404
    assert await desk.count(ScheduledWork) == 0


async def test_the_worklist_shows_overdue_due_and_later_today(
    node: Node, desk: Desk, li: Agent, clock: ManualClock
) -> None:
    late = await manual(desk, due=at(23, 10).isoformat(), latest=at(23, 11).isoformat())
    now_ = await manual(desk, due=at(23, 11).isoformat())
    later = await manual(desk, due=at(23, 16).isoformat())
    await manual(desk, due=at(24, 10).isoformat())  # tomorrow: not on today's list
    by_wu = await manual(desk, "wu", due=at(23, 15).isoformat())  # wu created it
    clock.set(at(23, 11, 30))
    status, body = await desk.call("li", "GET", "/callbacks/worklist")
    assert status == 200
    assert {k: [c["id"] for c in v] for k, v in body.items()} == {
        "overdue": [late["id"]], "due": [now_["id"]], "today": [by_wu["id"], later["id"]]}
    status, body = await desk.call("wu", "GET", "/callbacks/worklist")
    assert {k: [c["id"] for c in v] for k, v in body.items()} == {
        "overdue": [], "due": [], "today": [by_wu["id"]]}
    # Released to the queue they stay on the list until their outcome is recorded.
    late_contact, now_contact = await run_callbacks(node.rt)
    status, body = await desk.call("li", "GET", "/callbacks/worklist")
    assert [(c["id"], c["contact_id"]) for c in body["overdue"] + body["due"]] == [
        (late["id"], late_contact), (now_["id"], now_contact)]
    await take(li, late_contact)  # the longest waiting first
    status, _ = await desk.outcome("li", late_contact, "reached")
    assert status == 201
    status, body = await desk.call("li", "GET", "/callbacks/worklist")
    assert body["overdue"] == [] and [c["id"] for c in body["due"]] == [now_["id"]]
