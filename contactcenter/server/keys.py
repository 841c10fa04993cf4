"""Typed keys for what the aiohttp application carries."""

from __future__ import annotations

from aiohttp import web

from contactcenter.runtime import Runtime

RUNTIME = web.AppKey("runtime", Runtime)
