"""Property tests: random call sequences against a small reference model of the router.

The model is rebuilt only from the effects the router returns (plus the calls made), so
checking the router's views against it after every step also checks that every state change
was reported. At each OFFERED effect the model checks, by brute force, that the agent was
connected, AVAILABLE and eligible, and that no better waiting contact was eligible for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from contactcenter.domain import AgentStatus, ContactState, EventKind, Strategy
from contactcenter.routing import (
    AgentSpec,
    AgentStatusChanged,
    ContactEvent,
    ContactSpec,
    Effect,
    QueueSpec,
    Router,
    RoutingConfig,
    RoutingError,
)

T0 = 1_700_000_000
CONFIG = RoutingConfig(max_missed_offers=2)
QUEUES = {
    1: QueueSpec(1, "general", offer_timeout=10, wrapup_seconds=20),
    2: QueueSpec(
        2,
        "billing",
        frozenset({"billing"}),
        Strategy.LEAST_BUSY,
        offer_timeout=5,
        wrapup_seconds=30,
        dispositions=("resolved", "sold"),
    ),
    3: QueueSpec(3, "vip", strategy=Strategy.ROUND_ROBIN, base_priority=5, max_length=3),
}
AGENTS = {
    1: AgentSpec(1, frozenset({"billing"}), {"voice": 1, "chat": 2}),
    2: AgentSpec(2, frozenset(), {"chat": 3}),
    3: AgentSpec(3, frozenset({"billing"}), {"voice": 1}),
    4: AgentSpec(4, frozenset({"billing", "sales"})),
}
HOLDING = (ContactState.OFFERED, ContactState.ACTIVE, ContactState.WRAPUP)

agent_ids = st.sampled_from(sorted(AGENTS))
picks = st.integers(0, 1_000)  # index into whatever candidates exist at that step


@dataclass
class MContact:
    spec: ContactSpec
    queue_id: int
    state: ContactState
    queued_at: float
    agent: int | None = None
    target: int | None = None
    deadline: float | None = None
    declined: dict[int, float] = field(default_factory=dict)


@dataclass
class MAgent:
    spec: AgentSpec
    status: AgentStatus
    missed: int = 0


class RouterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = float(T0)
        self.router = self._fresh_router()
        self.agents: dict[int, MAgent] = {}
        self.contacts: dict[int, MContact] = {}
        self.pending_specs: dict[int, ContactSpec] = {}
        self.next_id = 1

    @staticmethod
    def _fresh_router() -> Router:
        router = Router(CONFIG)
        for q in QUEUES.values():
            router.upsert_queue(q)
        return router

    # -- model ---------------------------------------------------------------------------

    def load(self, agent_id: int) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.contacts.values():
            if c.agent == agent_id and c.state in HOLDING:
                out[c.spec.channel] = out.get(c.spec.channel, 0) + 1
        return out

    def offers_of(self, agent_id: int) -> list[int]:
        return sorted(
            cid
            for cid, c in self.contacts.items()
            if c.agent == agent_id and c.state is ContactState.OFFERED
        )

    def unanswered(self, queue_id: int) -> list[MContact]:
        return [
            c
            for c in self.contacts.values()
            if c.queue_id == queue_id and c.state in (ContactState.QUEUED, ContactState.OFFERED)
        ]

    def connected(self, agent_id: int | None) -> bool:
        a = self.agents.get(agent_id) if agent_id is not None else None
        return a is not None and a.status is not AgentStatus.OFFLINE

    def eligible(self, agent_id: int, c: MContact, now: float) -> bool:
        a = self.agents.get(agent_id)
        if a is None or a.status is not AgentStatus.AVAILABLE:
            return False
        if self.load(agent_id).get(c.spec.channel, 0) >= a.spec.capacity.get(c.spec.channel, 0):
            return False
        declined = c.declined.get(agent_id)
        if declined is not None and now < declined + QUEUES[c.queue_id].offer_timeout:
            return False
        if c.target is not None and self.connected(c.target):
            return agent_id == c.target  # a transfer to an agent ignores the queue's skills
        return QUEUES[c.queue_id].required_skills <= a.spec.skills

    def rank(self, c: MContact, now: float) -> tuple[Fraction, float, int]:
        q = QUEUES[c.queue_id]
        priority = (
            Fraction(q.base_priority)
            + Fraction(CONFIG.boost(c.spec.tier))
            + Fraction(CONFIG.aging_per_minute) * (Fraction(now) - Fraction(c.spec.entered_at)) / 60
        )
        return (-priority, c.spec.entered_at, c.spec.id)

    def check_offer(self, e: ContactEvent) -> None:
        c = self.contacts[e.contact_id]
        assert c.state is ContactState.QUEUED, f"offered contact {c.spec.id} was {c.state}"
        assert e.agent_id is not None
        assert self.eligible(e.agent_id, c, e.at), f"agent {e.agent_id} not eligible for {c}"
        mine = self.rank(c, e.at)
        for other in self.contacts.values():
            if other.state is ContactState.QUEUED and self.eligible(e.agent_id, other, e.at):
                assert mine <= self.rank(other, e.at), (
                    f"offered {c.spec.id} to {e.agent_id} but {other.spec.id} ranks higher"
                )
        q = QUEUES[c.queue_id]
        assert e.data == {"expires_at": e.at + q.offer_timeout, "wait": e.at - c.queued_at}

    def apply(self, effects: list[Effect]) -> None:
        """Follow a call's effects, then check its dispatch left no possible match unmade."""
        for e in effects:
            assert e.at == self.now
            if isinstance(e, AgentStatusChanged):
                self.apply_status(e)
            else:
                self.apply_event(e)
        for c in self.contacts.values():
            if c.state is ContactState.QUEUED:
                for agent_id in self.agents:
                    assert not self.eligible(agent_id, c, self.now), (
                        f"contact {c.spec.id} left waiting though agent {agent_id} could take it"
                    )

    def apply_status(self, e: AgentStatusChanged) -> None:
        a = self.agents[e.agent_id]
        assert a.status is not e.status, f"no-op status change {e}"
        if e.reason == "missed-offers":
            assert a.missed >= CONFIG.max_missed_offers and a.status is AgentStatus.AVAILABLE
        if e.reason == "connected":
            a.missed = 0
        a.status = e.status

    def apply_event(self, e: ContactEvent) -> None:
        kind = e.kind
        if kind is EventKind.ENTERED:
            spec = self.pending_specs.pop(e.contact_id)
            assert e.contact_id not in self.contacts
            self.contacts[e.contact_id] = MContact(spec, spec.queue_id, e.state, e.at)
            assert e.state is ContactState.QUEUED
            return
        if kind is EventKind.EXPIRED:
            spec = self.pending_specs.pop(e.contact_id)
            limit = QUEUES[spec.queue_id].max_length
            assert limit is not None and len(self.unanswered(spec.queue_id)) >= limit
            assert (e.state, e.data) == (ContactState.EXPIRED, {"reason": "queue-full"})
            return
        c = self.contacts[e.contact_id]
        before = c.state
        if kind is EventKind.OFFERED:
            self.check_offer(e)
            c.agent, c.deadline = e.agent_id, e.data["expires_at"]
            expected = ContactState.OFFERED
        elif kind is EventKind.ACCEPTED:
            assert before is ContactState.OFFERED and c.agent == e.agent_id
            self.agents[c.agent].missed = 0
            expected = ContactState.ACTIVE
        elif kind in (EventKind.REJECTED, EventKind.OFFER_TIMEOUT):
            assert before is ContactState.OFFERED and c.agent == e.agent_id
            a = self.agents[e.agent_id]
            if kind is EventKind.OFFER_TIMEOUT:
                assert c.deadline is not None and c.deadline <= e.at
                a.missed += 1
            elif e.data["reason"] == "rejected":
                a.missed = 0
            if kind is EventKind.OFFER_TIMEOUT or e.data["reason"] == "rejected":
                c.declined[e.agent_id] = e.at
                if c.target == e.agent_id:
                    c.target = None
            c.agent = c.deadline = None
            expected = ContactState.QUEUED
        elif kind is EventKind.TRANSFERRED:
            assert before is ContactState.ACTIVE and c.agent == e.agent_id
            c.queue_id, c.queued_at, c.target = e.queue_id, e.at, e.data["to_agent"]
            c.agent, c.declined = None, {}
            expected = ContactState.QUEUED
        elif kind is EventKind.ENDED:
            assert before is ContactState.ACTIVE and c.agent == e.agent_id
            c.deadline = e.data["wrapup_deadline"]
            assert c.deadline == e.at + QUEUES[c.queue_id].wrapup_seconds
            expected = ContactState.WRAPUP
        elif kind is EventKind.ABANDONED:
            assert before in (ContactState.QUEUED, ContactState.OFFERED)
            assert e.agent_id == c.agent and e.data == {"wait": e.at - c.queued_at}
            expected = ContactState.ABANDONED
        elif kind is EventKind.COMPLETED:
            assert before in (ContactState.ACTIVE, ContactState.WRAPUP) and c.agent == e.agent_id
            expected = ContactState.CLOSED
        else:
            raise AssertionError(f"unexpected {e}")
        assert e.state is expected, f"{kind} left state {e.state}"
        assert e.queue_id == c.queue_id
        c.state = expected
        if expected.is_final:
            del self.contacts[e.contact_id]

    def call(self, legal: bool, fn, *args, **kwargs) -> list[Effect]:
        """Make a router call, expecting RoutingError exactly when the model says illegal."""
        try:
            effects = fn(*args, **kwargs)
        except RoutingError:
            assert not legal, f"{fn.__name__}{args} refused but legal"
            return []
        assert legal, f"{fn.__name__}{args} accepted but illegal"
        self.apply(effects)
        return effects

    def pick(self, index: int, states: tuple[ContactState, ...]) -> MContact | None:
        found = [c for _, c in sorted(self.contacts.items()) if c.state in states]
        return found[index % len(found)] if found else None

    # -- rules ---------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([0, 1, 2, 3, 5, 8, 13, 30]))
    def wait(self, seconds: int) -> None:
        self.now += seconds

    @rule(seconds=st.sampled_from([0, 1, 4, 10, 31]))
    def tick(self, seconds: int) -> None:
        self.now += seconds
        self.apply(self.router.tick(self.now))
        for c in self.contacts.values():
            if c.state in (ContactState.OFFERED, ContactState.WRAPUP):
                assert c.deadline is not None and c.deadline > self.now, f"overdue {c}"

    @rule()
    def let_offers_lapse(self) -> None:
        """Nobody answers for a while: offers time out, agents who miss too many go away."""
        for _ in range(3):
            self.tick(11)

    @rule(
        agent_id=agent_ids,
        action=st.sampled_from(
            ["log-in"] * 3 + ["connect", "available", "away", "offline", "disconnect", "skill"]
        ),
    )
    def agent_does(self, agent_id: int, action: str) -> None:
        if action in ("connect", "log-in"):
            self.connect(agent_id)
        if action in ("available", "log-in"):
            self.set_status(agent_id, AgentStatus.AVAILABLE)
        elif action in ("away", "offline"):
            self.set_status(agent_id, AgentStatus(action))  # offline must be refused
        elif action == "disconnect":
            self.call(agent_id in self.agents, self.router.disconnect, agent_id, self.now)
        elif action == "skill":
            self.toggle_billing_skill(agent_id)

    def connect(self, agent_id: int) -> None:
        if agent_id in self.agents:
            self.agents[agent_id].spec = AGENTS[agent_id]
        else:
            self.agents[agent_id] = MAgent(AGENTS[agent_id], AgentStatus.OFFLINE)
        self.apply(self.router.connect(AGENTS[agent_id], self.now))

    def set_status(self, agent_id: int, status: AgentStatus) -> None:
        legal = status is not AgentStatus.OFFLINE and self.connected(agent_id)
        if legal and status is AgentStatus.AVAILABLE:
            self.agents[agent_id].missed = 0
        self.call(legal, self.router.set_status, agent_id, status, self.now)

    def toggle_billing_skill(self, agent_id: int) -> None:
        a = self.agents.get(agent_id)
        if a is None:
            self.call(False, self.router.update_agent, AGENTS[agent_id], self.now)
            return
        a.spec = AgentSpec(agent_id, a.spec.skills ^ {"billing"}, a.spec.capacity)
        self.call(True, self.router.update_agent, a.spec, self.now)

    @rule(
        queue_id=st.sampled_from(sorted(QUEUES)),
        channel=st.sampled_from(["voice", "chat"]),
        tier=st.sampled_from(["A", "B", "C", None]),
        waited=st.sampled_from([0, 0, 30, 600, 1_800]),  # arrived earlier in another system
    )
    def enqueue(self, queue_id: int, channel: str, tier: str | None, waited: int) -> None:
        spec = ContactSpec(self.next_id, queue_id, channel, self.now - waited, tier)
        self.next_id += 1
        self.pending_specs[spec.id] = spec
        self.apply(self.router.enqueue(spec, self.now))
        assert not self.pending_specs

    @rule(
        index=picks,
        choices=st.lists(st.integers(0, 9), min_size=1, max_size=3),
        disposition=st.sampled_from(["resolved", "sold", "bogus"]),
        to_queue=st.sampled_from(sorted(QUEUES)),
        to_agent=agent_ids,
    )
    def agents_work(
        self, index: int, choices: list[int], disposition: str, to_queue: int, to_agent: int
    ) -> None:
        """Move up to three held contacts one step on: answer, finish or pass them on."""
        for offset, choice in enumerate(choices):
            c = self.pick(index + offset, HOLDING)
            if c is None:
                return
            self.progress(c, choice, disposition, to_queue, to_agent)

    def progress(
        self, c: MContact, choice: int, disposition: str, to_queue: int, to_agent: int
    ) -> None:
        r, cid, now = self.router, c.spec.id, self.now
        if c.state is ContactState.OFFERED:
            self.call(True, r.accept if choice < 7 else r.reject, c.agent, cid, now)
        elif c.state is ContactState.ACTIVE and choice < 3:
            self.call(True, r.end, c.agent, cid, now)
        elif c.state is ContactState.ACTIVE and choice < 5:
            limit = QUEUES[to_queue].max_length
            legal = limit is None or len(self.unanswered(to_queue)) < limit
            self.call(legal, r.transfer, c.agent, cid, now, to_queue_id=to_queue)
        elif c.state is ContactState.ACTIVE and choice < 7:
            legal = self.connected(to_agent) and to_agent != c.agent
            self.call(legal, r.transfer, c.agent, cid, now, to_agent_id=to_agent)
        elif c.state is ContactState.ACTIVE and choice < 8:
            self.apply(r.customer_left(cid, now))
        else:
            legal = disposition in QUEUES[c.queue_id].dispositions
            self.call(legal, r.complete, c.agent, cid, disposition, now)

    @rule(index=picks, patience=st.integers(0, 3))
    def customer_left(self, index: int, patience: int) -> None:
        """Waiting customers hang up now and then (one draw in four)."""
        if patience == 0 and (c := self.pick(index, (ContactState.QUEUED, ContactState.OFFERED))):
            self.apply(self.router.customer_left(c.spec.id, self.now))

    @rule(
        agent_id=agent_ids,
        contact_id=st.integers(1, 30),
        op=st.sampled_from(["accept", "reject", "end", "complete"]),
    )
    def arbitrary_call(self, agent_id: int, contact_id: int, op: str) -> None:
        """Mostly illegal combinations: they must be refused and change nothing."""
        c = self.contacts.get(contact_id)
        mine = c is not None and c.agent == agent_id
        state = c.state if c is not None else None
        if op == "complete":
            legal = mine and state in (ContactState.ACTIVE, ContactState.WRAPUP)
            legal = legal and "resolved" in QUEUES[c.queue_id].dispositions  # type: ignore[union-attr]
            self.call(legal, self.router.complete, agent_id, contact_id, "resolved", self.now)
            return
        wanted = ContactState.ACTIVE if op == "end" else ContactState.OFFERED
        self.call(
            mine and state is wanted, getattr(self.router, op), agent_id, contact_id, self.now
        )

    @rule()
    def restart(self) -> None:
        """Fail-over: a new router rebuilt from the stored states, then a tick."""
        self.router = self._fresh_router()
        for cid, c in sorted(self.contacts.items()):
            spec = ContactSpec(
                cid,
                c.queue_id,
                c.spec.channel,
                c.spec.entered_at,
                c.spec.tier,
                target_agent_id=c.target,
            )
            if c.state is ContactState.WRAPUP:
                assert c.deadline is not None
                since = c.deadline - QUEUES[c.queue_id].wrapup_seconds
            elif c.state is ContactState.ACTIVE:
                since = None
            else:
                since = c.queued_at
            self.router.restore(spec, c.state, c.agent, self.now, since)
            c.declined = {}
            if c.state is ContactState.OFFERED:
                c.state, c.agent, c.deadline = ContactState.QUEUED, None, None
        holders = {c.agent for c in self.contacts.values() if c.agent is not None}
        self.agents = {a: MAgent(AgentSpec(a), AgentStatus.OFFLINE) for a in holders}
        self.apply(self.router.tick(self.now))

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def longest_idle_index_ranks_the_free_agents(self) -> None:
        # The default strategy offers to the first agent who fits in this index instead of
        # ranking every free agent per offer; it must always hold exactly the free agents of
        # each channel, ranked as _pick ranks them. (An internal structure, checked directly:
        # a stale entry would only show as a slightly wrong choice of agent.)
        r = self.router
        for channel, members in r._free_on.items():
            ranked = sorted((r._agents[i].total_load() > 0, r._agents[i].idle_since, i)
                            for i in members)
            assert list(r._idle_ordered(channel)) == ranked

    @invariant()
    def free_sets_and_ready_count_agree_with_the_agents_and_lists(self) -> None:
        # Dispatch skips everything when `_n_ready` is 0, and looks only at `_free_on` for who
        # can take a channel: both must follow every change.
        r = self.router
        for agent_id, a in r._agents.items():
            open_ = a.status is AgentStatus.AVAILABLE
            room = {ch for ch, cap in a.spec.capacity.items() if a.load.get(ch, 0) < cap}
            expected = room if open_ else set()
            assert a.free_on == expected
            assert {ch for ch, members in r._free_on.items() if agent_id in members} == expected
            assert (agent_id in r._free) == bool(expected)
        lists = [r._ready_for_agent, *r._ready.values()]
        assert r._n_ready == sum(len(lst) for lst in lists)

    @invariant()
    def router_matches_model(self) -> None:
        assert self.router.agents() == sorted(self.agents)
        for agent_id, a in self.agents.items():
            load = self.load(agent_id)
            assert self.router.agent_status(agent_id) is a.status
            assert self.router.agent_load(agent_id) == load
            assert self.router.offers_of(agent_id) == self.offers_of(agent_id)
            for channel, n in load.items():
                assert n <= a.spec.capacity.get(channel, 0), f"agent {agent_id} over capacity"
            if a.status is AgentStatus.AVAILABLE:
                assert a.missed < CONFIG.max_missed_offers
        for cid in range(1, self.next_id):
            c = self.contacts.get(cid)
            assert self.router.contact_state(cid) == (c.state if c else None)
        for queue_id in QUEUES:
            waiting = self.unanswered(queue_id)
            assert self.router.waiting(queue_id) == len(waiting)
            oldest = min((c.spec.entered_at for c in waiting), default=None)
            assert self.router.oldest_entered(queue_id) == oldest


RouterMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)
TestRouter = RouterMachine.TestCase
