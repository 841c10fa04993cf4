"""The agent console and supervisor board: static files served by the contact server."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


def mount(app: web.Application) -> None:
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC)
