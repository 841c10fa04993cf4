"""SQLite run on the loop's thread: a writer that meets a held lock waits without stopping the
loop, so the holder can finish; one that waits too long gets SQLite's own 'locked' error."""

from __future__ import annotations

import asyncio
import os
import sqlite3

import pytest
from sqlalchemy import text

from contactcenter.storage.db import make_engine
from contactcenter.storage.sqlite_inline import connector


async def test_a_second_writer_waits_while_the_loop_lets_the_first_commit(tmp_path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER)"))
    holding, release = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def holder() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            holding.set()
            await release.wait()  # the write lock is held across an await
            order.append("first commits")

    async def second() -> None:
        await holding.wait()
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))
        order.append("second committed")

    async def releaser() -> None:
        await holding.wait()
        await asyncio.sleep(0.05)  # by now the second writer has met the lock
        order.append("loop still runs")
        release.set()

    await asyncio.gather(holder(), second(), releaser())
    assert order == ["loop still runs", "first commits", "second committed"]
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT n FROM t ORDER BY rowid"))
        assert rows.scalars().all() == [1, 2]
    await engine.dispose()


async def test_a_writer_gives_up_with_sqlites_error_when_the_lock_stays_held(tmp_path) -> None:
    path = str(tmp_path / "w.db")
    first = await connector(path)()
    second = await connector(path, busy_seconds=0.05)()
    await first.execute("CREATE TABLE t (n INTEGER)")
    await first.commit()
    await first.execute("INSERT INTO t VALUES (1)")  # opens the write transaction, keeps it
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await second.execute("INSERT INTO t VALUES (2)")
    await first.commit()
    await second.rollback()
    await second.execute("INSERT INTO t VALUES (2)")  # the lock is free again
    await second.commit()
    rows = await (await first.execute("SELECT n FROM t ORDER BY n")).fetchall()
    assert rows == [(1,), (2,)]
    await first.close()
    await second.close()


async def test_the_log_is_copied_back_by_a_checkpoint_off_the_loop_not_by_a_commit(
        tmp_path) -> None:
    """The loop's connections never checkpoint, however long the log grows; every
    `checkpoint_every` commits a worker thread copies it back into the database file."""
    db = tmp_path / "c.db"
    conn = await connector(str(db), checkpoint_every=30)()
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("CREATE TABLE t (b BLOB)")
    await conn.commit()  # commit 1
    size = db.stat().st_size
    for _ in range(28):  # commits 2..29: ~1,400 pages, past SQLite's own 1,000-page trigger
        await conn.execute("INSERT INTO t VALUES (?)", (os.urandom(200_000),))
        await conn.commit()
    await asyncio.sleep(0.2)
    assert db.stat().st_size == size  # all of it still only in the log
    await conn.execute("INSERT INTO t VALUES (?)", (os.urandom(200_000),))
    await conn.commit()  # commit 30
    for _ in range(100):
        if db.stat().st_size > size:
            break
        await asyncio.sleep(0.05)
    assert db.stat().st_size > 29 * 200_000
    cur = await conn.execute("SELECT count(*), sum(length(b)) FROM t")
    assert await cur.fetchone() == (29, 29 * 200_000)
    await conn.close()


@pytest.mark.parametrize(("restart_frames", "started_over"), [(10, True), (100_000, False)])
async def test_a_checkpoint_of_a_long_log_lets_the_next_write_start_it_over(
        tmp_path, restart_frames: int, started_over: bool) -> None:
    """Under steady load a PASSIVE checkpoint never catches up (a reader holds an older
    snapshot, the loop commits meanwhile), and SQLite starts the log over only after one did:
    the log grew without end. Past `restart_frames` frames the checkpoint waits a moment for
    readers (RESTART) and copies it all back; the next write then starts the log over."""
    db = tmp_path / "r.db"
    conn = await connector(str(db), checkpoint_every=1_000_000, restart_frames=restart_frames)()
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("CREATE TABLE t (b BLOB)")
    await conn.commit()

    async def write(times: int) -> None:
        for _ in range(times):  # ~13 pages each
            await conn.execute("INSERT INTO t VALUES (?)", (os.urandom(50_000),))
            await conn.commit()

    def frames() -> int:
        # The frames in the log; a PASSIVE checkpoint is how SQLite tells, and it copies what
        # it can as the worker's would, so it changes nothing either case depends on.
        probe = sqlite3.connect(db)
        try:
            return probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        finally:
            probe.close()

    await write(5)
    reader = sqlite3.connect(db, check_same_thread=False)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (5,)  # a snapshot held
    await write(5)
    before = frames()
    loop = asyncio.get_running_loop()
    loop.call_later(0.01, reader.commit)  # the reader finishes while the checkpoint runs
    await loop.run_in_executor(None, conn._checkpoints._checkpoint)  # type: ignore[union-attr]
    reader.close()
    await write(1)
    if started_over:
        assert frames() < 20  # the last write's pages only
    else:
        assert frames() > before
    cur = await conn.execute("SELECT count(*) FROM t")
    assert await cur.fetchone() == (11,)
    await conn.close()
