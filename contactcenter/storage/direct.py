"""Hot statements run on the driver itself (sqlite3's cursor, asyncpg), past SQLAlchemy's
execution layer.

Measured on the inline connection (`sqlite_inline.py`): `AsyncConnection.execute` of a cached
one-row SELECT cost ~85 µs of CPU (greenlet hand-offs, execution context, result object)
against ~4 µs for the same statement on the cursor; each INSERT row ~6 µs more, each row read
~2.6 µs more. The intake and the dispatcher run a dozen such statements per batch, tens of
batches a second, so in the embedded default that layer cost more than SQLite did.

A statement is still written with SQLAlchemy Core and compiled by SQLAlchemy, once per
`Hot`: it renders the SQL and supplies the conversions (each parameter type's bind processor,
each column type's result processor). Only the running is done here, with ready tuples in and
named tuples out. Result rows are read by position or by column key, as SQLAlchemy's are.

On PostgreSQL the statements run on asyncpg itself (`_pg_fetch`), inside the transaction that
SQLAlchemy's asyncpg adapter keeps for the connection, prepared once per connection by
asyncpg's statement cache: through `AsyncConnection.execute` a statement cost the scale-out
node ~400 µs of CPU (greenlet hand-offs to SQLAlchemy's synchronous layer, execution context,
result object), and py-spy put 28 % of the node's samples in that layer at 400 contacts/s.
Writes of many rows (`insert_ids`, `run_many`) send one array per column through `unnest`: one
statement, run once. SQLAlchemy's multi-row VALUES changed its text with the number of rows,
so each new batch size on each pooled connection was prepared anew (in scale-out about one
intake batch in four prepared all three of its INSERTs), and asyncpg's executemany runs the
statement once per row (~40 % more of PostgreSQL's CPU; `_Batched`). Dependent inserts are one
statement too (`Chain`), and so are independent reads (`Reads`): under load a round trip costs
the wait for the node's loop more than the database's work.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, exc, insert, text, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contactcenter.storage.sqlite_inline import Connection as InlineConnection

T = TypeVar("T")


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


class _Batched(Hot):
    """A write of many rows to one table, which PostgreSQL takes as one array per column
    through `unnest`: one statement text for any number of rows, run once. Measured against
    asyncpg's executemany, which runs the statement once per row: 200 event rows cost
    PostgreSQL 3.0 ms of CPU against 5.0, 80 contact updates 1.3 against 2.2."""

    __slots__ = ("_unnest", "table")

    def __init__(self, table: Table, stmt: Any, keys: Sequence[str] | None) -> None:
        super().__init__(stmt, keys)
        self.table = table
        self._unnest: dict[bool, Any] = {}

    def _arrays(self, dialect: Dialect, prefix: str,
                ordinals: Sequence[str] = ()) -> tuple[list[str], str]:
        """The unnest's column names, in the compiled statement's parameter order, and the
        unnest call itself (an array parameter `<prefix><i>` per column, cast to its type,
        then a BIGINT array per name in `ordinals`)."""
        q = dialect.identifier_preparer
        names = self.compiled(dialect).names
        types = [self._column(name).type.compile(dialect) for name in names]
        arrays = ", ".join([*(f"CAST(:{prefix}{i} AS {t}[])" for i, t in enumerate(types)),
                            *(f"CAST(:{name} AS BIGINT[])" for name in ordinals)])
        return [q.quote(name) for name in names], f"unnest({arrays})"

    def _column(self, name: str) -> Any:
        return self.table.c[name]

    def unnest(self, dialect: Dialect, returning: bool = False) -> _Compiled:
        """The statement on arrays named `a<i>`, built once."""
        stmt = self._unnest.get(returning)
        if stmt is None:
            stmt = self._unnest[returning] = _compile(
                text(self.unnest_sql(dialect, "a", returning)), dialect, None)
        return stmt

    def unnest_sql(self, dialect: Dialect, prefix: str, returning: bool = False) -> str:
        """The statement's text on arrays named `<prefix><i>` (a part of `write_all`'s)."""
        raise NotImplementedError

    def unnest_params(self, dialect: Dialect, params: Sequence[Mapping[str, Any]],
                      prefix: str = "a") -> dict[str, list[Any]]:
        c = self.compiled(dialect)
        rows = c.args_many(params)
        return {f"{prefix}{i}": [row[i] for row in rows] for i in range(len(c.names))}


class HotInsert(_Batched):
    """An INSERT of rows that each give `keys`; `insert_ids` returns their new ids in the rows'
    order."""

    def __init__(self, table: Table, keys: Sequence[str]) -> None:
        super().__init__(table, insert(table), keys)

    def unnest_sql(self, dialect: Dialect, prefix: str, returning: bool = False) -> str:
        """PostgreSQL: inserted in the arrays' order (`ORDER BY` their ordinality); the ids,
        drawn from the sequence in that order, come back in some order, and sorted they are
        the rows'."""
        q = dialect.identifier_preparer
        names, unnest = self._arrays(dialect, prefix)
        columns = ", ".join(names)
        sql = (f"INSERT INTO {q.format_table(self.table)} ({columns}) SELECT {columns} "
               f"FROM {unnest} WITH ORDINALITY AS r({columns}, n) ORDER BY n")
        if returning:
            sql += f" RETURNING {q.quote(self.table.c.id.name)}"
        return sql


