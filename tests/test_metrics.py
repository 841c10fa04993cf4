"""A round's tally moves the Prometheus counters and the open-contact gauge by exactly what
happened in the round, once it is applied."""

from __future__ import annotations

from prometheus_client import REGISTRY

from contactcenter import metrics
from contactcenter.domain import ContactState, EventKind
from contactcenter.routing.engine import ContactEvent

QUEUE = 9901  # a queue id no other test uses: the registry is the process's


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def event(kind: EventKind, contact: int, state: ContactState) -> ContactEvent:
    return ContactEvent(kind=kind, at=0.0, contact_id=contact, queue_id=QUEUE, agent_id=1,
                        state=state, data={})


def test_a_tally_applies_a_rounds_counts_at_once() -> None:
    offered = sample("cc_contact_events_total", kind="offered", queue=str(QUEUE))
    outcomes = {o: sample("cc_offers_total", outcome=o) for o in ("offered", "accepted")}
    queued = sample("cc_contacts", state="queued", channel="chat")
    active = sample("cc_contacts", state="active", channel="chat")

    tally = metrics.Tally()
    for contact in (1, 2, 3):
        tally.event(event(EventKind.OFFERED, contact, ContactState.OFFERED))
        tally.moved("chat", None, "queued")
    tally.event(event(EventKind.ACCEPTED, 1, ContactState.ACTIVE))
    tally.moved("chat", "queued", "active")
    tally.moved("chat", "queued", None)  # closed
    assert sample("cc_contact_events_total", kind="offered", queue=str(QUEUE)) == offered

    tally.apply()
    assert sample("cc_contact_events_total", kind="offered", queue=str(QUEUE)) == offered + 3
    assert sample("cc_contact_events_total", kind="accepted", queue=str(QUEUE)) == 1
    assert sample("cc_offers_total", outcome="offered") == outcomes["offered"] + 3
    assert sample("cc_offers_total", outcome="accepted") == outcomes["accepted"] + 1
    assert sample("cc_contacts", state="queued", channel="chat") == queued + 1
    assert sample("cc_contacts", state="active", channel="chat") == active + 1

    tally.apply()  # applied once: a second apply adds nothing
    assert sample("cc_offers_total", outcome="offered") == outcomes["offered"] + 3
