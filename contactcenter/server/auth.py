"""Bearer tokens: random, stored as a hash, checked on every request and websocket."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import delete, select

from contactcenter.clock import utc
from contactcenter.domain import Role
from contactcenter.errors import Forbidden, Unauthorized
from contactcenter.runtime import Runtime
from contactcenter.storage.models import AuthToken, User
from contactcenter.users import verify_password

# A token lookup per request would put the database on every hot path; a short cache keeps
# revocation (logout, deactivation) effective within this many seconds on every node. Keyed by
# the token itself: hashing it again on every request cost more than the lookup.
_CACHE_SECONDS = 10.0
_cache: dict[str, tuple[float, User, datetime]] = {}
# One database lookup per token at a time: when an entry expires under load, the requests that
# arrive while it is being read again wait for that read instead of each making their own.
_reading: dict[str, asyncio.Task[tuple[User, datetime] | None]] = {}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def login(rt: Runtime, username: str, password: str) -> tuple[str, User, datetime]:
    now = utc(rt.clock.now())
    async with rt.sessions.begin() as session:
        user = await session.scalar(select(User).where(User.username == username))
        # Same answer for a wrong name and a wrong password: no account probing.
        if user is None or not user.active or not verify_password(user.password_hash, password):
            raise Unauthorized("wrong username or password")
        token = secrets.token_urlsafe(32)
        expires = now + timedelta(hours=rt.settings.token_ttl_hours)
        session.add(AuthToken(token_hash=_digest(token), user_id=user.id, created_at=now,
                              expires_at=expires))
    return token, user, expires


async def logout(rt: Runtime, token: str) -> None:
    _cache.pop(token, None)
    async with rt.sessions.begin() as session:
        await session.execute(delete(AuthToken).where(AuthToken.token_hash == _digest(token)))


async def user_for_token(rt: Runtime, token: str) -> User | None:
    hit = _cache.get(token)
    if hit is not None and time.monotonic() - hit[0] < _CACHE_SECONDS:
        user, expires = hit[1], hit[2]
    else:
        found = await _read_token(rt, token)
        if found is None:
            return None
        user, expires = found
    if not user.active or expires.timestamp() <= rt.clock.now():
        return None
    return user


async def _read_token(rt: Runtime, token: str) -> tuple[User, datetime] | None:
    # A task of its own, not the first caller's: a request that goes away does not take the
    # read from the others waiting for it.
    reading = _reading.get(token)
    if reading is None:
        reading = _reading[token] = asyncio.ensure_future(_lookup(rt, token))
        reading.add_done_callback(lambda _: _reading.pop(token, None))
    return await asyncio.shield(reading)


async def _lookup(rt: Runtime, token: str) -> tuple[User, datetime] | None:
    async with rt.sessions() as session:
        row = (
            await session.execute(
                select(User, AuthToken.expires_at)
                .join(AuthToken, AuthToken.user_id == User.id)
                .where(AuthToken.token_hash == _digest(token))
            )
        ).first()
    if row is None:
        _cache.pop(token, None)
        return None
    _cache[token] = (time.monotonic(), row[0], row[1])
    return row[0], row[1]


def token_of(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    # Browsers cannot set headers on a websocket handshake.
    return request.query.get("token") or None


async def authenticate(rt: Runtime, request: web.Request, role: Role) -> User:
    token = token_of(request)
    if token is None:
        raise Unauthorized("a bearer token is required: POST /api/v1/auth/login")
    user = await user_for_token(rt, token)
    if user is None:
        raise Unauthorized("the token is invalid or has expired")
    if not Role(user.role).includes(role):
        raise Forbidden(f"this needs the {role.value} role")
    return user
