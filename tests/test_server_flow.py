"""End to end through one server: an integration posts contacts, `websockets` clients play
agents. Each test runs on the embedded default and on PostgreSQL + Redis (see `stack`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from harness import Agent, Api, Node, add_queue, add_user, login, start_node
from sqlalchemy import func, select

from contactcenter.clock import ManualClock, utc
from contactcenter.customers import CustomerIn, create_customer
from contactcenter.storage.models import Contact, ContactEvent, Customer, Message


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(1_795_000_000.0)


@pytest.fixture
async def node(stack: tuple[str, str | None, str], clock: ManualClock) -> AsyncIterator[Node]:
    n = await start_node(*stack, clock=clock)
    yield n
    await n.stop()


@pytest.fixture
async def integration(node: Node) -> AsyncIterator[Api]:
    await add_user(node, "boss", role="supervisor")
    api = Api(node, await login(node, "boss"))
    yield api
    await api.close()


async def connect_agent(node: Node, username: str, **kw: object) -> Agent:
    user_id = await add_user(node, username, **kw)  # type: ignore[arg-type]
    agent = await Agent.connect(node, await login(node, username), user_id)
    snapshot = await agent.recv()
    assert snapshot["type"] == "snapshot"
    await agent.expect("status", status="away")  # an agent starts away
    return agent


async def test_offer_carries_screen_pop_and_contact_runs_to_wrapup(
    node: Node, integration: Api
) -> None:
    queue_id = await add_queue(node, "support", required_skills=["support"])
    async with node.rt.sessions.begin() as session:
        known = await create_customer(
            session, CustomerIn(name="王芳", phones=["+86 138 0013 8000"], tier="A"),
            actor_id=None, now=utc(node.rt.clock.now()),
        )
    first = await integration.post_contact("+8613800138000", "first question")
    agent = await connect_agent(node, "li", skills=["support"])
    await agent.nothing_for(0.5)  # queued work waits while the agent is away

    await agent.available()
    offer = await agent.expect("offer")
    assert offer["contact"]["id"] == first["id"]
    assert offer["customer"]["name"] == "王芳"
    assert offer["customer"]["tier"] == "A"
    assert offer["customer"]["id"] == known.id
    await agent.send(type="accept", contact_id=first["id"])
    await agent.expect("contact", contact__state="active")
    await agent.send(type="end", contact_id=first["id"])
    await agent.expect("contact", contact__state="wrapup")
    await agent.send(type="wrapup", contact_id=first["id"], disposition="resolved",
                     notes="explained the warranty")
    await agent.expect("contact", contact__state="closed")

    # The second contact's screen-pop shows the first in the history.
    second = await integration.post_contact("+86 138-0013-8000", "again")
    offer = await agent.expect("offer")
    assert offer["contact"]["id"] == second["id"]
    history = {h["contact_id"]: h for h in offer["history"]}
    assert history[first["id"]]["disposition"] == "resolved"
    assert history[first["id"]]["notes"] == "explained the warranty"

    status, detail = await integration.call("GET", f"/contacts/{first['id']}")
    assert status == 200
    assert [e["kind"] for e in detail["events"]] == [
        "entered", "offered", "accepted", "ended", "completed"]
    assert all(e["queue_id"] == queue_id for e in detail["events"])
    await agent.close()


async def test_an_agent_with_free_slots_is_offered_several_contacts_at_once(
    node: Node, integration: Api
) -> None:
    await add_queue(node, "support")
    agent = await connect_agent(node, "li", capacity={"api": 2})
    await agent.available()
    posted = [await integration.post_contact(f"+861380013800{i}", f"q{i}") for i in range(3)]
    offers = [await agent.expect("offer") for _ in range(2)]
    assert sorted(o["contact"]["id"] for o in offers) == [posted[0]["id"], posted[1]["id"]]
    await agent.nothing_for(0.3)  # both slots are taken by offers: the third waits
    await agent.send(type="reject", contact_id=posted[0]["id"])
    again = await agent.expect("offer")  # the freed slot takes the next one, not the rejected
    assert again["contact"]["id"] == posted[2]["id"]
    await agent.close()


async def test_frames_of_one_round_reach_the_agent_each_whole_and_in_order(
    node: Node, integration: Api
) -> None:
    """Accept, end and wrap-up sent at once are answered in one round, with the next offer
    (made as the wrap-up frees the agent's one slot): the socket writes such frames together
    (`websocket_frames`), and the client still reads each as its own message, numbered one
    after the other."""
    await add_queue(node, "support")
    agent = await connect_agent(node, "li", capacity={"api": 1})
    await agent.available()
    first = await integration.post_contact("+8613800138000", "first")
    offer = await agent.expect("offer")
    assert offer["contact"]["id"] == first["id"]
    second = await integration.post_contact("+8613800138001", "second")
    await agent.nothing_for(0.3)  # the agent's one slot is taken: the second waits
    for command in ({"type": "accept"}, {"type": "end"},
                    {"type": "wrapup", "disposition": "resolved"}):
        await agent.send(**command, contact_id=first["id"])
    answers = [await agent.recv() for _ in range(4)]
    assert [(m["type"], m["contact"]["id"], m["contact"].get("state")) for m in answers] == [
        ("contact", first["id"], "active"), ("contact", first["id"], "wrapup"),
        ("contact", first["id"], "closed"), ("offer", second["id"], "offered")]
    assert [m["seq"] for m in answers] == list(range(offer["seq"] + 1, offer["seq"] + 5))
    await agent.close()


async def test_unknown_sender_becomes_a_new_customer_shown_as_new(
    node: Node, integration: Api
) -> None:
    await add_queue(node, "support")
    agent = await connect_agent(node, "li")
    await agent.available()
    posted = await integration.post_contact("+1 415 555 0100", "hi, new here")
    offer = await agent.expect("offer")
    assert offer["customer"]["is_new"] is True
    assert offer["history"] == []
    async with node.rt.sessions() as session:
        customer = await session.get(Customer, posted["customer_id"])
        assert customer is not None
        assert [p.number for p in customer.phones] == ["+14155550100"]
    await agent.close()


async def test_wrapup_needs_a_disposition_of_the_queue(node: Node, integration: Api) -> None:
    await add_queue(node, "support", dispositions=["resolved"])
    agent = await connect_agent(node, "li")
    await agent.available()
    contact = await integration.post_contact("+8613900139000")
    await agent.expect("offer")
    await agent.send(type="accept", contact_id=contact["id"])
    await agent.expect("contact", contact__state="active")
    await agent.send(type="wrapup", contact_id=contact["id"], disposition="whatever")
    error = await agent.expect("error")
    assert "resolved" in error["message"]
    await agent.send(type="wrapup", contact_id=contact["id"], disposition="resolved")
    await agent.expect("contact", contact__state="closed", contact__disposition="resolved")
    await agent.close()


async def test_offer_timeout_moves_to_next_agent_and_three_misses_make_away(
    node: Node, integration: Api, clock: ManualClock
) -> None:
    await add_queue(node, "support", offer_timeout_seconds=15)
    sleepy = await connect_agent(node, "sleepy")
    await sleepy.available()
    await asyncio.sleep(0.1)  # the other agent becomes idle later, so sleepy is offered first
    clock.advance(1)
    other = await connect_agent(node, "other")
    await other.available()

    contact = await integration.post_contact("+8613700137000")
    offer = await sleepy.expect("offer")
    assert offer["contact"]["id"] == contact["id"]
    clock.advance(16)
    await sleepy.expect("offer_revoked", contact_id=contact["id"])
    rerouted = await other.expect("offer")
    assert rerouted["contact"]["id"] == contact["id"]
    await other.send(type="accept", contact_id=contact["id"])
    await other.expect("contact", contact__state="active")
    await other.send(type="status", status="away")
    await other.expect("status", status="away")

    # Two more missed offers in a row and sleepy is put away.
    for n in range(2):
        c = await integration.post_contact(f"+861370013700{n + 1}")
        await sleepy.expect("offer", contact__id=c["id"])
        clock.advance(16)
        await sleepy.expect("offer_revoked", contact_id=c["id"])
    status = await sleepy.expect("status")
    assert status["status"] == "away" and status["reason"] == "missed-offers"
    await sleepy.close()
    await other.close()


async def test_reconnect_replays_missed_events_by_sequence_number(
    node: Node, integration: Api
) -> None:
    await add_queue(node, "support")
    user_id = await add_user(node, "li")
    token = await login(node, "li")
    agent = await Agent.connect(node, token, user_id)
    await agent.recv()  # snapshot
    await agent.available()
    contact = await integration.post_contact("+8613600136000")
    offer = await agent.expect("offer")
    seen_before = offer["seq"]
    await agent.close()

    # Reconnecting with the last number it saw: everything after it, nothing before.
    again = await Agent.connect(node, token, user_id, last_seq=seen_before - 1)
    replayed = await again.recv()
    assert replayed["seq"] == seen_before and replayed["type"] == "offer"
    assert replayed["contact"]["id"] == contact["id"]
    # The offer was revoked when the agent dropped; the new connection starts away again.
    later = [await again.recv() for _ in range(2)]
    assert [m["seq"] for m in later] == [seen_before + 1, seen_before + 2]
    assert {m["type"] for m in later} == {"offer_revoked", "status"}
    await again.close()

    # Without a number (or with one too old to replay) a client gets a full snapshot.
    fresh = await Agent.connect(node, token, user_id)
    snapshot = await fresh.recv()
    assert snapshot["type"] == "snapshot" and snapshot["seq"] >= seen_before + 2
    await fresh.close()


async def test_away_and_offline_agents_are_never_offered(node: Node, integration: Api) -> None:
    await add_queue(node, "support")
    away = await connect_agent(node, "away")
    gone = await connect_agent(node, "gone")
    await gone.available()
    await gone.close()
    await asyncio.sleep(0.3)
    contact = await integration.post_contact("+8613500135000")
    await away.nothing_for(0.8)
    async with node.rt.sessions() as session:
        stored = await session.get(Contact, contact["id"])
        assert stored is not None and stored.state == "queued" and stored.agent_id is None
    await away.close()


async def test_transfer_to_another_queue(node: Node, integration: Api) -> None:
    await add_queue(node, "sales", required_skills=["sales"])
    repairs = await add_queue(node, "repairs", required_skills=["repairs"])
    seller = await connect_agent(node, "seller", skills=["sales"])
    fixer = await connect_agent(node, "fixer", skills=["repairs"])
    await seller.available()
    await fixer.available()
    contact = await integration.post_contact("+8613400134000", queue="sales")
    await seller.expect("offer", contact__id=contact["id"])
    await seller.send(type="accept", contact_id=contact["id"])
    await seller.expect("contact", contact__state="active")
    await seller.send(type="transfer", contact_id=contact["id"], queue_id=repairs)
    moved = await fixer.expect("offer")
    assert moved["contact"]["id"] == contact["id"] and moved["contact"]["queue_id"] == repairs
    async with node.rt.sessions() as session:  # stored before the offer went out
        stored = await session.get(Contact, contact["id"])
        assert stored is not None and (stored.queue_id, stored.state) == (repairs, "offered")
    await seller.close()
    await fixer.close()


async def test_repeated_external_id_is_stored_once(node: Node, integration: Api) -> None:
    await add_queue(node, "support")
    first = await integration.post_contact("+8613300133000", external_id="crm-42")
    status, again = await integration.call(
        "POST", "/contacts", json={"from": "+8613300133000", "body": "x", "external_id": "crm-42"})
    assert status == 200 and again["created"] is False
    assert again["contact"]["id"] == first["id"]
    async with node.rt.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 1


async def test_supervisor_socket_pushes_live_queue_statistics(
    node: Node, integration: Api
) -> None:
    await add_queue(node, "support", sl_threshold_seconds=20)
    async with aiohttp.ClientSession() as http, http.ws_connect(
        f"{node.ws_url}/supervisor/ws?token={integration.token}"
    ) as board:
        await integration.post_contact("+8613200132000")
        await integration.post_contact("+8613200132001")

        async def until(predicate) -> dict:
            while True:
                stats = await asyncio.wait_for(board.receive_json(), 5)
                q = next((q for q in stats["queues"] if q["name"] == "support"), None)
                if q is not None and predicate(q):
                    return q

        q = await until(lambda q: q["waiting"] == 2)
        assert q["entered"] == 2 and q["answered"] == 0
        agent = await connect_agent(node, "li")
        await agent.available()
        offer = await agent.expect("offer")
        await agent.send(type="accept", contact_id=offer["contact"]["id"])
        q = await until(lambda q: q["answered"] == 1)
        assert q["waiting"] == 1 and q["service_level"] == 1.0
        await agent.close()


async def test_agent_commands_are_checked(node: Node, integration: Api) -> None:
    await add_queue(node, "support")
    agent = await connect_agent(node, "li")
    await agent.ws.send("not json")
    assert "JSON" in (await agent.expect("error"))["message"]
    await agent.send(type="accept", contact_id="7")
    assert "integer" in (await agent.expect("error"))["message"]
    await agent.send(type="accept", contact_id=999)
    assert "999" in (await agent.expect("error"))["message"]
    await agent.send(type="status", status="busy")
    assert "available" in (await agent.expect("error"))["message"]
    await agent.send(type="dance")
    assert "dance" in (await agent.expect("error"))["message"]
    await agent.close()


async def test_event_log_is_append_only_source_of_counts(node: Node, integration: Api) -> None:
    await add_queue(node, "support")
    contact = await integration.post_contact("+8613100131000")
    status, _ = await integration.call("POST", f"/contacts/{contact['id']}/abandon")
    assert status == 202
    for _ in range(50):
        async with node.rt.sessions() as session:
            kinds = (await session.scalars(select(ContactEvent.kind).where(
                ContactEvent.contact_id == contact["id"]).order_by(ContactEvent.id))).all()
        if "abandoned" in kinds:
            break
        await asyncio.sleep(0.1)
    assert kinds == ["entered", "abandoned"]
    status, again = await integration.call("POST", f"/contacts/{contact['id']}/abandon")
    assert status == 409 and "abandoned" in again["error"]["message"]


async def test_a_full_queue_refuses_new_contacts_with_503(node: Node, integration: Api) -> None:
    await add_queue(node, "tiny", max_length=2)
    for n in range(2):
        await integration.post_contact(f"+861300130000{n}")
    for _ in range(50):  # the live snapshot (published each second) sees both waiting
        if any(q["waiting"] == 2 for q in node.rt.live_stats.get("queues", [])):
            break
        await asyncio.sleep(0.1)
    status, body = await integration.call("POST", "/contacts",
                                          json={"from": "+8613000130009", "body": "x"})
    assert status == 503 and "full" in body["error"]["message"]
    async with node.rt.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 2


async def test_metrics_count_open_contacts_by_state_and_channel(
    node: Node, integration: Api
) -> None:
    await add_queue(node, "support")
    await integration.post_contact("+8613000131000", channel="sms")
    async with aiohttp.ClientSession() as http:
        for _ in range(50):
            async with http.get(f"{node.url}/metrics") as r:
                text = await r.text()
            if 'cc_contacts{channel="sms",state="queued"} 1.0' in text:
                break
            await asyncio.sleep(0.1)
    assert 'cc_contacts{channel="sms",state="queued"} 1.0' in text


async def test_concurrent_intake_keeps_every_item_apart(node: Node, integration: Api) -> None:
    """Items stored together in one batch still get their own outcome: a bad one fails alone,
    one sender makes one customer, one external id makes one contact."""
    await add_queue(node, "support")

    async def post(payload: dict) -> tuple[int, dict]:
        return await integration.call("POST", "/contacts", json={"body": "x", **payload})

    payloads = (
        [{"from": f"+8613912{n:06d}"} for n in range(20)]  # 20 new customers
        + [{"from": "+8613800000001"} for _ in range(10)]  # one customer, 10 contacts
        + [{"from": "+8613800000002", "external_id": "crm-7"} for _ in range(5)]  # one contact
        + [{"from": "+8613800000003", "queue": "nowhere"} for _ in range(5)]  # 404 each
    )
    answers = await asyncio.gather(*(post(p) for p in payloads))
    statuses = [s for s, _ in answers]
    assert statuses[:30] == [201] * 30
    assert sorted(statuses[30:35]) == [200, 200, 200, 200, 201]
    assert statuses[35:] == [404] * 5
    assert all("nowhere" in body["error"]["message"] for _, body in answers[35:])
    crm = {body["contact"]["id"] for _, body in answers[30:35]}
    assert len(crm) == 1
    async with node.rt.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 31
        assert await session.scalar(select(func.count()).select_from(Customer)) == 22
    repeat = {body["contact"]["customer_id"] for _, body in answers[20:30]}
    assert len(repeat) == 1


async def test_lines_of_one_conversation_stored_at_once_start_one_contact(node: Node) -> None:
    """On PostgreSQL several intake batches are stored at once: a sender's quick SMS lines,
    taken in one loop turn apart, land in different batches, and still only the first starts a
    contact; the others join it, in the order they came."""
    from datetime import timedelta

    from contactcenter.contacts import Inbound, take_in

    await add_queue(node, "support")
    pending = []
    for n in range(12):
        pending.append(asyncio.ensure_future(take_in(node.rt, Inbound(
            channel="sms", address="+8613600136000", body=f"line {n}",
            join_within=timedelta(hours=24)))))
        await asyncio.sleep(0)  # the drain took what was pending: the next is another batch
    taken = await asyncio.gather(*pending)
    assert len({t.conversation_id for t in taken}) == 1
    assert [t.new_contact for t in taken] == [True] + [False] * 11
    async with node.rt.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Contact)) == 1
        bodies = (await session.scalars(select(Message.body).order_by(Message.id))).all()
    assert bodies == [f"line {n}" for n in range(12)]


async def test_under_load_an_intake_batch_waits_a_moment_to_fill(
    pg_url: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An item that comes in while a batch is being stored does not go out alone at once: its
    batch waits LINGER (long here, so the test does not hang on the machine's speed) and takes
    the items that came meanwhile. On PostgreSQL, whose lanes let the test get an item in while
    a batch is stored."""
    import uuid

    from conftest import REDIS_URL
    from statements import recorded

    from contactcenter import contacts
    from contactcenter.contacts import Inbound, take_in

    monkeypatch.setattr(contacts, "LINGER", 0.5)
    node = await start_node(pg_url, REDIS_URL, f"cctest-{uuid.uuid4().hex[:8]}", clock)
    try:
        await add_queue(node, "support")

        def item(n: int) -> Inbound:
            return Inbound(channel="api", address=f"+86136001360{n:02d}", body=f"line {n}")

        with recorded(node.rt.engine) as statements:
            first = asyncio.ensure_future(take_in(node.rt, item(0)))
            await asyncio.sleep(0)  # the item is pending, its drain spawned
            await asyncio.sleep(0)  # the drain took it and waits on PostgreSQL
            assert node.rt.intake is not None and not node.rt.intake.pending
            rest = [asyncio.ensure_future(take_in(node.rt, item(1)))]
            await first
            rest += [asyncio.ensure_future(take_in(node.rt, item(n))) for n in (2, 3)]
            taken = await asyncio.gather(*rest)
        assert all(t.new_contact for t in taken)
        inserts = [s for s in statements if "INSERT INTO contacts" in s]
        assert len(inserts) == 2, inserts  # the first alone, then the other three together
    finally:
        await node.stop()


async def test_a_line_in_a_known_conversation_is_that_customers(node: Node) -> None:
    """An anonymous chat has no phone or email: its later lines must not make new customers."""
    from contactcenter.contacts import Inbound, take_in

    await add_queue(node, "support")
    first = await take_in(node.rt, Inbound(channel="chat", address="visitor-7f3a", body="hi",
                                           display_name="Visitor"))
    again = await take_in(node.rt, Inbound(channel="chat", address="visitor-7f3a", body="still",
                                           conversation_id=first.conversation_id))
    assert again.conversation_id == first.conversation_id
    assert again.contact["customer_id"] == first.contact["customer_id"]
    assert again.new_contact is False
    async with node.rt.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Customer)) == 1
