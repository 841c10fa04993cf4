"""The aiohttp application: routes, error handling, and the background tasks of one node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from sqlalchemy import text

from contactcenter import metrics
from contactcenter.dispatch import Dispatcher
from contactcenter.errors import ContactCenterError
from contactcenter.jobs import scheduler_loop
from contactcenter.runtime import Runtime
from contactcenter.server.agent_ws import AGENT_SOCKETS, agent_ws, reannounce, refresh_presence
from contactcenter.server.api import api
from contactcenter.server.keys import RUNTIME
from contactcenter.server.supervisor_ws import supervisor_ws

log = logging.getLogger(__name__)

TASKS = web.AppKey("tasks", list)


def error_body(status: int, code: str, message: str, details: Any = None) -> web.Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=status)


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every failure is a JSON error with a clear message; nothing escapes as an HTML 500."""
    try:
        response = await handler(request)
    except ContactCenterError as e:
        response = error_body(e.status, e.code, e.message, e.details or None)
    except ValidationError as e:
        details = [{"field": ".".join(map(str, err["loc"])), "message": err["msg"]}
                   for err in e.errors()]
        response = error_body(422, "invalid", "the request is not valid: " + "; ".join(
            f"{d['field']}: {d['message']}" for d in details), details)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        response = error_body(e.status, e.reason.lower().replace(" ", "-"), e.reason)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = error_body(500, "internal", "internal error; it has been logged")
    metrics.http_request(request.method, response.status)
    return response


async def healthz(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    checks: dict[str, bool] = {}
    try:
        async with rt.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = True
    except Exception:
        checks["database"] = False
    checks["broker"] = await rt.broker.ping()
    ok = all(checks.values())
    leader = rt.dispatcher is not None and rt.dispatcher.is_leader
    return web.json_response(
        {"ok": ok, "node": rt.node_id, "routing": leader, **checks}, status=200 if ok else 503
    )


async def metrics_endpoint(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _start(app: web.Application) -> None:
    rt = app[RUNTIME]
    await rt.broker.start()

    def on_stats(message: dict[str, Any]) -> None:
        rt.live_stats = message

    rt.broker.subscribe("supervisor", on_stats)
    rt.broker.subscribe("nodes", lambda m: reannounce(app) if m.get("type") == "router-started"
                        else None)
    rt.dispatcher = Dispatcher(rt, sockets=app[AGENT_SOCKETS])
    app[TASKS] = [
        asyncio.create_task(rt.dispatcher.run(), name="dispatcher"),
        asyncio.create_task(refresh_presence(app), name="presence"),
    ]
    if rt.settings.scheduler_seconds > 0:
        app[TASKS].append(asyncio.create_task(scheduler_loop(rt), name="scheduler"))


async def _close_sockets(app: web.Application) -> None:
    # On shutdown, before aiohttp waits for open connections to finish by themselves.
    for sock in list(app[AGENT_SOCKETS].values()):
        await sock.ws.close(code=1001, message=b"server shutting down")


async def _stop(app: web.Application) -> None:
    rt = app[RUNTIME]
    if rt.dispatcher is not None:
        rt.dispatcher.stop()
    for task in app[TASKS]:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if rt.dispatcher is not None and rt.dispatcher.is_leader:
        await rt.broker.release_lease()
    await rt.broker.close()
    await rt.engine.dispose()


def create_app(rt: Runtime) -> web.Application:
    app = web.Application(middlewares=[json_errors], client_max_size=2 * 1024 * 1024)
    app[RUNTIME] = rt
    app[AGENT_SOCKETS] = {}
    api.mount(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    app.router.add_get("/agent/ws", agent_ws)
    app.router.add_get("/supervisor/ws", supervisor_ws)
    from agents_ui import mount as mount_ui
    from channels import mount as mount_channels

    mount_ui(app)
    mount_channels(app)
    app.on_startup.append(_start)
    app.on_shutdown.append(_close_sockets)
    app.on_cleanup.append(_stop)
    return app
