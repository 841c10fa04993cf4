"""The routing core: which waiting contact is offered to which agent, and when.

Sans-I/O in the manner of the `websockets` protocol core: the `Router` owns no sockets,
tasks or clocks. Every call takes the current time `now` (epoch seconds) and returns the
effects it caused, in order, for the adapter to persist and deliver. Given the same calls
the router produces the same effects, which is what makes it testable and replayable.

Effects:

- `ContactEvent` for every contact state change. `data` keys by kind:
  ENTERED {}; OFFERED {"expires_at", "wait"}; ACCEPTED {"wait"};
  REJECTED {"reason": "rejected" | "disconnected"}; OFFER_TIMEOUT {};
  ABANDONED {"wait"}; TRANSFERRED {"from_queue", "to_queue", "to_agent", "from_agent"};
  ENDED {"wrapup_deadline"} plus {"reason": "customer-left"} when the customer hung up;
  COMPLETED {"disposition"} plus {"reason": "wrapup-timeout"} (disposition None) on timeout;
  EXPIRED {"reason": "queue-full"}.
  `wait` is always `now - queued_at`, where `queued_at` is when the contact entered its
  current queue (a transfer restarts it; `entered_at` never changes).
  `agent_id` is the agent concerned: the one offered/handling the contact, the one who
  rejected or missed it, the one who transferred it, or None.
- `AgentStatusChanged` for every agent status change, with a reason: "connected",
  "requested", "missed-offers" or "disconnected".

A contact counts as *waiting* in its queue while it is QUEUED or OFFERED (not yet answered):
that is what `waiting()`, `oldest_entered()` and `max_length` see.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sortedcontainers import SortedList

from contactcenter.domain import (
    DEFAULT_CAPACITY,
    AgentStatus,
    ContactState,
    EventKind,
    Strategy,
)

__all__ = [
    "AgentSpec",
    "AgentStatusChanged",
    "ContactEvent",
    "ContactSpec",
    "Effect",
    "QueueSpec",
    "Router",
    "RoutingConfig",
    "RoutingError",
]


class RoutingError(Exception):
    """A call that is illegal in the router's current state. The router is left unchanged."""


def _default_tier_boost() -> dict[str, float]:
    return {"A": 30.0, "B": 20.0, "C": 0.0, "D": 0.0}


def _default_capacity() -> dict[str, int]:
    return dict(DEFAULT_CAPACITY)


@dataclass(frozen=True)
class RoutingConfig:
    tier_boost: Mapping[str, float] = field(default_factory=_default_tier_boost)
    # Global (not per queue) so that priority order never changes with time: see _ready_key.
    aging_per_minute: float = 1.0
    max_missed_offers: int = 3

    def __post_init__(self) -> None:
        if self.aging_per_minute < 0:
            raise ValueError("aging_per_minute must be >= 0")
        if self.max_missed_offers < 1:
            raise ValueError("max_missed_offers must be >= 1")

    def boost(self, tier: str | None) -> float:
        return 0.0 if tier is None else float(self.tier_boost.get(tier, 0.0))


@dataclass(frozen=True)
class QueueSpec:
    id: int
    name: str
    required_skills: frozenset[str] = frozenset()
    strategy: Strategy = Strategy.LONGEST_IDLE
    base_priority: float = 0
    max_length: int | None = None
    offer_timeout: float = 15.0
    wrapup_seconds: float = 60.0
    sticky_seconds: float = 0.0
    dispositions: tuple[str, ...] = ("resolved",)


@dataclass(frozen=True)
class AgentSpec:
    id: int
    skills: frozenset[str] = frozenset()
    capacity: Mapping[str, int] = field(default_factory=_default_capacity)


@dataclass(frozen=True)
class ContactSpec:
    id: int
    queue_id: int
    channel: str
    entered_at: float
    tier: str | None = None
    owner_ids: frozenset[int] = frozenset()
    target_agent_id: int | None = None


@dataclass(frozen=True)
class ContactEvent:
    kind: EventKind
    at: float
    contact_id: int
    queue_id: int
    agent_id: int | None
    state: ContactState
    data: Mapping[str, Any]


@dataclass(frozen=True)
class AgentStatusChanged:
    agent_id: int
    status: AgentStatus
    at: float
    reason: str


Effect = ContactEvent | AgentStatusChanged

_ReadyKey = tuple[float, float, int]


