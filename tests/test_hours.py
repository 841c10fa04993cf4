"""Business hours against China's calendar: holidays closed, make-up working days open."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from contactcenter.errors import InvalidInput
from contactcenter.hours import BusinessHours, is_open

SH = ZoneInfo("Asia/Shanghai")
WEEKDAYS = {d: [["09:00", "12:00"], ["13:00", "18:00"]] for d in ("mon", "tue", "wed", "thu",
                                                                   "fri")}
HOURS = {"timezone": "Asia/Shanghai", "weekly": WEEKDAYS}


@pytest.mark.parametrize(
    ("local", "open_"),
    [
        pytest.param("2026-11-23 10:00", True, id="monday-morning"),
        pytest.param("2026-11-23 12:30", False, id="lunch-break"),
        pytest.param("2026-11-23 18:00", False, id="closing-time-is-closed"),
        pytest.param("2026-11-23 08:59", False, id="before-opening"),
        pytest.param("2026-11-22 10:00", False, id="sunday"),
        pytest.param("2025-10-01 10:00", False, id="national-day"),
        pytest.param("2025-10-08 10:00", False, id="day-off-substituted"),
        pytest.param("2025-09-28 10:00", True, id="make-up-sunday-works"),
        pytest.param("2025-10-11 10:00", True, id="make-up-saturday-works"),
        pytest.param("2026-02-17 10:00", False, id="spring-festival-2026"),
        pytest.param("2025-01-29 10:00", False, id="spring-festival-2025"),
    ],
)
def test_open_or_closed(local: str, open_: bool) -> None:
    at = datetime.fromisoformat(local).replace(tzinfo=SH)
    assert is_open(HOURS, at) is open_


def test_time_zone_is_the_queues_not_the_callers() -> None:
    at = datetime.fromisoformat("2026-11-23 02:00+00:00")  # 10:00 in Shanghai
    assert is_open(HOURS, at)
    assert not is_open({**HOURS, "timezone": "Europe/London"}, at)


def test_empty_hours_are_always_open() -> None:
    assert is_open({}, datetime(2025, 10, 1, 3, tzinfo=SH))


def test_next_open_skips_the_national_day_week() -> None:
    hours = BusinessHours.parse(HOURS)
    assert hours is not None
    after = hours.next_open(datetime(2025, 9, 30, 18, 30, tzinfo=SH))
    assert after == datetime(2025, 10, 9, 9, 0, tzinfo=SH)
    assert hours.next_open(datetime(2025, 10, 9, 12, 30, tzinfo=SH)) == datetime(
        2025, 10, 9, 13, 0, tzinfo=SH)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"weekly": {"monday": []}}, "unknown day 'monday'"),
        ({"weekly": {"mon": [["18:00", "09:00"]]}}, "weekly.mon[0]"),
        ({"weekly": {"mon": [["nine", "18:00"]]}}, "HH:MM"),
        ({"holidays": "XX"}, "holidays"),
    ],
)
def test_bad_hours_name_the_field(data: dict, words: str) -> None:
    with pytest.raises(InvalidInput, match="business_hours") as e:
        BusinessHours.parse(data)
    assert words in str(e.value)


def at(local: str) -> datetime:
    return datetime.fromisoformat(local).replace(tzinfo=SH)


NINE_TO_SIX = {"timezone": "Asia/Shanghai",
               "weekly": {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}}


@pytest.mark.parametrize(
    ("earliest", "latest", "due", "last"),
    [
        # An ordinary window keeps its business part.
        pytest.param("2026-11-23 08:00", "2026-11-25 20:00", "2026-11-23 09:00",
                     "2026-11-25 18:00", id="weekdays"),
        # C10: repair done Friday 2025-09-26 16:00, call 3-5 days after = Mon 29 Sep 16:00 to
        # Wed 1 Oct 16:00; 30 Sep is a working day, 1 Oct the National Day.
        pytest.param("2025-09-29 16:00", "2025-10-01 16:00", "2025-09-29 16:00",
                     "2025-09-30 18:00", id="c10-before-national-day"),
        # Repair done Sunday 2025-09-28 20:00: the window 1-3 Oct has no business time at all,
        # so it moves to the first business day after it (Thu 9 Oct): due 09:00, latest 18:00.
        pytest.param("2025-10-01 20:00", "2025-10-03 20:00", "2025-10-09 09:00",
                     "2025-10-09 18:00", id="no-business-time-moves-on"),
        # A make-up Saturday (2025-10-11) counts as a working day.
        pytest.param("2025-10-11 00:00", "2025-10-12 23:00", "2025-10-11 09:00",
                     "2025-10-11 18:00", id="make-up-saturday"),
    ],
)
def test_windows_are_clipped_to_business_time(
    earliest: str, latest: str, due: str, last: str
) -> None:
    hours = BusinessHours.parse(NINE_TO_SIX)
    assert hours is not None
    assert hours.clip(at(earliest), at(latest)) == (at(due), at(last))


@pytest.mark.parametrize(
    ("start", "hours_", "end"),
    [
        pytest.param("2026-11-23 10:00", 2, "2026-11-23 12:00", id="same-day"),
        pytest.param("2026-11-23 17:00", 2, "2026-11-24 10:00", id="over-the-night"),
        pytest.param("2026-11-27 17:30", 2, "2026-11-30 10:30", id="over-the-weekend"),
        pytest.param("2026-11-22 12:00", 9, "2026-11-23 18:00", id="from-a-sunday"),
        pytest.param("2025-09-30 17:00", 2, "2025-10-09 10:00", id="over-national-day"),
    ],
)
def test_working_time_is_counted_in_business_hours(start: str, hours_: int, end: str) -> None:
    hours = BusinessHours.parse(NINE_TO_SIX)
    assert hours is not None
    assert hours.add_working_time(at(start), timedelta(hours=hours_)) == at(end)
