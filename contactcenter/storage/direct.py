"""Hot statements on SQLite run on the sqlite3 cursor itself, past SQLAlchemy's execution layer.

Measured on the inline connection (`sqlite_inline.py`): `AsyncConnection.execute` of a cached
one-row SELECT cost ~85 µs of CPU (greenlet hand-offs, execution context, result object)
against ~4 µs for the same statement on the cursor; each INSERT row ~6 µs more, each row read
~2.6 µs more. The intake and the dispatcher run a dozen such statements per batch, tens of
batches a second, so in the embedded default that layer cost more than SQLite did.

A statement is still written with SQLAlchemy Core and compiled by SQLAlchemy, once per
`Hot`: it renders the SQL and supplies the conversions (each parameter type's bind processor,
each column type's result processor). Only the running is done here, with ready tuples in and
named tuples out. On PostgreSQL `rows` and `run_many` are plain `AsyncConnection.execute`:
there the layer's cost is small next to the round trip, and the asyncpg adapter owns the
transaction. Result rows are read by position or by column key, as SQLAlchemy's are.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from contactcenter.storage.sqlite_inline import Connection as InlineConnection


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters in the order of the placeholders
    fixed: Mapping[str, Any]  # values given in the statement itself (literals)
    binds: tuple[Callable[[Any], Any] | None, ...]
    results: tuple[Callable[[Any], Any] | None, ...] | None  # None: no column needs converting
    row: type[tuple[Any, ...]] | None  # rows read by position or by column name

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        fixed = self.fixed
        return tuple(
            (value if bind is None or value is None else bind(value))
            for name, bind in zip(self.names, self.binds, strict=True)
            for value in ((params[name] if name in params else fixed[name]),))


class Hot:
    """A Core statement for the hot path. `keys`: for an INSERT, the columns every row gives
    (the others take the table's server defaults; a Python-side default is refused, since it
    would be skipped here)."""

    __slots__ = ("_sqlite", "keys", "stmt")

    def __init__(self, stmt: Any, keys: Sequence[str] | None = None) -> None:
        self.stmt = stmt
        self.keys = list(keys) if keys is not None else None
        self._sqlite: _Compiled | None = None

    def compiled(self, dialect: Dialect) -> _Compiled:
        if self._sqlite is None:
            self._sqlite = _compile(self.stmt, dialect, self.keys)
        return self._sqlite


def _compile(stmt: Any, dialect: Dialect, keys: list[str] | None) -> _Compiled:
    compiled = stmt.compile(dialect=dialect, column_keys=keys)
    if compiled.insert_prefetch or compiled.update_prefetch:
        raise ValueError(f"give every column with a Python default: {stmt}")
    if compiled.post_compile_params:  # an expanding IN rewrites the SQL on every run
        raise ValueError(f"use one_of() for a list parameter: {stmt}")
    names = tuple(compiled.positiontup or ())
    binds = tuple(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                  for name in names)
    fixed = {name: bind.value for name, bind in compiled.binds.items()
             if not bind.required and bind.callable is None}
    results, row = None, None
    columns = getattr(stmt, "selected_columns", None)
    if columns is not None:
        found = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None)
                      for c in columns)
        results = found if any(found) else None
        row = namedtuple("Row", [c.key for c in columns], rename=True)  # type: ignore[misc]
    return _Compiled(compiled.string, names, fixed, binds, results, row)


def _inline(conn: AsyncConnection) -> InlineConnection:
    # The connection is checked out for the transaction already: no I/O to reach it.
    driver = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
    assert isinstance(driver, InlineConnection)
    return driver


async def rows(conn: AsyncConnection, hot: Hot,
               params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
    """Run a SELECT; its rows, read by position or by column key as SQLAlchemy's are."""
    if conn.dialect.name != "sqlite":
        return (await conn.execute(hot.stmt, params)).all()
    c = hot.compiled(conn.dialect)
    found = (await _inline(conn).run_sql(c.sql, c.args(params))).fetchall()
    make = c.row._make  # type: ignore[union-attr]
    if c.results is None:
        return [make(row) for row in found]
    convert = c.results
    return [make([value if f is None or value is None else f(value)
                  for f, value in zip(convert, row, strict=True)]) for row in found]


async def run_many(conn: AsyncConnection, hot: Hot, params: Sequence[Mapping[str, Any]]) -> None:
    """Run an INSERT or UPDATE once per parameter set, with no result."""
    if not params:
        return
    if conn.dialect.name != "sqlite":
        await conn.execute(hot.stmt, list(params))
        return
    c = hot.compiled(conn.dialect)
    await _inline(conn).run_sql_many(c.sql, [c.args(p) for p in params])
