"""Business hours: weekly ranges in a time zone, closed on public holidays and open on
make-up working days (调休), from the maintained `holidays` calendar, never a typed table.

Stored per queue as JSON:
    {"timezone": "Asia/Shanghai", "holidays": "CN",
     "weekly": {"mon": [["09:00", "12:00"], ["13:00", "18:00"]], ..., "fri": [...]}}
An empty object means always open. A make-up working day on a weekend keeps Monday's hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from contactcenter.errors import InvalidInput

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Range = tuple[time, time]


@lru_cache(maxsize=64)
def _calendar(country: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, years=year)


@dataclass(frozen=True)
class BusinessHours:
    zone: ZoneInfo
    weekly: tuple[tuple[Range, ...], ...]  # index 0 = Monday
    country: str | None = "CN"

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None) -> BusinessHours | None:
        """None when `data` is empty (always open); InvalidInput naming the bad field."""
        if not data:
            return None
        try:
            zone = ZoneInfo(str(data.get("timezone", "Asia/Shanghai")))
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(
                f"business_hours.timezone: unknown {data.get('timezone')!r}"
            ) from None
        country = data.get("holidays", "CN")
        if country is not None:
            try:
                _calendar(str(country), 2026)
            except NotImplementedError:
                raise InvalidInput(
                    f"business_hours.holidays: no calendar for {country!r}"
                ) from None
        weekly_raw = data.get("weekly", {})
        unknown = set(weekly_raw) - set(DAYS)
        if unknown:
            raise InvalidInput(f"business_hours.weekly: unknown day {sorted(unknown)[0]!r}")
        weekly = []
        for day in DAYS:
            ranges = []
            for i, pair in enumerate(weekly_raw.get(day, [])):
                where = f"business_hours.weekly.{day}[{i}]"
                try:
                    start, end = (time.fromisoformat(v) for v in pair)
                except (TypeError, ValueError):
                    raise InvalidInput(f"{where}: expected [\"HH:MM\", \"HH:MM\"]") from None
                if not start < end:
                    raise InvalidInput(f"{where}: {pair[0]} is not before {pair[1]}")
                ranges.append((start, end))
            weekly.append(tuple(sorted(ranges)))
        return cls(zone, tuple(weekly), None if country is None else str(country))

    def ranges_on(self, day: date) -> tuple[Range, ...]:
        if self.country is not None:
            calendar = _calendar(self.country, day.year)
            if day in calendar:
                return ()
            if day.weekday() >= 5 and calendar.is_working_day(day):
                return self.weekly[0]  # 调休: a make-up working Saturday or Sunday
        return self.weekly[day.weekday()]

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        now = local.time()
        return any(start <= now < end for start, end in self.ranges_on(local.date()))

    def next_open(self, at: datetime, *, horizon_days: int = 400) -> datetime | None:
        """`at` itself when open, else the start of the next open range."""
        local = at.astimezone(self.zone)
        for offset in range(horizon_days):
            day = local.date() + timedelta(days=offset)
            for start, end in self.ranges_on(day):
                begin = datetime.combine(day, start, self.zone)
                finish = datetime.combine(day, end, self.zone)
                if local < finish:
                    return max(begin, local)
        return None


    def _open_ranges(self, start: date, days: int) -> list[tuple[datetime, datetime]]:
        out = []
        for offset in range(days):
            day = start + timedelta(days=offset)
            out += [(datetime.combine(day, a, self.zone), datetime.combine(day, b, self.zone))
                    for a, b in self.ranges_on(day)]
        return out

    def add_working_time(self, at: datetime, duration: timedelta) -> datetime:
        """The moment `duration` of business time after `at` ("within 2 working hours")."""
        left = duration
        local = at.astimezone(self.zone)
        for begin, end in self._open_ranges(local.date(), 400):
            if end <= local:
                continue
            begin = max(begin, local)
            if end - begin >= left:
                return begin + left
            left -= end - begin
        raise ValueError("no business time within 400 days")

    def clip(self, earliest: datetime, latest: datetime) -> tuple[datetime, datetime]:
        """A due window narrowed to business time (spec §9).

        Due at the first business moment in [earliest, latest], latest at the last one. A window
        with no business time at all (3–5 days after a repair finished just before the National
        Day week) moves to the first business day after it: due at its start, latest at its end.
        """
        local_from = earliest.astimezone(self.zone)
        days = (latest.date() - local_from.date()).days + 2
        inside = [(max(b, earliest), min(e, latest))
                  for b, e in self._open_ranges(local_from.date(), days)
                  if b < latest and e > earliest]
        if inside:
            return inside[0][0], inside[-1][1]
        due = self.next_open(latest)
        if due is None:
            raise ValueError("no business time within 400 days")
        day_ranges = self.ranges_on(due.date())
        return due, datetime.combine(due.date(), day_ranges[-1][1], self.zone)


def is_open(business_hours: Mapping[str, Any] | None, at: datetime) -> bool:
    hours = BusinessHours.parse(business_hours)
    return hours is None or hours.is_open(at)
