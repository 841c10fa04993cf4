"""The durable scheduler: exactly once across reruns, crashes and racing claimers."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from contactcenter.rules.plan import CallbackPlan, SmsPlan
from contactcenter.scheduler import run_due, schedule
from contactcenter.storage.db import make_engine, sessionmaker
from contactcenter.storage.models import AuditEntry, Customer, ScheduledWork

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def _customers(engine: AsyncEngine, n: int) -> list[int]:
    async with sessionmaker(engine).begin() as session:
        people = [Customer(name=f"c{i}", created_at=NOW, updated_at=NOW) for i in range(n)]
        session.add_all(people)
        await session.flush()
        return [c.id for c in people]


def _sms(customer_id: int, minutes: int) -> SmsPlan:
    return SmsPlan(key=f"birthday:{customer_id}:2026", rule_id="birthday",
                   customer_id=customer_id, send_at=NOW + timedelta(minutes=minutes),
                   template="Happy birthday")


async def _effect(session: AsyncSession, item: ScheduledWork) -> dict:
    # Stands for the real effect (a callback contact, an SMS row): a row in the same transaction.
    session.add(AuditEntry(at=NOW, entity="scheduled", entity_id=item.id, action="done"))
    return {"effect": "audit"}


async def _effects(engine: AsyncEngine) -> Counter[int]:
    async with sessionmaker(engine)() as session:
        return Counter((await session.scalars(
            select(AuditEntry.entity_id).where(AuditEntry.entity == "scheduled"))).all())


async def test_planning_twice_stores_once(engine: AsyncEngine) -> None:
    ids = await _customers(engine, 3)
    plans = [_sms(c, 0) for c in ids] + [CallbackPlan(
        key=f"C10:{ids[0]}:repair:9", rule_id="C10", customer_id=ids[0], due=NOW,
        latest=NOW + timedelta(days=2), category="explanation", purpose="did it work?")]
    sessions = sessionmaker(engine)
    async with sessions.begin() as session:
        assert await schedule(session, plans, NOW) == 4
    async with sessions.begin() as session:
        assert await schedule(session, plans, NOW) == 0
        assert await session.scalar(select(func.count()).select_from(ScheduledWork)) == 4


async def test_only_due_items_run_in_order_and_each_once(engine: AsyncEngine) -> None:
    ids = await _customers(engine, 3)
    sessions = sessionmaker(engine)
    async with sessions.begin() as session:
        await schedule(session, [_sms(ids[0], 10), _sms(ids[1], 0), _sms(ids[2], 60)], NOW)
    assert await run_due(sessions, _effect, NOW + timedelta(minutes=15)) == 2
    assert await run_due(sessions, _effect, NOW + timedelta(minutes=15)) == 0
    assert await run_due(sessions, _effect, NOW + timedelta(hours=2)) == 1
    assert set((await _effects(engine)).values()) == {1}
    async with sessions() as session:
        states = (await session.scalars(select(ScheduledWork.state))).all()
    assert states == ["done"] * 3


async def test_a_crash_mid_run_leaves_nothing_half_done(engine: AsyncEngine) -> None:
    ids = await _customers(engine, 5)
    sessions = sessionmaker(engine)
    async with sessions.begin() as session:
        await schedule(session, [_sms(c, 0) for c in ids], NOW)
    calls = 0

    async def dies_on_the_third(session: AsyncSession, item: ScheduledWork) -> dict:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("the process died here")
        return await _effect(session, item)

    with pytest.raises(RuntimeError):
        await run_due(sessions, dies_on_the_third, NOW)
    assert await _effects(engine) == Counter()  # the two done before the crash rolled back too
    assert await run_due(sessions, _effect, NOW) == 5  # the restart does all five, once
    assert set((await _effects(engine)).values()) == {1} and len(await _effects(engine)) == 5


async def test_two_claimers_in_one_process_never_do_an_item_twice(engine: AsyncEngine) -> None:
    """The background job and a request that sends at once (a complaint's acknowledgement)
    both claim due work; on SQLite, which ignores FOR UPDATE, both used to do it."""
    ids = await _customers(engine, 3)
    async with sessionmaker(engine).begin() as session:
        await schedule(session, [_sms(c, 0) for c in ids], NOW)

    async def slow_effect(session: AsyncSession, item: ScheduledWork) -> dict:
        await asyncio.sleep(0.01)  # both claimers have read the items before either commits
        return await _effect(session, item)

    done = await asyncio.gather(*(run_due(sessionmaker(engine), slow_effect, NOW)
                                  for _ in range(2)))
    effects = await _effects(engine)
    assert sum(done) == 3 and len(effects) == 3 and set(effects.values()) == {1}, (done, effects)


async def test_two_schedulers_racing_on_postgresql_never_do_an_item_twice(pg_url: str) -> None:
    first, second = make_engine(pg_url), make_engine(pg_url)  # two nodes' connection pools
    ids = await _customers(first, 60)
    async with sessionmaker(first).begin() as session:
        await schedule(session, [_sms(c, 0) for c in ids], NOW)

    async def slow_effect(session: AsyncSession, item: ScheduledWork) -> dict:
        await asyncio.sleep(0.005)  # hold the claim a while, so the other really has to skip
        return await _effect(session, item)

    async def node(engine: AsyncEngine) -> int:
        done = 0
        while n := await run_due(sessionmaker(engine), slow_effect, NOW, limit=7):
            done += n
        return done

    done = await asyncio.gather(node(first), node(second))
    effects = await _effects(first)
    await first.dispose()
    await second.dispose()
    assert sum(done) == 60 and all(done), done  # both worked; together they did every item
    assert len(effects) == 60 and set(effects.values()) == {1}  # and none twice
