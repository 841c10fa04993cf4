"""CSV import of customers, against both database backends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contactcenter.customers import (
    CustomerIn,
    audit_trail,
    create_customer,
    customer_card,
    find_by_phone,
    search_customers,
)
from contactcenter.errors import InvalidInput
from contactcenter.importer import ImportReport, RowError, format_report, import_customers
from contactcenter.storage.db import sessionmaker
from contactcenter.storage.models import (
    AuditEntry,
    Customer,
    CustomerEmail,
    CustomerOwner,
    CustomerPhone,
    CustomerTag,
    TierChange,
)
from contactcenter.users import create_user
from tests.conftest import NOW

Sessions = async_sessionmaker[AsyncSession]

# Line numbers matter: the assertions below name them. Line 3's notes cell spans two lines.
CSV_LINES = [
    "name,phones,emails,birthday,tier,tags,owners,language,timezone,notes,kind,employee_count",
    "王芳,138 0013 8000;010 6552 9988,Wang.Fang@Example.cn,1985-03-08,A,vip;wholesale,"
    "agent1；agent2,zh-CN,Asia/Shanghai,老客户,,",
    'Alice Smith,+1 415 555 0100,alice@example.com,,c,,agent1,en,America/Los_Angeles,"two',
    'line note",,',
    "Bad Phone,12ab,bad@example.com,,,,agent1,,,,,",
    "Dup Phone,13700137000;+86 138-0013-8000,dup@example.com,,,x,agent1,,,,,",
    "Bad Date,13900139000,bd@example.com,1990-02-30,,,agent1,,,,,",
    "Unknown Owner,13600136000,uo@example.com,,,,agent1;nobody,,,,,",
    "",
    "华信贸易有限公司,021 6888 8888,,,B,,agent2,,,,organisation,120",
    "Dup Email,13500135000,WANG.FANG@example.cn,,,,,,,,,",
]
CSV_TEXT = "\n".join(CSV_LINES) + "\n"


@pytest.fixture
def sm(engine: AsyncEngine) -> Sessions:
    return sessionmaker(engine)


async def _users(sm: Sessions) -> dict[str, int]:
    ids = {}
    async with sm() as s:
        for name in ("agent1", "agent2"):
            user = await create_user(s, username=name, password="secret-pw", role="agent", now=NOW)
            ids[name] = user.id
        await s.commit()
    return ids


async def _count(sm: Sessions, model: type) -> int:
    async with sm() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_import_keeps_good_rows_and_reports_bad_ones(sm: Sessions, tmp_path: Path) -> None:
    users = await _users(sm)
    path = tmp_path / "customers.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CSV_TEXT.encode())  # with a BOM, as Excel writes it

    report = await import_customers(sm, path, now=NOW, actor_id=users["agent1"], progress=False)

    assert (report.total, report.imported) == (8, 3)
    assert [e.line for e in report.errors] == [5, 6, 7, 8, 11]
    messages = {e.line: e.message for e in report.errors}
    assert messages[5] == "phones: '12ab' is not a phone number"
    assert messages[6] == "phones: phone +8613800138000 is already on line 2"
    assert messages[7].startswith("birthday: ")
    assert messages[8] == "owners: unknown user(s) 'nobody'"
    assert messages[11] == "emails: email wang.fang@example.cn is already on line 2"

    async with sm() as s:
        wang = await find_by_phone(s, "13800138000")
        assert wang is not None
        card = customer_card(wang)
        assert card["name"] == "王芳"  # the BOM did not end up in the first column's name
        assert [p["number"] for p in card["phones"]] == ["+8613800138000", "+861065529988"]
        assert card["emails"] == ["wang.fang@example.cn"]
        assert card["birthday"] == "1985-03-08"
        assert card["tier"] == "A" and card["tags"] == ["vip", "wholesale"]
        assert card["owners"] == [users["agent1"], users["agent2"]]
        assert card["source"] == "import" and card["notes"] == "老客户"

        alice = await find_by_phone(s, "+14155550100")
        assert alice is not None
        assert (alice.tier, alice.language, alice.timezone) == ("C", "en", "America/Los_Angeles")
        assert alice.notes == "two\nline note"

        [org] = await search_customers(s, "华信")
        assert (org.kind, org.employee_count, org.tier) == ("organisation", 120, "B")

        trail = await audit_trail(s, wang.id)
        assert [(t["action"], t["actor"]) for t in trail] == [("create", "agent1")]
        assert trail[0]["after"] == card  # the audit keeps the card exactly as the API shows it

    # Rejected rows left nothing behind: no customer, phone, email, owner or tag of theirs.
    assert await _count(sm, Customer) == 3
    assert await _count(sm, CustomerPhone) == 4
    assert await _count(sm, CustomerEmail) == 2
    assert await _count(sm, CustomerOwner) == 4
    assert await _count(sm, CustomerTag) == 2
    assert await _count(sm, AuditEntry) == 3
    assert await _count(sm, TierChange) == 3
    async with sm() as s:
        assert await find_by_phone(s, "13700137000") is None  # the duplicate row's other phone
        assert await find_by_phone(s, "13600136000") is None

    text = format_report(report)
    assert text.splitlines()[0] == "Imported 3 of 8 rows; 5 errors:"
    assert "line 5: phones: '12ab' is not a phone number" in text.splitlines()


async def test_unknown_column_imports_nothing(sm: Sessions, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("name,phones,fax,Mobile\n王芳,13800138000,123,\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as exc:
        await import_customers(sm, path, now=NOW, progress=False)
    assert "unknown column(s): 'fax', 'mobile'" in exc.value.message
    assert await _count(sm, Customer) == 0


async def test_bad_files(sm: Sessions, tmp_path: Path) -> None:
    cases = {
        "empty.csv": (b"", "empty"),
        "noname.csv": (b"phones\n13800138000\n", "'name' is missing"),
        "twice.csv": (b"name,Name\nx,y\n", "appear twice"),
        "gbk.csv": ("name\n王芳\n".encode("gbk"), "not UTF-8"),
    }
    for filename, (content, expected) in cases.items():
        path = tmp_path / filename
        path.write_bytes(content)
        with pytest.raises(InvalidInput) as exc:
            await import_customers(sm, path, now=NOW, progress=False)
        assert expected in exc.value.message
    assert await _count(sm, Customer) == 0


async def test_batches_and_progress(
    sm: Sessions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "many.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("name,phones,tags\n")
        for i in range(250):
            phone = "1380000" + f"{i:04d}" if i != 123 else "not-a-phone"
            f.write(f"客户{i},{phone},t{i % 3}\n")
    report = await import_customers(sm, path, now=NOW, progress=True, batch_size=40)
    assert (report.total, report.imported) == (250, 249)
    assert report.errors == [
        RowError(line=125, message="phones: 'not-a-phone' is not a phone number")
    ]
    assert "250/250" in capsys.readouterr().err
    assert await _count(sm, Customer) == 249

    # Importing the same file again conflicts on every phone and adds nothing.
    again = await import_customers(sm, path, now=NOW, progress=False, batch_size=40)
    assert (again.total, again.imported, len(again.errors)) == (250, 0, 250)
    assert capsys.readouterr().err == ""
    assert await _count(sm, Customer) == 249


async def test_import_loses_a_race_for_a_phone(sm: Sessions, tmp_path: Path) -> None:
    path = tmp_path / "race.csv"
    path.write_text("name,phones\na,13800138000\nb,13900139000\nc,13700137000\n", encoding="utf-8")
    async with sm() as rival_session:
        rival = await create_customer(
            rival_session, CustomerIn(name="rival", phones=["13900139000"]), actor_id=None, now=NOW
        )
        # The importer checks the batch while the rival's insert is not yet visible, so its own
        # insert collides once the rival commits, and it must redo the batch row by row.
        importing = asyncio.create_task(import_customers(sm, path, now=NOW, progress=False))
        await asyncio.sleep(1)
        await rival_session.commit()
    report = await asyncio.wait_for(importing, 30)
    assert (report.total, report.imported) == (3, 2)
    assert report.errors == [
        RowError(3, f"phones: phone +8613900139000 already belongs to customer {rival.id}")
    ]
    async with sm() as s:
        assert {c.name for c in await search_customers(s, "")} == {"a", "c", "rival"}
    assert await _count(sm, CustomerPhone) == 3


def test_format_report() -> None:
    assert format_report(ImportReport(total=2, imported=2)) == "Imported 2 of 2 rows."
    one = ImportReport(total=2, imported=1, errors=[RowError(3, "name: Field required")])
    assert format_report(one) == "Imported 1 of 2 rows; 1 error:\nline 3: name: Field required"
    many = ImportReport(total=5, imported=0, errors=[RowError(n, "x") for n in range(2, 7)])
    assert format_report(many, max_errors=2).splitlines()[-1] == "... and 3 more"
