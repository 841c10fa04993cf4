"""The supervisor board's tier views: how many customers sit in each tier now (the effective
tier: a supervisor's override, else the graded one), and how tiers moved month by month from
the tier history. Each is one grouped query whatever the number of customers."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.rules.config import TIERS
from contactcenter.storage.models import Customer, TierChange

UNGRADED = "none"  # the distribution's key for customers without any tier yet


def month_starts(today: date, months: int) -> list[date]:
    """The first days of the last `months` months, oldest first, ending with today's month."""
    year, month = today.year, today.month
    starts = []
    for _ in range(months):
        starts.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


async def tier_distribution(session: AsyncSession) -> dict[str, int]:
    """{tier: customers} for every tier, plus `none` for the ungraded."""
    tier = func.coalesce(Customer.tier_override, Customer.tier)
    counts = dict((await session.execute(
        select(tier, func.count()).group_by(tier))).all())
    out = {t: counts.get(t, 0) for t in TIERS}
    out[UNGRADED] = counts.get(None, 0)
    return out


def _direction(tier_from: str | None, tier_to: str | None) -> str:
    if tier_from is None:
        return "first"
    if tier_to is None:
        return "cleared"
    # A is the best tier: moving towards it is up.
    return "up" if TIERS.index(tier_to) < TIERS.index(tier_from) else "down"


async def tier_movements(session: AsyncSession, starts: list[date], zone: ZoneInfo
                         ) -> list[dict[str, Any]]:
    """Per month (company time zone) of `starts`: changes of tier up, down, first graded and
    cleared, and each from → to pair with its count. One query: the month is a CASE bucket."""
    bounds = [(s, datetime.combine(s, time(), zone), datetime.combine(_next_month(s), time(),
                                                                       zone)) for s in starts]
    month = case(*((and_(TierChange.at >= lo, TierChange.at < hi), literal(s.isoformat()[:7]))
                   for s, lo, hi in bounds), else_=literal(None, String))
    rows = (await session.execute(
        select(month, TierChange.tier_from, TierChange.tier_to, func.count())
        .where(TierChange.at >= bounds[0][1], TierChange.at < bounds[-1][2],
               func.coalesce(TierChange.tier_from, "") != func.coalesce(TierChange.tier_to, ""))
        .group_by(month, TierChange.tier_from, TierChange.tier_to))).all()
    out = {s.isoformat()[:7]: {"month": s.isoformat()[:7], "up": 0, "down": 0, "first": 0,
                               "cleared": 0, "moves": []} for s in starts}
    for key, tier_from, tier_to, n in rows:
        entry = out[key]
        entry[_direction(tier_from, tier_to)] += n
        entry["moves"].append({"from": tier_from, "to": tier_to, "count": n})
    for entry in out.values():
        entry["moves"].sort(key=lambda m: (m["from"] or "", m["to"] or ""))
    return list(out.values())
