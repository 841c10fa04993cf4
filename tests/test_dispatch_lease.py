"""The leader's rounds: it writes a round only while it holds the routing lease (a round that
stalled longer than half the lease's TTL asks Redis again before writing, and a node that lost
the lease meanwhile writes nothing and stops routing), and under load a round waits a moment
to fill."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis
from conftest import NOW, REDIS_URL, Monotonic
from sqlalchemy import func, select
from statements import recorded

from contactcenter import dispatch
from contactcenter.clock import ManualClock
from contactcenter.contacts import Inbound, take_in
from contactcenter.dispatch import LEASE_TTL, Dispatcher
from contactcenter.runtime import Runtime
from contactcenter.settings import Settings
from contactcenter.storage.models import ContactEvent, Queue


async def _leader(pg_url: str) -> tuple[Runtime, Dispatcher, Monotonic]:
    settings = Settings(database_url=pg_url, redis_url=REDIS_URL,
                        redis_prefix=f"cctest-{uuid.uuid4().hex[:8]}", node_id="node-a",
                        periodic_jobs=False)
    rt = Runtime.build(settings, clock=ManualClock(NOW.timestamp()))
    await rt.broker.start()
    async with rt.sessions.begin() as session:
        session.add(Queue(name="general", channels=["api"], dispositions=["resolved"]))
    mono = Monotonic()
    dispatcher = Dispatcher(rt, monotonic=mono)
    await dispatcher._step()  # takes the lease and builds the router
    assert dispatcher.is_leader
    return rt, dispatcher, mono


async def _round_with_a_contact(rt: Runtime, dispatcher: Dispatcher, mono: Monotonic,
                                stall: float) -> int:
    """One round that reads a new contact; the liveness clock moves by `stall` while the
    round waits for its input, as it would for a process that was not scheduled. The round
    waits for it as long as the intake may take on a slow machine, not one tick."""
    tick = dispatch.TICK
    dispatch.TICK = 30.0
    try:
        step = asyncio.create_task(dispatcher._step())
        await asyncio.sleep(0.05)  # the round is waiting on the input log
    finally:
        dispatch.TICK = tick
    mono.now += stall
    intake = await take_in(rt, Inbound(channel="api", address="+8613800138000", body="hi"))
    await asyncio.wait_for(step, 5)
    return int(intake.contact["id"])


async def _events_of(rt: Runtime, contact_id: int) -> int:
    async with rt.sessions() as session:
        return await session.scalar(select(func.count()).select_from(ContactEvent).where(
            ContactEvent.contact_id == contact_id)) or 0


async def _steal_lease(rt: Runtime) -> None:
    client = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        await client.set(f"{rt.settings.redis_prefix}:leader", "node-b",
                         px=int(LEASE_TTL * 1000))
    finally:
        await client.aclose()


@pytest.mark.parametrize("stall", [LEASE_TTL / 2 + 0.5, LEASE_TTL + 1.0])
async def test_a_round_that_stalled_past_half_the_lease_writes_nothing_once_it_is_lost(
        pg_url: str, stall: float) -> None:
    rt, dispatcher, mono = await _leader(pg_url)
    try:
        await _steal_lease(rt)  # another node took over while this one was not running
        contact_id = await _round_with_a_contact(rt, dispatcher, mono, stall)
        assert not dispatcher.is_leader
        assert await _events_of(rt, contact_id) == 0
    finally:
        await rt.broker.close()
        await rt.engine.dispose()


async def test_a_round_within_half_the_lease_writes_without_asking_again(pg_url: str) -> None:
    rt, dispatcher, mono = await _leader(pg_url)
    try:
        contact_id = await _round_with_a_contact(rt, dispatcher, mono, 0.5)
        assert dispatcher.is_leader
        assert await _events_of(rt, contact_id) >= 1  # entered (and offered, if anyone were)
        # A round that stalled but still holds the lease asks, is told yes, and writes.
        contact_id = await _round_with_a_contact(rt, dispatcher, mono, LEASE_TTL)
        assert dispatcher.is_leader
        assert await _events_of(rt, contact_id) >= 1
    finally:
        await rt.broker.close()
        await rt.engine.dispose()


async def test_under_load_a_round_waits_a_moment_to_fill(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a round that read more than one input, the next starts LINGER after it at the
    soonest (long here, so the test does not hang on the machine's speed), and so takes the
    inputs that came meanwhile: a round's cost is shared by more of them."""
    monkeypatch.setattr(dispatch, "LINGER", 0.5)
    rt, dispatcher, _ = await _leader(pg_url)

    async def contacts(*ns: int) -> None:
        await asyncio.gather(*(take_in(rt, Inbound(channel="api", address=f"+86138001380{n:02d}",
                                                    body="hi")) for n in ns))
    try:
        with recorded(rt.engine) as statements:
            await contacts(1, 2)
            await dispatcher._step()  # both contacts in one round: under load
            await contacts(3)
            step = asyncio.create_task(dispatcher._step())
            await asyncio.sleep(0.05)  # that round waits to fill ...
            await contacts(4, 5)
            await asyncio.wait_for(step, 5)  # ... and takes these too
            await dispatcher._step()  # finds nothing left
        rounds = [s for s in statements if "INSERT INTO contact_events" in s]
        assert len(rounds) == 2, rounds
        async with rt.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(ContactEvent)) == 5
    finally:
        await rt.broker.close()
        await rt.engine.dispose()
