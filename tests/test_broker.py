"""The input log as the router reads it, on both brokers: after any cursor, exactly the later
inputs, in order, whatever the log held before."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from contactcenter.broker import Broker, make_broker
from contactcenter.broker.base import Frame, agent_channel
from contactcenter.wire import loads
from tests.conftest import REDIS_URL, require


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
    got: dict[int, list[dict[str, object]]] = {7: [], 8: []}
    unsubscribe = [broker.subscribe(agent_channel(a), got[a].append) for a in got]
    before = {a: await broker.last_seq(a) for a in got}
    await broker.deliver_many([(7, {"type": "x", "n": 1}), (8, {"type": "x", "n": 2}),
                               (7, {}), (7, {"type": "x", "n": 3, "body": "two\nlines"})])
    assert await broker.deliver(8, {"type": "x", "n": 4}) == before[8] + 2
    for _ in range(100):  # pub/sub arrives on its own task
        if len(got[7]) == 3 and len(got[8]) == 2:
            break
        await asyncio.sleep(0.01)
    assert got[7] == [{"seq": before[7] + 1, "type": "x", "n": 1}, {"seq": before[7] + 2},
                      {"seq": before[7] + 3, "type": "x", "n": 3, "body": "two\nlines"}]
    assert [m["n"] for m in got[8]] == [2, 4]
    assert await broker.replay(7, before[7] + 1) == got[7][1:]
    # Each frame comes with its JSON, which the agent's socket sends as it is: the same frame.
    for frame in got[7] + got[8]:
        assert isinstance(frame, Frame) and loads(frame.text) == frame
    for stop in unsubscribe:
        stop()
