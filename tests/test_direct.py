"""Hot statements run on the driver (storage/direct.py) read and write exactly what SQLAlchemy's
own execution does, inside the caller's transaction; statements it would run wrongly are
refused when first compiled."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from statements import recorded

from contactcenter.storage import direct
from contactcenter.storage.models import ContactEvent, UTCDateTime, UTCIsoText, iso_times
from contactcenter.storage.one_of import one_of

EVENTS = ContactEvent.__table__
KEYS = ("at", "kind", "contact_id", "queue_id", "agent_id", "data")
INSERT = direct.HotInsert(EVENTS, KEYS)
INSERT_IDS = direct.HotInsert(EVENTS, KEYS)
READ = direct.Hot(
    select(EVENTS.c.id, EVENTS.c.at, EVENTS.c.kind, EVENTS.c.agent_id, EVENTS.c.data)
    .where(one_of(EVENTS.c.contact_id, "contacts"),
           one_of(EVENTS.c.kind, "kinds", ["offered", "accepted"]),
           EVENTS.c.queue_id == bindparam("queue"))
    .order_by(EVENTS.c.id))
MOVE = direct.HotUpdate(EVENTS, ["at", "agent_id", "data"], key="eid")

AT = datetime(2026, 11, 23, 2, 0, 0, 123456, tzinfo=UTC)


def event(contact: int, kind: str, agent: int | None, data: dict) -> dict:
    return {"at": AT, "kind": kind, "contact_id": contact, "queue_id": 1, "agent_id": agent,
            "data": data}


async def test_rows_and_writes_are_the_same_as_through_sqlalchemy(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await direct.run_many(conn, INSERT, [
            event(7, "offered", 3, {"expires_at": 1.5, "note": "雨天"}),
            event(7, "accepted", None, {}),
            event(7, "completed", 3, {"disposition": "resolved"}),  # not a kind READ wants
            event(8, "offered", 4, {"n": [1, 2]}),
        ])
    params = {"contacts": [7, 8], "queue": 1}
    async with engine.connect() as conn:
        mine = await direct.rows(conn, READ, params)
        theirs = (await conn.execute(READ.stmt, params)).all()
    assert [tuple(r) for r in mine] == [tuple(r) for r in theirs]
    assert [(r.kind, r.agent_id, r.data) for r in mine] == [
        ("offered", 3, {"expires_at": 1.5, "note": "雨天"}), ("accepted", None, {}),
        ("offered", 4, {"n": [1, 2]})]
    assert all(r.at == AT and r.at.tzinfo is not None for r in mine)

    # Many rows at once, each its own values, a NULL among them; the others untouched.
    later = datetime(2026, 11, 24, 8, 30, tzinfo=UTC)
    moves = [{"eid": mine[0].id, "at": later, "agent_id": None, "data": {"x": 1}},
             {"eid": mine[2].id, "at": later + timedelta(hours=1), "agent_id": 9, "data": {}}]
    async with engine.begin() as conn:
        await direct.run_many(conn, MOVE, moves)
        with pytest.raises(ValueError, match="one row per id"):
            await direct.run_many(conn, MOVE, [moves[0], {**moves[0], "agent_id": 2}])
    async with engine.connect() as conn:
        stored = {r.id: {"eid": r.id, "at": r.at, "agent_id": r.agent_id, "data": r.data}
                  for r in await conn.execute(select(EVENTS))}
    assert [stored[m["eid"]] for m in moves] == moves
    assert (stored[mine[1].id]["agent_id"], stored[mine[1].id]["data"]) == (None, {})
    assert stored[mine[1].id]["at"] == AT


async def test_inserted_ids_come_back_in_the_order_of_the_rows(engine: AsyncEngine) -> None:
    rows = [event(100 + n, kind, None, {}) for n, kind in enumerate(["a", "b", "c", "d"])]
    # Every column's kind of value, NULLs among them, in batches of another size each (on
    # PostgreSQL one statement serves every size).
    rows += [{**event(200 + n, f"k{n % 7}", n if n % 3 else None,
                      {"n": n, "text": "雨天\n"} if n % 2 else {}),
              "at": AT + timedelta(seconds=n * 37)} for n in range(60)]
    async with engine.begin() as conn:
        first = await direct.insert_ids(conn, INSERT_IDS, rows[:1])
        ids = await direct.insert_ids(conn, INSERT_IDS, rows[1:4])
        more = await direct.insert_ids(conn, INSERT_IDS, rows[4:])
    async with engine.connect() as conn:
        stored = {r.id: {k: getattr(r, k) for k in KEYS}
                  for r in await conn.execute(select(EVENTS))}
    assert [stored[i] for i in first + ids + more] == rows

async def test_rows_that_share_a_value_and_rows_that_do_not_each_keep_theirs(
        engine: AsyncEngine) -> None:
    """A batch converts a value once for the rows that hold that very object; an equal or a
    different object in between is converted for its own row."""
    shared, later = {"n": 1}, AT + timedelta(seconds=1)
    given = [(AT, shared), (later, shared), (later, {"n": 2}), (AT, shared),
             (AT + timedelta(seconds=1), {"n": 1}), (AT, {})]
    async with engine.begin() as conn:
        await direct.run_many(conn, INSERT, [
            {**event(500 + n, "offered", None, data), "at": at}
            for n, (at, data) in enumerate(given)])
    async with engine.connect() as conn:
        stored = (await conn.execute(select(EVENTS.c.at, EVENTS.c.data)
                                     .where(EVENTS.c.contact_id >= 500)
                                     .order_by(EVENTS.c.contact_id))).all()
    assert [tuple(r) for r in stored] == given


async def test_direct_writes_roll_back_with_the_callers_transaction(engine: AsyncEngine) -> None:
    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            await direct.run_many(conn, INSERT, [event(9, "offered", 3, {})])
            raise RuntimeError("the batch fails after the write")
    async with engine.connect() as conn:
        assert await direct.rows(conn, READ, {"contacts": [9], "queue": 1}) == []


MARK = direct.HotUpdate(EVENTS, ["kind"], key="eid")


async def test_writes_together_store_each_part_as_alone(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        ids = await direct.insert_ids(conn, INSERT_IDS, [
            event(30, "offered", 3, {}), event(31, "offered", 4, {}), event(32, "a", 5, {})])
    later = AT + timedelta(minutes=5)
    with recorded(engine) as ran:
        await direct.write_all(engine, [
            (INSERT, [event(33, "entered", None, {"n": 1}), event(34, "entered", None, {})]),
            (MOVE, [{"eid": ids[0], "at": later, "agent_id": None, "data": {"x": "雨"}}]),
            (MARK, [{"eid": ids[1], "kind": "accepted"}, {"eid": ids[2], "kind": "b"}]),
            (MARK, []),  # an empty part is left out
        ])
    async with engine.connect() as conn:
        stored = {r.contact_id: (r.at, r.kind, r.agent_id, r.data)
                  for r in await conn.execute(select(EVENTS))}
    assert stored == {30: (later, "offered", None, {"x": "雨"}), 31: (AT, "accepted", 4, {}),
                      32: (AT, "b", 5, {}), 33: (AT, "entered", None, {"n": 1}),
                      34: (AT, "entered", None, {})}
    if engine.dialect.name == "postgresql":  # one round trip (SQLite's run in turn)
        assert len(ran) == 1 and ran[0].startswith("WITH w0 AS (INSERT")


async def test_writes_together_store_all_or_nothing(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        eid, other = await direct.insert_ids(conn, INSERT_IDS, [event(40, "offered", 3, {}),
                                                                event(39, "offered", 2, {})])
    # `kind` may not be NULL: the last part fails (on SQLite the driver's own error: the hot
    # path runs past SQLAlchemy's wrapping).
    with pytest.raises((IntegrityError, sqlite3.IntegrityError)):
        await direct.write_all(engine, [
            (INSERT, [event(41, "entered", None, {})]),
            (MOVE, [{"eid": eid, "at": AT, "agent_id": 9, "data": {}}]),
            (MARK, [{"eid": other, "kind": None}])])
    # Refused before anything runs: one id twice in an update, or in two updates of a table.
    with pytest.raises(ValueError, match="one row per id"):
        await direct.write_all(engine, [
            (INSERT, [event(42, "entered", None, {})]),
            (MARK, [{"eid": eid, "kind": "a"}, {"eid": eid, "kind": "b"}])])
    with pytest.raises(ValueError, match="one row per id"):
        await direct.write_all(engine, [
            (INSERT, [event(43, "entered", None, {})]),
            (MARK, [{"eid": eid, "kind": "a"}]),
            (MOVE, [{"eid": eid, "at": AT, "agent_id": 9, "data": {}}])])
    async with engine.connect() as conn:
        stored = [(r.contact_id, r.kind, r.agent_id) for r in await conn.execute(select(EVENTS))]
    assert sorted(stored) == [(39, "offered", 2), (40, "offered", 3)]


IDS_AND_DATA = direct.Hot(select(EVENTS.c.contact_id, EVENTS.c.data, EVENTS.c.at)
                          .where(one_of(EVENTS.c.kind, "kinds")).order_by(EVENTS.c.id.desc()))


async def test_reads_together_give_what_each_gives_alone(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await direct.run_many(conn, INSERT, [
            event(50, "offered", 3, {"n": "雨"}), event(50, "accepted", None, {}),
            event(51, "offered", 4, {"n": [1]}), event(52, "entered", None, {"x": None})])
    asks = [(READ, {"contacts": [50, 51], "queue": 1}),
            (IDS_AND_DATA, {"kinds": ["entered", "offered"]}),
            (READ, {"contacts": [52], "queue": 1}),  # a second time, and no rows
            (READ, {"contacts": [51], "queue": 1})]
    async with engine.connect() as conn:
        alone = [await direct.rows(conn, hot, params) for hot, params in asks]
    with recorded(engine) as ran:
        async with engine.connect() as conn:
            reads = direct.Reads(conn)
            found = [reads.add(hot, params) for hot, params in asks]
            await reads.run()
    assert found == alone
    assert [[tuple(r) for r in rows] for rows in found] == [
        [(r.id, AT, "offered", 3, {"n": "雨"}) for r in alone[0][:1]]
        + [(alone[0][1].id, AT, "accepted", None, {}), (alone[0][2].id, AT, "offered", 4,
                                                       {"n": [1]})],
        [(52, {"x": None}, AT), (51, {"n": [1]}, AT), (50, {"n": "雨"}, AT)], [],
        [tuple(alone[0][2])]]
    assert [r.data for r in found[1]] == [{"x": None}, {"n": [1]}, {"n": "雨"}]
    if engine.dialect.name == "postgresql":  # one round trip (SQLite's run in turn)
        assert [s[:13] for s in ran if not s.startswith(("BEGIN", "ROLLBACK"))] == [
            "SELECT ARRAY("]


# Three parts, the later ones naming rows of the earlier ones: contact_id and agent_id stand in
# for a foreign key here (events are what this test has to hand).
CHAIN = direct.Chain([(direct.HotInsert(EVENTS, KEYS), {}),
                      (direct.HotInsert(EVENTS, KEYS), {"contact_id": 0}),
                      (direct.HotInsert(EVENTS, KEYS), {"contact_id": 1, "agent_id": 0})])


async def test_a_chain_inserts_later_rows_with_the_ids_of_earlier_ones(
        engine: AsyncEngine) -> None:
    New = direct.New
    with recorded(engine) as ran:
        async with engine.begin() as conn:
            first, second, third = await CHAIN.insert(conn, [
                [event(60, "a0", None, {}), event(61, "a1", None, {"n": 1}),
                 event(62, "a2", 7, {})],
                [event(New(2), "b0", None, {}), event(77, "b1", None, {}),  # an id, given
                 event(New(0), "b2", 1, {"雨": True}), event(New(2), "b3", None, {})],
                [{**event(New(3), "c0", New(1), {}), "agent_id": New(1)},
                 event(New(0), "c1", 5, {})],
            ])
            # An empty part in between: the rows after it refer past it.
            again = await CHAIN.insert(conn, [[event(63, "d0", None, {})], [],
                                              [event(64, "e0", New(0), {})]])
    assert [len(first), len(second), len(third)] == [3, 4, 2]
    assert first == sorted(first) and second == sorted(second) and third == sorted(third)
    async with engine.connect() as conn:
        stored = {r.kind: (r.id, r.contact_id, r.agent_id, r.data)
                  for r in await conn.execute(select(EVENTS))}
    assert [stored[k][0] for k in ("a0", "a1", "a2")] == first
    assert [stored[k][0] for k in ("b0", "b1", "b2", "b3")] == second
    assert [stored[k][0] for k in ("c0", "c1")] == third
    assert {k: stored[k][1:] for k in stored if k[0] != "a" and k[0] != "d"} == {
        "b0": (first[2], None, {}), "b1": (77, None, {}), "b2": (first[0], 1, {"雨": True}),
        "b3": (first[2], None, {}),
        "c0": (second[3], first[1], {}), "c1": (second[0], 5, {}),
        "e0": (64, again[0][0], {})}
    if engine.dialect.name == "postgresql":  # a round trip per chain (SQLite's run in turn)
        assert [s[:11] for s in ran if not s.startswith(("BEGIN", "COMMIT"))] == [
            "WITH i0 AS "] * 2


async def test_a_chain_stores_all_or_nothing(engine: AsyncEngine) -> None:
    New = direct.New
    # `kind` may not be NULL: the last part fails, and the caller's transaction with it.
    with pytest.raises((IntegrityError, sqlite3.IntegrityError)):
        async with engine.begin() as conn:
            await CHAIN.insert(conn, [[event(70, "a", None, {})],
                                      [event(New(0), "b", None, {})],
                                      [event(New(0), None, None, {})]])  # type: ignore[arg-type]
    async with engine.connect() as conn:
        assert (await conn.execute(select(EVENTS))).all() == []
    with pytest.raises(ValueError, match="only to parts before it"):
        direct.Chain([(INSERT, {}), (INSERT, {"contact_id": 1})])


def test_statements_it_would_run_wrongly_are_refused() -> None:
    dialect = sqlite.dialect()
    # `data` has a Python-side default that SQLAlchemy would fill in and this path would not.
    without_data = direct.HotInsert(EVENTS, KEYS[:-1])
    with pytest.raises(ValueError, match="Python default"):
        without_data.compiled(dialect)
    # An expanding IN changes its SQL with every list; one_of keeps it one parameter.
    expanding = direct.Hot(select(EVENTS.c.id).where(EVENTS.c.kind.in_(["a", "b"])))
    with pytest.raises(ValueError, match="one_of"):
        expanding.compiled(dialect)


async def test_utc_times_round_trip_and_read_as_iso_text(engine: AsyncEngine) -> None:
    """Times in any zone are stored as UTC and come back aware; read through `iso_times` (as
    the screen-pop reads them; PostgreSQL formats the text itself) they are exactly
    `isoformat()` of that, a whole second included (isoformat leaves out its zero fraction)."""
    beijing = timezone(timedelta(hours=8))
    times = [AT, AT.replace(microsecond=0), datetime(2027, 1, 1, 7, 59, 59, 1, tzinfo=beijing)]
    async with engine.begin() as conn:
        await direct.run_many(conn, INSERT, [
            {**event(300 + n, "offered", None, {}), "at": at} for n, at in enumerate(times)])
    read = direct.Hot(select(EVENTS.c.at, *iso_times(EVENTS.c.at.label("iso")), EVENTS.c.kind)
                      .where(EVENTS.c.contact_id >= 300).order_by(EVENTS.c.contact_id))
    async with engine.connect() as conn:
        mine = await direct.rows(conn, read, {})
        theirs = (await conn.execute(read.stmt)).all()
    assert [tuple(r) for r in mine] == [tuple(r) for r in theirs]
    assert [r.at for r in mine] == times and all(r.at.tzinfo is not None for r in mine)
    assert [(r.iso, r.kind) for r in mine] == [
        (t.astimezone(UTC).isoformat(), "offered") for t in times]
    assert mine[1].iso == "2026-11-23T02:00:00+00:00"
    with pytest.raises(Exception, match="naive"):
        async with engine.begin() as conn:
            await direct.run_many(conn, INSERT, [{**event(400, "offered", None, {}),
                                                  "at": datetime(2026, 1, 1)}])


def test_times_written_in_turn_keep_their_own_instants() -> None:
    """The SQLite text of a time is cached by instant: the same instant again, in any zone,
    gives the same text, and the two 01:30s of a DST fall-back (equal in their own zone) give
    two texts an hour apart."""
    write = UTCDateTime().bind_processor(sqlite.dialect())
    new_york = ZoneInfo("America/New_York")
    first, second = (datetime(2026, 11, 1, 1, 30, fold=f, tzinfo=new_york) for f in (0, 1))
    assert first == second  # compared in their own zone, fold is ignored
    assert write(first) == "2026-11-01 05:30:00.000000"
    assert write(second) == "2026-11-01 06:30:00.000000"
    assert write(second.astimezone(timezone(timedelta(hours=8)))) == write(second)
    assert write(AT) == write(AT.astimezone(new_york)) == "2026-11-23 02:00:00.123456"


def test_times_stored_in_other_forms_read_back_as_utc() -> None:
    """SQLite keeps text: what CURRENT_TIMESTAMP writes, or a time written with an offset by
    something else, reads back as the same instant in UTC, and as its ISO text."""
    dialect = sqlite.dialect()
    as_time = UTCDateTime().result_processor(dialect, None)
    as_text = UTCIsoText().result_processor(dialect, None)
    cases = {
        "2026-11-23 02:00:00": datetime(2026, 11, 23, 2, tzinfo=UTC),
        "2026-11-23 02:00:00.000007": datetime(2026, 11, 23, 2, 0, 0, 7, tzinfo=UTC),
        "2026-11-23T10:00:00+08:00": datetime(2026, 11, 23, 2, tzinfo=UTC),
        "2026-11-23 02:00:00.5": datetime(2026, 11, 23, 2, 0, 0, 500000, tzinfo=UTC),
    }
    for stored, instant in cases.items():
        assert as_time(stored) == instant and as_time(stored).utcoffset() == timedelta(0)
        assert as_text(stored) == instant.isoformat(), stored
