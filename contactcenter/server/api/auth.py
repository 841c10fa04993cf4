from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contactcenter.domain import Role
from contactcenter.server import auth as tokens
from contactcenter.server.api import api
from contactcenter.server.endpoint import Call
from contactcenter.storage.models import User
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


class MePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The languages the console speaks; the user's choice follows them to any browser.
    language: Literal["en", "zh-CN"]


@api.route("PATCH", "/me", role=Role.AGENT, body=MePatch, tag="auth",
           summary="Change this user's own preferences (the console's language)")
async def edit_me(call: Call) -> dict[str, Any]:
    async with call.rt.sessions.begin() as session:
        user = await session.get(User, call.actor.id)
        assert user is not None  # the token was just checked against it
        user.language = call.body.language
        # This node's token cache holds the actor: keep it in step, so /me agrees at once.
        call.actor.language = user.language
        return user_public(user)
