"""`contactcenter grade`, `import events` and `user deactivate`, run as a user runs them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from test_cli import cli

from contactcenter.storage.db import make_engine, sessionmaker
from contactcenter.storage.models import Customer, CustomerEvent, CustomerOwner, ScheduledWork, User
from contactcenter.users import create_user

# The CLI runs on the system clock: the data is dated relative to it (grading looks back 12
# months from "now"), and nothing asserts the wall-clock time itself.
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(days=5)
SH = ZoneInfo("Asia/Shanghai")


async def _setup(db_url: str) -> None:
    engine = make_engine(db_url)
    async with sessionmaker(engine).begin() as session:
        for i in range(1, 5):
            session.add(Customer(id=i, name=f"c{i}", created_at=NOW, updated_at=NOW))
        await session.flush()
        session.add(CustomerEvent(customer_id=4, kind="purchase", at=NOW, created_at=NOW,
                                  data={"amount": 5}))
    await engine.dispose()


async def test_import_events_then_grade(db_url: str, tmp_path: Path) -> None:
    await _setup(db_url)
    f = tmp_path / "events.csv"
    local = NOW.astimezone(SH).replace(tzinfo=None)  # company time, written without offset
    f.write_text(
        "customer_id,phone,kind,at,external_id,amount,profit,repair_id\n"
        f"1,,purchase,{local.isoformat()},p-1,1000,100,\n"
        f"2,,purchase,{NOW.isoformat()},p-2,500,50,\n"
        "3,,purchase,,p-3,abc,1,\n"  # line 4: amount not a number
        "9,,purchase,,p-9,1,1,\n"  # line 5: no customer 9
        ",,purchase,,,1,1,\n"  # line 6: nobody named
        f"2,,repair-dispatched,{NOW.isoformat()},r-1,,,R1\n"
        "2,,bought,,,,,\n"  # line 8: unknown kind
        "3,,purchase,yesterday,,,,\n",  # line 9: bad time
        encoding="utf-8")
    done = cli(db_url, "import", "events", str(f))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0] == "Imported 3 of 8 rows; 5 errors:"
    assert lines[1].startswith("line 4: amount:") and "not a number" in lines[1]
    assert lines[2].startswith("line 5:") and "9" in lines[2]
    assert lines[3].startswith("line 6: customer_id or phone")
    assert lines[4].startswith("line 8: kind must be one of")
    assert lines[5].startswith("line 9: at:")
    assert "events" in done.stderr  # the progress bar
    again = cli(db_url, "import", "events", str(f), "--no-progress")
    assert again.stdout.startswith("Imported 3 of 8 rows")  # the same rows, stored once
    engine = make_engine(db_url)
    async with sessionmaker(engine)() as session:
        events = (await session.scalars(select(CustomerEvent).order_by(CustomerEvent.id))).all()
        keys = set((await session.scalars(select(ScheduledWork.key))).all())
    assert [(e.customer_id, e.kind) for e in events] == [
        (4, "purchase"), (1, "purchase"), (2, "purchase"), (2, "repair-dispatched")]
    assert events[1].at == NOW  # read as company time
    assert events[1].data == {"amount": 1000.0, "profit": 100.0}
    assert events[3].data == {"repair_id": "R1"}
    assert any(k.startswith("C8:2:") for k in keys)  # the event planned its callback

    graded = cli(db_url, "grade")
    assert graded.returncode == 0, graded.stderr
    assert graded.stdout.startswith("Regrade (weighted): graded 3 active customers (A: 1, B: 0, "
                                    "C: 1, D: 1)")
    assert "3 graded for the first time" in graded.stdout
    assert "reading" in graded.stderr
    async with sessionmaker(engine)() as session:
        tiers = dict((await session.execute(select(Customer.id, Customer.tier))).all())
    await engine.dispose()
    assert tiers == {1: "A", 2: "C", 3: None, 4: "D"}


async def test_user_deactivate(db_url: str) -> None:
    await _setup(db_url)
    engine = make_engine(db_url)
    async with sessionmaker(engine).begin() as session:
        leaving = await create_user(session, username="leaving", password="password-1",
                                    role="agent", team="t", now=NOW)
        stays = await create_user(session, username="stays", password="password-2",
                                  role="agent", team="t", now=NOW)
        session.add(CustomerOwner(customer_id=1, user_id=leaving.id, since=NOW))
        ids = leaving.id, stays.id
    done = cli(db_url, "user", "deactivate", "--username", "leaving")
    assert done.returncode == 0, done.stderr
    assert "1 customers reassigned" in done.stdout
    async with sessionmaker(engine)() as session:
        owners = (await session.scalars(select(CustomerOwner.user_id))).all()
        active = await session.scalar(select(User.active).where(User.id == ids[0]))
    await engine.dispose()
    assert owners == [ids[1]] and active is False
    nobody = cli(db_url, "user", "deactivate", "--username", "ghost")
    assert nobody.returncode == 2 and "ghost" in nobody.stderr
