from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from contactcenter.domain import Role
from contactcenter.server import auth as tokens
from contactcenter.server.api import api
from contactcenter.server.endpoint import Call
from contactcenter.users import user_public


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


@api.route("POST", "/auth/login", role=None, body=LoginIn, summary="Log in; returns a token")
async def login(call: Call) -> dict[str, Any]:
    token, user, expires = await tokens.login(call.rt, call.body.username, call.body.password)
    return {"token": token, "expires_at": expires.isoformat(), "user": user_public(user)}


@api.route("POST", "/auth/logout", role=Role.AGENT, summary="Revoke this token", status=200)
async def logout(call: Call) -> dict[str, Any]:
    token = tokens.token_of(call.request)
    assert token is not None
    await tokens.logout(call.rt, token)
    return {"ok": True}


@api.route("GET", "/me", role=Role.AGENT, summary="Who this token belongs to", tag="auth")
async def me(call: Call) -> dict[str, Any]:
    return user_public(call.actor)
