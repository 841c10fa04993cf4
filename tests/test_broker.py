"""The input log as the router reads it, on both brokers: after any cursor, exactly the later
inputs, in order, whatever the log held before."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from contactcenter.broker import Broker, make_broker
from contactcenter.broker.base import REPLAY_DEPTH, Frame, agent_channel
from contactcenter.broker.redis import RedisBroker
from contactcenter.wire import loads
from tests.conftest import REDIS_URL, Monotonic, require


@pytest.fixture(params=["memory", "redis"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    if request.param == "redis":
        require(REDIS_URL, 6379, "Redis")
        b = make_broker(REDIS_URL, "test", f"cctest-{uuid.uuid4().hex[:8]}")
    else:
        b = make_broker(None, "test")
    await b.start()
    yield b
    await b.close()


async def test_inputs_after_a_cursor_are_the_later_ones_in_order(broker: Broker) -> None:
    start = await broker.tail_id()
    assert await broker.read_inputs(start, 0.01) == []
    for n in range(250):
        await broker.submit({"op": "n", "n": n})
    everything = await broker.read_inputs(start, 0.01)
    assert [m["n"] for _, m in everything] == list(range(250))
    cursor = everything[199][0]  # the router has read up to the 200th
    later = await broker.read_inputs(cursor, 0.01)
    assert [m["n"] for _, m in later] == list(range(200, 250))
    assert await broker.read_inputs(later[-1][0], 0.01) == []
    await broker.submit({"op": "n", "n": 250})
    assert [m["n"] for _, m in await broker.read_inputs(later[-1][0], 0.01)] == [250]


async def test_concurrent_submits_are_each_in_the_log_when_they_return(broker: Broker) -> None:
    start = await broker.tail_id()
    await broker.submit_many([])

    async def submit(n: int) -> None:
        await broker.submit({"op": "n", "n": n})
        # Returned: it is in the log, behind every input submitted before it.
        logged = [m["n"] for _, m in await broker.read_inputs(start, 0.01)]
        assert n in logged and logged == sorted(logged)

    await asyncio.gather(*(submit(n) for n in range(100)))
    await broker.submit_many([{"op": "n", "n": 100}, {"op": "n", "n": 101}])
    assert [m["n"] for _, m in await broker.read_inputs(start, 0.01)] == list(range(102))


async def test_a_batch_of_deliveries_is_numbered_per_agent_in_order(broker: Broker) -> None:
    got: dict[int, list[Frame]] = {7: [], 8: []}
    unsubscribe = [broker.subscribe(agent_channel(a), got[a].append) for a in got]
    before = {a: await broker.last_seq(a) for a in got}
    await broker.deliver_many([(7, {"type": "x", "n": 1}), (8, {"type": "x", "n": 2}),
                               (7, {}), (7, {"type": "x", "n": 3, "body": "two\nlines"})])
    assert await broker.deliver(8, {"type": "x", "n": 4}) == before[8] + 2
    for _ in range(100):  # pub/sub arrives on its own task
        if len(got[7]) == 3 and len(got[8]) == 2:
            break
        await asyncio.sleep(0.01)
    assert [f.message for f in got[7]] == [
        {"seq": before[7] + 1, "type": "x", "n": 1}, {"seq": before[7] + 2},
        {"seq": before[7] + 3, "type": "x", "n": 3, "body": "two\nlines"}]
    assert [f.message["n"] for f in got[8]] == [2, 4]
    assert await broker.replay(7, before[7] + 1) == [f.message for f in got[7][1:]]
    # Each frame comes with its JSON, which the agent's socket sends as it is, and its number
    # and type beside it.
    for frame in got[7] + got[8]:
        assert isinstance(frame, Frame) and loads(frame.text) == frame.message
        assert (frame.seq, frame.kind) == (frame.message["seq"], frame.message.get("type", ""))
    for stop in unsubscribe:
        stop()


async def test_one_agents_batch_longer_than_its_replay_buffer_keeps_the_latest_in_order(
        broker: Broker) -> None:
    before = await broker.last_seq(9)
    n = REPLAY_DEPTH * 2 + 200
    await broker.deliver_many([(9, {"type": "x", "n": i}) for i in range(n)]
                              + [(10, {"type": "x", "n": -1})])
    assert await broker.last_seq(9) == before + n
    kept = await broker.replay(9, before + n - REPLAY_DEPTH)
    assert kept is not None and [(m["seq"], m["n"]) for m in kept] == [
        (before + i + 1, i) for i in range(n - REPLAY_DEPTH, n)]
    assert await broker.replay(9, before) is None  # trimmed: the socket sends a snapshot


async def test_a_frame_carries_what_the_agents_socket_reads_of_it_beside_its_json(
        broker: Broker) -> None:
    """The socket tracks the agent's status and times the screen-pop without parsing frames."""
    got: list[Frame] = []
    unsubscribe = broker.subscribe(agent_channel(9), got.append)
    created = "2026-12-02T03:00:00.250000+00:00"
    await broker.deliver_many([
        (9, {"type": "status", "status": "away", "reason": "missed 3 offers"}),
        (9, {"type": "offer", "contact": {"id": 5, "created_at": created},
             "history": [{"type": "sms", "note": "a b\nc"}]}),
        (9, {"type": "contact", "contact": {"id": 5, "state": "active"}}),
        (9, {"type": "odd type", "status": "x y"}),
    ])
    for _ in range(100):
        if len(got) == 4:
            break
        await asyncio.sleep(0.01)
    assert [(f.kind, f.note) for f in got] == [
        ("status", "away"), ("offer", created), ("contact", ""), ("", "")]
    assert got[1].message["history"] == [{"type": "sms", "note": "a b\nc"}]
    assert [f.seq for f in got] == [got[0].seq + i for i in range(4)]
    unsubscribe()


