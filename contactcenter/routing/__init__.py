"""Pure routing core: no I/O, no clocks; time is passed in as `now` (epoch seconds)."""

from .engine import (
    AgentSpec,
    AgentStatusChanged,
    ContactEvent,
    ContactSpec,
    Effect,
    QueueSpec,
    Router,
    RoutingConfig,
    RoutingError,
)
from .stats import DEFAULT_THRESHOLD, LiveStats, QueueCounters, snapshot

__all__ = [
    "DEFAULT_THRESHOLD",
    "AgentSpec",
    "AgentStatusChanged",
    "ContactEvent",
    "ContactSpec",
    "Effect",
    "LiveStats",
    "QueueCounters",
    "QueueSpec",
    "Router",
    "RoutingConfig",
    "RoutingError",
    "snapshot",
]
