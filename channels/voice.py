"""The voice channel adapter (being written)."""

from __future__ import annotations

from aiohttp import web


def mount(app: web.Application) -> None:
    pass
