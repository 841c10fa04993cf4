"""Every statement an engine runs, SQLAlchemy's own and the hot ones that run past it
(storage/direct.py). On SQLite the inline connection's trace sees them all; on PostgreSQL
asyncpg's query loggers see the hot ones and SQLAlchemy's cursor events the others."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from asyncpg import introspection as asyncpg_introspection
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from contactcenter.storage.sqlite_inline import Connection as InlineConnection


@contextmanager
def recorded(engine: AsyncEngine) -> Iterator[list[str]]:
    """The statements run on connections checked out within the block, in order."""
    statements: list[str] = []
    drivers: list[Any] = []

    def sqlalchemys(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    def logged(query: Any) -> None:
        # Not asyncpg's own look-up of a type it meets for the first time on a connection
        # (with JIT turned off around it): the project did not run those.
        if query.query not in introspection and "'jit'" not in query.query:
            statements.append(query.query)

    def checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = dbapi_connection.driver_connection
        if isinstance(driver, InlineConnection):
            driver.trace(statements.append)
        else:
            driver.add_query_logger(logged)
        drivers.append(driver)

    introspection = {getattr(asyncpg_introspection, name) for name in dir(asyncpg_introspection)
                     if name.startswith("INTRO_LOOKUP_TYPES")}
    sync = engine.sync_engine
    on_postgresql = engine.dialect.name == "postgresql"
    if on_postgresql:
        event.listen(sync, "before_cursor_execute", sqlalchemys)
    event.listen(sync.pool, "checkout", checkout)
    try:
        yield statements
    finally:
        if on_postgresql:
            event.remove(sync, "before_cursor_execute", sqlalchemys)
        event.remove(sync.pool, "checkout", checkout)
        for driver in drivers:
            if isinstance(driver, InlineConnection):
                driver.trace(None)
            else:
                driver.remove_query_logger(logged)
