"""`contactcenter import customers FILE.csv`: bulk-load customer cards from a spreadsheet export.

A bad row (invalid value, phone or email already taken, unknown owner) is reported with its line
number and skipped; the good rows are kept, and a rejected row leaves nothing behind. Rows are
streamed and committed in batches, so a million-row file needs neither a million-row transaction
nor the file in memory.

Writing each row in its own savepoint costs a dozen round trips per row (about 20 ms, or five
hours for a million rows), so a batch is first checked as a whole (one query for all its phones,
one for all its emails) and inserted in a single savepoint. Only if that insert still fails (a
concurrent writer took a phone in between) is the batch redone row by row, each row in its own
savepoint.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tqdm import tqdm

from contactcenter.customers import (
    CustomerIn,
    bulk_create_customers,
    create_customer,
    email_conflict,
    parse_input,
    phone_conflict,
    taken_emails,
    taken_phones,
)
from contactcenter.errors import ContactCenterError, InvalidInput
from contactcenter.storage.models import User

BATCH_SIZE = 500
T = TypeVar("T")

# Columns copied to the card as they are (empty cell = not set).
SCALAR_COLUMNS: tuple[str, ...] = (
    "name",
    "kind",
    "honorific",
    "birthday",
    "tier",
    "language",
    "timezone",
    "employer",
    "position",
    "address",
    "occupation",
    "hobbies",
    "wechat_id",
    "qq_id",
    "preferred_channel",
    "contact_frequency",
    "notes",
    "legal_representative",
    "general_manager",
    "main_business",
    "employee_count",
)
# Columns holding several values separated by ";".
LIST_COLUMNS: tuple[str, ...] = ("phones", "emails", "tags", "owners")


@dataclass(frozen=True)
class RowError:
    line: int
    message: str


@dataclass
class ImportReport:
    total: int = 0
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)


def _split(cell: str) -> list[str]:
    # Chinese keyboards type the full-width semicolon as readily as the ASCII one.
    return [part.strip() for part in cell.replace("；", ";").split(";") if part.strip()]


def read_header(
    reader: Iterator[list[str]], path: Path, known: Sequence[str], required: Sequence[str]
) -> list[str]:
    """The header row, lower-cased; unknown, repeated or missing required columns are refused
    before anything is written."""
    try:
        raw = next(reader)
    except StopIteration:
        raise InvalidInput(f"{path}: the file is empty; it needs a header row") from None
    header = [h.strip().lower() for h in raw]
    unknown = [h for h in header if h not in known]
    if unknown:
        raise InvalidInput(
            f"{path}: unknown column(s): {', '.join(repr(h) for h in unknown)}; "
            f"known columns: {', '.join(known)}",
            columns=unknown,
        )
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise InvalidInput(f"{path}: column(s) appear twice: {', '.join(duplicated)}")
    for column in required:
        if column not in header:
            raise InvalidInput(f"{path}: the required column {column!r} is missing")
    return header


def cells_of(header: list[str], row: list[str]) -> dict[str, str]:
    """A row as {column: stripped cell}; a row longer than the header is an error."""
    if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
        raise InvalidInput(f"the row has {len(row)} fields but the header has {len(header)}")
    return {col: cell.strip() for col, cell in zip(header, row, strict=False)}


def _count_rows(path: Path) -> int:
    """Data lines, for the progress bar; reading the file once also proves it is UTF-8."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            return max(0, sum(1 for _ in f) - 1)
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


class _Owners:
    """Usernames to user ids, asked of the database once per name."""

    def __init__(self) -> None:
        self._ids: dict[str, int | None] = {}

    async def ids(self, session: AsyncSession, usernames: list[str]) -> list[int]:
        missing = [u for u in usernames if u not in self._ids]
        if missing:
            rows = await session.execute(
                select(User.username, User.id).where(User.username.in_(missing))
            )
            found: dict[str, int] = {name: uid for name, uid in rows}
            for name in missing:
                self._ids[name] = found.get(name)
        unknown = [u for u in usernames if self._ids[u] is None]
        if unknown:
            raise InvalidInput(f"owners: unknown user(s) {', '.join(repr(u) for u in unknown)}")
        return [i for u in usernames if (i := self._ids[u]) is not None]


async def _row_input(
    session: AsyncSession, header: list[str], row: list[str], owners: _Owners
) -> CustomerIn:
    cells = cells_of(header, row)
    data: dict[str, Any] = {col: value for col in SCALAR_COLUMNS if (value := cells.get(col))}
    for col in ("phones", "emails", "tags"):
        data[col] = _split(cells.get(col, ""))
    customer = parse_input(CustomerIn, data)
    customer.owner_ids = await owners.ids(session, _split(cells.get("owners", "")))
    return customer


def row_message(exc: ContactCenterError) -> str:
    where = exc.details.get("field")
    return f"{where}: {exc.message}" if isinstance(where, str) else exc.message


_Batch = list[tuple[int, CustomerIn]]


class _Taken:
    """Phones and emails in use: by a customer in the database, or by an earlier row here."""

    def __init__(self, phones: dict[str, int], emails: dict[str, int]) -> None:
        self.phones, self.emails = phones, emails
        self.phone_lines: dict[str, int] = {}
        self.email_lines: dict[str, int] = {}

    def conflict(self, data: CustomerIn) -> str | None:
        for number in (p.number for p in data.phones):
            if number in self.phones:
                return row_message(phone_conflict(number, self.phones[number]))
            if number in self.phone_lines:
                return f"phones: phone {number} is already on line {self.phone_lines[number]}"
        for address in data.emails:
            if address in self.emails:
                return row_message(email_conflict(address, self.emails[address]))
            if address in self.email_lines:
                return f"emails: email {address} is already on line {self.email_lines[address]}"
        return None

    def take(self, line: int, data: CustomerIn) -> None:
        self.phone_lines.update((p.number, line) for p in data.phones)
        self.email_lines.update((e, line) for e in data.emails)