async def test_a_replay_is_empty_when_nothing_was_missed_and_none_when_the_client_is_ahead(
        broker: Broker) -> None:
    await broker.deliver_many([(11, {"type": "x", "n": 1}), (11, {"type": "x", "n": 2})])
    last = await broker.last_seq(11)
    assert [m["n"] for m in await broker.replay(11, last - 1) or []] == [2]
    assert await broker.replay(11, last) == []
    # A number this agent never had (data from before a reset): a snapshot, not silence.
    assert await broker.replay(11, last + 5) is None


async def test_frames_for_agents_here_reach_this_nodes_subscribers_numbered_and_kept(
        broker: Broker) -> None:
    got: dict[int, list[Frame]] = {12: [], 13: []}
    unsubscribe = [broker.subscribe(agent_channel(a), got[a].append) for a in got]
    before = {a: await broker.last_seq(a) for a in got}
    created = "2026-12-03T03:00:00+00:00"
    await broker.deliver_many([(12, {"type": "offer", "contact": {"id": 1, "created_at": created}}),
                               (13, {"type": "x"}), (12, {}), (12, {"type": "status",
                                                                    "status": "away"})],
                              here={12})
    for _ in range(100):
        if len(got[12]) == 3 and len(got[13]) == 1:
            break
        await asyncio.sleep(0.01)
    assert [(f.seq, f.kind, f.note) for f in got[12]] == [
        (before[12] + 1, "offer", created), (before[12] + 2, "", ""),
        (before[12] + 3, "status", "away")]
    assert [loads(f.text) for f in got[12]] == [f.message for f in got[12]] == [
        {"seq": before[12] + 1, "type": "offer", "contact": {"id": 1, "created_at": created}},
        {"seq": before[12] + 2}, {"seq": before[12] + 3, "type": "status", "status": "away"}]
    assert [f.message for f in got[13]] == [{"seq": before[13] + 1, "type": "x"}]
    assert await broker.replay(12, before[12]) == [f.message for f in got[12]]
    for stop in unsubscribe:
        stop()


# -- the leader's own inputs (Redis only: the embedded broker has no other way) -----------------
@pytest.fixture
async def two_nodes() -> AsyncIterator[tuple[RedisBroker, RedisBroker, Monotonic]]:
    """Nodes a and b on one Redis; a's lease ages by a clock the test moves."""
    require(REDIS_URL, 6379, "Redis")
    prefix = f"cctest-{uuid.uuid4().hex[:8]}"
    mono = Monotonic()
    a = RedisBroker(REDIS_URL, "node-a", prefix, monotonic=mono)
    b = RedisBroker(REDIS_URL, "node-b", prefix)
    await a.start()
    await b.start()
    yield a, b, mono
    await a.close()
    await b.close()


async def _logged(broker: RedisBroker) -> int:
    """Entries in the stream: what went through Redis."""
    return int(await broker._redis.xlen(broker._k("inputs")))


async def test_the_leaders_own_inputs_reach_its_router_without_the_stream(
        two_nodes: tuple[RedisBroker, RedisBroker, Monotonic]) -> None:
    a, b, _ = two_nodes
    assert await a.hold_lease(5.0)
    cursor = await a.tail_id()
    assert await a.read_inputs(cursor, 0.01) == []
    before = await _logged(a)
    await a.submit_many([{"op": "n", "n": 1}, {"op": "n", "n": 2}])
    await b.submit({"op": "r", "n": 1})  # another node's go through the stream
    await a.submit({"op": "n", "n": 3})
    assert await _logged(a) == before + 1
    got = await a.read_inputs(cursor, 0.01)
    assert [(m["op"], m["n"]) for _, m in got] == [("r", 1), ("n", 1), ("n", 2), ("n", 3)]
    # The local ones carry the id of the last entry read: the router's cursor stays valid.
    assert {i for i, _ in got} == {got[0][0]}
    assert await a.read_inputs(got[-1][0], 0.01) == []


