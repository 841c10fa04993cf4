"""Private notes on a contact: kept with its messages (`private`), shown to agents and
supervisors only, never handed to a channel's sender."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contactcenter.clock import utc
from contactcenter.contacts import message_public
from contactcenter.domain import ContactState, Direction, Role
from contactcenter.errors import Forbidden, NotFound
from contactcenter.server.api import api
from contactcenter.server.endpoint import Call
from contactcenter.storage.models import Contact, Message, User

# An agent "holds" a contact while working it; an offered one is not theirs yet.
HELD = frozenset({ContactState.ACTIVE.value, ContactState.WRAPUP.value})


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=20_000)

    @field_validator("body")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a note needs some text")
        return value


def may_work_on(user: User, contact: Contact) -> bool:
    """A supervisor may act on any contact; an agent only on one they hold."""
    if Role(user.role).includes(Role.SUPERVISOR):
        return True
    return contact.agent_id == user.id and contact.state in HELD


@api.route("POST", "/contacts/{contact_id}/notes", role=Role.AGENT, body=NoteIn, status=201,
           summary="Add a private note to a contact (the agent holding it, or a supervisor); "
                   "it is never sent to the customer")
async def add_note(call: Call) -> dict[str, Any]:
    async with call.rt.sessions.begin() as session:
        contact = await session.get(Contact, call.params["contact_id"])
        if contact is None:
            raise NotFound(f"no contact {call.params['contact_id']}")
        if not may_work_on(call.actor, contact):
            raise Forbidden("only the agent holding this contact or a supervisor may add notes")
        # No delivery status: nothing ever sends a private message.
        note = Message(contact_id=contact.id, conversation_id=contact.conversation_id,
                       direction=Direction.OUTBOUND.value, author_user_id=call.actor.id,
                       body=call.body.body, private=True, meta={}, status=None,
                       created_at=utc(call.rt.clock.now()))
        session.add(note)
        await session.flush()
        return {"message": message_public(note)}
