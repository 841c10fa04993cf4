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
    EventKind.ACCEPTED: "accepted",
    EventKind.REJECTED: "rejected",
    EventKind.OFFER_TIMEOUT: "timeout",
}


def contact_moved(channel: str, before: str | None, after: str | None) -> None:
    """Keep the open-contact gauge in step with one contact's state change."""
    if before is not None:
        OPEN_CONTACTS.labels(before, channel).dec()
    if after is not None:
        OPEN_CONTACTS.labels(after, channel).inc()


def reset_open_contacts() -> None:
    OPEN_CONTACTS.clear()


def observe_event(event: Any) -> None:
    CONTACTS.labels(event.kind.value, str(event.queue_id)).inc()
    outcome = _OUTCOME.get(event.kind)
    if outcome:
        OFFERS.labels(outcome).inc()
    elif event.kind == EventKind.OFFERED:
        OFFERS.labels("offered").inc()


def observe_snapshot(snap: dict[str, Any]) -> None:
    for q in snap["queues"]:
        WAITING.labels(q.get("name") or str(q["id"])).set(q["waiting"])
    for status, n in snap.get("agent_counts", {}).items():
        AGENTS_BY_STATUS.labels(status).set(n)