async def test_a_waiting_router_wakes_for_its_own_input_before_its_block_ends(
        two_nodes: tuple[RedisBroker, RedisBroker, Monotonic]) -> None:
    a, _, _ = two_nodes
    assert await a.hold_lease(5.0)
    cursor = await a.tail_id()
    await a.read_inputs(cursor, 0.01)
    reading = asyncio.create_task(a.read_inputs(cursor, 30.0))
    await asyncio.sleep(0.05)  # the router is in its blocking XREAD
    await a.submit({"op": "n", "n": 1})
    got = await asyncio.wait_for(reading, 10.0)  # woken, not the end of a 30 s block
    assert [m["n"] for _, m in got] == [1]


async def test_inputs_go_local_only_once_the_router_has_read_what_the_node_logged(
        two_nodes: tuple[RedisBroker, RedisBroker, Monotonic]) -> None:
    a, _, _ = two_nodes
    cursor = await a.tail_id()
    await a.submit({"op": "n", "n": 1})  # not leading yet: into the stream
    assert await a.hold_lease(5.0)
    await a.submit({"op": "n", "n": 2})  # leading, but 1 is unread: 2 must come after it
    assert await _logged(a) == 2
    got = await a.read_inputs(cursor, 0.01)
    assert [m["n"] for _, m in got] == [1, 2]
    await a.submit({"op": "n", "n": 3})
    assert await _logged(a) == 2
    assert [m["n"] for _, m in await a.read_inputs(got[-1][0], 0.01)] == [3]


@pytest.mark.parametrize("how", ["refused", "aged", "released"])
async def test_a_node_that_stops_leading_puts_its_unread_inputs_in_the_stream_in_order(
        two_nodes: tuple[RedisBroker, RedisBroker, Monotonic], how: str) -> None:
    a, b, mono = two_nodes
    assert await a.hold_lease(5.0)
    cursor = await a.tail_id()
    await a.read_inputs(cursor, 0.01)
    await a.submit_many([{"op": "n", "n": 1}, {"op": "n", "n": 2}])  # a's router never reads
    assert await _logged(a) == 0
    if how == "released":
        await a.release_lease()
    else:
        await a._redis.delete(a._k("leader"))  # a's lease ran out in Redis
    assert await b.hold_lease(5.0)
    if how == "refused":
        assert not await a.hold_lease(5.0)
    elif how == "aged":
        mono.now += 2.6  # a has not renewed for more than half the TTL
    await a.submit({"op": "n", "n": 3})
    got = await b.read_inputs(cursor, 0.01)
    assert [m["n"] for _, m in got] == [1, 2, 3]


async def test_a_router_waiting_longer_than_the_clients_socket_timeout_still_reads() -> None:
    """The outstanding XREAD waits less than the socket timeout the URL sets: a blocking read
    that outlived it would fail the router's round."""
    require(REDIS_URL, 6379, "Redis")
    prefix = f"cctest-{uuid.uuid4().hex[:8]}"
    a = RedisBroker(f"{REDIS_URL}?socket_timeout=0.3", "node-a", prefix)
    b = RedisBroker(REDIS_URL, "node-b", prefix)
    await a.start()
    await b.start()
    try:
        assert await a.hold_lease(5.0)
        cursor = await a.tail_id()
        assert await a.read_inputs(cursor, 0.05) == []  # leaves its XREAD outstanding
        await asyncio.sleep(0.6)  # twice the socket timeout
        await b.submit({"op": "n", "n": 1})
        got = await a.read_inputs(cursor, 1.0)
        assert [m["n"] for _, m in got] == [1]
    finally:
        await a.close()
        await b.close()


async def test_frames_for_agents_here_are_not_fanned_out_to_other_nodes(
        two_nodes: tuple[RedisBroker, RedisBroker, Monotonic]) -> None:
    a, b, _ = two_nodes
    on_a: list[Frame] = []
    on_b: list[Frame] = []
    stops = [a.subscribe(agent_channel(21), on_a.append),
             b.subscribe(agent_channel(21), on_b.append)]
    before = await a.last_seq(21)
    await a.deliver_many([(21, {"type": "x", "n": 1})], here={21})
    await a.deliver_many([(21, {"type": "x", "n": 2})])
    for _ in range(100):
        if len(on_a) == 2 and on_b:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # anything else pub/sub had on its way
    assert [f.message["n"] for f in on_a] == [1, 2]
    # b saw only the published frame: its number tells it what it missed, which is kept.
    assert [(f.seq, f.message["n"]) for f in on_b] == [(before + 2, 2)]
    missed = await b.replay(21, before)
    assert missed is not None and [m["n"] for m in missed] == [1, 2]
    for stop in stops:
        stop()
