"""Prometheus metrics. The router's node counts contacts and offers; every node its sockets."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from contactcenter.domain import EventKind

CONTACTS = Counter("cc_contact_events_total", "Contact events by kind and queue", ["kind", "queue"])
OFFERS = Counter("cc_offers_total", "Offers by outcome", ["outcome"])
WAITING = Gauge("cc_contacts_waiting", "Contacts waiting in a queue (router node)", ["queue"])
OPEN_CONTACTS = Gauge(
    "cc_contacts", "Open contacts by state and channel (router node)", ["state", "channel"]
)
AGENTS_BY_STATUS = Gauge("cc_agents", "Agents known to the router by status", ["status"])
CONNECTED = Gauge("cc_connected_agents", "Agent websockets connected to this node")
SCREEN_POP = Histogram(
    "cc_screen_pop_seconds",
    "From a contact's arrival to its offer frame leaving this node for the agent's socket",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
HTTP_REQUESTS = Counter("cc_http_requests_total", "HTTP requests", ["method", "status"])

_OUTCOME = {
    EventKind.OFFERED: "offered",
    EventKind.ACCEPTED: "accepted",
    EventKind.REJECTED: "rejected",
    EventKind.OFFER_TIMEOUT: "timeout",
}


# `labels()` validates and locks on every call, and the router and every request count: each
# labelled child is looked up once and kept.
_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def http_request(method: str, status: int) -> None:
    _child(HTTP_REQUESTS, method, str(status)).inc()


def reset_open_contacts() -> None:
    OPEN_CONTACTS.clear()
    for key in [k for k in _children if k[0] is OPEN_CONTACTS]:
        del _children[key]  # cleared children are no longer exported


class Tally:
    """The contact counters' changes from one round of the router, applied at once: each inc
    takes the child's lock, and a busy round moves the same few label sets hundreds of times."""

    def __init__(self) -> None:
        self._deltas: dict[tuple[Any, ...], int] = {}

    def _add(self, key: tuple[Any, ...], n: int) -> None:
        self._deltas[key] = self._deltas.get(key, 0) + n

    def event(self, event: Any) -> None:
        # The StrEnum member is its value as a label (and a cheaper key than `.value`).
        self._add((CONTACTS, event.kind, str(event.queue_id)), 1)
        outcome = _OUTCOME.get(event.kind)
        if outcome is not None:
            self._add((OFFERS, outcome), 1)

    def moved(self, channel: str, before: str | None, after: str | None) -> None:
        """One contact's state change, for the open-contact gauge (None: not open)."""
        if before is not None:
            self._add((OPEN_CONTACTS, before, channel), -1)
        if after is not None:
            self._add((OPEN_CONTACTS, after, channel), 1)

    def apply(self) -> None:
        for (metric, *labels), n in self._deltas.items():
            if n:
                _child(metric, *labels).inc(n)
        self._deltas.clear()


def observe_snapshot(snap: dict[str, Any]) -> None:
    for q in snap["queues"]:
        WAITING.labels(q.get("name") or str(q["id"])).set(q["waiting"])
    for status, n in snap.get("agent_counts", {}).items():
        AGENTS_BY_STATUS.labels(status).set(n)
