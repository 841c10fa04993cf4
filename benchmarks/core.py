"""The core's cost per contact, without HTTP or websockets: intake, router, event log, frames.

One process, the embedded default (SQLite in a temp dir, the in-process broker), or with
`--scaleout` PostgreSQL + Redis as in `routing.py` (the same `bench` database and `ccbench:*`
keys, cleared first; their servers' CPU, read from /proc, is printed apart): 40 agents
that take every offer at once through the broker (accept, end, wrap-up), as in
`benchmarks/routing.py`, and rounds of `--size` contacts from 200 repeat callers, each round
taken in together and run until every contact is closed. It prints the CPU per contact.

The end-to-end benchmark moves with the host (its ceiling moved between 12,400 and 23,900
requests/s from minute to minute); this one is steadier, and under valgrind, which counts
instructions, it does not depend on the host at all (docs/benchmarks.md):

    python3 benchmarks/core.py --size 10 --rounds 300
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \\
        "$(python3 -c 'import sys; print(sys.executable)')" benchmarks/core.py --rounds 4
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

from routing import PG_URL, REDIS_PREFIX, REDIS_URL, prepare_scaleout

from contactcenter.broker.base import Frame, agent_channel
from contactcenter.contacts import Inbound, take_in
from contactcenter.dispatch import Dispatcher
from contactcenter.runtime import Runtime, tune_collector
from contactcenter.settings import Settings
from contactcenter.storage.db import upgrade
from contactcenter.storage.models import Queue, User

AGENTS, CALLERS = 40, 200
SERVICES = {"PostgreSQL": "postgres", "Redis": "redis-server"}  # name -> process name


def services_cpu() -> dict[str, float]:
    """CPU seconds the local PostgreSQL and Redis have used so far, from /proc. A backend that
    exits is counted on in its parent's `cutime`: the postmaster reaps its backends."""
    spent = dict.fromkeys(SERVICES, 0.0)
    tick = os.sysconf("SC_CLK_TCK")
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # not a process, or one that just ended
        comm, _, rest = stat.partition("(")[2].rpartition(")")
        for name, process in SERVICES.items():
            if comm.startswith(process):
                spent[name] += sum(int(x) for x in rest.split()[11:15]) / tick
    return spent


async def run(size: int, rounds: int, scaleout: bool) -> None:
    if scaleout:
        await prepare_scaleout()
        settings = Settings(database_url=PG_URL,
                            redis_url=REDIS_URL, redis_prefix=REDIS_PREFIX, node_id="core")
    else:
        path = os.path.join(tempfile.mkdtemp(prefix="cc-core-"), "core.db")
        settings = Settings(database_url=f"sqlite+aiosqlite:///{path}")
    rt = Runtime.build(settings)
    await upgrade(rt.engine)
    await rt.broker.start()
    now = datetime.now(UTC)
    async with rt.sessions.begin() as session:
        session.add(Queue(name="bench", channels=["api"]))
        # Agents are rows only: nobody logs in, so no password hash to compute.
        agents = [User(username=f"agent{i}", password_hash="-", role="agent",
                       display_name=f"agent{i}", skills=[], capacity={"api": 5},
                       created_at=now) for i in range(AGENTS)]
        session.add_all(agents)
    rt.dispatcher = Dispatcher(rt)
    routing = asyncio.create_task(rt.dispatcher.run())
    while not rt.dispatcher.is_leader:  # noqa: ASYNC110 - the dispatcher signals nothing
        await asyncio.sleep(0.01)
    closed: set[int] = set()
    all_closed = asyncio.Event()
    wanted = 0

    def agent(agent_id: int) -> Any:
        def on_frame(frame: Frame) -> None:
            # What the agent's socket reads of a frame: its head, and the contact of an update.
            if frame.kind == "offer":
                cid = frame.message["contact"]["id"]
                rt.spawn(rt.broker.submit_many([
                    {"op": "accept", "agent_id": agent_id, "contact_id": cid},
                    {"op": "end", "agent_id": agent_id, "contact_id": cid},
                    {"op": "complete", "agent_id": agent_id, "contact_id": cid,
                     "disposition": "resolved", "notes": None}]))
            elif frame.kind == "contact" and frame.message["contact"].get("state") == "closed":
                closed.add(frame.message["contact"]["id"])
                if len(closed) >= wanted:
                    all_closed.set()
        return on_frame

    for a in agents:
        rt.broker.subscribe(agent_channel(a.id), agent(a.id))
        await rt.broker.heartbeat([a.id], 3600)
        await rt.broker.submit({"op": "connect", "conn": f"core-{a.id}", "name": a.username,
                                "agent": {"id": a.id, "skills": [], "capacity": {"api": 5}},
                                "status": "available"})
    rng = random.Random(1)

    async def round_of(callers: list[int]) -> None:
        nonlocal wanted
        wanted = len(closed) + len(callers)
        all_closed.clear()
        await asyncio.gather(*(take_in(rt, Inbound(
            channel="api", address=f"+86138{caller:08d}", body="benchmark contact"))
            for caller in callers))
        await all_closed.wait()

    for first in range(0, CALLERS, 50):  # every caller once, so each pop carries a history
        await round_of(list(range(first, first + 50)))
    tune_collector()  # as `contactcenter serve` does
    services = services_cpu() if scaleout else None
    cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
    for _ in range(rounds):
        await round_of([rng.randrange(CALLERS) for _ in range(size)])
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    loop_cpu = time.thread_time() - loop_cpu
    n = size * rounds
    # The loop's own thread bounds a one-loop server; the rest is SQLite's checkpoints, on a
    # worker beside it.
    print(f"{n} contacts in rounds of {size}: {cpu / n * 1e6:,.0f} µs of CPU per contact, "
          f"{loop_cpu / n * 1e6:,.0f} µs on the loop's thread ({n / wall:,.0f} contacts/s)")
    if services is not None:
        used = {name: spent - services[name] for name, spent in services_cpu().items()}
        print("  and on this machine's " + ", ".join(
            f"{name} {spent / n * 1e6:,.0f} µs" for name, spent in used.items()))
    rt.dispatcher.stop()
    routing.cancel()
    await asyncio.gather(routing, return_exceptions=True)
    await rt.broker.close()
    await rt.engine.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--size", type=int, default=10, help="contacts taken in together per round")
    p.add_argument("--rounds", type=int, default=300)
    p.add_argument("--scaleout", action="store_true",
                   help="PostgreSQL + Redis instead of the embedded default")
    args = p.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    asyncio.run(run(args.size, args.rounds, args.scaleout))


if __name__ == "__main__":
    main()
