"""The supervisor board's views, over data made through the real paths: events in, callbacks
routed and worked by an agent, complaint acknowledgements and greetings sent through the fake
Twilio with signed delivery reports, complaints escalated by the job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from fake_twilio import ACCOUNT_SID, FakeTwilio, post_webhook, twilio_settings
from harness import Agent, Api, Node, add_queue, add_user, login, start_node
from sqlalchemy import select

from contactcenter.callbacks import run_callbacks
from contactcenter.clock import ManualClock, utc
from contactcenter.complaints import escalate_overdue
from contactcenter.customers import CustomerIn, create_customer
from contactcenter.greetings import plan_greetings, send_due_greetings
from contactcenter.storage.models import Consent, CustomerOwner, Message

SH = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=SH)
PUBLIC = "https://cc.example.com"


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(MONDAY)


@pytest.fixture
async def node(stack: tuple[str, str | None, str], clock: ManualClock, fake: FakeTwilio
               ) -> AsyncIterator[Node]:
    n = await start_node(*stack, clock=clock, scheduler_seconds=3600, sms_from="+8610000",
                         **twilio_settings(fake.url, PUBLIC))
    yield n
    await n.stop()


async def _customer(node: Node, name: str, phone: str, tier: str, owners: list[int],
                    birthday: date | None = None) -> int:
    now = utc(node.rt.clock.now())
    async with node.rt.sessions.begin() as session:
        c = await create_customer(session, CustomerIn(name=name, phones=[phone],
                                                      birthday=birthday),
                                  actor_id=None, now=now)
        c.tier = tier
        session.add_all(CustomerOwner(customer_id=c.id, user_id=u, since=now) for u in owners)
        return c.id


async def _sent(node: Node, count: int) -> list[Message]:
    """The outbound SMS, once `count` of them have left (status sent, provider id known)."""
    for _ in range(200):
        async with node.rt.sessions() as session:
            rows = (await session.scalars(select(Message).where(
                Message.status.in_(("sent", "delivered", "undelivered")))
                .order_by(Message.id))).all()
        if len(rows) >= count:
            return list(rows)
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} SMS sent")


async def _report(node: Node, message: Message, status: str) -> None:
    sid = (message.external_id or "").removeprefix("sms:")
    code, _ = await post_webhook(node.url, PUBLIC, "/twilio/sms/status", {
        "MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID, "MessageStatus": status,
        "From": "+8610000"})
    assert code == 204


async def _work(agent: Agent, clock: ManualClock, closed_at: datetime) -> int:
    offer = await agent.expect("offer")
    contact_id = offer["contact"]["id"]
    await agent.send(type="accept", contact_id=contact_id)
    await agent.expect("contact", contact__state="active")
    await agent.send(type="end", contact_id=contact_id)
    await agent.expect("contact", contact__state="wrapup")
    clock.set(closed_at)
    await agent.send(type="wrapup", contact_id=contact_id, disposition="resolved")
    await agent.expect("contact", contact__state="closed")
    return contact_id


async def test_the_board_counts_callbacks_complaints_greetings_providers_and_gaps(
    node: Node, clock: ManualClock
) -> None:
    await add_queue(node, "callbacks", channels=["callback"])
    li_id = await add_user(node, "li")
    await add_user(node, "boss", "supervisor")
    boss = Api(node, await login(node, "boss"))
    agent = await Agent.connect(node, await login(node, "li"), li_id)
    try:
        vip = await _customer(node, "王芳", "13800138000", "A", [li_id])  # needs 2 owners
        key = await _customer(node, "李伟", "13900139000", "B", [])
        await _customer(node, "张敏", "13700137000", "C", [], birthday=date(1990, 11, 23))
        quit_ = await _customer(node, "赵强", "13600136000", "D", [li_id],
                                birthday=date(1991, 11, 23))

        # Two written complaints: two C6 callbacks due now, latest 12:00 (2 working hours),
        # and two acknowledgement SMS sent at 10:00.
        for customer_id in (vip, key):
            status, body = await boss.call("POST", "/events", json={
                "customer_id": customer_id, "kind": "complaint-written"})
            assert status == 201, body
        acks = await _sent(node, 2)

        # The day's birthday greetings, one of them opted out after the planning.
        await plan_greetings(node.rt.sessions, node.rt.rules, MONDAY.date(), utc(clock.now()))
        async with node.rt.sessions.begin() as session:
            session.add(Consent(customer_id=quit_, purpose="sms-marketing", granted=False,
                                at=utc(clock.now())))
        clock.set(MONDAY.replace(second=4))
        await _report(node, acks[0], "delivered")  # 4 s after it was sent
        await _report(node, acks[1], "undelivered")
        assert await send_due_greetings(node.rt) == 1
        greeting = (await _sent(node, 3))[2]
        clock.set(MONDAY.replace(second=14))
        await _report(node, greeting, "delivered")  # 10 s

        # The callbacks become contacts; the agent works the A customer's (it goes first) at
        # 11:00, inside its window, and the B customer's at 13:00, an hour late.
        await agent.recv()
        await agent.available()
        assert len(await run_callbacks(node.rt)) == 2
        first = await _work(agent, clock, MONDAY.replace(hour=11))
        clock.set(MONDAY.replace(hour=12, minute=30))
        status, due = await boss.call("GET", "/supervisor/callbacks/due")
        assert status == 200, due
        assert due["day"] == "2026-11-23" and due["total"] == 2
        assert due["counts"] == {"pending": 0, "open": 1, "done": 1, "cancelled": 0}
        assert [(c["customer_id"], c["rule"], c["overdue"]) for c in due["callbacks"]] == [
            (vip, "C6", False), (key, "C6", True)]
        assert due["callbacks"][0]["contact_id"] == first
        _, overdue = await boss.call("GET", "/supervisor/callbacks/overdue")
        assert overdue["total"] == 1 and overdue["callbacks"][0]["customer_id"] == key

        await _work(agent, clock, MONDAY.replace(hour=13))
        _, overdue = await boss.call("GET", "/supervisor/callbacks/overdue")
        assert overdue["total"] == 0
        _, compliance = await boss.call(
            "GET", "/supervisor/callbacks/compliance?from=2026-11-23&to=2026-11-23")
        assert (compliance["total"], compliance["in_window"], compliance["late"],
                compliance["not_done"], compliance["compliance"]) == (2, 1, 1, 0, 0.5)
        assert [r["rule"] for r in compliance["rules"]] == ["C6"]

        # Complaints: both at verify; past 14:00 (4 working hours) the job escalates them.
        _, board = await boss.call("GET", "/supervisor/complaints")
        assert board["groups"] == [{"step": "verify", "level": 1, "level_name": "team",
                                    "count": 2, "overdue": 0}]
        clock.set(MONDAY.replace(hour=14, minute=1))
        assert len(await escalate_overdue(node.rt)) == 2
        _, board = await boss.call("GET", "/supervisor/complaints")
        assert board["groups"] == [{"step": "verify", "level": 2,
                                    "level_name": "supervisor", "count": 2, "overdue": 2}]
        assert (board["open"], board["archived"], board["overdue"]) == (2, 0, 2)

        _, greetings = await boss.call("GET", "/supervisor/greetings?from=2026-11-23&to=2026-11-23")
        assert greetings["runs"] == [{"day": "2026-11-23", "rule": "birthday", "planned": 2,
                                      "pending": 0, "skipped": 1, "sent": 1, "delivered": 1,
                                      "failed": 0}]

        _, providers = await boss.call("GET", "/supervisor/sms-providers")
        assert providers["providers"] == [{
            "provider": "twilio", "sent": 3, "delivered": 2, "failed": 1,
            "delivery_rate": 0.6667, "latency_p50_seconds": 4.0, "latency_p95_seconds": 10.0}]

        _, gaps = await boss.call("GET", "/supervisor/coverage-gaps")
        assert gaps["total"] == 2
        assert [(g["customer_id"], g["tier"], g["owners"]) for g in gaps["customers"]] == [
            (vip, "A", 1), (key, "B", 0)]
    finally:
        await agent.close()
        await boss.close()


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [("/supervisor/greetings?from=2026-11-23&to=2026-11-01", 422, "after"),
     ("/supervisor/greetings?from=2026-01-01&to=2026-03-01", 422, "31 days"),
     ("/supervisor/sms-providers?from=yesterday", 422, "from"),
     ("/supervisor/callbacks/due?limit=0", 422, "limit")],
)
async def test_bad_board_queries_are_refused(node: Node, path: str, status: int,
                                             words: str) -> None:
    await add_user(node, "boss", "supervisor")
    boss = Api(node, await login(node, "boss"))
    try:
        got, body = await boss.call("GET", path)
        assert got == status and words in body["error"]["message"], body
    finally:
        await boss.close()


async def test_the_board_is_for_supervisors(node: Node) -> None:
    await add_user(node, "li")
    li = Api(node, await login(node, "li"))
    try:
        for view in ("callbacks/due", "callbacks/overdue", "callbacks/compliance", "complaints",
                     "greetings", "sms-providers", "coverage-gaps"):
            status, _ = await li.call("GET", f"/supervisor/{view}")
            assert status == 403, view
    finally:
        await li.close()
