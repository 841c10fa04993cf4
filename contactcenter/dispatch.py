"""The dispatcher: the routing core's I/O shell.

Every node runs one; only the node holding the broker's lease routes. It reads the ordered input
log (contacts arriving at any node, agents' commands from any node's websockets), feeds the pure
`Router`, records its effects in the database (event log + contact rows) in one transaction per
batch, and only then delivers offers and updates to the agents' sockets through the broker.
Batching by what has piled up keeps latency low when idle and throughput high under load.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from contactcenter import metrics
from contactcenter.domain import FINAL_STATES, AgentStatus, ContactState, EventKind
from contactcenter.queues import active_queues, queue_spec
from contactcenter.routing import (
    AgentSpec,
    AgentStatusChanged,
    ContactEvent,
    ContactSpec,
    LiveStats,
    Router,
    RoutingConfig,
    RoutingError,
    snapshot,
)
from contactcenter.runtime import Runtime
from contactcenter.screenpop import build_screen_pop
from contactcenter.storage import direct
from contactcenter.storage.models import Contact, Customer, Queue
from contactcenter.storage.models import ContactEvent as EventRow

log = logging.getLogger(__name__)

LEASE_TTL = 5.0
TICK = 0.2
LINGER = 0.010  # seconds: the shortest round under load (`Dispatcher._step`)
STATS_EVERY = 1.0
PRESENCE_EVERY = 2.0
SWEEP_EVERY = 30.0

Effect = ContactEvent | AgentStatusChanged

_EVENTS = EventRow.__table__
_CONTACTS = Contact.__table__
_STATE_AFTER_ROUTE = frozenset({ContactState.QUEUED, ContactState.OFFERED})
# Per event, in the hot loops below: an enum's `.value` and `EventKind.X` are Python-level
# descriptor calls in 3.11, while a StrEnum member is itself the str (hashed and compared as
# one, stored as its text, encoded by orjson as its value).
_HOLDS_AGENT = frozenset({EventKind.OFFERED, EventKind.ACCEPTED})
_TIME_COLUMN = {EventKind.ACCEPTED: "answered_at", EventKind.ENDED: "ended_at"}
_TRANSFERRED, _COMPLETED, _OFFERED = EventKind.TRANSFERRED, EventKind.COMPLETED, EventKind.OFFERED
_ABANDONED = EventKind.ABANDONED
_REVOKES = frozenset({EventKind.REJECTED, EventKind.OFFER_TIMEOUT, EventKind.ABANDONED})
_NO_DATA: dict[str, Any] = {}  # shared by the events without data; only ever read


_INSERT_EVENTS = direct.HotInsert(_EVENTS,
                                  ("at", "kind", "contact_id", "queue_id", "agent_id", "data"))
_CONTACT_UPDATES: dict[frozenset[str], direct.HotUpdate] = {}


def _contact_update(shape: frozenset[str]) -> direct.HotUpdate:
    """The UPDATE for one set of keys ("cid" and the changed columns), built once: there are
    a handful of shapes."""
    stmt = _CONTACT_UPDATES.get(shape)
    if stmt is None:
        stmt = _CONTACT_UPDATES[shape] = direct.HotUpdate(_CONTACTS, sorted(shape - {"cid"}))
    return stmt


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def contact_spec(contact: Contact, customer: Customer) -> ContactSpec:
    return ContactSpec(
        id=contact.id,
        queue_id=contact.queue_id,
        channel=contact.channel,
        entered_at=contact.created_at.timestamp(),
        tier=contact.tier,
        owner_ids=frozenset(o.user_id for o in customer.owners),
    )



class LocalSocket(Protocol):
    conn: str  # its connection id, as in the agent's `connect` input


class Dispatcher:
    def __init__(self, rt: Runtime, monotonic: Callable[[], float] = time.monotonic,
                 sockets: Mapping[int, LocalSocket] | None = None) -> None:
        self.rt = rt
        # This node's agents' sockets: frames for an agent whose connection the router knows
        # is one of these skip the broker's fan-out (`_deliver`).
        self._sockets: Mapping[int, LocalSocket] = {} if sockets is None else sockets
        # Liveness, not business time: the lease's age. Injected so a test can stall a round.
        self._monotonic = monotonic
        self.router: Router | None = None
        self.stats: LiveStats | None = None
        self._cursor = "0"
        self._pops: dict[int, dict[str, Any]] = {}
        self._notes: dict[int, str] = {}
        self._conn: dict[int, str] = {}  # agent -> websocket connection id the router knows
        self._names: dict[int, str] = {}
        self._open: dict[int, tuple[str, str]] = {}  # contact -> (channel, state), for metrics
        self._queues: dict[int, Queue] = {}
        self._stopping = asyncio.Event()
        self._lease_at = 0.0
        self._due: dict[str, float] = {}
        self._errors: list[tuple[int, dict[str, Any]]] = []  # refusals to tell agents
        self._reload_queues = False
        self._fill_until = 0.0  # see `_step`
        tz = ZoneInfo(rt.settings.timezone)
        self._day_of = lambda ts: datetime.fromtimestamp(ts, tz).date()

    @property
    def is_leader(self) -> bool:
        return self.router is not None

    # -- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatcher step failed; rebuilding router state")
                self.router = None
                await asyncio.sleep(0.5)
        if self.is_leader:
            await self.rt.broker.release_lease()

    def stop(self) -> None:
        self._stopping.set()

    async def _step(self) -> None:
        if not await self._hold_lease():
            if self.router is not None:
                log.warning("lost the routing lease; another node routes now")
                self.router = None
            await asyncio.sleep(1.0)
            return
        if self.router is None:
            await self._become_leader()
        # Under load (the last round read more than one input) a round starts LINGER after
        # the one before at the soonest, so it reads more: a round's fixed cost (a transaction,
        # the statements, a delivery) is then shared by more inputs. Idle, nothing waits.
        wait = self._fill_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        started = time.monotonic()
        batch = await self.rt.broker.read_inputs(self._cursor, TICK)
        self._fill_until = started + LINGER if len(batch) > 1 else 0.0
        effects: list[Effect] = []
        # One reading of the clock for what arrived together: the inputs of a round are
        # microseconds apart, and their events then share one time, converted once for storage.
        now = self.rt.clock.now()
        for input_id, message in batch:
            self._cursor = input_id
            effects += self._apply(message, now)
        if self._reload_queues:
            await self._load_queues()
        effects += await self._periodic()
        if effects or self._errors:
            # A node that stalled past its lease must not act. A lease renewed less than half
            # its TTL ago is still ours (its TTL ran from after our reading of the clock), so
            # only a round that took longer than that asks the broker again: the question was
            # a round trip and ~13 % of the leader's CPU at 100 contacts/s.
            if not await self._hold_lease(within=LEASE_TTL / 2):
                self.router = None
                return
            await self._persist(effects)
            await self._deliver(effects)

    async def _hold_lease(self, within: float = 1.0) -> bool:
        """True while this node holds the lease; renewed when it is older than `within`."""
        mono = self._monotonic()
        if self.router is not None and mono - self._lease_at < within:
            return True
        ok = await self.rt.broker.hold_lease(LEASE_TTL)
        if ok:
            self._lease_at = mono
        return ok

    def _every(self, name: str, seconds: float) -> bool:
        mono = self._monotonic()
        if mono >= self._due.get(name, 0.0):
            self._due[name] = mono + seconds
            return True
        return False

    async def _periodic(self) -> list[Effect]:
        assert self.router is not None
        now = self.rt.clock.now()
        effects: list[Effect] = []
        if self._every("tick", TICK):
            effects += self.router.tick(now)
        if self._every("presence", PRESENCE_EVERY):
            effects += await self._drop_absent_agents(now)
        if self._every("sweep", SWEEP_EVERY):
            effects += await self._sweep_unrouted(now)
        if self._every("stats", STATS_EVERY):
            await self._publish_stats(now)
        return effects

    # -- becoming the leader -----------------------------------------------------------------
    async def _become_leader(self) -> None:
        """Rebuild the router from the database: the system of record survives any node."""
        now = self.rt.clock.now()
        s = self.rt.settings
        router = Router(
            RoutingConfig(
                tier_boost=s.tier_boost,
                aging_per_minute=s.aging_per_minute,
                max_missed_offers=s.max_missed_offers,
            )
        )
        # Inputs from here on are read after the state is loaded; an input that is also in the
        # loaded state (a contact enqueued meanwhile) is refused by the router as a duplicate.
        self._cursor = await self.rt.broker.tail_id()
        self._open.clear()
        async with self.rt.sessions() as session:
            queues = await active_queues(session)
            for q in queues:
                router.upsert_queue(queue_spec(q, s))
            self._queues = {q.id: q for q in queues}
            open_contacts = (
                await session.execute(
                    select(Contact, Customer)
                    .join(Customer, Customer.id == Contact.customer_id)
                    .options(selectinload(Customer.owners))
                    .where(Contact.state.in_([st.value for st in ContactState if not st.is_final]))
                )
            ).all()
            for contact, customer in open_contacts:
                if contact.queue_id not in self._queues:
                    continue
                since = contact.ended_at.timestamp() if contact.ended_at else None
                router.restore(
                    contact_spec(contact, customer), ContactState(contact.state),
                    contact.agent_id, now, since=since,
                )
                self._open[contact.id] = (contact.channel, contact.state)
            stats = LiveStats({q.id: q.sl_threshold_seconds for q in queues}, self._day_of)
            midnight = datetime.combine(
                self._day_of(now), datetime.min.time(), ZoneInfo(s.timezone)
            )
            # Once per leadership, not per tick: today's counters from the event log.
            rows = await session.scalars(
                select(EventRow).where(EventRow.at >= midnight).order_by(EventRow.id)
            )
            for row in rows:
                try:
                    stats.apply(
                        ContactEvent(
                            kind=EventKind(row.kind), at=row.at.timestamp(),
                            contact_id=row.contact_id, queue_id=row.queue_id,
                            agent_id=row.agent_id, state=ContactState.QUEUED,
                            data=row.data or {},
                        )
                    )
                except (KeyError, TypeError, ValueError) as e:
                    # One malformed row (an import, an old version) must not stop all routing:
                    # it is left out of today's figures, and said so.
                    log.warning("contact event %s left out of today's statistics: %r", row.id, e)
        self.router, self.stats = router, stats
        self._conn.clear()
        metrics.reset_open_contacts()
        tally = metrics.Tally()
        for channel, state in self._open.values():
            tally.moved(channel, None, state)
        tally.apply()
        log.info("node %s routes now (%d open contacts restored)", self.rt.node_id,
                 len(open_contacts))
        # Agents connected to any node announce themselves again to the new router.
        await self.rt.broker.publish("nodes", {"type": "router-started", "node": self.rt.node_id})

    async def _load_queues(self) -> None:
        """Queue settings changed: the live router takes them without losing its state."""
        assert self.router is not None and self.stats is not None
        self._reload_queues = False
        async with self.rt.sessions() as session:
            queues = await active_queues(session)
        for q in queues:
            self.router.upsert_queue(queue_spec(q, self.rt.settings))
            self.stats.set_threshold(q.id, q.sl_threshold_seconds)
        self._queues = {q.id: q for q in queues}

    # -- inputs ------------------------------------------------------------------------------
    def _apply(self, m: dict[str, Any], now: float) -> list[Effect]:
        router = self.router
        assert router is not None
        op = m.get("op")
        try:
            if op == "enqueue":
                spec = ContactSpec(**{**m["contact"], "owner_ids": frozenset(
                    m["contact"].get("owner_ids", ()))})
                if router.contact_state(spec.id) is not None:
                    return []  # already restored from the database
                self._pops[spec.id] = m["pop"]
                self._open[spec.id] = (spec.channel, "new")
                return router.enqueue(spec, now)
            if op == "connect":
                a = m["agent"]
                replaced = self._conn.get(a["id"]) not in (None, m["conn"])
                self._conn[a["id"]] = m["conn"]
                self._names[a["id"]] = m.get("name", str(a["id"]))
                spec = AgentSpec(id=a["id"], skills=frozenset(a["skills"]), capacity=a["capacity"])
                effects = router.connect(spec, now)
                if m.get("status") == AgentStatus.AVAILABLE:
                    effects += router.set_status(spec.id, AgentStatus.AVAILABLE, now)
                if replaced and not any(isinstance(e, AgentStatusChanged)
                                        and e.agent_id == spec.id for e in effects):
                    # The agent's frames went straight to the old socket's node, if it was the
                    # router's (`_deliver`): the new socket learns of them by the gap this
                    # frame's number leaves, and fills it from the replay buffer.
                    effects.append(AgentStatusChanged(spec.id, router.agent_status(spec.id),
                                                      now, "connected"))
                return effects
            if op == "disconnect":
                if self._conn.get(m["agent_id"]) != m["conn"]:
                    return []  # the agent has already reconnected elsewhere
                del self._conn[m["agent_id"]]
                return router.disconnect(m["agent_id"], now)
            if op == "status":
                return router.set_status(m["agent_id"], AgentStatus(m["status"]), now)
            if op == "accept":
                return router.accept(m["agent_id"], m["contact_id"], now)
            if op == "reject":
                return router.reject(m["agent_id"], m["contact_id"], now)
            if op == "end":
                return router.end(m["agent_id"], m["contact_id"], now)
            if op == "complete":
                effects = router.complete(m["agent_id"], m["contact_id"], m["disposition"], now)
                if m.get("notes"):
                    self._notes[m["contact_id"]] = m["notes"]
                return effects
            if op == "transfer":
                return router.transfer(
                    m["agent_id"], m["contact_id"], now,
                    to_queue_id=m.get("to_queue_id"), to_agent_id=m.get("to_agent_id"),
                )
            if op == "customer_left":
                return router.customer_left(m["contact_id"], now)
            if op == "reload":
                self._reload_queues = True
                return []
            log.warning("unknown router input %r", op)
        except RoutingError as e:
            if m.get("agent_id") is not None:
                self._errors.append((m["agent_id"], {"type": "error", "request": op,
                                                     "contact_id": m.get("contact_id"),
                                                     "message": str(e)}))
            else:
                log.info("router refused %s: %s", op, e)
        except (KeyError, TypeError, ValueError) as e:
            log.warning("malformed router input %r: %s", m, e)
        return []

    # -- effects -----------------------------------------------------------------------------
    async def _persist(self, effects: Sequence[Effect]) -> None:
        events = [e for e in effects if isinstance(e, ContactEvent)]
        if not events:
            return
        rows: list[dict[str, Any]] = []
        updates: dict[int, dict[str, Any]] = {}  # per contact, its changed columns
        ts, at = None, None
        for e in events:
            if e.at != ts:  # one datetime per instant: `direct` converts each object once
                ts, at = e.at, _utc(e.at)
            kind, state = e.kind, e.state
            rows.append({"at": at, "kind": kind, "contact_id": e.contact_id,
                         "queue_id": e.queue_id, "agent_id": e.agent_id,
                         "data": e.data or _NO_DATA})
            u = updates.setdefault(e.contact_id, {"cid": e.contact_id})
            u["state"] = state
            if kind is _TRANSFERRED:  # the only change of queue
                u["queue_id"] = e.queue_id
            if kind in _HOLDS_AGENT:
                u["agent_id"] = e.agent_id
            elif state in _STATE_AFTER_ROUTE or kind is _ABANDONED:
                u["agent_id"] = None
            column = _TIME_COLUMN.get(kind)
            if column is not None:
                u[column] = at
            elif state in FINAL_STATES:
                u["closed_at"] = at
                if kind is _COMPLETED:
                    u["disposition"] = e.data.get("disposition")
                    if e.contact_id in self._notes:
                        u["notes"] = self._notes.pop(e.contact_id)
        # One batched update per shape (the set of columns it changes), a contact in one.
        by_shape: dict[frozenset[str], list[dict[str, Any]]] = {}
        for u in updates.values():
            by_shape.setdefault(frozenset(u), []).append(u)
        # Core statements, all in one (on PostgreSQL one round trip): no unit of work for rows
        # nobody reads back. The shapes in one order, so each set of them is one statement text
        # (prepared once per connection), whatever order the contacts came in.
        async with self.rt.writing():
            await direct.write_all(self.rt.engine, [
                (_INSERT_EVENTS, rows),
                *((_contact_update(shape), by_shape[shape])
                  for shape in sorted(by_shape, key=sorted))])

    async def _deliver(self, effects: Sequence[Effect]) -> None:
        broker = self.rt.broker
        assert self.stats is not None
        out = list(self._errors)  # frames for agents, in order, sent in one batch at the end
        self._errors.clear()
        tally = metrics.Tally()
        stats, hooks, open_, pops = self.stats, self.rt.event_hooks, self._open, self._pops
        for e in effects:
            if isinstance(e, AgentStatusChanged):
                out.append((e.agent_id, {"type": "status", "status": e.status,
                                         "reason": e.reason}))
                continue
            stats.apply(e)
            tally.event(e)
            kind, state, cid = e.kind, e.state, e.contact_id
            final = state in FINAL_STATES
            if cid in open_:
                channel, before = open_[cid]
                hook = hooks.get(channel)
                if hook is not None:
                    self.rt.spawn(hook(self.rt, e))
                after = None if final else state
                tally.moved(channel, None if before == "new" else before, after)
                if after is None:
                    del open_[cid]
                else:
                    open_[cid] = (channel, after)
            if kind is _OFFERED and e.agent_id is not None:
                pop = pops.get(cid) or await self._rebuild_pop(cid)
                contact = {**pop["contact"], "state": "offered", "queue_id": e.queue_id,
                           "expires_at": e.data.get("expires_at")}
                out.append((e.agent_id, {**pop, "type": "offer", "contact": contact}))
            elif kind in _REVOKES:
                if e.agent_id is not None:
                    out.append((e.agent_id, {"type": "offer_revoked",
                                             "contact_id": cid, "reason": kind}))
            elif e.agent_id is not None:
                out.append((e.agent_id, {
                    "type": "contact",
                    "contact": {"id": cid, "state": state,
                                "queue_id": e.queue_id, "event": kind, **e.data},
                }))
            if final:
                pops.pop(cid, None)
        tally.apply()
        if out:
            sockets, conn = self._sockets, self._conn
            here = {a for a, _ in out
                    if (sock := sockets.get(a)) is not None and sock.conn == conn.get(a)}
            await broker.deliver_many(out, here)

    async def _rebuild_pop(self, contact_id: int) -> dict[str, Any]:
        async with self.rt.sessions() as session:
            contact = await session.get(Contact, contact_id)
            assert contact is not None
            customer = await session.get(Customer, contact.customer_id)
            assert customer is not None
            pop = await build_screen_pop(
                session, contact, customer, self._queues.get(contact.queue_id)
            )
        self._pops[contact_id] = pop
        return pop

    # -- housekeeping ------------------------------------------------------------------------
    async def _drop_absent_agents(self, now: float) -> list[Effect]:
        """Presence is the heartbeat, not a flag: an agent whose node stopped refreshing goes."""
        assert self.router is not None
        online = [a for a in self.router.agents()
                  if self.router.agent_status(a) != AgentStatus.OFFLINE]
        present = await self.rt.broker.present(online)
        effects: list[Effect] = []
        for agent_id in online:
            if agent_id not in present:
                log.info("agent %s missed its heartbeats; offline", agent_id)
                self._conn.pop(agent_id, None)
                effects += self.router.disconnect(agent_id, now)
        return effects

    async def _sweep_unrouted(self, now: float) -> list[Effect]:
        """A contact committed by a node that died before submitting it still gets routed."""
        assert self.router is not None
        cutoff = _utc(now) - timedelta(seconds=5)
        async with self.rt.sessions() as session:
            rows = (
                await session.execute(
                    select(Contact, Customer)
                    .join(Customer, Customer.id == Contact.customer_id)
                    .options(selectinload(Customer.owners))
                    .where(Contact.state == ContactState.QUEUED.value,
                           Contact.created_at < cutoff)
                    .limit(1000)
                )
            ).all()
        effects: list[Effect] = []
        for contact, customer in rows:
            if (self.router.contact_state(contact.id) is None
                    and contact.queue_id in self._queues):
                self._open[contact.id] = (contact.channel, "new")
                effects += self.router.enqueue(contact_spec(contact, customer), now)
        return effects

    async def _publish_stats(self, now: float) -> None:
        assert self.router is not None and self.stats is not None
        snap = snapshot(self.router, self.stats, list(self._queues), self.router.agents(), now)
        for q in snap["queues"]:
            q["name"] = self._queues[q["id"]].name if q["id"] in self._queues else q.get("name")
        for a in snap["agents"]:
            a["name"] = self._names.get(a["id"], str(a["id"]))
        snap["at"] = now
        metrics.observe_snapshot(snap)
        await self.rt.broker.publish("supervisor", {"type": "stats", **snap})
