"""Users (agents, supervisors, admins) and their passwords."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.domain import DEFAULT_CAPACITY, Channel, Role
from contactcenter.errors import Conflict, InvalidInput
from contactcenter.storage.models import User

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    role: str,
    now: datetime,
    display_name: str | None = None,
    skills: Iterable[str] = (),
    team: str | None = None,
    capacity: Mapping[str, int] | None = None,
    language: str = "en",
) -> User:
    username = username.strip()
    if not username or len(username) > 64:
        raise InvalidInput("username must be 1 to 64 characters")
    if len(password) < 8:
        raise InvalidInput("password must be at least 8 characters")
    try:
        role = Role(role).value
    except ValueError:
        raise InvalidInput(f"role must be one of {', '.join(r.value for r in Role)}") from None
    caps = dict(DEFAULT_CAPACITY)
    for channel, n in (capacity or {}).items():
        if channel not in set(Channel) or not isinstance(n, int) or n < 0:
            raise InvalidInput(f"capacity: bad entry {channel}={n}")
        caps[channel] = n
    if await session.scalar(select(User.id).where(User.username == username)):
        raise Conflict(f"user {username!r} already exists")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        display_name=display_name or username,
        skills=sorted({s.strip() for s in skills if s.strip()}),
        team=team,
        capacity=caps,
        language=language,
        active=True,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    return user


def user_public(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "team": user.team,
        "skills": user.skills,
        "capacity": user.capacity,
        "language": user.language,
        "active": user.active,
    }
