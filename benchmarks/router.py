"""The pure routing core alone: CPU per contact (enqueue, offer, accept, end, wrap-up) as the
number of available agents grows. No I/O; `python3 benchmarks/router.py`."""

from __future__ import annotations

import os
import platform
import time

from contactcenter.domain import AgentStatus, EventKind
from contactcenter.routing import (
    AgentSpec,
    ContactEvent,
    ContactSpec,
    QueueSpec,
    Router,
    RoutingConfig,
)


def per_contact(agents: int, contacts: int = 20_000) -> float:
    router = Router(RoutingConfig())
    router.upsert_queue(QueueSpec(id=1, name="bench"))
    now = 1_000.0
    for agent_id in range(1, agents + 1):
        router.connect(AgentSpec(id=agent_id, capacity={"api": 5}), now)
        router.set_status(agent_id, AgentStatus.AVAILABLE, now)
    start = time.process_time()
    for contact_id in range(1, contacts + 1):
        now += 0.001
        for e in router.enqueue(ContactSpec(id=contact_id, queue_id=1, channel="api",
                                            entered_at=now), now):
            if isinstance(e, ContactEvent) and e.kind is EventKind.OFFERED:
                assert e.agent_id is not None
                router.accept(e.agent_id, e.contact_id, now)
                router.end(e.agent_id, e.contact_id, now)
                router.complete(e.agent_id, e.contact_id, "resolved", now)
    return (time.process_time() - start) / contacts


def main() -> None:
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    for agents in (40, 200, 1_000, 5_000):
        print(f"{agents:>6} agents: {per_contact(agents) * 1e6:6.1f} µs per contact")


if __name__ == "__main__":
    main()