class HotUpdate(_Batched):
    """An UPDATE of `columns` by id: each row gives the columns under their names and the id
    under `key` (SQLAlchemy reserves a column's own name for its new value)."""

    __slots__ = ("key",)

    def __init__(self, table: Table, columns: Sequence[str], key: str = "cid") -> None:
        super().__init__(table, update(table).where(table.c.id == bindparam(key))
                         .values({name: bindparam(name) for name in columns}), None)
        self.key = key

    def _column(self, name: str) -> Any:
        return self.table.c.id if name == self.key else self.table.c[name]

    def unnest_sql(self, dialect: Dialect, prefix: str, returning: bool = False) -> str:
        q = dialect.identifier_preparer
        names, unnest = self._arrays(dialect, prefix)
        table = q.format_table(self.table)
        key = q.quote(self.key)
        sets = ", ".join(f"{n} = v.{n}" for n in names if n != key)
        return (f"UPDATE {table} SET {sets} FROM {unnest} AS v({', '.join(names)}) "
                f"WHERE {table}.{q.quote(self.table.c.id.name)} = v.{key}")


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


async def _pg_fetch(conn: AsyncConnection, c: _Compiled, args: Sequence[Any]) -> list[Any]:
    """Run on asyncpg, as SQLAlchemy's adapter runs a statement (`_prepare_and_execute`): under
    its lock, in its transaction (begun by the first statement, committed or rolled back by
    SQLAlchemy). asyncpg prepares each text once per connection (its statement cache) and
    shows it to the connection's query loggers. Errors come out as SQLAlchemy's, and a lost
    connection is invalidated with the pool's older ones, as SQLAlchemy's own execution does.
    The adapter's private members are pinned with SQLAlchemy's version (tests/test_direct.py
    runs every path on PostgreSQL)."""
    sync = conn.sync_connection
    assert sync is not None
    fairy = sync.connection  # checked out for the transaction already: no I/O to reach it
    adapter: Any = fairy.dbapi_connection
    dialect: Any = conn.dialect
    try:
        async with adapter._execute_mutex:
            if adapter._transaction is None:
                await adapter._start_transaction()
            return list(await adapter._connection.fetch(c.sql, *args))
    except Exception as e:
        try:
            adapter._handle_exception(e)  # the DB-API error the adapter makes of it
        except Exception as dbapi_error:
            disconnect = dialect.is_disconnect(dbapi_error, adapter, None)
            if disconnect and not sync.invalidated:
                sync.engine.pool._invalidate(fairy, dbapi_error)
                sync.invalidate(dbapi_error)
            raise exc.DBAPIError.instance(
                c.sql, args, dbapi_error, dialect.loaded_dbapi.Error,
                connection_invalidated=disconnect, dialect=dialect) from e
        raise


