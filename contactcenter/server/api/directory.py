"""Who is who, for everyone signed in: an agent's console names a customer's owners and a
colleague by name, without the supervisors' live agent list."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from contactcenter.domain import Role
from contactcenter.server.api import api
from contactcenter.server.endpoint import Call
from contactcenter.storage.models import User


@api.route("GET", "/directory", role=Role.AGENT,
           summary="Active users: id, display name (else username), role and team")
async def directory(call: Call) -> dict[str, Any]:
    async with call.rt.sessions() as session:
        users = (await session.scalars(select(User).where(User.active.is_(True))
                                       .order_by(User.id))).all()
    return {"users": [{"id": u.id, "name": u.display_name or u.username, "role": u.role,
                       "team": u.team} for u in users]}
