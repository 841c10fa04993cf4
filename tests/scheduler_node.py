"""One scheduler process for tests/test_scheduler_processes.py: a server node (channels mounted,
settings from CC_* like any node) whose clock stands at the epoch in argv[1], running the
scheduler's rounds itself (`CC_SCHEDULER_SECONDS=0` keeps the background loop off) until a
round finds nothing more to do, then exiting."""

from __future__ import annotations

import asyncio
import sys
from datetime import date

from aiohttp import web

from contactcenter.clock import ManualClock
from contactcenter.jobs import run_once
from contactcenter.runtime import Runtime
from contactcenter.server.app import create_app
from contactcenter.settings import Settings


async def main(at: float, rounds: int) -> None:
    rt = Runtime.build(Settings(), clock=ManualClock(at))
    runner = web.AppRunner(create_app(rt))
    await runner.setup()  # mounts the channels: the SMS sender the greetings go out through
    try:
        planned: set[date] = set()
        for _ in range(rounds):
            await run_once(rt, planned)
        for _ in range(600):  # the provider sends run after each commit: let them finish
            if not rt._background:
                break
            await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]), int(sys.argv[2])))
