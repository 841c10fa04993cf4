"""The schema and the pool. The migrations build exactly the schema the models describe, on
both databases. The PostgreSQL pool across lost connections: a connection that died while idle
in the pool is replaced before use; one that died right after use fails one transaction, and
the pool then replaces every connection older than the failure."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from contactcenter.storage.db import make_engine
from contactcenter.storage.models import Base
from tests.conftest import PG_URL, require

PID = text("SELECT pg_backend_pid()")


async def test_the_migrations_build_the_schema_the_models_describe(db_url: str) -> None:
    engine = make_engine(db_url)  # migrated by the fixture
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
    finally:
        await engine.dispose()
    assert differences == []


async def _terminate(pids: list[int]) -> None:
    """Kill the server side of these connections, as a database restart does."""
    admin = await asyncpg.connect(PG_URL.replace("+asyncpg", ""))
    try:
        await admin.execute("SELECT pg_terminate_backend(p) FROM unnest($1::int[]) AS p", pids)
        for _ in range(100):
            if not await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids):
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"backends {pids} still alive")
    finally:
        await admin.close()


async def test_a_connection_that_died_while_idle_is_replaced_before_use() -> None:
    require(PG_URL, 5432, "PostgreSQL")
    engine = make_engine(PG_URL, ping_after_idle=0.0)  # every pooled connection counts as idle
    try:
        async with engine.connect() as conn:
            first = await conn.scalar(PID)
        await _terminate([first])
        async with engine.connect() as conn:
            assert await conn.scalar(PID) != first  # no error: a new connection
    finally:
        await engine.dispose()


async def test_a_connection_that_died_just_after_use_fails_once_then_the_pool_renews() -> None:
    require(PG_URL, 5432, "PostgreSQL")
    engine = make_engine(PG_URL, ping_after_idle=3600.0)  # never idle long enough for a ping
    try:
        async with engine.connect() as a, engine.connect() as b:
            pids = [await a.scalar(PID), await b.scalar(PID)]
        await _terminate(pids)
        with pytest.raises(DBAPIError) as failed:
            async with engine.connect() as conn:
                await conn.scalar(PID)
        assert failed.value.connection_invalidated
        for _ in range(3):  # the other dead connection is not handed out again
            async with engine.connect() as conn:
                assert await conn.scalar(PID) not in pids
    finally:
        await engine.dispose()
