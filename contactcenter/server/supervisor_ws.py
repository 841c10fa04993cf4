"""`/supervisor/ws`: live queue and agent statistics, pushed as the router publishes them."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import WSMsgType, web

from contactcenter.domain import Role
from contactcenter.server.auth import authenticate
from contactcenter.server.keys import RUNTIME
from contactcenter.wire import dumps


async def supervisor_ws(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    await authenticate(rt, request, Role.SUPERVISOR)
    ws = web.WebSocketResponse(heartbeat=rt.settings.heartbeat_seconds)
    await ws.prepare(request)
    # Only the newest snapshot matters: a slow reader skips stale ones instead of queueing.
    latest: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1)

    def on_stats(message: dict[str, Any]) -> None:
        if latest.full():
            latest.get_nowait()
        latest.put_nowait(message)

    unsubscribe = rt.broker.subscribe("supervisor", on_stats)
    if rt.live_stats:
        on_stats(rt.live_stats)

    async def pump() -> None:
        while True:
            await ws.send_str(dumps(await latest.get()))

    sender = asyncio.create_task(pump())
    try:
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        unsubscribe()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
    return ws
