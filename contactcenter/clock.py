"""Time comes from a Clock so that rules and timeouts can be tested without waiting."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when a test moves it."""

    def __init__(self, start: float | datetime = 1_800_000_000.0) -> None:
        self._t = start.timestamp() if isinstance(start, datetime) else float(start)

    def now(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        self._t += seconds

    def set(self, t: float | datetime) -> None:
        self._t = t.timestamp() if isinstance(t, datetime) else float(t)


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)