def _named_rows(c: _Compiled, found: Sequence[Sequence[Any]]) -> list[Any]:
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


async def rows(conn: AsyncConnection, hot: Hot,
               params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
    """Run a SELECT; its rows, read by position or by column key as SQLAlchemy's are."""
    c = hot.compiled(conn.dialect)
    if conn.dialect.name != "sqlite":
        return _named_rows(c, await _pg_fetch(conn, c, c.args(params)))
    return _named_rows(c, (await _inline(conn).run_sql(c.sql, c.args(params))).fetchall())


class Reads:
    """SELECTs on `conn` that do not depend on one another, run together: on PostgreSQL one
    statement, each SELECT an array of its rows (`ARRAY(SELECT q FROM (...) q)`, which keeps
    the SELECT's order), one round trip where there were as many as SELECTs; on SQLite in turn.
    Under load a round trip is mostly the wait for the node's loop to come back to it, not the
    database's work (docs/benchmarks.md). `add` returns the list that `run` fills."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self._reads: list[tuple[Hot, Mapping[str, Any], list[Any]]] = []

    def add(self, hot: Hot, params: Mapping[str, Any]) -> list[Any]:
        found: list[Any] = []
        self._reads.append((hot, params, found))
        return found

    async def run(self) -> None:
        reads, self._reads = self._reads, []
        conn = self.conn
        if self.dialect == "sqlite" or len(reads) < 2:
            for hot, params, found in reads:
                found.extend(await rows(conn, hot, params))
            return
        parts = [hot.compiled(conn.dialect) for hot, _, _ in reads]
        stmt = _together_reads(tuple(hot for hot, _, _ in reads), parts)
        args = [arg for c, (_, params, _) in zip(parts, reads, strict=True)
                for arg in c.args(params)]
        (arrays,) = await _pg_fetch(conn, stmt, args)
        for c, (_, _, found), array in zip(parts, reads, arrays, strict=True):
            found.extend(_named_rows(c, array))


async def read_now(conn: AsyncConnection, read: Callable[[Reads], Callable[[], T]]) -> T:
    """A reader's reads on their own: `read` adds them to a `Reads` (as the `read_*`
    functions of customers, timeline and followups do) and returns what makes its result."""
    reads = Reads(conn)
    result = read(reads)
    await reads.run()
    return result()


_PLACEHOLDER = re.compile(r"\$(\d+)")
_READS_TOGETHER: dict[tuple[Hot, ...], _Compiled] = {}


def _together_reads(hots: tuple[Hot, ...], parts: Sequence[_Compiled]) -> _Compiled:
    stmt = _READS_TOGETHER.get(hots)
    if stmt is not None:
        return stmt
    selects, offset = [], 0
    for c in parts:
        # asyncpg's placeholders are $1…$n per statement: numbered on after the ones before.
        if {int(n) for n in _PLACEHOLDER.findall(c.sql)} != set(range(1, len(c.names) + 1)):
            raise ValueError(f"cannot renumber the placeholders of {c.sql!r}")
        sql = _PLACEHOLDER.sub(lambda m, at=offset: f"${int(m.group(1)) + at}", c.sql)
        selects.append(f"ARRAY(SELECT q FROM ({sql}) AS q) AS r{len(selects)}")
        offset += len(c.names)
    stmt = _READS_TOGETHER[hots] = _Compiled(
        "SELECT " + ", ".join(selects), tuple(f"p{i}" for i in range(offset)), {}, (), (),
        None)
    return stmt


async def insert_ids(conn: AsyncConnection, hot: HotInsert,
                     params: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert the rows; their new ids, in the order of `params`."""
    if not params:
        return []
    dialect = conn.dialect
    if dialect.name != "sqlite":
        stmt = hot.unnest(dialect, returning=True)
        return sorted(row[0] for row in await _pg_fetch(conn, stmt, stmt.args(
            hot.unnest_params(dialect, params))))
    c = hot.compiled(dialect)
    inline = _inline(conn)
    await inline.run_sql_many(c.sql, c.args_many(params))
    # This transaction holds SQLite's one write lock, and an INTEGER PRIMARY KEY takes one more
    # than the largest id for each row in turn: the last id and the count give them all.
    ((last,),) = (await inline.run_sql("SELECT last_insert_rowid()", ())).fetchall()
    return list(range(last - len(params) + 1, last + 1))


