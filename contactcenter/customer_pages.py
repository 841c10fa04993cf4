"""Every customer, a page at a time, for the periodic jobs (grading, health, selection).

Keyset pagination by id (no OFFSET, no cursor held open): memory stays at one page whatever the
number of customers, and each page is read and written in its own short transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.storage.models import Customer, CustomerEvent

LOST = "customer-lost"


@dataclass(frozen=True)
class Row:
    id: int
    tier: str | None  # computed
    tier_override: str | None
    language: str
    created_at: datetime

    @property
    def effective_tier(self) -> str | None:
        return self.tier_override or self.tier


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    lost: frozenset[int]  # marked lost and not bought since: not an active customer

    @property
    def low(self) -> int:
        return self.rows[0].id

    @property
    def high(self) -> int:
        return self.rows[-1].id

    @property
    def active(self) -> list[Row]:
        return [r for r in self.rows if r.id not in self.lost]


async def lost_between(session: AsyncSession, low: int, high: int) -> frozenset[int]:
    """Customers whose latest `customer-lost` event is later than their latest purchase."""
    lost_at = func.max(case((CustomerEvent.kind == LOST, CustomerEvent.at)))
    bought_at = func.max(case((CustomerEvent.kind == "purchase", CustomerEvent.at)))
    ids = await session.scalars(
        select(CustomerEvent.customer_id)
        .where(CustomerEvent.customer_id.between(low, high),
               CustomerEvent.kind.in_([LOST, "purchase"]))
        .group_by(CustomerEvent.customer_id)
        .having(lost_at.is_not(None), (bought_at.is_(None)) | (lost_at > bought_at)))
    return frozenset(ids.all())


async def pages(sessions: async_sessionmaker[AsyncSession], batch: int
                ) -> AsyncIterator[tuple[AsyncSession, Page]]:
    """(session, page) for every page of customers in id order; the session's transaction
    commits when the caller asks for the next page."""
    after = 0
    while True:
        async with sessions.begin() as session:
            rows = [Row(*r) for r in (await session.execute(
                select(Customer.id, Customer.tier, Customer.tier_override, Customer.language,
                       Customer.created_at)
                .where(Customer.id > after).order_by(Customer.id).limit(batch))).all()]
            if not rows:
                return
            page = Page(rows, await lost_between(session, rows[0].id, rows[-1].id))
            yield session, page
        after = rows[-1].id