@dataclass(eq=False)
class _Agent:
    spec: AgentSpec
    status: AgentStatus
    idle_since: float
    missed: int = 0
    offers: set[int] = field(default_factory=set)  # pending: offered, not yet answered
    load: dict[str, int] = field(default_factory=dict)
    free_on: frozenset[str] = frozenset()  # the channels of `Router._free_on` it is in
    id: int = field(init=False)  # the spec's, which never changes: read on every step

    def __post_init__(self) -> None:
        self.id = self.spec.id

    def total_load(self) -> int:
        return sum(self.load.values())


@dataclass(eq=False)
class _Contact:
    id: int
    queue_id: int
    channel: str
    entered_at: float
    tier: str | None
    owner_ids: frozenset[int]
    target_agent_id: int | None
    state: ContactState
    queued_at: float
    agent_id: int | None = None
    ready_key: _ReadyKey | None = None  # set while QUEUED, with the ready list it is in
    ready_list: SortedList | None = None
    deadline: float | None = None  # offer expiry while OFFERED, wrap-up end while WRAPUP
    timer: int | None = None  # sequence number of the live timer; older heap entries are stale
    declined: dict[int, float] = field(default_factory=dict)  # agent id -> reject/miss time


@dataclass(eq=False)
class _Queue:
    spec: QueueSpec
    # (entered_at, contact id) of QUEUED and OFFERED contacts, for waiting() and oldest_entered().
    unanswered: SortedList = field(default_factory=SortedList)
    rr_last: int | None = None  # the agent this queue offered to last, for ROUND_ROBIN


_OFFER, _WRAPUP, _WAKE = "offer", "wrapup", "wake"


