"""Inbound contacts: the one path by which every channel puts work into a queue.

An inbound item (a call, an SMS, a mail, a chat line, an integration's post) is committed before
anything is acknowledged, keyed by its provider id so that a retry is a no-op. It belongs to a
conversation: when that conversation already has a contact in progress, the message joins it and
reaches the agent who holds it; otherwise a new contact is queued and routed, with its
screen-pop built here, on the node that took it in.

Group commit: items arriving together are stored together. `take_in` adds its item to the
node's pending batch; a drain task stores a whole batch with a handful of set-based queries
and one commit, then answers every caller. Idle, a batch is one item and nothing waits; under
load the cost per item falls with the batch size. An item's own error (no such queue, queue
full) fails only that item; a batch that fails as a whole is retried item by item.

SQLite has one writer, so one batch is stored at a time. On PostgreSQL a batch spends most of
its time waiting on round trips, so up to `LANES` are stored at once; then two batches (or two
nodes) holding lines of one conversation must not both find it without a contact and each
start one. Each batch first takes a transaction-scoped advisory lock per conversation it may
join (`_conversation_locks`), in one order, so such batches run one after the other.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from hashlib import blake2b
from typing import Any

from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from contactcenter.clock import utc
from contactcenter.customers import (
    address_keys,
    find_or_create_many,
    read_cards,
    read_histories,
)
from contactcenter.domain import ContactState, Direction
from contactcenter.errors import ContactCenterError, NotFound, Unavailable
from contactcenter.runtime import Runtime
from contactcenter.screenpop import HISTORY, contact_summary
from contactcenter.storage import direct
from contactcenter.storage.models import (
    Attachment,
    Contact,
    Conversation,
    Message,
    Queue,
)
from contactcenter.storage.one_of import one_of
from contactcenter.timeline import read_timelines

_IN_PROGRESS = [s.value for s in ContactState if not s.is_final]
MAX_BATCH = 200
LINGER = 0.004  # seconds a batch waits to fill under load: see `_drain`


@dataclass(frozen=True)
class AttachmentIn:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class Inbound:
    channel: str
    address: str  # phone number, email address or chat handle of the customer
    body: str = ""
    subject: str | None = None
    to: str | None = None
    queue: str | None = None
    skill: str | None = None
    external_id: str | None = None  # the provider's id of this call/message: repeats are no-ops
    display_name: str | None = None
    # The thread, when the adapter knows it (email headers, a chat session)…
    conversation_id: int | None = None
    # …or: join the customer's latest conversation on this channel if it was this recent (SMS).
    join_within: timedelta | None = None
    conversation_token: str | None = None  # for a new conversation (chat session, reply+token)
    meta: dict[str, Any] = field(default_factory=dict)  # of the message (media URLs, headers)
    contact_meta: dict[str, Any] | None = None  # of the contact (IVR choice, call details)
    attachments: Sequence[AttachmentIn] = ()
    # When the customer first asked (epoch seconds), if before now: a queued callback keeps
    # the caller's place in line. It sets the new contact's created_at and routing order.
    entered_at: float | None = None


@dataclass(frozen=True)
class Intake:
    contact: dict[str, Any]  # summary of the contact the item went to
    conversation_id: int
    message_id: int | None
    new_contact: bool  # a contact was queued for it (else it joined one in progress)
    duplicate: bool  # the provider id was seen before: nothing was stored


Pending = tuple[Inbound, "asyncio.Future[Intake]"]


LANES = {"postgresql": 2}  # batches stored at once, by database; one elsewhere


class IntakeBatcher:
    def __init__(self, lanes: int) -> None:
        self.pending: list[Pending] = []
        self.lanes = lanes
        self.draining = 0
        # Batches take their conversation locks in the order they were formed, so the lines
        # of one conversation are stored in the order this node took them in.
        self.locking = asyncio.Lock()


async def take_in(rt: Runtime, inbound: Inbound) -> Intake:
    """Store an inbound item and route it; see the module docstring."""
    if rt.intake is None:
        rt.intake = IntakeBatcher(LANES.get(rt.engine.dialect.name, 1))
    batcher = rt.intake
    future: asyncio.Future[Intake] = asyncio.get_running_loop().create_future()
    batcher.pending.append((inbound, future))
    if batcher.draining < batcher.lanes:
        batcher.draining += 1
        rt.spawn(_drain(rt, batcher))
    return await future


async def _drain(rt: Runtime, batcher: IntakeBatcher) -> None:
    # Under load (another lane is storing a batch, or more came in while this one stored its
    # last) a batch waits LINGER to fill, so its fixed cost (a transaction, a dozen statements)
    # is shared by more items: at 1,200 contacts/s SQLite's batches held 3.4 items without it.
    # Idle, or one request after another, nothing waits.
    loaded = batcher.draining > 1
    try:
        while batcher.pending:
            if loaded and len(batcher.pending) < MAX_BATCH:
                await asyncio.sleep(LINGER)
            batch = batcher.pending[:MAX_BATCH]
            del batcher.pending[:MAX_BATCH]
            await _store(rt, batch)
            loaded = True  # the loop goes on only if more came in meanwhile
    finally:
        batcher.draining -= 1


_CONVERSATION_LOCKS = text(
    "SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")


def _conversation_lock_keys(items: Sequence[Inbound]) -> list[int]:
    """Advisory lock keys, ascending, for the conversations these items may join or start
    by name: a known conversation, the sender's latest on the channel, a chat session's
    token. An item that always starts a conversation of its own needs none."""
    names = set()
    for item in items:
        if item.conversation_id is not None:
            names.add(f"conversation:{item.conversation_id}")
        else:
            if item.join_within is not None:
                phone, email, _ = address_keys(item.channel, item.address)
                names.add(f"sender:{item.channel}:{phone or email or item.address.strip()}")
            if item.conversation_token is not None:
                names.add(f"token:{item.conversation_token}")
    # A hash the same on every node (Python's own is salted per process).
    return sorted(int.from_bytes(blake2b(n.encode(), digest_size=8).digest(), "big",
                                 signed=True) for n in names)


async def _conversation_locks(session: AsyncSession, batcher: IntakeBatcher,
                              items: Sequence[Inbound]) -> None:
    """Wait for any other batch, on any node, storing lines of these items' conversations;
    held until this batch commits. Taken in ascending order: two batches cannot deadlock."""
    keys = _conversation_lock_keys(items)
    if keys:
        async with batcher.locking:
            await session.execute(_CONVERSATION_LOCKS, {"keys": keys})


async def _store(rt: Runtime, batch: list[Pending]) -> None:
    try:
        results = await _take_in_batch(rt, [item for item, _ in batch])
    except Exception as e:
        if len(batch) == 1:
            _settle(batch[0][1], e)
            return
        for one in batch:  # find the one that broke it; the others still get in
            await _store(rt, [one])
        return
    for (_, future), result in zip(batch, results, strict=True):
        _settle(future, result)


def _settle(future: asyncio.Future[Intake], result: Intake | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


@dataclass
class _Conversation:
    """A conversation as the intake needs it; `id` is None until a new one is inserted."""

    id: int | None
    customer_id: int
    channel: str
    last_message_at: datetime
    token: str | None = None
    subject: str | None = None


@dataclass
class _Contact:
    """A contact the batch starts, with the attributes `contact_summary` reads."""

    channel: str
    direction: str
    state: str
    customer_id: int
    queue_id: int
    tier: str | None
    from_address: str | None
    to_address: str | None
    subject: str | None
    body: str | None
    external_id: str | None
    meta: dict[str, Any] | None
    created_at: datetime
    id: int | None = None
    conversation_id: int | None = None
    agent_id: int | None = None


@dataclass
class _Message:
    """An inbound message as stored, with the attributes `message_public` reads."""

    body: str
    meta: dict[str, Any]
    created_at: datetime
    id: int | None = None
    direction: str = Direction.INBOUND.value
    author_user_id: int | None = None
    private: bool = False
    status: str | None = None
    error: str | None = None


@dataclass
class _Plan:
    """What one item becomes, worked out before anything is written."""

    item: Inbound
    queue: Queue
    customer_id: int
    created_customer: bool
    conversation: _Conversation
    contact: Any  # a stored contact in progress (a row) or a new `_Contact`
    new_contact: bool
    message: _Message | None = None


async def _take_in_batch(rt: Runtime, items: Sequence[Inbound]) -> list[Intake | Exception]:
    started = time.monotonic()
    now = rt.clock.now()
    at = utc(now)
    results: list[Intake | Exception | None] = [None] * len(items)
    seen = await _seen(rt, items)
    first_of: dict[tuple[str, str], int] = {}
    todo: list[int] = []
    for i, item in enumerate(items):
        if i in seen:
            results[i] = seen[i]
        elif item.external_id is not None and (item.channel, item.external_id) in first_of:
            continue  # the same provider item twice in one batch: answered after the first
        else:
            if item.external_id is not None:
                first_of[(item.channel, item.external_id)] = i
            todo.append(i)

    plans: dict[int, _Plan] = {}
    async with rt.writing(), rt.sessions.begin() as session:
        # Against this node's other batches and against other nodes alike.
        if rt.intake is not None and rt.engine.dialect.name == "postgresql":
            await _conversation_locks(session, rt.intake, [items[i] for i in todo])
        chosen = await rt.queue_cache.select_each(
            session, [(items[i].channel, items[i].queue, items[i].skill) for i in todo],
            since=started)
        routable: list[int] = []
        queue_of: dict[int, Queue] = {}
        for i, queue_or_error in zip(todo, chosen, strict=True):
            if isinstance(queue_or_error, ContactCenterError):
                results[i] = queue_or_error
            else:
                queue_of[i] = queue_or_error
                routable.append(i)
        threads = _Threads()
        await threads.load_conversations(session, [items[i] for i in routable])
        senders = await _senders(session, [items[i] for i in routable], threads, at)
        await threads.load_recent(session, [items[i] for i in routable],
                                  [c for c, _ in senders], at)
        waiting = _Waiting(rt)
        for i, (customer_id, created) in zip(routable, senders, strict=True):
            item = items[i]
            queue = queue_of[i]
            try:
                conversation = threads.conversation(item, customer_id, at)
                live = threads.live(conversation)
                if live is None:
                    waiting.take(queue)
                    entered = now if item.entered_at is None else min(item.entered_at, now)
                    live = _Contact(
                        channel=item.channel, direction=Direction.INBOUND.value,
                        state=ContactState.QUEUED.value, customer_id=customer_id,
                        queue_id=queue.id, tier=None,  # the card's, once read
                        from_address=item.address, to_address=item.to, subject=item.subject,
                        body=item.body, external_id=item.external_id, meta=item.contact_meta,
                        created_at=utc(entered),
                    )
                    threads.started(conversation, live)
                    new = True
                else:
                    new = False
            except ContactCenterError as e:
                results[i] = e
                continue
            plans[i] = _Plan(item, queue, customer_id, created, conversation, live, new)
        # The screen-pops' reads, together (one round trip on PostgreSQL), before the new
        # contacts are stored: a history is the customer's earlier contacts.
        conn = await session.connection()
        reads = direct.Reads(conn)
        popped = {p.customer_id for p in plans.values() if p.new_contact}
        cards_of = read_cards(reads, popped)
        histories_of = read_histories(reads, popped, limit=HISTORY)
        timelines_of = read_timelines(reads, popped)
        await reads.run()
        cards, histories, timelines = cards_of(), histories_of(), timelines_of()
        for p in plans.values():
            if p.new_contact:
                p.contact.tier = cards[p.customer_id]["tier"]
        await _write(conn, plans, at)
        enqueue, deliveries = [], []
        for i, p in plans.items():
            summary = contact_summary(p.contact, p.queue)
            results[i] = Intake(summary, p.conversation.id,
                                p.message.id if p.message else None, p.new_contact, False)
            if p.new_contact:
                card = dict(cards[p.customer_id])
                card["is_new"] = p.created_customer or card.get("is_new", False)
                enqueue.append({
                    "op": "enqueue",
                    "contact": {"id": p.contact.id, "queue_id": p.queue.id,
                                "channel": p.contact.channel,
                                "entered_at": p.contact.created_at.timestamp(),
                                "tier": p.contact.tier,
                                "owner_ids": card["owners"]},
                    "pop": {"contact": summary, "customer": card,
                            "history": histories[p.customer_id],
                            "timeline": timelines[p.customer_id]},
                })
            elif p.contact.agent_id is not None and p.message is not None:
                deliveries.append((p.contact.agent_id, {
                    "type": "message", "contact_id": p.contact.id,
                    "message": message_public(p.message)}))
    # Committed: now the router and the agents may hear of it.
    if enqueue:
        await rt.broker.submit_many(enqueue)
    if deliveries:
        await rt.broker.deliver_many(deliveries)
    for i in range(len(items)):
        if results[i] is None:  # a repeat within the batch: the first one's outcome
            first = results[first_of[(items[i].channel, items[i].external_id or "")]]
            results[i] = (Intake(first.contact, first.conversation_id, first.message_id,
                                 new_contact=False, duplicate=True)
                          if isinstance(first, Intake) else first)
    return results  # type: ignore[return-value]


class _Threads:
    """Conversations and their contacts in progress for a batch, read in three queries
    (`load_conversations`, then `load_recent` once the customers are known); what the batch
    itself starts is visible to the items after it. Rows, not ORM objects: the intake is the
    hot path, and it writes them back with set-based statements (`_write`)."""

    def __init__(self) -> None:
        self.by_id: dict[int, _Conversation] = {}
        self.recent: dict[tuple[int, str], _Conversation] = {}
        self.live_of: dict[int, Any] = {}
        self.started_in_batch: dict[int, _Contact] = {}  # id(conversation) -> contact

    async def load_conversations(self, session: AsyncSession, items: Sequence[Inbound]) -> None:
        ids = {i.conversation_id for i in items if i.conversation_id is not None}
        if ids:
            self.by_id = {c.id: c for c in await _conversations(
                session, _CONVERSATIONS_BY_ID, {"ids": list(ids)})}

    async def load_recent(self, session: AsyncSession, items: Sequence[Inbound],
                          customers: Sequence[int], at: datetime) -> None:
        joins = [(c, i.channel, i.join_within)
                 for i, c in zip(items, customers, strict=True) if i.join_within is not None]
        if joins:
            oldest = at - max(w for _, _, w in joins if w is not None)
            rows = await _conversations(session, _RECENT_CONVERSATIONS, {
                "customers": list({c for c, _, _ in joins}),
                "channels": list({ch for _, ch, _ in joins}), "oldest": oldest})
            self.recent = {(c.customer_id, c.channel): c for c in rows}  # the latest wins
        known = set(self.by_id) | {c.id for c in self.recent.values()}
        if known:
            conn = await session.connection()
            for contact in await direct.rows(conn, _LIVE_CONTACTS, {"ids": list(known)}):
                self.live_of[contact.conversation_id] = contact

    def conversation(self, item: Inbound, customer_id: int, at: datetime) -> _Conversation:
        if item.conversation_id is not None:
            conversation = self.by_id.get(item.conversation_id)
            if conversation is None:
                raise NotFound(f"no conversation {item.conversation_id}")
        else:
            key = (customer_id, item.channel)
            conversation = self.recent.get(key) if item.join_within is not None else None
            if conversation is not None and conversation.last_message_at < at - (
                item.join_within or timedelta(0)
            ):
                conversation = None
            if conversation is None:
                conversation = _Conversation(
                    id=None, customer_id=customer_id, channel=item.channel,
                    token=item.conversation_token, subject=item.subject, last_message_at=at)
                self.recent[key] = conversation
        conversation.last_message_at = at
        return conversation

    def live(self, conversation: _Conversation) -> Any:
        return self.started_in_batch.get(id(conversation)) or (
            self.live_of.get(conversation.id) if conversation.id is not None else None)

    def started(self, conversation: _Conversation, contact: _Contact) -> None:
        self.started_in_batch[id(conversation)] = contact


_CONV = Conversation.__table__
_CONTACT = Contact.__table__
_MESSAGE = Message.__table__


# The intake's statements are built once: building and keying a statement cost more than
# running it on the hot path (docs/benchmarks.md).
_CONVERSATION_COLUMNS = (_CONV.c.id, _CONV.c.customer_id, _CONV.c.channel,
                         _CONV.c.last_message_at, _CONV.c.token, _CONV.c.subject)
_CONVERSATIONS_BY_ID = direct.Hot(select(*_CONVERSATION_COLUMNS).where(
    one_of(_CONV.c.id, "ids")))
_RECENT_CONVERSATIONS = direct.Hot(select(*_CONVERSATION_COLUMNS).where(
    one_of(_CONV.c.customer_id, "customers"),
    one_of(_CONV.c.channel, "channels"),
    _CONV.c.last_message_at >= bindparam("oldest"),
).order_by(_CONV.c.last_message_at))
_LIVE_CONTACTS = direct.Hot(select(_CONTACT).where(
    one_of(_CONTACT.c.conversation_id, "ids"),
    one_of(_CONTACT.c.state, "states", _IN_PROGRESS),
).order_by(_CONTACT.c.id))
_TOUCH_CONVERSATION = direct.HotUpdate(_CONV, ["last_message_at"])
_CONTACT_COLUMNS = ("channel", "direction", "state", "customer_id", "queue_id", "tier",
                    "from_address", "to_address", "subject", "body", "external_id", "meta",
                    "created_at", "conversation_id")
_INSERT_CONVERSATIONS = direct.HotInsert(_CONV, (
    "customer_id", "channel", "status", "token", "subject", "created_at", "last_message_at"))
_INSERT_CONTACTS = direct.HotInsert(_CONTACT, _CONTACT_COLUMNS)
_INSERT_MESSAGES = direct.HotInsert(_MESSAGE, (
    "conversation_id", "contact_id", "direction", "body", "created_at", "external_id", "meta",
    "private", "attempts"))
_INSERT_THREADS = direct.Chain([
    (_INSERT_CONVERSATIONS, {}),
    (_INSERT_CONTACTS, {"conversation_id": 0}),
    (_INSERT_MESSAGES, {"conversation_id": 0, "contact_id": 1}),
])
_INSERT_ATTACHMENTS = insert(Attachment.__table__)


async def _conversations(session: AsyncSession, stmt: direct.Hot,
                         params: dict[str, Any]) -> list[_Conversation]:
    conn = await session.connection()
    return [_Conversation(*row) for row in await direct.rows(conn, stmt, params)]


async def _senders(session: AsyncSession, items: Sequence[Inbound], threads: _Threads,
                   at: datetime) -> list[tuple[int, bool]]:
    """Who each item is from, as (customer id, created). A line in a known conversation is that
    conversation's customer's, whatever address it came from (an anonymous chat has no phone
    or email); the others are found or created by their address."""
    owner = {i: threads.by_id[item.conversation_id].customer_id
             for i, item in enumerate(items)
             if item.conversation_id is not None and item.conversation_id in threads.by_id}
    rest = [i for i in range(len(items)) if i not in owner]
    found = await find_or_create_many(
        session, [(items[i].channel, items[i].address, items[i].display_name) for i in rest],
        now=at)
    who = {i: (owner[i], False) for i in owner} | dict(zip(rest, found, strict=True))
    return [who[i] for i in range(len(items))]


class _Waiting:
    """Say no before storing anything when a queue is full (per the latest live snapshot, at
    most a second old, plus what this batch adds); a contact that slips through is expired by
    the router itself."""

    def __init__(self, rt: Runtime) -> None:
        self.counts = {q["id"]: q["waiting"] for q in rt.live_stats.get("queues", ())}

    def take(self, queue: Queue) -> None:
        waiting = self.counts.get(queue.id, 0)
        if queue.max_length is not None and waiting >= queue.max_length:
            raise Unavailable(
                f"queue {queue.name!r} is full ({waiting} waiting); try again later")
        self.counts[queue.id] = waiting + 1


async def _write(conn: AsyncConnection, plans: dict[int, _Plan], at: datetime) -> None:
    """Insert the new conversations, contacts and messages (one `direct.Chain`: a contact
    takes its new conversation's id, a message its new contact's) and touch the joined
    conversations."""
    conversations = list({id(p.conversation): p.conversation for p in plans.values()}.values())
    new = [c for c in conversations if c.id is None]
    # By id: a conversation named by an item and found as a sender's latest is read twice.
    joined = list({c.id: c for c in conversations if c.id is not None}.values())
    if joined:
        await direct.run_many(conn, _TOUCH_CONVERSATION,
                              [{"cid": c.id, "last_message_at": c.last_message_at} for c in joined])
    new_at = {id(c): k for k, c in enumerate(new)}
    contacts = [p for p in plans.values() if p.new_contact]
    contact_at = {id(p.contact): k for k, p in enumerate(contacts)}

    def conversation_of(p: _Plan) -> int | direct.New:
        c = p.conversation
        return c.id if c.id is not None else direct.New(new_at[id(c)])

    messaged = [p for p in plans.values()
                # a call has no message: the contact is the record
                if p.item.body or p.item.attachments or p.item.meta]
    if not (new or contacts or messaged):
        return
    conversation_ids, contact_ids, message_ids = await _INSERT_THREADS.insert(conn, [
        [{"customer_id": c.customer_id, "channel": c.channel, "status": "open",
          "token": c.token, "subject": c.subject, "created_at": at,
          "last_message_at": c.last_message_at} for c in new],
        [{**{k: getattr(p.contact, k) for k in _CONTACT_COLUMNS},
          "conversation_id": conversation_of(p)} for p in contacts],
        [{"conversation_id": conversation_of(p),
          "contact_id": (direct.New(contact_at[id(p.contact)]) if p.new_contact
                         else p.contact.id),
          "direction": Direction.INBOUND.value, "body": p.item.body, "created_at": at,
          "external_id": _message_key(p.item), "meta": dict(p.item.meta),
          "private": False, "attempts": 0} for p in messaged],
    ])
    for c, id_ in zip(new, conversation_ids, strict=True):
        c.id = id_
    for p, id_ in zip(contacts, contact_ids, strict=True):
        p.contact.id = id_
        p.contact.conversation_id = p.conversation.id
    for p, id_ in zip(messaged, message_ids, strict=True):
        p.message = _Message(body=p.item.body, meta=dict(p.item.meta), created_at=at, id=id_)
    attachments = [
        {"message_id": p.message.id, "filename": a.filename, "content_type": a.content_type,
         "size": len(a.content), "content": a.content}
        for p in messaged if p.message is not None for a in p.item.attachments]
    if attachments:
        await conn.execute(_INSERT_ATTACHMENTS, attachments)


def _message_key(inbound: Inbound) -> str | None:
    # Namespaced by channel: a Twilio SID and a mail Message-ID share one unique column.
    return None if inbound.external_id is None else f"{inbound.channel}:{inbound.external_id}"


async def _seen(rt: Runtime, items: Sequence[Inbound]) -> dict[int, Intake]:
    """Items whose provider id is already stored: answered with what was stored then."""
    keyed = {i: item for i, item in enumerate(items) if item.external_id is not None}
    if not keyed:
        return {}
    async with rt.sessions() as session:
        messages = {m.external_id: m for m in (await session.scalars(select(Message).where(
            Message.external_id.in_({_message_key(x) for x in keyed.values()})))).all()}
        contacts = {(c.channel, c.external_id): c for c in (await session.scalars(
            select(Contact).where(Contact.external_id.in_(
                {x.external_id for x in keyed.values()})))).all()}
        by_id = {c.id: c for c in contacts.values()}
        missing = {m.contact_id for m in messages.values()
                   if m.contact_id is not None and m.contact_id not in by_id}
        if missing:
            by_id |= {c.id: c for c in (await session.scalars(
                select(Contact).where(Contact.id.in_(missing)))).all()}
    out = {}
    for i, item in keyed.items():
        message = messages.get(_message_key(item))
        contact = (by_id.get(message.contact_id) if message is not None and message.contact_id
                   else contacts.get((item.channel, item.external_id)))
        if contact is not None:
            out[i] = Intake(contact_summary(contact), contact.conversation_id or 0,
                            message.id if message else None, new_contact=False, duplicate=True)
    return out


def message_public(message: Message | _Message) -> dict[str, Any]:
    return {
        "id": message.id, "direction": message.direction, "body": message.body,
        "author_user_id": message.author_user_id, "private": message.private,
        "status": message.status, "error": message.error, "meta": message.meta or {},
        "created_at": message.created_at.isoformat(),
    }
