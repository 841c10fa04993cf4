"""Web chat end to end: `websockets` clients play the customer's widget on /chat/ws and the agent
on /agent/ws, on the embedded default and on PostgreSQL + Redis (see `stack`)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import websockets
from conftest import NOW, REDIS_URL
from harness import Agent, Node, add_queue, add_user, login, start_node
from sqlalchemy import select

from channels.chat import BURST, MAX_BODY, REFILL_SECONDS
from contactcenter.clock import ManualClock
from contactcenter.storage.models import Contact, Conversation, Customer, Message

OFFICE_HOURS = {"timezone": "Asia/Shanghai", "holidays": "CN",
                "weekly": {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu",
                                                                 "fri")}}
EVENING = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # Monday 20:00 in Shanghai: closed


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(NOW)  # Monday 10:00 in Shanghai


@pytest.fixture
async def node(stack: tuple[str, str | None, str], clock: ManualClock) -> AsyncIterator[Node]:
    n = await start_node(*stack, clock=clock)
    yield n
    await n.stop()


class ChatClient(Agent):
    """The widget in a customer's browser: the same JSON-frame client as the agent's."""

    @classmethod
    async def open(cls, node: Node, **kw: Any) -> ChatClient:  # type: ignore[override]
        return cls(await websockets.connect(f"{node.ws_url}/chat/ws", **kw), 0)

    async def start(self, **fields: Any) -> dict[str, Any]:
        await self.send(type="start", **fields)
        return await self.expect("session")

    async def resume(self, token: str) -> dict[str, Any]:
        await self.send(type="resume", token=token)
        return await self.expect("session")


async def connect_agent(node: Node, username: str, **kw: Any) -> Agent:
    user_id = await add_user(node, username, **kw)
    agent = await Agent.connect(node, await login(node, username), user_id)
    assert (await agent.recv())["type"] == "snapshot"
    await agent.expect("status", status="away")
    await agent.available()
    return agent


async def accept(agent: Agent) -> dict[str, Any]:
    offer = await agent.expect("offer")
    await agent.send(type="accept", contact_id=offer["contact"]["id"])
    await agent.expect("contact", contact__state="active", contact__id=offer["contact"]["id"])
    return offer


async def closed_by_server(client: Agent) -> int | None:
    """Read until the server closes the socket; its close code."""
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await client.recv(timeout=5)
    return client.ws.close_code


async def messages_of(node: Node, conversation_token: str) -> list[Message]:
    async with node.rt.sessions() as session:
        conversation = await session.scalar(
            select(Conversation).where(Conversation.token == conversation_token))
        assert conversation is not None
        return list((await session.scalars(select(Message).where(
            Message.conversation_id == conversation.id).order_by(Message.id))).all())


async def test_prechat_start_offers_the_contact_with_the_screen_pop(node: Node) -> None:
    await add_queue(node, "support", description="Customer support\ninternal: team B")
    await add_queue(node, "billing", description="", channels=["chat"])
    await add_queue(node, "voice-only", channels=["voice"])
    async with aiohttp.ClientSession() as http, http.get(
        f"{node.url}/chat/topics", headers={"Origin": "https://shop.example.com"}
    ) as r:
        assert r.status == 200
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        listed = await r.json()
    assert listed["topics"] == [{"topic": "support", "name": "Customer support", "open": True},
                                {"topic": "billing", "name": "billing", "open": True}]
    agent = await connect_agent(node, "li")

    customer = await ChatClient.open(node)
    session = await customer.start(name="张伟", phone="138 0013 8000", topic="billing",
                                   message="我的订单还没到", page="https://shop.example.com/o/1")
    assert session["status"] == "waiting"
    assert session["topic"] == "billing"
    assert [(m["from"], m["body"]) for m in session["history"]] == [("customer", "我的订单还没到")]
    assert len(session["token"]) >= 40

    offer = await agent.expect("offer")
    assert offer["contact"]["channel"] == "chat"
    assert offer["contact"]["queue"] == "billing"
    assert offer["contact"]["from"] == "+8613800138000"
    assert offer["contact"]["body"] == "我的订单还没到"
    assert offer["customer"]["name"] == "张伟"
    assert [p["number"] for p in offer["customer"]["phones"]] == ["+8613800138000"]
    async with node.rt.sessions() as db:
        contact = await db.get(Contact, offer["contact"]["id"])
        assert contact is not None
        conversation = await db.get(Conversation, contact.conversation_id)
        assert conversation is not None and conversation.token == session["token"]
        assert contact.meta == {"topic": "billing", "name": "张伟",
                                "page": "https://shop.example.com/o/1"}
    await customer.close()
    await agent.close()


async def test_start_by_email_and_bad_forms(node: Node) -> None:
    await add_queue(node, "support")
    by_mail = await ChatClient.open(node)
    await by_mail.start(name="Ann", email="Ann@Example.com", message="hi")
    await by_mail.send(type="message", body="again")
    await by_mail.expect("message", message__body="again")
    bad = await ChatClient.open(node)
    await bad.send(type="start", name="Visitor")  # a phone or an email is needed
    assert (await bad.expect("error"))["code"] == "contact-required"
    await bad.send(type="start", name="x", phone="not a phone")
    assert (await bad.expect("error"))["code"] == "invalid"
    await bad.send(type="start", name="x", phone=12345)
    assert (await bad.expect("error"))["code"] == "invalid"
    await bad.send(type="start", name="x", email="a@b.cn", topic="nope")
    assert (await bad.expect("error"))["code"] == "not-found"
    await bad.send(type="message", body="before any chat")
    assert (await bad.expect("error"))["code"] == "no-session"
    await bad.send(type="start", name="x", email="b@b.cn")  # the socket is still usable
    await bad.expect("session")
    async with node.rt.sessions() as db:
        contacts = (await db.scalars(select(Contact).order_by(Contact.id))).all()
        assert [c.from_address for c in contacts] == ["ann@example.com", "b@b.cn"]
        ann = await db.get(Customer, contacts[0].customer_id)
        assert ann is not None and ann.name == "Ann"
        # Every line of a chat is the same customer's: no stray cards.
        customers = (await db.scalars(select(Customer))).all()
        assert len(customers) == 2
    for c in (by_mail, bad):
        await c.close()


async def test_messages_both_ways_with_typing_and_agent_presence(node: Node) -> None:
    await add_queue(node, "support")
    agent = await connect_agent(node, "li", display_name="李娜")
    customer = await ChatClient.open(node)
    session = await customer.start(name="张伟", phone="13800138000", message="hello")
    offer = await accept(agent)
    contact_id = offer["contact"]["id"]
    joined = await customer.expect("status", status="connected")
    assert joined["agent"] == "李娜"

    await customer.send(type="message", id="c-1", body="where is my parcel?")
    echo = await customer.expect("message")
    assert echo["message"]["from"] == "customer"
    assert echo["message"]["client_id"] == "c-1"
    got = await agent.expect("message", contact_id=contact_id)
    assert got["message"]["body"] == "where is my parcel?"
    assert got["message"]["direction"] == "inbound"

    await agent.send(type="typing", contact_id=contact_id)
    await customer.expect("typing")
    await customer.send(type="typing")
    await agent.expect("customer_typing", contact_id=contact_id)

    await agent.send(type="reply", contact_id=contact_id, body="<b>On its way</b> — tomorrow")
    reply = await customer.expect("message", message__from="agent")
    assert reply["message"]["body"] == "<b>On its way</b> — tomorrow"
    await agent.expect("message_status", status="sent")

    stored = await messages_of(node, session["token"])
    assert [(m.direction, m.body) for m in stored] == [
        ("inbound", "hello"), ("inbound", "where is my parcel?"),
        ("outbound", "<b>On its way</b> — tomorrow")]
    assert stored[-1].status == "sent"

    # Typing is only for the agent's own live contact.
    await agent.send(type="typing", contact_id=contact_id + 999)
    error = await agent.expect("error", request="typing")
    assert "not active for you" in error["message"]
    await customer.close()
    await agent.close()


async def test_resume_with_the_token_returns_the_history_and_continues(node: Node) -> None:
    await add_queue(node, "support")
    agent = await connect_agent(node, "li")
    customer = await ChatClient.open(node)
    token = (await customer.start(name="张伟", phone="13800138000", message="first"))["token"]
    offer = await accept(agent)
    contact_id = offer["contact"]["id"]
    await agent.send(type="reply", contact_id=contact_id, body="hi, how can I help?")
    await customer.expect("message", message__from="agent")
    await customer.close()  # the page reloads

    again = await ChatClient.open(node)
    session = await again.resume(token)
    assert session["status"] == "connected"
    assert [(m["from"], m["body"]) for m in session["history"]] == [
        ("customer", "first"), ("agent", "hi, how can I help?")]
    await again.send(type="message", id="c-2", body="still there?")
    got = await agent.expect("message", contact_id=contact_id,  # the same live contact
                             message__direction="inbound")
    assert got["message"]["body"] == "still there?"

    # A line resent after a lost answer is stored once.
    await again.send(type="message", id="c-2", body="still there?")
    await again.expect("message", message__client_id="c-2")
    assert [m.body for m in await messages_of(node, token)].count("still there?") == 1

    # The agent closes the contact; the customer writes again: a new contact, same thread.
    await agent.send(type="wrapup", contact_id=contact_id, disposition="resolved")
    await agent.expect("contact", contact__state="closed")
    await again.expect("status", status="closed")
    await again.send(type="message", body="one more thing")
    await again.expect("status", status="waiting")
    offer2 = await agent.expect("offer")
    assert offer2["contact"]["id"] != contact_id
    async with node.rt.sessions() as db:
        first = await db.get(Contact, contact_id)
        second = await db.get(Contact, offer2["contact"]["id"])
        assert first is not None and second is not None
        assert second.conversation_id == first.conversation_id
        assert second.queue_id == first.queue_id
    await again.close()
    await agent.close()


async def test_a_wrong_token_is_refused_and_sees_nothing(node: Node) -> None:
    await add_queue(node, "support")
    owner = await ChatClient.open(node)
    await owner.start(name="张伟", phone="13800138000", message="my private order 42")
    async with node.rt.sessions.begin() as db:
        # An email thread's reply+<token>@ secret is no key to a chat.
        some = await db.scalar(select(Contact))
        assert some is not None
        db.add(Conversation(customer_id=some.customer_id, channel="email", status="open",
                            token="mail-token-123", created_at=NOW, last_message_at=NOW))

    for token in ("not-a-token", "mail-token-123", "", "x" * 500):
        intruder = await ChatClient.open(node)
        await intruder.send(type="resume", token=token)
        error = await intruder.expect("error")
        assert error["code"] == "unknown-session"
        assert await closed_by_server(intruder) == 4404
        assert all("order 42" not in json.dumps(m) for m in intruder.seen)
    await owner.close()


async def test_two_customers_cannot_see_each_other(node: Node) -> None:
    await add_queue(node, "support")
    agent = await connect_agent(node, "li")
    alice = await ChatClient.open(node)
    alice_token = (await alice.start(name="Alice", email="alice@example.com",
                                     message="alice secret"))["token"]
    first = await accept(agent)
    bob = await ChatClient.open(node)
    bob_token = (await bob.start(name="Bob", email="bob@example.com",
                                 message="bob secret"))["token"]
    second = await accept(agent)
    by_name = {first["customer"]["name"]: first["contact"]["id"],
               second["customer"]["name"]: second["contact"]["id"]}

    await agent.send(type="typing", contact_id=by_name["Alice"])
    await alice.expect("typing")
    await agent.send(type="reply", contact_id=by_name["Alice"], body="for alice only")
    await alice.expect("message", message__body="for alice only")
    await bob.send(type="message", body="bob again")
    await bob.expect("message", message__body="bob again")
    await bob.nothing_for(0.5, types="message")
    await alice.nothing_for(0.5, types="message")
    assert not any(m["type"] == "typing" for m in bob.seen)
    assert all("bob" not in json.dumps(m) for m in alice.seen)
    assert all("alice" not in json.dumps(m) for m in bob.seen)

    # Each token opens only its own conversation.
    for token, mine, theirs in ((alice_token, "alice", "bob"), (bob_token, "bob", "alice")):
        tab = await ChatClient.open(node)
        history = json.dumps((await tab.resume(token))["history"])
        assert mine in history and theirs not in history
        await tab.close()
    for c in (alice, bob):
        await c.close()
    await agent.close()


async def test_out_of_hours_the_customer_leaves_a_message(
    node: Node, clock: ManualClock
) -> None:
    await add_queue(node, "support", business_hours=OFFICE_HOURS)
    clock.set(EVENING)
    async with aiohttp.ClientSession() as http, http.get(
        f"{node.url}/chat/topics?lang=en"
    ) as r:
        listed = await r.json()
    closed_text = node.rt.templates.render("chat_closed", "en", company="contactcenter")
    assert listed["topics"] == [{"topic": "support", "name": "support", "open": False}]
    assert listed["closed_text"] == closed_text

    customer = await ChatClient.open(node)
    await customer.send(type="start", name="张伟", phone="13800138000", language="en")
    assert (await customer.expect("error"))["code"] == "message-required"
    await customer.send(type="start", name="张伟", message="call me", language="en")
    assert (await customer.expect("error"))["code"] == "contact-required"
    session = await customer.start(name="张伟", phone="13800138000", language="en",
                                   message="Please call me about my invoice")
    notice = await customer.expect("closed")
    assert notice["text"] == closed_text
    assert session["status"] == "waiting"

    async with node.rt.sessions() as db:
        contact = await db.scalar(select(Contact))
        assert contact is not None
        assert contact.state == "queued"
        assert contact.meta is not None and contact.meta["out_of_hours"] is True
        assert contact.body == "Please call me about my invoice"
    # In the morning an agent finds it waiting in the queue.
    clock.set(datetime(2026, 11, 24, 1, 30, tzinfo=UTC))
    agent = await connect_agent(node, "li")
    offer = await agent.expect("offer")
    assert offer["contact"]["body"] == "Please call me about my invoice"
    await customer.close()
    await agent.close()


async def test_size_and_rate_limits_answer_with_error_frames(
    node: Node, clock: ManualClock
) -> None:
    await add_queue(node, "support")
    customer = await ChatClient.open(node)
    token = (await customer.start(name="张伟", phone="13800138000"))["token"]  # spends 1

    await customer.send(type="message", id="big", body="x" * (MAX_BODY + 1))
    error = await customer.expect("error")
    assert (error["code"], error["id"]) == ("too-long", "big")
    await customer.send(type="message", body="x" * MAX_BODY)
    await customer.expect("message")
    for i in range(BURST - 2):
        await customer.send(type="message", body=f"line {i}")
        await customer.expect("message", message__body=f"line {i}")
    await customer.send(type="message", id="one-too-many", body="spam")
    error = await customer.expect("error")
    assert (error["code"], error["id"]) == ("rate-limited", "one-too-many")
    clock.advance(REFILL_SECONDS)
    await customer.send(type="message", body="after a pause")
    await customer.expect("message", message__body="after a pause")
    bodies = [m.body for m in await messages_of(node, token)]
    assert "spam" not in bodies and len(bodies) == BURST

    await customer.send(type="nonsense")
    assert (await customer.expect("error"))["code"] == "bad-frame"
    await customer.ws.send("not json")
    assert (await customer.expect("error"))["code"] == "bad-frame"
    await customer.ws.send(json.dumps({"type": "message", "body": "y" * 70_000}))
    assert await closed_by_server(customer) == 1009  # too big to read at all


async def test_the_customer_ending_the_chat_frees_the_agent(node: Node) -> None:
    await add_queue(node, "support")
    agent = await connect_agent(node, "li")
    customer = await ChatClient.open(node)
    token = (await customer.start(name="张伟", phone="13800138000", message="hi"))["token"]
    offer = await accept(agent)
    await customer.send(type="end")
    await customer.expect("ended")
    assert await closed_by_server(customer) == 1000
    ended = await agent.expect("contact", contact__id=offer["contact"]["id"],
                               contact__state="wrapup")
    assert ended["contact"]["reason"] == "customer-left"

    # Leaving while still waiting abandons the contact.
    waiting = await ChatClient.open(node)
    await waiting.start(name="Ann", email="ann@example.com", topic="support")
    second = await agent.expect("offer")
    await waiting.send(type="end")
    await waiting.expect("ended")
    await agent.expect("offer_revoked", contact_id=second["contact"]["id"], reason="abandoned")
    assert token  # the first chat's token still names its conversation
    await agent.close()


async def test_widget_is_served_as_javascript_without_html_injection(node: Node) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{node.url}/chat/widget.js") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/javascript")
        source = await r.text()
    assert "/chat/ws" in source and "/chat/topics" in source and "localStorage" in source
    assert "textContent" in source
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source, sink


async def test_an_origin_allow_list_keeps_other_sites_out(
    stack: tuple[str, str | None, str], clock: ManualClock
) -> None:
    node = await start_node(*stack, clock=clock,
                            chat_allowed_origins=["https://shop.example.com"])
    try:
        await add_queue(node, "support")
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(f"{node.ws_url}/chat/ws", origin="https://evil.example")
        assert refused.value.response.status_code == 403
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(f"{node.ws_url}/chat/ws")  # no Origin at all
        shop = await ChatClient.open(node, origin="https://shop.example.com")
        await shop.start(name="Ann", email="ann@example.com")
        await shop.close()
        async with aiohttp.ClientSession() as http:
            for origin, allowed in (("https://shop.example.com", "https://shop.example.com"),
                                    ("https://evil.example", None)):
                async with http.get(f"{node.url}/chat/topics",
                                    headers={"Origin": origin}) as r:
                    assert r.headers.get("Access-Control-Allow-Origin") == allowed
    finally:
        await node.stop()


async def test_a_customer_on_one_node_hears_an_agent_on_another(
    pg_url: str, clock: ManualClock
) -> None:
    """Two nodes share state through PostgreSQL and Redis (the fixture requires both)."""
    prefix = f"cctest-{uuid.uuid4().hex[:8]}"
    one = await start_node(pg_url, REDIS_URL, prefix, clock)
    two = await start_node(pg_url, REDIS_URL, prefix, clock)
    try:
        await add_queue(one, "support")
        agent = await connect_agent(one, "li")
        customer = await ChatClient.open(two)
        await customer.start(name="张伟", phone="13800138000", message="hello from node 2")
        offer = await accept(agent)
        assert offer["contact"]["body"] == "hello from node 2"
        await customer.expect("status", status="connected")
        await agent.send(type="typing", contact_id=offer["contact"]["id"])
        await customer.expect("typing")
        await agent.send(type="reply", contact_id=offer["contact"]["id"], body="from node 1")
        await customer.expect("message", message__body="from node 1")
        await customer.send(type="message", body="thanks")
        await agent.expect("message", message__body="thanks")
        await customer.close()
        await agent.close()
    finally:
        await two.stop()
        await one.stop()


async def test_sockets_close_when_the_server_stops(
    stack: tuple[str, str | None, str], clock: ManualClock
) -> None:
    node = await start_node(*stack, clock=clock)
    await add_queue(node, "support")
    customer = await ChatClient.open(node)
    await customer.start(name="Ann", email="ann@example.com")
    await asyncio.wait_for(node.stop(), 10)
    assert await closed_by_server(customer) == 1001
