"""Canned responses: admins keep them (global or per team), agents list the ones offered to
them and have one rendered for a contact they hold. Bodies are sandboxed Jinja2 templates, so
an admin's text reads only the values below; a customer's own words (their name) are values,
never template source, so they come out as typed."""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.clock import utc
from contactcenter.domain import Role
from contactcenter.errors import Conflict, Forbidden, InvalidInput, NotFound
from contactcenter.server.api import api
from contactcenter.server.api.notes import may_work_on
from contactcenter.server.endpoint import Call
from contactcenter.storage.models import CannedResponse, Contact, Customer, User

_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
# What a body may use; a save is checked against these so a typo fails at the admin, not later
# in front of an agent.
SAMPLE = {
    "customer": {"name": "Wang Fang", "tier": "A", "honorific": "Ms"},
    "agent": {"name": "Li Na"},
    "contact": {"id": 1, "channel": "sms", "subject": ""},
}
NAME = r"^[\w.-]+$"  # typed after "/" in the composer: no spaces


class CannedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=NAME)
    team: str | None = Field(None, min_length=1, max_length=64,
                             description="offered to this team only; none: to everyone")
    body: str = Field(min_length=1, max_length=5_000)


class CannedPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=64, pattern=NAME)
    team: str | None = Field(None, min_length=1, max_length=64)
    body: str | None = Field(None, min_length=1, max_length=5_000)


class CannedList(BaseModel):
    all: bool = Field(False, description="every response of every team (admins)")


class RenderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: int


def _public(c: CannedResponse) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "team": c.team, "body": c.body,
            "updated_at": c.updated_at.isoformat()}


def render(body: str, values: dict[str, Any]) -> str:
    try:
        return _ENV.from_string(body).render(**values)
    except TemplateError as e:
        raise InvalidInput(f"canned response: {e}", field="body") from None


def _offered(user: User) -> Any:
    return or_(CannedResponse.team.is_(None), CannedResponse.team == user.team)


async def _taken(session: AsyncSession, name: str, team: str | None, but: int | None) -> bool:
    team_is = CannedResponse.team.is_(None) if team is None else CannedResponse.team == team
    found = await session.scalar(select(CannedResponse.id).where(
        CannedResponse.name == name, team_is))
    return found is not None and found != but


@api.route("GET", "/canned", role=Role.AGENT, query=CannedList,
           summary="Canned responses offered to me (global and my team's; a team's text wins "
                   "over a global one of the same name); all=true lists every one (admins)")
async def list_canned(call: Call) -> dict[str, Any]:
    stmt = select(CannedResponse).order_by(CannedResponse.name, CannedResponse.team)
    if call.query.all:
        if not Role(call.actor.role).includes(Role.ADMIN):
            raise Forbidden("only admins list every team's canned responses")
        async with call.rt.sessions() as session:
            return {"canned": [_public(c) for c in (await session.scalars(stmt)).all()]}
    async with call.rt.sessions() as session:
        rows = (await session.scalars(stmt.where(_offered(call.actor)))).all()
    chosen: dict[str, CannedResponse] = {}
    for c in rows:
        if c.name not in chosen or c.team is not None:
            chosen[c.name] = c
    return {"canned": [_public(c) for c in chosen.values()]}


@api.route("POST", "/canned", role=Role.ADMIN, body=CannedIn, status=201,
           summary="Add a canned response")
async def add_canned(call: Call) -> dict[str, Any]:
    b: CannedIn = call.body
    render(b.body, SAMPLE)
    now = utc(call.rt.clock.now())
    async with call.rt.sessions.begin() as session:
        if await _taken(session, b.name, b.team, None):
            raise Conflict(f"a canned response {b.name!r} already exists for this team")
        canned = CannedResponse(name=b.name, team=b.team, body=b.body, created_at=now,
                                updated_at=now)
        session.add(canned)
        await session.flush()
        return _public(canned)


@api.route("PATCH", "/canned/{canned_id}", role=Role.ADMIN, body=CannedPatch,
           summary="Change a canned response (fields given; team null makes it global)")
async def edit_canned(call: Call) -> dict[str, Any]:
    changes = call.body.model_dump(exclude_unset=True)
    for required in ("name", "body"):
        if required in changes and changes[required] is None:
            raise InvalidInput(f"{required} cannot be removed", field=required)
    if "body" in changes:
        render(changes["body"], SAMPLE)
    async with call.rt.sessions.begin() as session:
        canned = await session.get(CannedResponse, call.params["canned_id"])
        if canned is None:
            raise NotFound(f"no canned response {call.params['canned_id']}")
        name, team = changes.get("name", canned.name), changes.get("team", canned.team)
        if await _taken(session, name, team, canned.id):
            raise Conflict(f"a canned response {name!r} already exists for this team")
        for key, value in changes.items():
            setattr(canned, key, value)
        canned.updated_at = utc(call.rt.clock.now())
        await session.flush()
        return _public(canned)


@api.route("DELETE", "/canned/{canned_id}", role=Role.ADMIN, summary="Remove a canned response")
async def remove_canned(call: Call) -> dict[str, Any]:
    async with call.rt.sessions.begin() as session:
        canned = await session.get(CannedResponse, call.params["canned_id"])
        if canned is None:
            raise NotFound(f"no canned response {call.params['canned_id']}")
        await session.delete(canned)
    return {"deleted": True}


@api.route("POST", "/canned/{canned_id}/render", role=Role.AGENT, body=RenderIn,
           summary="A canned response filled in for a contact I hold (plain text)")
async def render_canned(call: Call) -> dict[str, Any]:
    async with call.rt.sessions() as session:
        canned = await session.get(CannedResponse, call.params["canned_id"])
        if canned is None or canned.team not in (None, call.actor.team):
            raise NotFound(f"no canned response {call.params['canned_id']}")
        contact = await session.get(Contact, call.body.contact_id)
        if contact is None:
            raise NotFound(f"no contact {call.body.contact_id}")
        if not may_work_on(call.actor, contact):
            raise Forbidden("only the agent holding this contact or a supervisor")
        customer = (await session.get(Customer, contact.customer_id)
                    if contact.customer_id else None)
    values = {
        "customer": {"name": customer.name if customer else "",
                     "tier": (customer.tier or "") if customer else "",
                     "honorific": (customer.honorific or "") if customer else ""},
        "agent": {"name": call.actor.display_name or call.actor.username},
        "contact": {"id": contact.id, "channel": contact.channel,
                    "subject": contact.subject or ""},
    }
    return {"text": render(canned.body, values)}
