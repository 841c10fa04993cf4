from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from contactcenter.clock import utc
from contactcenter.domain import Role
from contactcenter.server.api import api
from contactcenter.server.endpoint import Call
from contactcenter.storage.models import User
from contactcenter.users import create_user, user_public


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=8, max_length=256)
    role: Role = Role.AGENT
    display_name: str | None = None
    team: str | None = None
    skills: list[str] = []
    capacity: dict[str, int] = {}
    language: str = "en"


@api.route("GET", "/agents", role=Role.SUPERVISOR, summary="Users with their live status")
async def list_agents(call: Call) -> dict[str, Any]:
    async with call.rt.sessions() as session:
        users = (await session.scalars(select(User).order_by(User.id))).all()
    live = {a["id"]: a for a in call.rt.live_stats.get("agents", [])}
    return {"agents": [{**user_public(u), "status": live.get(u.id, {}).get("status", "offline"),
                        "load": live.get(u.id, {}).get("load", {})} for u in users]}


@api.route("POST", "/users", role=Role.ADMIN, body=UserIn, status=201,
           summary="Create an agent, supervisor or admin")
async def add_user(call: Call) -> dict[str, Any]:
    b: UserIn = call.body
    async with call.rt.sessions.begin() as session:
        user = await create_user(
            session, username=b.username, password=b.password, role=b.role.value,
            now=utc(call.rt.clock.now()), display_name=b.display_name, skills=b.skills,
            team=b.team, capacity=b.capacity, language=b.language,
        )
        return user_public(user)
