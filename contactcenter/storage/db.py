"""Engine, sessions and schema migrations."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, exc, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from contactcenter.storage.sqlite_inline import connector
from contactcenter.wire import dumps, loads

MIGRATIONS = Path(__file__).parent / "migrations"


# A pooled connection idle longer than this is pinged before use; see `_ping_when_idle`.
PING_AFTER_IDLE = 2.0


def make_engine(url: str, ping_after_idle: float = PING_AFTER_IDLE) -> AsyncEngine:
    if url.startswith("sqlite"):
        # LIFO: the connection used last is taken again, its page cache still good; SQLite
        # drops a connection's whole cache whenever another connection has written since.
        engine = create_async_engine(url, async_creator=connector(make_url(url).database or ""),
                                     pool_use_lifo=True,
                                     json_serializer=dumps, json_deserializer=loads)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            # WAL lets readers (screen-pops, stats) run while the router writes.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    engine = create_async_engine(url, pool_size=10, max_overflow=20,
                                 json_serializer=dumps, json_deserializer=loads)
    _ping_when_idle(engine, ping_after_idle)
    return engine


def _ping_when_idle(engine: AsyncEngine, after: float) -> None:
    """Ping a connection before use only when it sat in the pool for `after` seconds.

    SQLAlchemy's `pool_pre_ping` pings at every checkout, and on asyncpg a ping is three round
    trips (BEGIN, `;`, ROLLBACK): in scale-out that was 28 % of all round trips to PostgreSQL,
    and a transaction's latency is its round trips. A connection breaks while it sits idle (a
    database restart, an idle timeout, a dropped TCP flow), so that is when it is checked.
    One that was in use a moment before the database went away fails its transaction, as one
    in flight does; the disconnect then invalidates every older connection in the pool, so the
    next transactions reconnect (tests/test_db.py shows both)."""
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _idle_from(_: Any, record: Any) -> None:
        record.info["idle_from"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _: Any) -> None:
        idle_from = record.info.get("idle_from")
        if idle_from is None or time.monotonic() - idle_from < after:
            return  # new, or just used
        try:
            dbapi_conn.ping()
        except Exception as e:
            # The pool discards this connection and checks out another (a documented hook).
            raise exc.DisconnectionError() from e


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (a no-op when it already is)."""

    def _run(conn: Connection) -> None:
        command.upgrade(alembic_config(conn), "head")

    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Two nodes starting together must not both create the tables.
            await conn.execute(text("SELECT pg_advisory_xact_lock(727001)"))
        await conn.run_sync(_run)
