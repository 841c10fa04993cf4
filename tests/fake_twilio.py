"""The outside world for Twilio tests: a fake Twilio REST API on loopback that records what it
receives, and webhook requests signed with the real `twilio` RequestValidator."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token-0123456789abcdef"


@dataclass
class Request:
    method: str
    path: str
    form: dict[str, str]


@dataclass
class FakeTwilio:
    """Answers like api.twilio.com/2010-04-01 for Messages and Calls; `fail_next` makes the next
    requests fail with a Twilio-style error, to exercise retries."""

    requests: list[Request] = field(default_factory=list)
    failures: list[tuple[int, int, str]] = field(default_factory=list)  # (status, code, message)
    runner: web.AppRunner | None = None
    url: str = ""

    def fail_next(self, times: int = 1, status: int = 500, code: int = 20500,
                  message: str = "Internal Server Error") -> None:
        self.failures.extend([(status, code, message)] * times)

    def posted(self, suffix: str) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and r.path.endswith(suffix)]

    async def _handle(self, request: web.Request) -> web.Response:
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        self.requests.append(Request(request.method, request.path, form))
        if self.failures:
            status, code, message = self.failures.pop(0)
            return web.json_response({"code": code, "message": message, "status": status,
                                      "more_info": f"https://www.twilio.com/docs/errors/{code}"},
                                     status=status)
        base = {"account_sid": ACCOUNT_SID, "date_created": "Mon, 23 Nov 2026 02:00:00 +0000",
                "api_version": "2010-04-01"}
        path = request.path
        if path.endswith("/Messages.json"):
            return web.json_response({**base, "sid": "SM" + uuid.uuid4().hex, "status": "queued",
                                      "to": form.get("To"), "from": form.get("From"),
                                      "body": form.get("Body")}, status=201)
        if path.endswith("/Calls.json"):
            return web.json_response({**base, "sid": "CA" + uuid.uuid4().hex, "status": "queued",
                                      "to": form.get("To"), "from": form.get("From")},
                                     status=201)
        if "/Calls/" in path:
            sid = path.rsplit("/", 1)[-1].removesuffix(".json")
            return web.json_response({**base, "sid": sid, "status": "in-progress"})
        if "/Queues" in path:
            return web.json_response({**base, "sid": "QU" + uuid.uuid4().hex}, status=201)
        return web.json_response({"code": 20404, "message": "not found", "status": 404},
                                 status=404)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def signature(public_url: str, path: str, params: dict[str, str],
              token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(public_url.rstrip("/") + path, params)


async def post_webhook(
    server_url: str, public_url: str, path: str, params: dict[str, str], *,
    token: str = AUTH_TOKEN, bad_signature: bool = False,
) -> tuple[int, str]:
    """POST a form to our server as Twilio would, signed over the public URL."""
    sig = "bad" + signature(public_url, path, params, token)[3:] if bad_signature else signature(
        public_url, path, params, token)
    async with aiohttp.ClientSession() as http, http.post(
        server_url + path, data=params, headers={"X-Twilio-Signature": sig}
    ) as r:
        return r.status, await r.text()


def twilio_settings(fake_url: str, public_url: str) -> dict[str, Any]:
    """Settings for a test node that talks to the fake and checks signatures."""
    return {"twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": AUTH_TOKEN,
            "twilio_api_base": fake_url, "public_url": public_url}