async def _checked(session: AsyncSession, batch: _Batch, report: ImportReport) -> _Batch:
    """The rows of `batch` whose phones and emails are free, in the database and in the file."""
    taken = _Taken(
        await taken_phones(session, (p.number for _, d in batch for p in d.phones)),
        await taken_emails(session, (e for _, d in batch for e in d.emails)),
    )
    ok = []
    for line, data in batch:
        problem = taken.conflict(data)
        if problem is not None:
            report.errors.append(RowError(line, problem))
            continue
        taken.take(line, data)
        ok.append((line, data))
    return ok


async def _insert_batch(
    session: AsyncSession,
    batch: _Batch,
    report: ImportReport,
    *,
    actor_id: int | None,
    now: datetime,
) -> None:
    rows = await _checked(session, batch, report)
    try:
        async with session.begin_nested():
            await bulk_create_customers(
                session, [data for _, data in rows], actor_id=actor_id, now=now, source="import"
            )
        report.imported += len(rows)
        return
    except (IntegrityError, DataError):
        pass
    # Something changed under us or a value slipped past validation: find the row(s) at fault.
    async def create(data: CustomerIn) -> None:
        await create_customer(session, data, actor_id=actor_id, now=now, source="import")

    await store_each(session, rows, report, create)


async def store_each(session: AsyncSession, rows: list[tuple[int, T]], report: ImportReport,
                     write: Callable[[T], Awaitable[object]]) -> None:
    """Write row by row, each in its own savepoint: a row refused (by our checks or by the
    database) is reported with its line and leaves nothing behind; the others are kept."""
    for line, data in rows:
        try:
            async with session.begin_nested():
                await write(data)
        except ContactCenterError as exc:
            report.errors.append(RowError(line, row_message(exc)))
            continue
        except DataError as exc:
            report.errors.append(RowError(line, f"rejected by the database: {exc.orig}"))
            continue
        report.imported += 1


Parse = Callable[[AsyncSession, list[str], list[str]], Awaitable[T]]
Store = Callable[[AsyncSession, list[tuple[int, T]], ImportReport], Awaitable[None]]


async def import_rows(
    sessionmaker: async_sessionmaker[AsyncSession],
    path: Path,
    *,
    what: str,
    known: Sequence[str],
    required: Sequence[str],
    parse: Parse[T],
    store: Store[T],
    progress: bool = True,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Stream a UTF-8 CSV (BOM optional): `parse` turns a row into an input (raising
    ContactCenterError for a bad one: reported with its line, skipped), `store` writes a batch
    of (line, input) and reports the rows it refuses. Each batch is committed before the next
    is read; a progress bar on stderr counts rows."""
    expected = _count_rows(path)
    report = ImportReport()
    with (
        path.open(encoding="utf-8-sig", newline="") as f,
        tqdm(total=expected, unit="row", desc=what, file=sys.stderr, disable=not progress) as bar,
    ):
        reader = csv.reader(f)
        header = read_header(reader, path, known, required)
        async with sessionmaker() as session:

            async def flush_batch(batch: list[tuple[int, T]]) -> None:
                if not batch:
                    return
                await store(session, batch, report)
                await session.commit()
                # Committed rows are no longer needed in memory.
                session.expunge_all()
                bar.update(len(batch))

            batch: list[tuple[int, T]] = []
            next_line = reader.line_num + 1
            for row in reader:
                # A quoted cell may span lines; errors point at the line where the row starts.
                line, next_line = next_line, reader.line_num + 1
                if not any(cell.strip() for cell in row):
                    bar.update(1)
                    continue
                report.total += 1
                try:
                    batch.append((line, await parse(session, header, row)))
                except ContactCenterError as exc:
                    report.errors.append(RowError(line, row_message(exc)))
                    bar.update(1)
                if len(batch) >= batch_size:
                    await flush_batch(batch)
                    batch = []
            await flush_batch(batch)
    report.errors.sort(key=lambda e: e.line)
    return report


async def import_customers(
    sessionmaker: async_sessionmaker[AsyncSession],
    path: Path,
    *,
    now: datetime,
    actor_id: int | None = None,
    progress: bool = True,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Import a UTF-8 CSV (BOM optional) of customers; see docs/customers.md for the columns.

    A bad header raises `InvalidInput` before anything is written; a bad row is reported in the
    returned `ImportReport` (errors in line order) and skipped. Each batch of `batch_size` rows
    is committed before the next is read.
    """
    owners = _Owners()

    async def parse(session: AsyncSession, header: list[str], row: list[str]) -> CustomerIn:
        return await _row_input(session, header, row, owners)

    async def store(session: AsyncSession, batch: _Batch, report: ImportReport) -> None:
        await _insert_batch(session, batch, report, actor_id=actor_id, now=now)

    return await import_rows(sessionmaker, path, what="customers",
                             known=SCALAR_COLUMNS + LIST_COLUMNS, required=("name",),
                             parse=parse, store=store, progress=progress, batch_size=batch_size)


def format_report(report: ImportReport, *, max_errors: int = 100) -> str:
    """The CLI's summary: a count line, then one line per bad row."""
    n = len(report.errors)
    if not n:
        return f"Imported {report.imported} of {report.total} rows."
    lines = [f"Imported {report.imported} of {report.total} rows; {n} error{'s' if n > 1 else ''}:"]
    lines += [f"line {e.line}: {e.message}" for e in report.errors[:max_errors]]
    if n > max_errors:
        lines.append(f"... and {n - max_errors} more")
    return "\n".join(lines)
