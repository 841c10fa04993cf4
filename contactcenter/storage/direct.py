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

`insert_ids` on PostgreSQL sends one array per column through `unnest` instead of SQLAlchemy's
multi-row VALUES: that statement's text changed with the number of rows, so each new batch size
on each pooled connection was prepared anew (a round trip and a plan; in scale-out about one
intake batch in four prepared all three of its INSERTs). The `unnest` statement is one text for
any number of rows, prepared once per connection.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, insert, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from contactcenter.storage.sqlite_inline import Connection as InlineConnection


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters in the order of the placeholders
    fixed: Mapping[str, Any]  # values given in the statement itself (literals)
    converted: tuple[tuple[int, Callable[[Any], Any]], ...]  # (position, bind processor)
    results: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column, result processor)
    row: type[tuple[Any, ...]] | None  # rows read by position or by column name
    _gather: Callable[[Mapping[str, Any]], Any] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        # Most statements take every value from the row: one C call gathers them all.
        if len(self.names) > 1 and not self.fixed:
            object.__setattr__(self, "_gather", itemgetter(*self.names))

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        if self._gather is not None:
            values = list(self._gather(params))
        else:
            values = [params[name] if name in params else self.fixed[name]
                      for name in self.names]
        for at, bind in self.converted:
            value = values[at]
            if value is not None:
                values[at] = bind(value)
        return values

    def args_many(self, many: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
        """`args` of each parameter set. A value that is the very object the last converted
        row had in its place is not converted again: a batch's rows share their time object,
        the dispatcher's events their empty `data`, and a conversion is a chain of Python calls
        (~2 µs). Identity, not equality: values that compare equal may convert apart (1 and
        True; the two local times of a DST fall-back)."""
        if not self.converted or self._gather is None:
            return [self.args(params) for params in many]
        gather, converted = self._gather, self.converted
        given: list[Any] = [None] * len(self.names)  # by position: the last value converted…
        made: list[Any] = [None] * len(self.names)  # …and what it became
        out = []
        for params in many:
            values = list(gather(params))
            for at, bind in converted:
                value = values[at]
                if value is None:
                    continue
                if value is not given[at]:
                    given[at], made[at] = value, bind(value)
                values[at] = made[at]
            out.append(values)
        return out


class Hot:
    """A Core statement for the hot path. `keys`: for an INSERT, the columns every row gives
    (the others take the table's server defaults; a Python-side default is refused, since it
    would be skipped here)."""

    __slots__ = ("_compiled", "keys", "stmt")

    def __init__(self, stmt: Any, keys: Sequence[str] | None = None) -> None:
        self.stmt = stmt
        self.keys = list(keys) if keys is not None else None
        self._compiled: dict[str, _Compiled] = {}  # by dialect: a process's tests use two

    def compiled(self, dialect: Dialect) -> _Compiled:
        c = self._compiled.get(dialect.name)
        if c is None:
            c = self._compiled[dialect.name] = _compile(self.stmt, dialect, self.keys)
        return c


class HotInsert(Hot):
    """An INSERT of rows that each give `keys`, whose new ids come back in the rows' order."""

    __slots__ = ("_unnest", "table")

    def __init__(self, table: Table, keys: Sequence[str]) -> None:
        super().__init__(insert(table), keys)
        self.table = table
        self._unnest: Any = None

    def unnest(self, dialect: Dialect) -> Any:
        """PostgreSQL: the rows as one array per column, inserted in their order (`ORDER BY`
        the arrays' ordinality); the ids, drawn from the sequence in that order, come back in
        some order, and sorted they are the rows'."""
        if self._unnest is None:
            q = dialect.identifier_preparer
            c = self.compiled(dialect)
            columns = [self.table.c[name] for name in c.names]
            names = ", ".join(q.quote(col.name) for col in columns)
            arrays = ", ".join(f"CAST(:a{i} AS {col.type.compile(dialect)}[])"
                               for i, col in enumerate(columns))
            self._unnest = text(
                f"INSERT INTO {q.format_table(self.table)} ({names}) SELECT {names} "
                f"FROM unnest({arrays}) WITH ORDINALITY AS r({names}, n) ORDER BY n "
                f"RETURNING {q.quote(self.table.c.id.name)}")
        return self._unnest


def _compile(stmt: Any, dialect: Dialect, keys: list[str] | None) -> _Compiled:
    compiled = stmt.compile(dialect=dialect, column_keys=keys)
    if compiled.insert_prefetch or compiled.update_prefetch:
        raise ValueError(f"give every column with a Python default: {stmt}")
    if compiled.post_compile_params:  # an expanding IN rewrites the SQL on every run
        raise ValueError(f"use one_of() for a list parameter: {stmt}")
    names = tuple(compiled.positiontup or ())
    binds = (compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
             for name in names)
    converted = tuple((at, bind) for at, bind in enumerate(binds) if bind is not None)
    fixed = {name: bind.value for name, bind in compiled.binds.items()
             if not bind.required and bind.callable is None}
    results: tuple[tuple[int, Callable[[Any], Any]], ...] = ()
    row = None
    columns = getattr(stmt, "selected_columns", None)
    if columns is not None:
        found = (c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
        results = tuple((at, f) for at, f in enumerate(found) if f is not None)
        row = namedtuple("Row", [c.key for c in columns], rename=True)  # type: ignore[misc]
    return _Compiled(compiled.string, names, fixed, converted, results, row)


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
    if not c.results:
        return [make(row) for row in found]
    out = []
    for row in found:
        values = list(row)
        for at, convert in c.results:
            if values[at] is not None:
                values[at] = convert(values[at])
        out.append(make(values))
    return out


async def insert_ids(conn: AsyncConnection, hot: HotInsert,
                     params: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert the rows; their new ids, in the order of `params`."""
    if not params:
        return []
    c = hot.compiled(conn.dialect)
    if conn.dialect.name != "sqlite":
        rows = c.args_many(params)
        arrays = {f"a{i}": [row[i] for row in rows] for i in range(len(c.names))}
        return sorted((await conn.execute(hot.unnest(conn.dialect), arrays)).scalars())
    inline = _inline(conn)
    await inline.run_sql_many(c.sql, c.args_many(params))
    # This transaction holds SQLite's one write lock, and an INTEGER PRIMARY KEY takes one more
    # than the largest id for each row in turn: the last id and the count give them all.
    ((last,),) = (await inline.run_sql("SELECT last_insert_rowid()", ())).fetchall()
    return list(range(last - len(params) + 1, last + 1))


async def run_many(conn: AsyncConnection, hot: Hot, params: Sequence[Mapping[str, Any]]) -> None:
    """Run an INSERT or UPDATE once per parameter set, with no result."""
    if not params:
        return
    if conn.dialect.name != "sqlite":
        await conn.execute(hot.stmt, list(params))
        return
    c = hot.compiled(conn.dialect)
    await _inline(conn).run_sql_many(c.sql, c.args_many(params))
