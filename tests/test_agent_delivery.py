"""An agent's frames reach its socket in order and whole, whichever way each came: through
Redis pub/sub from any node, or straight from the router on the socket's own node, which
skips the round trip (broker `deliver_many`'s `here`). A socket that sees a gap in the
numbers fills it from the replay buffer before it sends anything newer."""

from __future__ import annotations

import asyncio
import uuid

from conftest import REDIS_URL
from harness import Agent, Api, Node, add_queue, add_user, login, start_node

from contactcenter.broker.redis import RedisBroker
from contactcenter.clock import ManualClock


async def _leader_first(*nodes: Node) -> list[Node]:
    for _ in range(200):
        leading = [n for n in nodes if n.rt.dispatcher is not None and n.rt.dispatcher.is_leader]
        if leading:
            return leading + [n for n in nodes if n is not leading[0]]
        await asyncio.sleep(0.05)
    raise AssertionError("no node took the routing lease")


async def test_a_frame_that_skipped_this_node_is_filled_in_before_a_newer_one(
    pg_url: str,
) -> None:
    prefix = f"cctest-{uuid.uuid4().hex[:8]}"
    node = await start_node(pg_url, REDIS_URL, prefix, ManualClock(1_795_000_000.0))
    # Another node numbering a frame for a socket it believes it holds: kept, not published.
    other = RedisBroker(REDIS_URL, "other", prefix)
    await other.start()
    try:
        user_id = await add_user(node, "li")
        agent = await Agent.connect(node, await login(node, "li"), user_id)
        assert (await agent.recv())["type"] == "snapshot"
        await agent.available()
        seen = agent.last_seq
        await other.deliver_many([(user_id, {"type": "note", "n": 1})], here={user_id})
        await node.rt.broker.deliver(user_id, {"type": "note", "n": 2})
        got = [await agent.recv(), await agent.recv()]
        assert [(m["seq"], m["n"]) for m in got] == [(seen + 1, 1), (seen + 2, 2)]
        # Filled once: the frame that revealed the gap is not sent again.
        await node.rt.broker.deliver(user_id, {"type": "note", "n": 3})
        assert (await agent.recv())["seq"] == seen + 3
        # A resync the client asks for goes out whole, and later frames follow it in order.
        await agent.send(type="resync", last_seq=seen)
        again = [await agent.recv() for _ in range(3)]
        assert [(m["seq"], m["n"]) for m in again] == [(seen + 1, 1), (seen + 2, 2), (seen + 3, 3)]
        await node.rt.broker.deliver(user_id, {"type": "note", "n": 4})
        assert (await agent.recv())["seq"] == seen + 4
        await agent.close()
    finally:
        await other.close()
        await node.stop()


async def test_an_agent_who_reconnects_through_the_other_node_misses_no_number(
    pg_url: str,
) -> None:
    prefix = f"cctest-{uuid.uuid4().hex[:8]}"
    clock = ManualClock(1_795_000_000.0)
    nodes = await _leader_first(await start_node(pg_url, REDIS_URL, prefix, clock),
                                await start_node(pg_url, REDIS_URL, prefix, clock))
    leader, follower = nodes
    await add_user(leader, "root", role="admin")
    integration = Api(leader, await login(leader, "root"))
    try:
        await add_queue(leader, "support")
        user_id = await add_user(leader, "li")
        token = await login(leader, "li")
        first = await Agent.connect(leader, token, user_id)  # its frames skip pub/sub
        assert (await first.recv())["type"] == "snapshot"
        await first.available()
        contact = await integration.post_contact("+8613600136001")
        await first.expect("offer", contact__id=contact["id"])
        await first.send(type="accept", contact_id=contact["id"])
        await first.expect("contact", contact__state="active")
        seen = first.last_seq

        # A new socket on the other node while the old one is still open, as a console does
        # when its network changes: from the number it saw, every later one, in order.
        second = await Agent.connect(follower, token, user_id, last_seq=seen)
        await second.expect("status", reason="connected")
        later = await integration.post_contact("+8613600136002")
        await second.send(type="end", contact_id=contact["id"])
        await second.expect("contact", contact__state="wrapup")
        await second.send(type="wrapup", contact_id=contact["id"], disposition="resolved")
        if not any(m["type"] == "offer" and m["contact"]["id"] == later["id"]
                   for m in second.seen):  # it may have come before the wrap-up's answer
            await second.expect("offer", contact__id=later["id"])
        numbers = [m["seq"] for m in second.seen]
        assert numbers == list(range(seen + 1, seen + 1 + len(numbers)))
        await first.close()
        await second.close()
    finally:
        await integration.close()
        for n in nodes:
            await n.stop()
