"""Shared fixtures: the same tests run on the embedded default and on PostgreSQL (+ Redis).

Outside CI a missing PostgreSQL or Redis skips those variants with the reason; with CI=true it
fails, because CI has both and a skipped backend would hide a broken one.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import urlparse

import pytest
from fake_twilio import FakeTwilio
from smtp_relay import Relay
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from contactcenter.storage.db import make_engine, upgrade
from contactcenter.storage.models import Base

# The `browser` fixture of the console tests lives with its helpers.
pytest_plugins = ["browser"]

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get("CC_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Shanghai


class Monotonic:
    """A liveness clock (a lease's age, not business time) that the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+asyncpg", ""))
    try:
        address = (parsed.hostname or "127.0.0.1", parsed.port or default_port)
        with socket.create_connection(address, 1):
            return True
    except OSError:
        return False


def require(url: str, default_port: int, what: str) -> None:
    if _reachable(url, default_port):
        return
    if IN_CI:
        pytest.fail(f"{what} must be reachable at {url} when CI=true")
    pytest.skip(f"{what} not reachable at {url}")


_pg_migrated = False


async def _fresh_postgres() -> AsyncEngine:
    global _pg_migrated
    engine = make_engine(PG_URL)
    if not _pg_migrated:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await upgrade(engine)
        _pg_migrated = True
    else:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return engine


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[str]:
    """A migrated, empty database; the URL, for code that makes its own engine."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'cc.db'}"
        engine = make_engine(url)
        await upgrade(engine)
    else:
        require(PG_URL, 5432, "PostgreSQL")
        url = PG_URL
        engine = await _fresh_postgres()
    await engine.dispose()
    yield url


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(db_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def stack(db_url: str) -> tuple[str, str | None, str]:
    """(database URL, Redis URL or None, key prefix): embedded = SQLite + in-process broker,
    scale-out = PostgreSQL + Redis. A fresh prefix keeps each test's Redis keys apart."""
    if db_url.startswith("sqlite"):
        return db_url, None, "cc"
    require(REDIS_URL, 6379, "Redis")
    return db_url, REDIS_URL, f"cctest-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def pg_url() -> str:
    """A migrated, empty PostgreSQL database, for tests that only make sense scaled out."""
    require(PG_URL, 5432, "PostgreSQL")
    require(REDIS_URL, 6379, "Redis")
    engine = await _fresh_postgres()
    await engine.dispose()
    return PG_URL


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    """A fake Twilio REST API on loopback (tests/fake_twilio.py), recording what it receives."""
    twilio = FakeTwilio()
    await twilio.start()
    yield twilio
    await twilio.stop()


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    """A local SMTP relay (tests/smtp_relay.py) that records the mail our server sends."""
    r = Relay()
    await r.start()
    yield r
    await r.stop()
