"""Email attachments for the agent holding the contact (or a supervisor): listed per contact and
served as downloads. A customer's file is never rendered by our origin: it always comes as an
attachment, with its stored type only when that type cannot run script, else as bytes."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from aiohttp import web
from sqlalchemy import select

from contactcenter.domain import Role
from contactcenter.errors import Forbidden, NotFound
from contactcenter.server.api import api
from contactcenter.server.api.notes import may_work_on
from contactcenter.server.endpoint import Call
from contactcenter.storage.models import Attachment, Contact, Message, User

# Types a browser shows without running anything of the sender's. Not HTML, SVG or XML
# (they script), nor anything unknown.
SAFE_TYPES = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain",
    "text/csv", "audio/mpeg", "audio/wav", "video/mp4", "application/zip", "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
})
FALLBACK_TYPE = "application/octet-stream"
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|]')


def served_type(stored: str) -> str:
    media = stored.split(";", 1)[0].strip().lower()
    return media if media in SAFE_TYPES else FALLBACK_TYPE


def disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the real one in RFC 5987 form."""
    name = _UNSAFE_NAME.sub("_", filename).strip(" .") or "attachment"
    ascii_name = name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


async def _contact_for(call: Call, contact_id: int | None, actor: User) -> Contact:
    async with call.rt.sessions() as session:
        contact = await session.get(Contact, contact_id) if contact_id is not None else None
    if contact is None:
        raise NotFound(f"no contact {contact_id}")
    if not may_work_on(actor, contact):
        raise Forbidden("only the agent holding this contact or a supervisor")
    return contact


def _public(a: Any) -> dict[str, Any]:  # an Attachment or a row of its columns
    return {"id": a.id, "message_id": a.message_id, "filename": a.filename,
            "content_type": a.content_type, "size": a.size}


@api.route("GET", "/contacts/{contact_id}/attachments", role=Role.AGENT,
           summary="The attachments of a contact's messages (names, types, sizes)")
async def list_attachments(call: Call) -> dict[str, Any]:
    contact = await _contact_for(call, call.params["contact_id"], call.actor)
    async with call.rt.sessions() as session:
        # Columns only: the listing never loads the files themselves.
        rows = (await session.execute(
            select(Attachment.id, Attachment.message_id, Attachment.filename,
                   Attachment.content_type, Attachment.size)
            .join(Message, Message.id == Attachment.message_id)
            .where(Message.contact_id == contact.id).order_by(Attachment.id))).all()
    return {"attachments": [_public(row) for row in rows]}


@api.route("GET", "/attachments/{attachment_id}", role=Role.AGENT,
           summary="Download one attachment (always as a download; unsafe types as bytes)")
async def download(call: Call) -> web.Response:
    async with call.rt.sessions() as session:
        found = (await session.execute(
            select(Attachment, Message.contact_id)
            .join(Message, Message.id == Attachment.message_id)
            .where(Attachment.id == call.params["attachment_id"]))).first()
    if found is None:
        raise NotFound(f"no attachment {call.params['attachment_id']}")
    attachment, contact_id = found
    await _contact_for(call, contact_id, call.actor)
    return web.Response(body=attachment.content, headers={
        "Content-Type": served_type(attachment.content_type),
        "Content-Disposition": disposition(attachment.filename),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "private, no-store",
    })