@dataclass(frozen=True, slots=True)
class New:
    """In a `Chain`'s row, for a column that refers to an earlier part: the id of that part's
    row `row` (by position in its rows), not known until it is inserted."""

    row: int


class Chain:
    """Inserts whose later parts refer to rows the earlier ones insert: `parts` are
    (insert, {column: index of the earlier part it refers to}), and a row gives such a column
    either an id or `New(row)`. On PostgreSQL they are one statement, each insert a part of its
    WITH that takes the earlier ones' new ids by ordinality (one round trip where there were
    as many as parts); on SQLite they run in turn."""

    def __init__(self, parts: Sequence[tuple[HotInsert, Mapping[str, int]]]) -> None:
        for k, (_, refs) in enumerate(parts):
            if any(not 0 <= j < k for j in refs.values()):
                raise ValueError("a part refers only to parts before it")
        self.parts = [(hot, dict(refs)) for hot, refs in parts]
        self._compiled: dict[str, _Compiled] = {}

    def _sql(self, dialect: Dialect) -> _Compiled:
        c = self._compiled.get(dialect.name)
        if c is not None:
            return c
        q = dialect.identifier_preparer
        referred = {j for _, refs in self.parts for j in refs.values()}
        ctes, results = [], []
        for k, (hot, refs) in enumerate(self.parts):
            names, unnest = hot._arrays(dialect, f"c{k}_", [f"n{k}_{i}" for i in range(len(refs))])
            raw = hot.compiled(dialect).names
            joins, exprs = [], []
            for name, quoted in zip(raw, names, strict=True):
                if name in refs:
                    i = list(refs).index(name)
                    joins.append(f"LEFT JOIN n{refs[name]} AS j{i} ON j{i}.n = r.n{i}")
                    exprs.append(f"COALESCE(r.{quoted}, j{i}.id)")
                else:
                    exprs.append(f"r.{quoted}")
            alias = ", ".join([*names, *(f"n{i}" for i in range(len(refs))), "n"])
            ctes.append(
                f"i{k} AS (INSERT INTO {q.format_table(hot.table)} ({', '.join(names)}) "
                f"SELECT {', '.join(exprs)} FROM {unnest} WITH ORDINALITY AS r({alias}) "
                f"{' '.join(joins)} ORDER BY r.n RETURNING {q.quote(hot.table.c.id.name)} AS id)")
            if k in referred:  # the ids, drawn in the rows' order: sorted, they are the rows'
                ctes.append(f"n{k} AS (SELECT id, row_number() OVER (ORDER BY id) AS n "
                            f"FROM i{k})")
            results.append(f"SELECT {k} AS part, id FROM i{k}")
        c = self._compiled[dialect.name] = _compile(text(
            "WITH " + ", ".join(ctes) + " " + " UNION ALL ".join(results)), dialect, None)
        return c

    async def insert(self, conn: AsyncConnection,
                     rows: Sequence[Sequence[Mapping[str, Any]]]) -> list[list[int]]:
        """Insert each part's rows (`rows[k]` for part k); the new ids of each, in order."""
        if len(rows) != len(self.parts):
            raise ValueError(f"rows for {len(self.parts)} parts")
        dialect = conn.dialect
        if dialect.name == "sqlite":
            ids: list[list[int]] = []
            for (hot, refs), params in zip(self.parts, rows, strict=True):
                ids.append(await insert_ids(conn, hot, [
                    {**row, **{col: ids[j][row[col].row] for col, j in refs.items()
                               if isinstance(row[col], New)}} if refs else row
                    for row in params]))
            return ids
        values: dict[str, list[Any]] = {}
        for k, ((hot, refs), params) in enumerate(zip(self.parts, rows, strict=True)):
            for i, col in enumerate(refs):
                # Each such column is two arrays: the ids given, and the rows referred to.
                values[f"n{k}_{i}"] = [v.row + 1 if isinstance(v, New) else None
                                       for v in (row[col] for row in params)]
            given = [{**row, **{col: None for col in refs if isinstance(row[col], New)}}
                     if refs else row for row in params]
            values.update(hot.unnest_params(dialect, given, f"c{k}_"))
        stmt = self._sql(dialect)
        out: list[list[int]] = [[] for _ in self.parts]
        for part, id_ in await _pg_fetch(conn, stmt, stmt.args(values)):
            out[part].append(id_)
        return [sorted(ids) for ids in out]


