"""`contactcenter import events FILE.csv`: customer events from another system's export
(purchases, installations, repairs, written complaints…), each stored and planned exactly as if
it came through POST /api/v1/events. A bad row is reported with its line and skipped; the good
rows are kept. Rows with an `external_id` are stored once: importing the file again adds
nothing.

Columns (header names, any order; docs/rules-jobs.md): `kind` (required), `customer_id` or
`phone` (one of them), `at` (ISO 8601; without an offset it is company time; empty = now),
`external_id`, `data` (a JSON object), and shortcuts into data: `amount`, `profit` (numbers),
`repair_id`, `complaint_id`, `order_id`, `promised_duration` (e.g. 4h).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.customers import find_by_phone
from contactcenter.errors import InvalidInput, NotFound
from contactcenter.events import record_event
from contactcenter.importer import ImportReport, cells_of, import_rows, store_each
from contactcenter.rules.config import Rules
from contactcenter.templates import Templates

NUMBER_COLUMNS = ("amount", "profit")
TEXT_COLUMNS = ("repair_id", "complaint_id", "order_id", "promised_duration")
COLUMNS = ("kind", "customer_id", "phone", "at", "external_id", "data", *NUMBER_COLUMNS,
           *TEXT_COLUMNS)


@dataclass(frozen=True)
class EventRow:
    customer_id: int
    kind: str
    at: datetime
    external_id: str | None
    data: dict[str, Any]


def _time(text: str, rules: Rules, now: datetime) -> datetime:
    if not text:
        return now
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date and time (ISO 8601, e.g. "
                           f"2026-11-23T10:00+08:00)", field="at") from None
    return at if at.tzinfo else at.replace(tzinfo=rules.calendar.hours().zone)


def _data(cells: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if cells.get("data"):
        try:
            data = json.loads(cells["data"])
        except ValueError:
            raise InvalidInput("not valid JSON", field="data") from None
        if not isinstance(data, dict):
            raise InvalidInput("must be a JSON object", field="data")
    for name in NUMBER_COLUMNS:
        if cells.get(name):
            try:
                data[name] = float(cells[name])
            except ValueError:
                raise InvalidInput(f"{cells[name]!r} is not a number",
                                   field=name) from None
    data.update({name: cells[name] for name in TEXT_COLUMNS if cells.get(name)})
    return data


async def _customer_id(session: AsyncSession, cells: dict[str, str]) -> int:
    if cells.get("customer_id"):
        try:
            return int(cells["customer_id"])
        except ValueError:
            raise InvalidInput(f"{cells['customer_id']!r} is not a number",
                               field="customer_id") from None
    if cells.get("phone"):
        customer = await find_by_phone(session, cells["phone"])
        if customer is None:
            raise NotFound(f"no customer has the number {cells['phone']}", field="phone")
        return customer.id
    raise InvalidInput("customer_id or phone is required")


async def import_events(
    sessionmaker: async_sessionmaker[AsyncSession], path: Path, rules: Rules, *,
    now: datetime, templates: Templates | None = None, actor_id: int | None = None,
    progress: bool = True, batch_size: int = 500,
) -> ImportReport:
    async def parse(session: AsyncSession, header: list[str], row: list[str]) -> EventRow:
        cells = cells_of(header, row)
        if not cells.get("kind"):
            raise InvalidInput("kind is required")
        return EventRow(await _customer_id(session, cells), cells["kind"],
                        _time(cells.get("at", ""), rules, now), cells.get("external_id") or None,
                        _data(cells))

    async def store(session: AsyncSession, batch: list[tuple[int, EventRow]],
                    report: ImportReport) -> None:
        async def record(e: EventRow) -> None:
            await record_event(session, rules, customer_id=e.customer_id, kind=e.kind, at=e.at,
                               now=now, external_id=e.external_id, data=e.data,
                               actor_id=actor_id, templates=templates)

        # One savepoint a row: each row's plans are its own, and a bad one leaves nothing.
        await store_each(session, batch, report, record)

    return await import_rows(sessionmaker, path, what="events", known=COLUMNS,
                             required=("kind",), parse=parse, store=store, progress=progress,
                             batch_size=batch_size)
