"""Complaints end to end (spec §6): opened from a written complaint event or by an agent,
acknowledged on their own channel, worked step by step with first-contact ownership, escalated
once per missed deadline, also with two nodes escalating at the same time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from conftest import REDIS_URL
from fake_twilio import FakeTwilio, twilio_settings
from harness import Api, Node, add_user, login, start_node
from smtp_relay import Relay
from sqlalchemy import func, select

from contactcenter.clock import ManualClock, utc
from contactcenter.complaints import escalate_overdue, open_complaint
from contactcenter.customers import CustomerIn, create_customer
from contactcenter.jobs import run_once
from contactcenter.storage.models import Complaint, Customer, ScheduledWork

SH = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=SH)
PUBLIC = "https://cc.example.com"


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(MONDAY)


@pytest.fixture
async def node(stack: tuple[str, str | None, str], clock: ManualClock, fake: FakeTwilio,
               relay: Relay) -> AsyncIterator[Node]:
    n = await start_node(*stack, clock=clock, scheduler_seconds=3600, sms_from="+8610000",
                         smtp_host="127.0.0.1", smtp_port=relay.port, company_name="Acme",
                         **twilio_settings(fake.url, PUBLIC))
    yield n
    await n.stop()


async def _customer(node: Node, tier: str | None = "A", **kw: Any) -> int:
    kw.setdefault("phones", ["13800138000"])
    async with node.rt.sessions.begin() as session:
        c = await create_customer(session, CustomerIn(name="王芳", honorific="王女士", **kw),
                                  actor_id=None, now=utc(node.rt.clock.now()))
        c.tier = tier
        return c.id


async def _api(node: Node, username: str, role: str = "agent") -> tuple[int, Api]:
    user_id = await add_user(node, username, role)
    return user_id, Api(node, await login(node, username))


async def _eventually(check: Any, what: str) -> Any:
    for _ in range(100):
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


async def test_a_written_complaint_opens_unowned_and_is_acknowledged_by_sms_at_once(
    node: Node, fake: FakeTwilio
) -> None:
    customer_id = await _customer(node, "A")
    _, api = await _api(node, "li")
    try:
        event = {"customer_id": customer_id, "kind": "complaint-written", "external_id": "L-1",
                 "data": {"channel": "letter", "summary": "安装师傅迟到两小时"}}
        status, body = await api.call("POST", "/events", json=event)
        assert status == 201, body
        assert [s["rule"] for s in body["scheduled"]] == ["C6"]  # the confirm callback too
        status, again = await api.call("POST", "/events", json=event)
        assert status == 200 and again["created"] is False

        status, listed = await api.call("GET", f"/complaints?customer_id={customer_id}")
        assert status == 200
        (c,) = listed["complaints"]  # the repeated event opened nothing more
        assert (c["owner_id"], c["step"], c["level"], c["level_name"]) == (None, "verify", 1,
                                                                            "team")
        assert c["channel"] == "letter" and c["summary"] == "安装师傅迟到两小时"
        assert c["prioritised"] is True  # an A customer's complaint goes ahead
        assert datetime.fromisoformat(c["deadline_at"]) == MONDAY.replace(hour=14)  # 4 wh

        # A letter has no channel of its own to answer on: the acknowledgement is an SMS,
        # sent while the request was answered, not a minute later.
        (sent,) = fake.posted("/Messages.json") or await _eventually(
            lambda: asyncio.sleep(0, fake.posted("/Messages.json")), "the ack SMS")
        assert sent.form["To"] == "+8613800138000" and sent.form["From"] == "+8610000"
        assert sent.form["Body"] == (f"王女士,您好!Acme已收到您的投诉(编号 {c['id']}),我们正在处理,"
                                     f"并将尽快与您联系。")

        async def acknowledged() -> dict[str, Any] | None:
            _, detail = await api.call("GET", f"/complaints/{c['id']}")
            ack = detail["complaint"]["acknowledgement"]
            return detail["complaint"] if ack["status"] == "sent" else None
        detail = await _eventually(acknowledged, "the ack recorded as sent")
        assert detail["acknowledgement"]["channel"] == "sms"
        assert [s["step"] for s in detail["steps"]] == ["verify"]
    finally:
        await api.close()


async def test_an_emailed_complaint_is_acknowledged_by_email(node: Node, relay: Relay,
                                                             fake: FakeTwilio) -> None:
    customer_id = await _customer(node, "C", emails=["wang@example.com"], language="en")
    _, api = await _api(node, "li")
    try:
        status, _ = await api.call("POST", "/events", json={
            "customer_id": customer_id, "kind": "complaint-written",
            "data": {"channel": "email", "summary": "late"}})
        assert status == 201
        mail = await relay.next()
        assert mail.rcpt_tos == ["wang@example.com"]
        assert mail.header("Subject").startswith("We received your complaint (no. ")
        assert mail.header("Auto-Submitted") == "auto-replied"
        assert "Acme has received your complaint" in mail.text
        assert fake.posted("/Messages.json") == []  # on its own channel only
    finally:
        await api.close()


async def test_the_agent_who_opens_it_owns_it_and_works_it_to_the_archive(node: Node) -> None:
    customer_id = await _customer(node, "C")
    li_id, li = await _api(node, "li")
    wu_id, wu = await _api(node, "wu")
    _, boss = await _api(node, "boss", "supervisor")
    try:
        status, body = await li.call("POST", "/complaints", json={
            "customer_id": customer_id, "channel": "voice", "summary": "账单有误"})
        assert status == 201, body
        c = body["complaint"]
        assert c["owner_id"] == li_id and c["prioritised"] is False
        path = f"/complaints/{c['id']}"

        status, err = await wu.call("POST", f"{path}/complete", json={"step": "verify"})
        assert status == 403 and "owned by" in err["error"]["message"]
        status, err = await wu.call("POST", f"{path}/take")
        assert status == 409 and "only a supervisor" in err["error"]["message"]
        status, err = await li.call("POST", f"{path}/complete", json={"step": "archive"})
        assert status == 409
        assert "cannot be archived before its callback step" in err["error"]["message"]

        status, err = await wu.call("POST", f"{path}/reassign", json={"owner_id": wu_id})
        assert status == 403  # a supervisor's call
        status, body = await boss.call("POST", f"{path}/reassign", json={"owner_id": wu_id})
        assert status == 200 and body["complaint"]["owner_id"] == wu_id
        status, _ = await li.call("GET", path)
        assert status == 403  # no longer li's

        for step in ("verify", "review", "rectify"):
            status, body = await wu.call("POST", f"{path}/complete", json={"step": step})
            assert status == 200, body
        status, err = await wu.call("POST", f"{path}/complete", json={"step": "callback"})
        assert status == 409 and "outcome" in err["error"]["message"]
        status, body = await wu.call("POST", f"{path}/complete",
                                     json={"step": "callback", "outcome": "satisfied"})
        assert body["complaint"]["step"] == "archive" and body["complaint"]["deadline_at"] is None
        status, body = await wu.call("POST", f"{path}/complete", json={"step": "archive"})
        assert status == 200 and body["complaint"]["archived_at"] is not None

        _, detail = await boss.call("GET", path)
        steps = detail["complaint"]["steps"]
        assert [s["step"] for s in steps] == ["verify", "review", "rectify", "callback",
                                              "archive"]
        assert all(s["owner_id"] == wu_id and s["done_by"] == wu_id for s in steps)
        assert steps[3]["outcome"] == "satisfied"
        assert detail["complaint"]["acknowledgement"]["channel"] == "sms"

        _, archived = await boss.call("GET", "/complaints?archived=true")
        _, open_ = await boss.call("GET", "/complaints?archived=false")
        assert [x["id"] for x in archived["complaints"]] == [c["id"]] and not open_["complaints"]
    finally:
        for client in (li, wu, boss):
            await client.close()


@pytest.mark.parametrize(
    ("payload", "status", "words"),
    [({"customer_id": 999, "channel": "sms", "summary": "x"}, 404, "999"),
     ({"customer_id": 1, "summary": "x"}, 422, "channel"),
     ({"customer_id": 1, "channel": "fax", "summary": "x"}, 422, "channel"),
     ({"customer_id": 1, "channel": "sms", "summary": ""}, 422, "summary"),
     ({"customer_id": 1, "contact_id": 77, "summary": "x"}, 422, "contact_id")],
)
async def test_bad_complaints_are_refused(node: Node, payload: dict[str, Any], status: int,
                                          words: str) -> None:
    await _customer(node)
    _, api = await _api(node, "li")
    try:
        got, body = await api.call("POST", "/complaints", json=payload)
        assert got == status and words in body["error"]["message"], body
        async with node.rt.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Complaint)) == 0
    finally:
        await api.close()


async def test_a_missed_deadline_escalates_once_per_step(node: Node, clock: ManualClock) -> None:
    customer_id = await _customer(node, "B")
    _, li = await _api(node, "li")
    try:
        _, body = await li.call("POST", "/complaints", json={
            "customer_id": customer_id, "channel": "sms", "summary": "x"})
        complaint_id = body["complaint"]["id"]
        clock.set(MONDAY.replace(hour=13, minute=59))
        assert await escalate_overdue(node.rt) == []
        clock.set(MONDAY.replace(hour=14))  # 4 working hours
        assert await escalate_overdue(node.rt) == [(complaint_id, "verify", 2)]
        assert await escalate_overdue(node.rt) == []  # once per step
        _, filtered = await li.call("GET", "/complaints?level=2&step=verify")
        assert [c["id"] for c in filtered["complaints"]] == [complaint_id]
        assert filtered["complaints"][0]["level_name"] == "supervisor"
        _, detail = await li.call("GET", f"/complaints/{complaint_id}")
        (verify,) = detail["complaint"]["steps"]
        assert verify["level"] == 2
        assert datetime.fromisoformat(verify["escalated_at"]) == MONDAY.replace(hour=14)
    finally:
        await li.close()


async def test_two_nodes_escalating_at_once_escalate_each_step_once(pg_url: str) -> None:
    clock = ManualClock(MONDAY)
    prefix = f"cctest-esc-{id(clock)}"
    nodes = [await start_node(pg_url, REDIS_URL, prefix, clock, scheduler_seconds=3600)
             for _ in range(2)]
    try:
        now = utc(clock.now())
        async with nodes[0].rt.sessions.begin() as session:
            customer = Customer(name="x", created_at=now, updated_at=now)
            session.add(customer)
            await session.flush()
            for _ in range(60):
                await open_complaint(session, nodes[0].rt.rules, customer=customer,
                                     channel="letter", summary="x", now=now, owner_id=None,
                                     actor_id=None)
        for hour in (14, 15):  # the second round finds nothing left to escalate
            clock.set(MONDAY.replace(hour=hour))
            first, second = await asyncio.gather(*(escalate_overdue(n.rt) for n in nodes))
            made = sorted(first + second)
            assert len(made) == len(set(made)) == (60 if hour == 14 else 0)
        async with nodes[0].rt.sessions() as session:
            levels = (await session.scalars(select(Complaint.level))).all()
            acks = await session.scalar(select(func.count()).select_from(ScheduledWork)
                                        .where(ScheduledWork.kind == "complaint-ack"))
        assert sorted(levels) == [2] * 60 and acks == 60
    finally:
        for n in nodes:
            await n.stop()


async def test_an_ack_left_unsent_goes_out_on_the_next_round(node: Node, fake: FakeTwilio,
                                                             clock: ManualClock) -> None:
    customer_id = await _customer(node, "D")
    async with node.rt.sessions.begin() as session:  # as if the node died right after opening
        customer = await session.get(Customer, customer_id)
        assert customer is not None
        await open_complaint(session, node.rt.rules, customer=customer, channel="sms",
                             summary="x", now=utc(clock.now()), owner_id=None, actor_id=None)
    clock.advance(30)
    await run_once(node.rt, set())
    await _eventually(lambda: asyncio.sleep(0, fake.posted("/Messages.json")), "the ack")
    await run_once(node.rt, set())
    await asyncio.sleep(0.1)
    assert len(fake.posted("/Messages.json")) == 1  # exactly once