async def run_many(conn: AsyncConnection, hot: HotInsert | HotUpdate,
                   params: Sequence[Mapping[str, Any]]) -> None:
    """Insert or update the rows, with no result. An update's ids must differ: PostgreSQL
    updates a row once per statement, whichever of two rows for it comes first."""
    if not params:
        return
    _one_row_per_id([(hot, params)])
    await _run(conn, hot, params)


async def _run(conn: AsyncConnection, hot: HotInsert | HotUpdate,
               params: Sequence[Mapping[str, Any]]) -> None:
    dialect = conn.dialect
    if dialect.name != "sqlite":
        stmt = hot.unnest(dialect)
        await _pg_fetch(conn, stmt, stmt.args(hot.unnest_params(dialect, params)))
        return
    c = hot.compiled(dialect)
    await _inline(conn).run_sql_many(c.sql, c.args_many(params))


Writes = Sequence[tuple[HotInsert | HotUpdate, Sequence[Mapping[str, Any]]]]


def _one_row_per_id(writes: Writes) -> None:
    updated: dict[Table, set[Any]] = {}  # per table, the ids the updates so far write
    for hot, params in writes:
        if isinstance(hot, HotUpdate):
            ids = updated.setdefault(hot.table, set())
            before = len(ids)
            ids.update(row[hot.key] for row in params)
            if len(ids) != before + len(params):
                raise ValueError(f"one row per id in a batched update: {hot.stmt}")


_TOGETHER: dict[tuple[_Batched, ...], _Compiled] = {}  # the statement of each set of parts


async def write_all(engine: AsyncEngine, writes: Writes) -> None:
    """Run the writes, all or none. On PostgreSQL they are one statement, each write a
    data-modifying part of its WITH, run outside a transaction (a statement is atomic on its
    own): one round trip where BEGIN, a statement per write and COMMIT were as many. The parts
    see one snapshot, so no two may write the same row: an id is refused in two updates of a
    table as in one (`run_many`). On SQLite they run in turn in one transaction."""
    writes = [(hot, params) for hot, params in writes if params]
    _one_row_per_id(writes)
    if not writes:
        return
    if engine.dialect.name == "sqlite":
        async with engine.begin() as conn:
            for hot, params in writes:
                await _run(conn, hot, params)
        return
    dialect = engine.dialect
    parts = tuple(hot for hot, _ in writes)
    stmt = _TOGETHER.get(parts)
    if stmt is None:
        stmt = _TOGETHER[parts] = _compile(text("WITH " + ", ".join(
            f"w{k} AS ({hot.unnest_sql(dialect, f'w{k}_')})" for k, hot in enumerate(parts)
        ) + " SELECT 1"), dialect, None)
    values: dict[str, list[Any]] = {}
    for k, (hot, params) in enumerate(writes):
        values.update(hot.unnest_params(dialect, params, f"w{k}_"))
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await _pg_fetch(conn, stmt, stmt.args(values))
