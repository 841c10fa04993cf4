"""Live queue statistics for supervisors, kept up to date one event at a time.

`LiveStats.apply` is O(1) per router event, so the supervisor view never rescans history;
`snapshot` combines these counters with the router's live views into a JSON-able payload.
Counters cover one business day per queue; history and reports belong to storage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from contactcenter.domain import AgentStatus, EventKind

from .engine import ContactEvent, Router, RoutingError

__all__ = ["DEFAULT_THRESHOLD", "LiveStats", "QueueCounters", "snapshot"]

# The common "80% answered within 20 seconds" target, for queues without their own.
DEFAULT_THRESHOLD = 20.0

_COUNTED = frozenset({EventKind.ENTERED, EventKind.TRANSFERRED, EventKind.ACCEPTED,
                      EventKind.ABANDONED})
_ENTERING = frozenset({EventKind.ENTERED, EventKind.TRANSFERRED})
_ACCEPTED = EventKind.ACCEPTED


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


@dataclass
class QueueCounters:
    """One queue, one business day. Ratios are None until there is something to divide."""

    entered: int = 0
    answered: int = 0
    abandoned: int = 0
    answered_within: int = 0  # answered with wait <= threshold
    abandoned_within: int = 0  # abandoned with wait <= threshold
    answer_wait_total: float = 0.0

    def service_level(self) -> float | None:
        """Share of answered contacts answered within the threshold."""
        return _ratio(self.answered_within, self.answered)

    def service_level_with_abandons(self) -> float | None:
        """Like `service_level`, but abandons count too, and short abandons count as met:
        a customer who gave up within the threshold was not failed by the queue."""
        return _ratio(self.answered_within + self.abandoned_within, self.answered + self.abandoned)

    def asa(self) -> float | None:
        """Average speed of answer: mean wait of answered contacts, in seconds."""
        return _ratio(self.answer_wait_total, self.answered)

    def abandonment_rate(self) -> float | None:
        """Share of contacts that left the queue by abandoning rather than being answered."""
        return _ratio(self.abandoned, self.answered + self.abandoned)


class LiveStats:
    """Today's counters per queue, fed with the router's `ContactEvent`s.

    `day_of` maps an epoch time to its business day (the adapter passes a timezone-aware
    function), so counters start again at local midnight. Only the latest day seen is kept
    per queue; asking about any other day gives zeros.
    """

    def __init__(self, thresholds: Mapping[int, float], day_of: Callable[[float], date]) -> None:
        self._thresholds = dict(thresholds)
        self._day_of = day_of
        self._days: dict[int, tuple[date, QueueCounters]] = {}
        self._minute, self._minute_day = float("nan"), date.min

    def day_of(self, at: float) -> date:
        # Local midnight falls on a whole minute in every zone in use, so one minute is one
        # day: events come in bursts, and the zone conversion is the costly part of counting.
        minute = at // 60
        if minute != self._minute:
            self._minute, self._minute_day = minute, self._day_of(at)
        return self._minute_day

    def threshold(self, queue_id: int) -> float:
        return self._thresholds.get(queue_id, DEFAULT_THRESHOLD)

    def set_threshold(self, queue_id: int, seconds: float) -> None:
        self._thresholds[queue_id] = seconds

    def apply(self, event: ContactEvent) -> None:
        """Count one event. Kinds other than those below are ignored.

        ENTERED and TRANSFERRED (into its target queue) count as entered; ACCEPTED as
        answered, with its wait; ABANDONED as abandoned.
        """
        kind = event.kind
        if kind not in _COUNTED:
            return
        counters = self._today(event.queue_id, self.day_of(event.at))
        if kind in _ENTERING:
            counters.entered += 1
            return
        wait = float(event.data["wait"])
        within = wait <= self.threshold(event.queue_id)
        if kind is _ACCEPTED:
            counters.answered += 1
            counters.answered_within += within
            counters.answer_wait_total += wait
        else:
            counters.abandoned += 1
            counters.abandoned_within += within

    def queue(self, queue_id: int, day: date) -> QueueCounters:
        """A copy of the queue's counters for `day` (zeros if that is not the latest day)."""
        current = self._days.get(queue_id)
        if current is None or current[0] != day:
            return QueueCounters()
        return replace(current[1])

    def _today(self, queue_id: int, day: date) -> QueueCounters:
        current = self._days.get(queue_id)
        if current is None or current[0] != day:
            # Late events of a day already closed would otherwise wipe today's counters.
            if current is not None and day < current[0]:
                return QueueCounters()
            current = self._days[queue_id] = (day, QueueCounters())
        return current[1]


def _agent_view(router: Router, agent_id: int) -> dict[str, Any]:
    try:
        status = router.agent_status(agent_id)
        load = router.agent_load(agent_id)
        capacity = router.agent(agent_id).capacity
    except RoutingError:  # never connected since the router started
        return {"id": agent_id, "status": str(AgentStatus.OFFLINE), "load": {}, "occupancy": 0.0}
    slots = sum(capacity.values())
    used = sum(load.values())
    occupancy = min(1.0, used / slots) if slots else 0.0
    return {"id": agent_id, "status": str(status), "load": load, "occupancy": occupancy}


def snapshot(
    router: Router,
    stats: LiveStats,
    queue_ids: Iterable[int],
    agent_ids: Iterable[int],
    now: float,
) -> dict[str, Any]:
    """The supervisor's live view, JSON-able.

    Shape::

        {"at": now,
         "queues": [{"id", "name", "waiting", "longest_wait", "entered", "answered",
                     "abandoned", "service_level", "service_level_with_abandons", "asa",
                     "abandonment_rate", "threshold"}, ...],
         "agent_counts": {"available", "away", "offline", "busy"},
         "agents": [{"id", "status", "load", "occupancy"}, ...]}

    Definitions: `waiting` counts queued and offered (unanswered) contacts; `longest_wait`
    is seconds since the oldest of them first arrived (0 if none); the counters and ratios
    are today's (see `QueueCounters`), ratios None when undefined. `busy` counts connected
    agents handling at least one contact, whatever their status, so it overlaps `available`
    and `away`. `occupancy` is used capacity slots over all capacity slots, now (0..1).
    """
    day = stats.day_of(now)
    queues = []
    for qid in queue_ids:
        counters = stats.queue(qid, day)
        oldest = router.oldest_entered(qid)
        queues.append(
            {
                "id": qid,
                "name": router.queue(qid).name,
                "waiting": router.waiting(qid),
                "longest_wait": 0.0 if oldest is None else max(0.0, now - oldest),
                "entered": counters.entered,
                "answered": counters.answered,
                "abandoned": counters.abandoned,
                "service_level": counters.service_level(),
                "service_level_with_abandons": counters.service_level_with_abandons(),
                "asa": counters.asa(),
                "abandonment_rate": counters.abandonment_rate(),
                "threshold": stats.threshold(qid),
            }
        )
    agents = [_agent_view(router, aid) for aid in agent_ids]
    counts = {"available": 0, "away": 0, "offline": 0, "busy": 0}
    for view in agents:
        counts[view["status"]] += 1
        if view["status"] != AgentStatus.OFFLINE and view["load"]:
            counts["busy"] += 1
    return {"at": now, "queues": queues, "agent_counts": counts, "agents": agents}