class Router:
    """Agents, queues and contacts in memory; every mutating call returns its effects.

    An offer counts against the agent's capacity on its channel as an active contact does, and
    an agent may hold as many pending offers as that leaves room for: a chat agent with three
    free slots can be offered three chats in one dispatch, a voice agent (capacity 1) one call.
    Waiting for each answer before the next offer would cap what an agent can take at one
    contact per round trip to its console, whatever its capacity.

    Agents start AWAY on connect. An agent who goes AWAY keeps its contacts and its pending
    offers: each is answered or times out like any other (revoking them would add a second
    path for the same outcome). Agents who disconnect lose their pending offers but keep their
    active and wrap-up contacts, which still count against their capacity.

    The adapter must call `tick(now)` regularly (e.g. every second, or at `next_deadline()`):
    offer timeouts, wrap-up timeouts and the end of sticky/cool-down periods happen there.
    Until that tick an overdue offer can still be accepted.

    Idle order (LONGEST_IDLE, and the tie-break of LEAST_BUSY): an agent's idle clock starts
    when it becomes AVAILABLE from AWAY/OFFLINE with nothing on hand, and again whenever its
    load drops to zero because it finished, transferred, rejected or missed something. A
    customer abandoning an offer, or a disconnect revoking it, does not move the agent back.
    """

    def __init__(self, config: RoutingConfig | None = None) -> None:
        self._config = config or RoutingConfig()
        self._queues: dict[int, _Queue] = {}
        self._agents: dict[int, _Agent] = {}
        self._contacts: dict[int, _Contact] = {}
        # QUEUED contacts, best first (the order does not change with time), split by what
        # they need: one list per (queue, channel), one for contacts sent to an agent. Dispatch
        # merges them and drops a whole list as soon as no free agent can serve it.
        self._ready: dict[tuple[int, str], SortedList] = {}
        self._ready_for_agent: SortedList = SortedList()
        self._n_ready = 0  # QUEUED contacts in all of those lists
        # Agents who could take *something*: AVAILABLE with some free capacity.
        # When empty, dispatch is a no-op, which keeps it cheap on busy days.
        self._free: set[int] = set()
        # The same, per channel with room on it: finding who can take a voice call does not
        # look at agents whose only free slots are for email.
        self._free_on: dict[str, set[int]] = {}
        # The same again, in longest-idle order (the default strategy's): choosing walks it from
        # the front and stops at the first agent who fits, instead of ranking every free agent
        # for every offer. `_idle_key` is each member's place, to find it again on a change.
        # Brought up to date only when a channel is routed (`_idle_ordered`): an agent changes
        # several times per contact on every channel it takes, and most channels are quiet.
        self._idle_order: dict[str, SortedList] = {}
        self._idle_key: dict[tuple[str, int], tuple[bool, float, int]] = {}
        self._idle_stale: dict[str, set[int]] = {}  # agents changed since, per channel
        self._timers: list[tuple[float, int, str, int]] = []
        self._seq = 0

    @property
    def config(self) -> RoutingConfig:
        return self._config

    # -- queues -------------------------------------------------------------------------

    def upsert_queue(self, spec: QueueSpec) -> None:
        """Add or replace a queue. Takes effect for waiting contacts at the next dispatch."""
        q = self._queues.get(spec.id)
        if q is None:
            self._queues[spec.id] = _Queue(spec)
            return
        old, q.spec = q.spec, spec
        if old.base_priority != spec.base_priority:
            for _, cid in q.unanswered:
                c = self._contacts[cid]
                if c.state is ContactState.QUEUED:
                    self._unready(c)
                    self._make_ready(c)

    def queue(self, queue_id: int) -> QueueSpec:
        return self._queue(queue_id).spec

    # -- agents -------------------------------------------------------------------------

    def connect(self, agent: AgentSpec, now: float) -> list[Effect]:
        """Mark the agent present, AWAY. A known agent keeps its contacts; an agent who is
        already connected (e.g. a second socket) only has its spec updated."""
        out: list[Effect] = []
        a = self._agents.get(agent.id)
        if a is None:
            a = self._agents[agent.id] = _Agent(agent, AgentStatus.OFFLINE, idle_since=now)
        a.spec = agent
        if a.status is AgentStatus.OFFLINE:
            a.status = AgentStatus.AWAY
            a.missed = 0
            out.append(AgentStatusChanged(a.id, AgentStatus.AWAY, now, "connected"))
        self._refresh(a)
        self._dispatch(now, out)
        return out

    def disconnect(self, agent_id: int, now: float) -> list[Effect]:
        """OFFLINE; a pending offer is revoked and re-routed. Idempotent for offline agents."""
        a = self._agent(agent_id)
        if a.status is AgentStatus.OFFLINE:
            return []
        a.status = AgentStatus.OFFLINE
        out: list[Effect] = [AgentStatusChanged(a.id, a.status, now, "disconnected")]
        for contact_id in sorted(a.offers):
            c = self._contacts[contact_id]
            # No cool-down: the agent is gone, and comes back AWAY anyway.
            self._withdraw_offer(c, a, now, restart_idle=False)
            self._emit(out, EventKind.REJECTED, c, now, a.id, reason="disconnected")
        self._refresh(a)
        self._dispatch(now, out)
        return out

    def update_agent(self, agent: AgentSpec, now: float) -> list[Effect]:
        """New skills/capacity. Lowering capacity below the current load drops nothing."""
        a = self._agent(agent.id)
        a.spec = agent
        self._refresh(a)
        out: list[Effect] = []
        self._dispatch(now, out)
        return out

    def set_status(self, agent_id: int, status: AgentStatus, now: float) -> list[Effect]:
        status = AgentStatus(status)
        if status is AgentStatus.OFFLINE:
            raise RoutingError(f"use disconnect() to take agent {agent_id} offline")
        a = self._agent(agent_id)
        if a.status is AgentStatus.OFFLINE:
            raise RoutingError(f"agent {agent_id} is offline")
        out: list[Effect] = []
        if status is AgentStatus.AVAILABLE:
            # Saying "I am here" is proof of presence, whatever the status was.
            a.missed = 0
        if a.status is not status:
            a.status = status
            if status is AgentStatus.AVAILABLE and a.total_load() == 0:
                a.idle_since = now
            out.append(AgentStatusChanged(a.id, status, now, "requested"))
            self._refresh(a)
        self._dispatch(now, out)
        return out

    # -- contacts -----------------------------------------------------------------------

    def enqueue(self, contact: ContactSpec, now: float) -> list[Effect]:
        q = self._queue(contact.queue_id)
        if contact.id in self._contacts:
            raise RoutingError(f"contact {contact.id} already exists")
        if self._full(q):
            return [
                ContactEvent(
                    EventKind.EXPIRED,
                    now,
                    contact.id,
                    q.spec.id,
                    None,
                    ContactState.EXPIRED,
                    {"reason": "queue-full"},
                )
            ]
        c = self._new_contact(contact, ContactState.QUEUED, queued_at=now)
        self._enter_queue(c)
        out: list[Effect] = []
        self._emit(out, EventKind.ENTERED, c, now, None)
        self._dispatch(now, out)
        return out

    def restore(
        self,
        contact: ContactSpec,
        state: ContactState,
        agent_id: int | None,
        now: float,
        since: float | None = None,
    ) -> None:
        """Rebuild one contact after a restart, emitting nothing.

        QUEUED and OFFERED contacts wait again (offers do not survive a restart); `since` is
        when they entered their current queue (default `entered_at`). ACTIVE and WRAPUP
        contacts are attached to `agent_id`, known or not, and count against its capacity
        even while it is offline; a WRAPUP deadline is `(since or now) + wrapup_seconds`.
        Call `tick(now)` once everything is restored to start dispatching.
        """
        state = ContactState(state)
        q = self._queue(contact.queue_id)
        if contact.id in self._contacts:
            raise RoutingError(f"contact {contact.id} already exists")
        if state.is_final:
            raise RoutingError(f"contact {contact.id} is {state}: nothing to restore")
        if state in (ContactState.QUEUED, ContactState.OFFERED):
            queued_at = contact.entered_at if since is None else since
            c = self._new_contact(contact, ContactState.QUEUED, queued_at)
            self._enter_queue(c)
            return
        if agent_id is None:
            raise RoutingError(f"contact {contact.id} is {state} but has no agent")
        a = self._agents.get(agent_id)
        if a is None:
            # Placeholder until the agent connects and brings its real spec.
            a = self._agents[agent_id] = _Agent(AgentSpec(agent_id), AgentStatus.OFFLINE, now)
        start = now if since is None else since
        c = self._new_contact(contact, state, start)
        self._attach(a, c)
        if state is ContactState.WRAPUP:
            self._set_timer(c, _WRAPUP, start + q.spec.wrapup_seconds)

    def accept(self, agent_id: int, contact_id: int, now: float) -> list[Effect]:
        c = self._offered_to(agent_id, contact_id)
        a = self._agents[agent_id]
        a.offers.discard(c.id)
        a.missed = 0
        c.state = ContactState.ACTIVE
        c.deadline = c.timer = None
        self._queues[c.queue_id].unanswered.remove((c.entered_at, c.id))
        self._refresh(a)
        out: list[Effect] = []
        self._emit(out, EventKind.ACCEPTED, c, now, a.id, wait=now - c.queued_at)
        self._dispatch(now, out)
        return out

    def reject(self, agent_id: int, contact_id: int, now: float) -> list[Effect]:
        c = self._offered_to(agent_id, contact_id)
        a = self._agents[agent_id]
        # An explicit answer proves presence, so it breaks a run of missed offers.
        a.missed = 0
        self._decline(c, a, now)
        out: list[Effect] = []
        self._emit(out, EventKind.REJECTED, c, now, a.id, reason="rejected")
        self._dispatch(now, out)
        return out

    def end(self, agent_id: int, contact_id: int, now: float) -> list[Effect]:
        c = self._handled_by(agent_id, contact_id, (ContactState.ACTIVE,))
        out: list[Effect] = []
        self._start_wrapup(c, now, out)
        self._dispatch(now, out)
        return out

    def complete(
        self, agent_id: int, contact_id: int, disposition: str, now: float
    ) -> list[Effect]:
        c = self._handled_by(agent_id, contact_id, (ContactState.ACTIVE, ContactState.WRAPUP))
        allowed = self._queues[c.queue_id].spec.dispositions
        if disposition not in allowed:
            raise RoutingError(
                f"disposition {disposition!r} is not allowed in queue {c.queue_id}"
                f" (allowed: {', '.join(allowed)})"
            )
        out: list[Effect] = []
        self._close(c, now, out, disposition=disposition)
        self._dispatch(now, out)
        return out

    def customer_left(self, contact_id: int, now: float) -> list[Effect]:
        """The customer hung up or closed the chat. Unknown or wrapping-up contacts: no-op."""
        c = self._contacts.get(contact_id)
        if c is None:
            return []
        out: list[Effect] = []
        if c.state in (ContactState.QUEUED, ContactState.OFFERED):
            agent_id = c.agent_id
            if c.state is ContactState.OFFERED:
                a = self._holder(c)
                a.offers.discard(c.id)
                # Not the agent's doing, so it keeps its place in the idle order.
                self._detach(a, c, now, restart_idle=False)
            else:
                self._unready(c)
            self._queues[c.queue_id].unanswered.remove((c.entered_at, c.id))
            c.state = ContactState.ABANDONED
            del self._contacts[c.id]
            self._emit(out, EventKind.ABANDONED, c, now, agent_id, wait=now - c.queued_at)
        elif c.state is ContactState.ACTIVE:
            self._start_wrapup(c, now, out, reason="customer-left")
        else:
            return []
        self._dispatch(now, out)
        return out

    def transfer(
        self,
        agent_id: int,
        contact_id: int,
        now: float,
        *,
        to_queue_id: int | None = None,
        to_agent_id: int | None = None,
    ) -> list[Effect]:
        """Send an ACTIVE contact back to waiting, in another queue or for one agent.

        A contact for one agent (`to_agent_id`) stays in its queue and is offered only to that
        agent, regardless of the queue's skills, while that agent is connected. When it
        rejects or misses the offer (or disconnects) the queue's normal routing applies.
        """
        c = self._handled_by(agent_id, contact_id, (ContactState.ACTIVE,))
        if (to_queue_id is None) == (to_agent_id is None):
            raise RoutingError("transfer needs exactly one of to_queue_id and to_agent_id")
        from_queue = c.queue_id
        if to_queue_id is not None:
            q = self._queue(to_queue_id)
            if self._full(q):
                raise RoutingError(f"queue {to_queue_id} is full")
        else:
            target = self._agent(to_agent_id)
            if target.id == agent_id:
                raise RoutingError(f"contact {contact_id} is already with agent {agent_id}")
            if target.status is AgentStatus.OFFLINE:
                raise RoutingError(f"agent {target.id} is offline")
            q = self._queues[c.queue_id]
        a = self._agents[agent_id]
        self._detach(a, c, now, restart_idle=True)
        c.queue_id = q.spec.id
        c.queued_at = now
        c.target_agent_id = to_agent_id
        c.declined.clear()
        c.state = ContactState.QUEUED
        self._enter_queue(c)
        out: list[Effect] = []
        self._emit(
            out,
            EventKind.TRANSFERRED,
            c,
            now,
            agent_id,
            from_queue=from_queue,
            to_queue=q.spec.id,
            to_agent=to_agent_id,
            from_agent=agent_id,
        )
        self._dispatch(now, out)
        return out

    def tick(self, now: float) -> list[Effect]:
        """Fire due timers (offer and wrap-up timeouts) in deadline order, then dispatch."""
        out: list[Effect] = []
        while self._timers and self._timers[0][0] <= now:
            _, seq, kind, cid = heapq.heappop(self._timers)
            c = self._contacts.get(cid)
            if c is None or c.timer != seq:
                continue
            if kind == _OFFER:
                self._offer_timed_out(c, now, out)
            elif kind == _WRAPUP:
                self._close(c, now, out, disposition=None, reason="wrapup-timeout")
        self._dispatch(now, out)
        return out

    def next_deadline(self) -> float | None:
        """The earliest time at which `tick` may have something to do, if any."""
        while self._timers:
            _, seq, kind, cid = self._timers[0]
            c = self._contacts.get(cid)
            if kind == _WAKE or (c is not None and c.timer == seq):
                return self._timers[0][0]
            heapq.heappop(self._timers)
        return None

    # -- read-only views ----------------------------------------------------------------

    def waiting(self, queue_id: int) -> int:
        """Contacts QUEUED or OFFERED in the queue (not yet answered)."""
        return len(self._queue(queue_id).unanswered)

    def oldest_entered(self, queue_id: int) -> float | None:
        """`entered_at` of the longest-waiting unanswered contact of the queue."""
        unanswered = self._queue(queue_id).unanswered
        return unanswered[0][0] if unanswered else None

    def agent(self, agent_id: int) -> AgentSpec:
        return self._agent(agent_id).spec

    def agent_status(self, agent_id: int) -> AgentStatus:
        return self._agent(agent_id).status

    def agent_load(self, agent_id: int) -> dict[str, int]:
        """Channel -> contacts offered, active or in wrap-up (channels with none omitted)."""
        return {ch: n for ch, n in self._agent(agent_id).load.items() if n}

    def contact_state(self, contact_id: int) -> ContactState | None:
        c = self._contacts.get(contact_id)
        return None if c is None else c.state

    def offers_of(self, agent_id: int) -> list[int]:
        """The agent's pending offers, lowest contact id first."""
        return sorted(self._agent(agent_id).offers)

    def agents(self) -> list[int]:
        return sorted(self._agents)

    # -- internals: lookups -------------------------------------------------------------

    def _queue(self, queue_id: int) -> _Queue:
        try:
            return self._queues[queue_id]
        except KeyError:
            raise RoutingError(f"unknown queue {queue_id}") from None

    def _agent(self, agent_id: int) -> _Agent:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise RoutingError(f"unknown agent {agent_id}") from None

    def _describe(self, contact_id: int) -> str:
        c = self._contacts.get(contact_id)
        if c is None:
            return "unknown or finished"
        where = f" with agent {c.agent_id}" if c.agent_id is not None else ""
        return f"{c.state}{where}"

    def _offered_to(self, agent_id: int, contact_id: int) -> _Contact:
        c = self._contacts.get(contact_id)
        if c is None or c.state is not ContactState.OFFERED or c.agent_id != agent_id:
            raise RoutingError(
                f"contact {contact_id} is not offered to agent {agent_id}"
                f" (it is {self._describe(contact_id)})"
            )
        return c

    def _handled_by(
        self, agent_id: int, contact_id: int, states: Iterable[ContactState]
    ) -> _Contact:
        c = self._contacts.get(contact_id)
        states = tuple(states)
        if c is None or c.state not in states or c.agent_id != agent_id:
            wanted = " or ".join(str(s) for s in states)
            raise RoutingError(
                f"contact {contact_id} is not {wanted} with agent {agent_id}"
                f" (it is {self._describe(contact_id)})"
            )
        return c

    def _holder(self, c: _Contact) -> _Agent:
        assert c.agent_id is not None, f"contact {c.id} has no agent"
        return self._agents[c.agent_id]

    def _full(self, q: _Queue) -> bool:
        return q.spec.max_length is not None and len(q.unanswered) >= q.spec.max_length

    # -- internals: state changes -------------------------------------------------------

    def _new_contact(self, spec: ContactSpec, state: ContactState, queued_at: float) -> _Contact:
        c = _Contact(
            id=spec.id,
            queue_id=spec.queue_id,
            channel=spec.channel,
            entered_at=spec.entered_at,
            tier=spec.tier,
            owner_ids=spec.owner_ids,
            target_agent_id=spec.target_agent_id,
            state=state,
            queued_at=queued_at,
        )
        self._contacts[c.id] = c
        return c

    def _enter_queue(self, c: _Contact) -> None:
        q = self._queues[c.queue_id]
        q.unanswered.add((c.entered_at, c.id))
        self._make_ready(c)
        if c.owner_ids and q.spec.sticky_seconds > 0:
            self._wake(c.queued_at + q.spec.sticky_seconds)

    def _ready_key(self, c: _Contact) -> _ReadyKey:
        # Priority at t is static + aging * (t - entered_at) / 60, so comparing two contacts
        # never depends on t: sorting by entered_at - static * 60 / aging (the moment a
        # zero-priority contact would have had to arrive to rank the same) is the same order.
        static = self._queues[c.queue_id].spec.base_priority + self._config.boost(c.tier)
        aging = self._config.aging_per_minute
        first = c.entered_at - static * 60.0 / aging if aging > 0 else -static
        return (first, c.entered_at, c.id)

    def _make_ready(self, c: _Contact) -> None:
        c.state = ContactState.QUEUED
        if c.target_agent_id is not None:
            c.ready_list = self._ready_for_agent
        else:
            c.ready_list = self._ready.setdefault((c.queue_id, c.channel), SortedList())
        c.ready_key = self._ready_key(c)
        c.ready_list.add(c.ready_key)
        self._n_ready += 1

    def _unready(self, c: _Contact) -> None:
        assert c.ready_list is not None
        c.ready_list.remove(c.ready_key)
        c.ready_key = c.ready_list = None
        self._n_ready -= 1

    def _refresh(self, a: _Agent) -> None:
        """Keep the free-agent sets right after any change to the agent."""
        if a.status is AgentStatus.AVAILABLE:
            load = a.load
            now_on = frozenset([ch for ch, cap in a.spec.capacity.items()
                                if load.get(ch, 0) < cap])
        else:
            now_on = frozenset()
        was_on = a.free_on
        if now_on != was_on:
            # Channels dropped from the capacity too: they are in `was_on`.
            for channel in was_on - now_on:
                self._free_on[channel].discard(a.id)
            for channel in now_on - was_on:
                self._free_on.setdefault(channel, set()).add(a.id)
            a.free_on = now_on
        # Its place in the idle order may have moved on every channel it is or was free on
        # (load and idle time are per agent); a channel it is in neither way has no place.
        stale = self._idle_stale
        for channel in was_on | now_on:
            stale.setdefault(channel, set()).add(a.id)
        if now_on:
            self._free.add(a.id)
        else:
            self._free.discard(a.id)

    def _idle_ordered(self, channel: str) -> SortedList:
        """The channel's free agents, longest idle first (see `_pick`)."""
        order = self._idle_order.setdefault(channel, SortedList())
        stale = self._idle_stale.get(channel)
        if stale:
            members = self._free_on.get(channel, ())
            for agent_id in stale:
                was = self._idle_key.get((channel, agent_id))
                key = None
                if agent_id in members:
                    a = self._agents[agent_id]
                    key = (a.total_load() > 0, a.idle_since, agent_id)
                if was != key:
                    if was is not None:
                        order.remove(was)
                    if key is None:
                        del self._idle_key[(channel, agent_id)]
                    else:
                        order.add(key)
                        self._idle_key[(channel, agent_id)] = key
            stale.clear()
        return order

    def _attach(self, a: _Agent, c: _Contact) -> None:
        a.load[c.channel] = a.load.get(c.channel, 0) + 1
        c.agent_id = a.id
        self._refresh(a)

    def _detach(self, a: _Agent, c: _Contact, now: float, *, restart_idle: bool) -> None:
        a.load[c.channel] -= 1
        # Finishing (or declining) work sends the agent to the back of the idle order.
        if restart_idle and a.total_load() == 0:
            a.idle_since = now
        c.agent_id = None
        c.deadline = c.timer = None
        self._refresh(a)

    def _set_timer(self, c: _Contact, kind: str, at: float) -> None:
        self._seq += 1
        c.deadline, c.timer = at, self._seq
        heapq.heappush(self._timers, (at, self._seq, kind, c.id))

    def _wake(self, at: float) -> None:
        # Nothing to fire: it only tells next_deadline() that dispatch may find new matches.
        self._seq += 1
        heapq.heappush(self._timers, (at, self._seq, _WAKE, -1))

    def _withdraw_offer(self, c: _Contact, a: _Agent, now: float, *, restart_idle: bool) -> None:
        a.offers.discard(c.id)
        self._detach(a, c, now, restart_idle=restart_idle)
        self._make_ready(c)

    def _decline(self, c: _Contact, a: _Agent, now: float) -> None:
        """The agent rejected or missed the offer: re-route, and not back to them for a while."""
        if c.target_agent_id == a.id:
            c.target_agent_id = None
        self._withdraw_offer(c, a, now, restart_idle=True)
        c.declined[a.id] = now
        self._wake(now + self._queues[c.queue_id].spec.offer_timeout)

    def _offer_timed_out(self, c: _Contact, now: float, out: list[Effect]) -> None:
        a = self._holder(c)
        self._decline(c, a, now)
        self._emit(out, EventKind.OFFER_TIMEOUT, c, now, a.id)
        a.missed += 1
        if a.missed >= self._config.max_missed_offers and a.status is AgentStatus.AVAILABLE:
            a.status = AgentStatus.AWAY
            self._refresh(a)
            out.append(AgentStatusChanged(a.id, a.status, now, "missed-offers"))

    def _start_wrapup(
        self, c: _Contact, now: float, out: list[Effect], reason: str | None = None
    ) -> None:
        c.state = ContactState.WRAPUP
        self._set_timer(c, _WRAPUP, now + self._queues[c.queue_id].spec.wrapup_seconds)
        data: dict[str, Any] = {"wrapup_deadline": c.deadline}
        if reason is not None:
            data["reason"] = reason
        self._emit(out, EventKind.ENDED, c, now, c.agent_id, **data)

    def _close(
        self,
        c: _Contact,
        now: float,
        out: list[Effect],
        disposition: str | None,
        reason: str | None = None,
    ) -> None:
        a = self._holder(c)
        self._detach(a, c, now, restart_idle=True)
        c.state = ContactState.CLOSED
        del self._contacts[c.id]
        data: dict[str, Any] = {"disposition": disposition}
        if reason is not None:
            data["reason"] = reason
        self._emit(out, EventKind.COMPLETED, c, now, a.id, **data)

    def _emit(
        self,
        out: list[Effect],
        kind: EventKind,
        c: _Contact,
        now: float,
        agent_id: int | None,
        **data: Any,
    ) -> None:
        out.append(ContactEvent(kind, now, c.id, c.queue_id, agent_id, c.state, data))

    # -- internals: dispatch ------------------------------------------------------------

    def _dispatch(self, now: float, out: list[Effect]) -> None:
        """Offer waiting contacts, best first, to the agents the queue's strategy picks."""
        # Every accept, end and wrap-up dispatches too: mostly with nothing waiting.
        if not self._free or not self._n_ready:
            return
        # (queue, channel) pairs no free agent can take in this pass. Agents only get busier
        # during a pass, so such a pair stays hopeless and its whole list is skipped: a long
        # queue that nobody free can serve costs nothing.
        hopeless: set[tuple[int, str]] = set()
        lists = [self._ready_for_agent, *self._ready.values()]
        heads = [(lst[0], n, 0) for n, lst in enumerate(lists) if lst]
        heapq.heapify(heads)
        while self._free and heads:
            key, n, i = heapq.heappop(heads)
            lst = lists[n]
            c = self._contacts[key[2]]
            a = self._choose(c, now, hopeless)
            if a is not None:
                self._offer(c, a, now, out)  # leaves the list: the next one is now at i
            elif n > 0 and (c.queue_id, c.channel) in hopeless:
                continue
            else:
                i += 1
            if i < len(lst):
                heapq.heappush(heads, (lst[i], n, i))

    def _choose(self, c: _Contact, now: float, hopeless: set[tuple[int, str]]) -> _Agent | None:
        q = self._queues[c.queue_id]
        cooldown = q.spec.offer_timeout

        def cooling(a: _Agent) -> bool:
            t = c.declined.get(a.id)
            return t is not None and now < t + cooldown

        if c.target_agent_id is not None:
            target = self._agents.get(c.target_agent_id)
            if target is not None and target.status is not AgentStatus.OFFLINE:
                if target.id in self._free_on.get(c.channel, ()) and not cooling(target):
                    return target
                return None
        group = (c.queue_id, c.channel)
        if group in hopeless:
            return None
        skills = q.spec.required_skills
        owners_only = bool(c.owner_ids) and now < c.queued_at + q.spec.sticky_seconds and any(
            (o := self._agents.get(oid)) is not None and o.status is AgentStatus.AVAILABLE
            for oid in c.owner_ids)
        if q.spec.strategy == Strategy.LONGEST_IDLE:
            # The first who fits in longest-idle order is the one _pick would choose.
            skilled = False
            for _, _, agent_id in self._idle_ordered(c.channel):
                a = self._agents[agent_id]
                if not skills <= a.spec.skills:
                    continue
                skilled = True
                if not cooling(a) and (not owners_only or agent_id in c.owner_ids):
                    return a
            if not skilled:
                hopeless.add(group)
            return None
        pool = [
            a
            for a in map(self._agents.__getitem__, self._free_on.get(c.channel, ()))
            if skills <= a.spec.skills
        ]
        if not pool:
            hopeless.add(group)
            return None
        pool = [a for a in pool if not cooling(a)]
        if owners_only:
            pool = [a for a in pool if a.id in c.owner_ids]
        return self._pick(q, pool) if pool else None

    def _pick(self, q: _Queue, pool: list[_Agent]) -> _Agent:
        strategy = q.spec.strategy
        if strategy == Strategy.LEAST_BUSY:
            return min(pool, key=lambda a: (a.total_load(), a.idle_since, a.id))
        if strategy == Strategy.ROUND_ROBIN:
            last = q.rr_last
            after = [a for a in pool if last is None or a.id > last]
            return min(after or pool, key=lambda a: a.id)
        # Longest idle: an agent holding nothing comes before one still busy with other chats,
        # however long ago the busy one last went idle.
        return min(pool, key=lambda a: (a.total_load() > 0, a.idle_since, a.id))

    def _offer(self, c: _Contact, a: _Agent, now: float, out: list[Effect]) -> None:
        q = self._queues[c.queue_id]
        self._unready(c)
        c.state = ContactState.OFFERED
        a.offers.add(c.id)
        self._attach(a, c)
        self._set_timer(c, _OFFER, now + q.spec.offer_timeout)
        q.rr_last = a.id
        self._emit(
            out, EventKind.OFFERED, c, now, a.id, expires_at=c.deadline, wait=now - c.queued_at
        )
