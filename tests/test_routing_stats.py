"""Live statistics: counters, the service-level formulas, day rollover, the snapshot."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from contactcenter.domain import AgentStatus, ContactState, EventKind
from contactcenter.routing import (
    DEFAULT_THRESHOLD,
    AgentSpec,
    ContactEvent,
    ContactSpec,
    LiveStats,
    QueueCounters,
    QueueSpec,
    Router,
    snapshot,
)

SHANGHAI = timezone(timedelta(hours=8))
# 2026-11-23 10:00 in Shanghai (02:00 UTC).
T = datetime(2026, 11, 23, 2, 0, tzinfo=UTC).timestamp()
DAY = date(2026, 11, 23)


def local_day(at: float) -> date:
    return datetime.fromtimestamp(at, SHANGHAI).date()


def event(kind: EventKind, at: float = T, queue_id: int = 1, **data: Any) -> ContactEvent:
    return ContactEvent(kind, at, 1, queue_id, None, ContactState.QUEUED, data)


def feed(stats: LiveStats, *events: ContactEvent) -> None:
    for e in events:
        stats.apply(e)


# -- QueueCounters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counters", "sl", "sl_abandons", "asa", "abandon_rate"),
    [
        pytest.param(QueueCounters(), None, None, None, None, id="empty"),
        pytest.param(
            QueueCounters(entered=10, answered=8, answered_within=6, answer_wait_total=80.0),
            0.75,
            0.75,
            10.0,
            0.0,
            id="answers-only",
        ),
        pytest.param(
            QueueCounters(
                entered=10,
                answered=6,
                abandoned=4,
                answered_within=3,
                abandoned_within=3,
                answer_wait_total=60.0,
            ),
            0.5,
            0.6,  # (3 + 3) / (6 + 4): short abandons count as met
            10.0,
            0.4,
            id="with-abandons",
        ),
        pytest.param(
            QueueCounters(entered=2, abandoned=2, abandoned_within=1),
            None,
            0.5,
            None,
            1.0,
            id="abandons-only",
        ),
    ],
)
def test_counter_formulas(
    counters: QueueCounters,
    sl: float | None,
    sl_abandons: float | None,
    asa: float | None,
    abandon_rate: float | None,
) -> None:
    assert counters.service_level() == sl
    assert counters.service_level_with_abandons() == sl_abandons
    assert counters.asa() == asa
    assert counters.abandonment_rate() == abandon_rate


# -- LiveStats --------------------------------------------------------------------------


def test_apply_counts_each_kind() -> None:
    stats = LiveStats({1: 20.0, 2: 60.0}, local_day)
    feed(
        stats,
        event(EventKind.ENTERED),
        event(EventKind.ENTERED),
        event(EventKind.ENTERED),
        event(EventKind.OFFERED, expires_at=T + 15, wait=0.0),  # ignored
        event(EventKind.ACCEPTED, wait=20.0),  # the threshold itself counts as within
        event(EventKind.ACCEPTED, wait=40.0),
        event(EventKind.ABANDONED, wait=5.0),
        event(EventKind.TRANSFERRED, queue_id=2, from_queue=1, to_queue=2),
        event(EventKind.ABANDONED, queue_id=2, wait=50.0),  # within queue 2's 60 s
    )
    assert stats.queue(1, DAY) == QueueCounters(
        entered=3,
        answered=2,
        abandoned=1,
        answered_within=1,
        abandoned_within=1,
        answer_wait_total=60.0,
    )
    assert stats.queue(2, DAY) == QueueCounters(entered=1, abandoned=1, abandoned_within=1)


def test_threshold_default_and_change() -> None:
    stats = LiveStats({}, local_day)
    assert stats.threshold(1) == DEFAULT_THRESHOLD == 20.0
    stats.set_threshold(1, 30.0)
    feed(stats, event(EventKind.ACCEPTED, wait=25.0))
    assert stats.queue(1, DAY).answered_within == 1


def test_queue_returns_a_copy() -> None:
    stats = LiveStats({}, local_day)
    feed(stats, event(EventKind.ENTERED))
    stats.queue(1, DAY).entered = 99
    assert stats.queue(1, DAY).entered == 1


def test_counters_reset_at_local_midnight() -> None:
    stats = LiveStats({}, local_day)
    midnight = datetime(2026, 11, 24, tzinfo=SHANGHAI).timestamp()  # 16:00 UTC
    feed(stats, event(EventKind.ENTERED, midnight - 1), event(EventKind.ENTERED, midnight - 1))
    assert stats.queue(1, DAY).entered == 2
    feed(stats, event(EventKind.ENTERED, midnight))
    next_day = DAY + timedelta(days=1)
    assert stats.queue(1, next_day).entered == 1
    assert stats.queue(1, DAY) == QueueCounters()  # only the latest day is kept
    # A straggler from yesterday must not wipe today's counters.
    feed(stats, event(EventKind.ENTERED, midnight - 2))
    assert stats.queue(1, next_day).entered == 1


def test_unknown_queue_or_day_is_zeros() -> None:
    stats = LiveStats({}, local_day)
    assert stats.queue(7, DAY) == QueueCounters()


# -- snapshot ---------------------------------------------------------------------------


def _busy_router() -> tuple[Router, LiveStats]:
    router = Router()
    router.upsert_queue(QueueSpec(1, "sales"))
    router.upsert_queue(QueueSpec(2, "support", required_skills=frozenset({"billing"})))
    stats = LiveStats({1: 10.0}, local_day)

    def run(effects: list) -> None:
        for e in effects:
            if isinstance(e, ContactEvent):
                stats.apply(e)

    run(router.connect(AgentSpec(1, capacity={"voice": 1, "chat": 3}), T))
    run(router.set_status(1, AgentStatus.AVAILABLE, T))
    run(router.connect(AgentSpec(2), T))
    run(router.enqueue(ContactSpec(10, 1, "voice", T), T))
    run(router.accept(1, 10, T + 4))  # answered within 10 s
    run(router.enqueue(ContactSpec(11, 1, "voice", T + 5), T + 5))
    run(router.customer_left(11, T + 35))  # abandoned after 30 s
    run(router.enqueue(ContactSpec(12, 2, "chat", T + 40), T + 40))  # nobody has billing
    return router, stats


def test_snapshot_shape_and_values() -> None:
    router, stats = _busy_router()
    snap = snapshot(router, stats, [1, 2], [1, 2, 3], T + 100)
    assert json.loads(json.dumps(snap)) == snap  # JSON-able as is
    sales, support = snap["queues"]
    assert sales == {
        "id": 1,
        "name": "sales",
        "waiting": 0,
        "longest_wait": 0.0,
        "entered": 2,
        "answered": 1,
        "abandoned": 1,
        "service_level": 1.0,
        "service_level_with_abandons": 0.5,
        "asa": 4.0,
        "abandonment_rate": 0.5,
        "threshold": 10.0,
    }
    assert support["waiting"] == 1
    assert support["longest_wait"] == 60.0
    assert support["service_level"] is None
    assert support["threshold"] == DEFAULT_THRESHOLD
    assert snap["agent_counts"] == {"available": 1, "away": 1, "offline": 1, "busy": 1}
    assert snap["agents"] == [
        {"id": 1, "status": "available", "load": {"voice": 1}, "occupancy": 0.25},
        {"id": 2, "status": "away", "load": {}, "occupancy": 0.0},
        {"id": 3, "status": "offline", "load": {}, "occupancy": 0.0},  # never connected
    ]
    assert snap["at"] == T + 100


def test_snapshot_next_day_shows_fresh_counters_but_live_waiting() -> None:
    router, stats = _busy_router()
    snap = snapshot(router, stats, [2], [], T + 86_400)
    (support,) = snap["queues"]
    assert (support["entered"], support["waiting"]) == (0, 1)
    assert snap["agents"] == []
