"""SQLite on the event loop's own thread, behind the aiosqlite interface SQLAlchemy drives.

aiosqlite hands every call (execute, fetch, close, commit) to a worker thread and back: ~60 µs of
the loop's CPU per call on our hosts, against ~1 µs for the same small statement run in place.
A screen-pop batch makes dozens of such calls, so in the embedded default the hand-offs, not
SQLite, were the cost. Here each call runs where it is made and returns at once.

Run in place, a statement that waits for SQLite's write lock would freeze the loop, and with it
the very transaction holding the lock. So the connection's own busy timeout is zero and a busy
statement is retried here after an asyncio sleep, with the loop free meanwhile. That retry is
what SQLite's busy handler does: Python's implicit transactions begin (IMMEDIATE, taking the
lock) just before a transaction's first write, before it has read anything. A stale snapshot
(SQLITE_BUSY_SNAPSHOT) cannot be cured by waiting and fails at once, as with the busy handler.

The price: a long query holds the loop for its whole run. The hot path's statements take
microseconds; deployments with heavy reporting belong on PostgreSQL (`CC_DATABASE_URL`).

Checkpoints, which copy the write-ahead log back into the database file and wait on the disk,
would be the longest of them: SQLite runs one inside whichever commit finds the log past 1,000
pages, and under load that was ~250 µs of every commit, on the loop. So the connections here
never checkpoint; a worker thread does, on its own connection (see `_Checkpoints`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

# Log frames (pages) past which a checkpoint also tries to start the log over: ~16 MB.
RESTART_FRAMES = 4000
# How long that checkpoint waits for the writer of the moment and older readers, in ms.
RESTART_WAIT_MS = 50

# SQLITE_BUSY and SQLITE_BUSY_RECOVERY: another connection holds the lock for now.
_WAIT_AND_RETRY = {sqlite3.SQLITE_BUSY, 261}


class _Checkpoints:
    """Checkpoints of one database file, run off the loop: one at a time, after every
    `commits` commits or, when commits are few, after the first commit `seconds` on.

    A PASSIVE checkpoint neither waits for nor blocks the loop's readers and writers; it copies
    what no reader still needs, and a later one copies the rest. sqlite3 lets go of the GIL
    while SQLite works, so the copying and its fsync run beside the loop, not in it.

    Copied back is not started over: SQLite writes the log from its start again only when a
    write begins with every frame already copied, which under steady load never happens (the
    loop commits while the worker copies). The log then grew without end, 1.6 GB in 80 s at
    1,500 contacts/s, and the server's CPU per contact with it (docs/benchmarks.md). So once
    the log holds `restart_frames` frames, a RESTART checkpoint follows the PASSIVE one: it
    waits up to RESTART_WAIT_MS for the writer of the moment and for older readers, copies the
    rest back with the write lock held (the loop's writers retry meanwhile, a few ms), and the
    next write starts the log over; if the wait runs out it gives up, to try again next time.
    The loop's transactions begin IMMEDIATE, so a writer that meets this lock waits holding no
    snapshot that the checkpoint would in turn wait for.
    """

    def __init__(self, path: str, commits: int, seconds: float = 10.0,
                 restart_frames: int = RESTART_FRAMES) -> None:
        self._path = path
        self._restart_frames = restart_frames
        self._every, self._seconds = commits, seconds
        self._commits = 0
        self._since = time.monotonic()
        self._running = False

    def committed(self) -> None:
        self._commits += 1
        if self._running or (self._commits < self._every
                             and time.monotonic() - self._since < self._seconds):
            return
        self._running, self._commits = True, 0
        try:
            asyncio.get_running_loop().run_in_executor(None, self._checkpoint)
        except RuntimeError:  # the loop's executor is shut down: the process is stopping
            self._running = False

    def _checkpoint(self) -> None:
        # Settled here, on the worker, not by a callback on a loop that may be gone by then.
        try:
            conn = sqlite3.connect(self._path, timeout=0)
            try:
                _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if frames >= self._restart_frames:
                    conn.execute(f"PRAGMA busy_timeout = {RESTART_WAIT_MS}")
                    conn.execute("PRAGMA wal_checkpoint(RESTART)")
            finally:
                conn.close()
        except Exception as e:
            # Nothing is lost: the log keeps every page until a later checkpoint copies it.
            log.warning("SQLite checkpoint of %s failed: %s", self._path, e)
        finally:
            self._since = time.monotonic()
            self._running = False


class Cursor:
    def __init__(self, conn: Connection, cursor: sqlite3.Cursor) -> None:
        self._conn = conn
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        await self._conn.retrying(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Cursor:
        rows = parameters if isinstance(parameters, list) else list(parameters)
        await self._conn.retrying(self._cursor.executemany, sql, rows)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _Immediate:
    """SQLAlchemy sets the isolation level through aiosqlite's task queue; run it in place."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as e:  # handed to the waiting caller, as aiosqlite does
            future.set_exception(e)


class Connection:
    def __init__(self, conn: sqlite3.Connection, busy_seconds: float,
                 checkpoints: _Checkpoints | None = None) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn  # SQLAlchemy checks it is open
        self._tx = _Immediate(conn)
        self._busy_seconds = busy_seconds
        self._checkpoints = checkpoints

    async def retrying(self, call: Callable[..., T], *args: Any) -> T:
        delay, waited = 0.001, 0.0
        while True:
            try:
                return call(*args)
            except sqlite3.OperationalError as e:
                if e.sqlite_errorcode not in _WAIT_AND_RETRY or waited >= self._busy_seconds:
                    raise
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.05)

    async def run_sql(self, sql: str, parameters: Sequence[Any]) -> sqlite3.Cursor:
        """One statement on the sqlite3 connection itself (storage/direct.py)."""
        return await self.retrying(self._conn.execute, sql, parameters)

    async def run_sql_many(self, sql: str, parameters: list[Sequence[Any]]) -> None:
        await self.retrying(self._conn.executemany, sql, parameters)

    def trace(self, callback: Callable[[str], object] | None) -> None:
        """Every statement SQLite runs on this connection, as text, to `callback` (None: stop);
        the only view of the statements that bypass SQLAlchemy's events."""
        self._conn.set_trace_callback(callback)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> Cursor:
        return Cursor(self, self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        await self.retrying(self._conn.commit)
        if self._checkpoints is not None:
            self._checkpoints.committed()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def connector(path: str, busy_seconds: float = 30.0, checkpoint_every: int = 100,
              restart_frames: int = RESTART_FRAMES) -> Callable[[], Any]:
    """The `async_creator` for `create_async_engine`: one in-place connection per call."""

    # An in-memory database has no log to copy, and a second connection would not see it.
    checkpoints = (None if path in ("", ":memory:")
                   else _Checkpoints(path, checkpoint_every, restart_frames=restart_frames))

    async def connect() -> Connection:
        # check_same_thread=False: SQLAlchemy may close a pooled connection from its GC hook.
        conn = sqlite3.connect(path, timeout=0, check_same_thread=False,
                               isolation_level="IMMEDIATE")
        conn.execute("PRAGMA wal_autocheckpoint=0")  # `_Checkpoints` does it, off the loop
        return Connection(conn, busy_seconds, checkpoints)

    return connect
