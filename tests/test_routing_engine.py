"""Example cases for the routing core: one behaviour per test, tables where natural."""

from __future__ import annotations

from collections.abc import Callable

import pytest

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

T = 1_700_000_000.0  # any epoch; the router never reads a clock
MIN = 60.0

SALES = QueueSpec(id=1, name="sales")
SUPPORT = QueueSpec(id=2, name="support", required_skills=frozenset({"billing"}))


def make_router(*queues: QueueSpec, config: RoutingConfig | None = None) -> Router:
    router = Router(config)
    for q in queues or (SALES,):
        router.upsert_queue(q)
    return router


def agent(agent_id: int, *skills: str, **capacity: int) -> AgentSpec:
    if capacity:
        return AgentSpec(agent_id, frozenset(skills), capacity)
    return AgentSpec(agent_id, frozenset(skills))


def available(router: Router, spec: AgentSpec, now: float) -> list[Effect]:
    return router.connect(spec, now) + router.set_status(spec.id, AgentStatus.AVAILABLE, now)


def contact(
    contact_id: int,
    at: float = T,
    *,
    queue_id: int = 1,
    channel: str = "voice",
    tier: str | None = None,
    owners: frozenset[int] = frozenset(),
    target: int | None = None,
) -> ContactSpec:
    return ContactSpec(contact_id, queue_id, channel, at, tier, owners, target)


def events(effects: list[Effect], kind: EventKind | None = None) -> list[ContactEvent]:
    return [e for e in effects if isinstance(e, ContactEvent) and kind in (None, e.kind)]


def offers(effects: list[Effect]) -> list[tuple[int, int | None]]:
    """(contact, agent) of each OFFERED event, in order."""
    return [(e.contact_id, e.agent_id) for e in events(effects, EventKind.OFFERED)]


def serve_all(router: Router, agent_id: int, now: float) -> list[int]:
    """Let one agent accept and complete everything it is offered; the order served."""
    order = []
    while pending := router.offers_of(agent_id):
        cid = pending[0]
        order.append(cid)
        router.accept(agent_id, cid, now)
        router.complete(agent_id, cid, "resolved", now)
    return order


# -- priority ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrivals", "serve_at", "expected"),
    [
        pytest.param([(1, 0, "C"), (2, 0, "B"), (3, 0, "A")], 0, [3, 2, 1], id="tier-A-B-C"),
        pytest.param([(1, 0, None), (2, 10, None), (3, 20, None)], 30, [1, 2, 3], id="fifo"),
        pytest.param([(5, 0, "B"), (3, 0, "B")], 0, [3, 5], id="same-time-ties-by-id"),
        pytest.param([(1, 0, "Z"), (2, 5, None)], 10, [1, 2], id="unknown-tier-is-zero"),
        pytest.param([(1, 0, "D"), (2, 5, "C")], 10, [1, 2], id="C-and-D-have-no-boost"),
        # B's boost of 20 is worth 20 minutes of waiting at 1 point a minute.
        pytest.param([(1, 0, "C"), (2, 15 * MIN, "B")], 30 * MIN, [2, 1], id="boost-beats-age"),
        pytest.param([(1, 0, "C"), (2, 25 * MIN, "B")], 30 * MIN, [1, 2], id="age-overtakes"),
        pytest.param([(1, 10 * MIN, "C"), (2, 30 * MIN, "B")], 31 * MIN, [1, 2], id="equal-fifo"),
    ],
)
def test_priority_order(
    arrivals: list[tuple[int, float, str | None]], serve_at: float, expected: list[int]
) -> None:
    router = make_router()
    for cid, at, tier in arrivals:
        router.enqueue(contact(cid, T + at, tier=tier), T + at)
    available(router, agent(1), T + serve_at)
    assert serve_all(router, 1, T + serve_at) == expected


def test_custom_aging_rate_changes_when_age_overtakes() -> None:
    router = make_router(config=RoutingConfig(aging_per_minute=0.5))
    router.enqueue(contact(1, T, tier="C"), T)
    router.enqueue(contact(2, T + 25 * MIN, tier="B"), T + 25 * MIN)  # 20 points = 40 minutes
    available(router, agent(1), T + 30 * MIN)
    assert serve_all(router, 1, T + 30 * MIN) == [2, 1]


def test_no_aging_orders_by_priority_then_arrival() -> None:
    router = make_router(config=RoutingConfig(aging_per_minute=0))
    router.enqueue(contact(1, T, tier="C"), T)
    router.enqueue(contact(2, T + 600 * MIN, tier="B"), T + 600 * MIN)
    router.enqueue(contact(3, T + 601 * MIN, tier="B"), T + 601 * MIN)
    available(router, agent(1), T + 700 * MIN)
    assert serve_all(router, 1, T + 700 * MIN) == [2, 3, 1]


def test_queue_base_priority_ranks_across_queues_and_can_change() -> None:
    vip = QueueSpec(id=3, name="vip", base_priority=10)
    router = make_router(SALES, vip)
    router.enqueue(contact(1, T, queue_id=1), T)
    router.enqueue(contact(2, T + 5 * MIN, queue_id=3), T + 5 * MIN)
    router.upsert_queue(QueueSpec(id=3, name="vip", base_priority=0))  # re-ranks waiting ones
    available(router, agent(1), T + 6 * MIN)
    assert serve_all(router, 1, T + 6 * MIN) == [1, 2]


def test_higher_base_priority_queue_served_first() -> None:
    router = make_router(SALES, QueueSpec(id=3, name="vip", base_priority=10))
    router.enqueue(contact(1, T, queue_id=1), T)
    router.enqueue(contact(2, T + 5 * MIN, queue_id=3), T + 5 * MIN)
    available(router, agent(1), T + 6 * MIN)
    assert serve_all(router, 1, T + 6 * MIN) == [2, 1]


# -- eligibility: skills, capacity, status ----------------------------------------------


@pytest.mark.parametrize(
    ("skills", "offered"),
    [
        pytest.param((), False, id="no-skills"),
        pytest.param(("sales",), False, id="other-skill"),
        pytest.param(("billing",), True, id="exact"),
        pytest.param(("billing", "sales"), True, id="superset"),
    ],
)
def test_required_skills(skills: tuple[str, ...], offered: bool) -> None:
    router = make_router(SUPPORT)
    router.enqueue(contact(1, queue_id=2), T)
    effects = available(router, agent(7, *skills), T)
    assert offers(effects) == ([(1, 7)] if offered else [])


def test_skills_update_makes_agent_eligible() -> None:
    router = make_router(SUPPORT)
    router.enqueue(contact(1, queue_id=2), T)
    available(router, agent(7), T)
    assert offers(router.update_agent(agent(7, "billing"), T + 1)) == [(1, 7)]


@pytest.mark.parametrize(
    ("channel", "waiting", "concurrent"),
    [
        pytest.param("chat", 4, 3, id="chat-3"),
        pytest.param("voice", 2, 1, id="voice-1"),
        pytest.param("email", 7, 5, id="email-5"),
    ],
)
def test_default_capacity_per_channel(channel: str, waiting: int, concurrent: int) -> None:
    router = make_router()
    for cid in range(1, waiting + 1):
        router.enqueue(contact(cid, T + cid, channel=channel), T + cid)
    available(router, agent(1), T + 10)
    # Every free slot is offered at once: the agent need not answer one to see the next.
    assert len(router.offers_of(1)) == concurrent
    for cid in router.offers_of(1):
        router.accept(1, cid, T + 10)
    assert router.agent_load(1) == {channel: concurrent}
    assert router.waiting(1) == waiting - concurrent


def test_pending_offers_spread_over_idle_agents_before_doubling_up() -> None:
    router = make_router()
    available(router, agent(1), T)
    available(router, agent(2), T + 1)
    effects: list[Effect] = []
    for cid in range(1, 6):
        effects += router.enqueue(contact(cid, T + 2, channel="chat"), T + 2)
    # Each holds nothing at first, so each gets one before either gets a second; among agents
    # already holding something the one idle longer (1) comes first until full (chat: 3).
    assert offers(effects) == [(1, 1), (2, 2), (3, 1), (4, 1), (5, 2)]
    assert router.offers_of(1) == [1, 3, 4] and router.agent_load(1) == {"chat": 3}
    assert router.offers_of(2) == [2, 5]


def offered_chats(router: Router, *contact_ids: int) -> None:
    """One agent (1) available, then these chats arrive at T: all offered to it at once."""
    available(router, agent(1), T)
    for cid in contact_ids:
        router.enqueue(contact(cid, T, channel="chat"), T)


def test_answering_one_of_several_offers_leaves_the_others_pending() -> None:
    router = make_router()
    offered_chats(router, *(1, 2))
    router.accept(1, 2, T + 1)
    assert router.offers_of(1) == [1]
    router.reject(1, 1, T + 2)
    assert router.offers_of(1) == [] and router.agent_load(1) == {"chat": 1}
    assert router.contact_state(1) is ContactState.QUEUED


def test_voice_offers_one_call_at_a_time() -> None:
    router = make_router()
    available(router, agent(1), T)
    for cid in (1, 2):
        router.enqueue(contact(cid, T), T)
    assert router.offers_of(1) == [1]
    assert offers(router.accept(1, 1, T + 1)) == []
    assert offers(router.complete(1, 1, "resolved", T + 2)) == [(2, 1)]


def test_channels_are_independent_and_missing_channel_means_none() -> None:
    router = make_router()
    available(router, agent(1, voice=1, chat=1), T)
    router.enqueue(contact(1, channel="chat"), T)
    router.accept(1, 1, T)
    assert offers(router.enqueue(contact(2, channel="voice"), T)) == [(2, 1)]
    router.accept(1, 2, T)
    assert offers(router.enqueue(contact(3, channel="sms"), T)) == []
    assert router.agent_load(1) == {"chat": 1, "voice": 1}


def test_capacity_freed_on_complete_takes_next() -> None:
    router = make_router()
    available(router, agent(1), T)
    router.enqueue(contact(1), T)
    router.enqueue(contact(2, T + 1), T + 1)
    router.accept(1, 1, T + 2)
    router.end(1, 1, T + 3)
    assert router.offers_of(1) == []  # wrap-up still holds the voice slot
    assert offers(router.complete(1, 1, "resolved", T + 4)) == [(2, 1)]


@pytest.mark.parametrize(
    "make_unavailable",
    [
        pytest.param(lambda r, a: r.connect(a, T), id="connected-away"),
        pytest.param(lambda r, a: None, id="never-connected"),
        pytest.param(
            lambda r, a: available(r, a, T) + r.set_status(a.id, AgentStatus.AWAY, T), id="away"
        ),
        pytest.param(lambda r, a: available(r, a, T) + r.disconnect(a.id, T), id="offline"),
    ],
)
def test_away_and_offline_agents_are_never_offered(
    make_unavailable: Callable[[Router, AgentSpec], object],
) -> None:
    router = make_router()
    make_unavailable(router, agent(1))
    assert offers(router.enqueue(contact(1), T + 1)) == []
    assert offers(router.tick(T + 100)) == []
    assert router.contact_state(1) is ContactState.QUEUED


def test_agent_starts_away_on_connect() -> None:
    router = make_router()
    effects = router.connect(agent(1), T)
    assert effects == [AgentStatusChanged(1, AgentStatus.AWAY, T, "connected")]
    assert router.agent_status(1) is AgentStatus.AWAY
    assert router.agents() == [1]


def test_going_away_keeps_pending_offer_until_answered() -> None:
    router = make_router()
    available(router, agent(1), T)
    router.enqueue(contact(1), T)
    router.set_status(1, AgentStatus.AWAY, T + 1)
    assert router.offers_of(1) == [1]
    router.accept(1, 1, T + 2)
    assert router.contact_state(1) is ContactState.ACTIVE


# -- strategies -------------------------------------------------------------------------


def _three_agents(strategy: Strategy) -> Router:
    router = make_router(QueueSpec(id=1, name="q", strategy=strategy))
    # Agent 2 has been idle longest, then 3, then 1.
    available(router, agent(2), T)
    available(router, agent(3), T + 1)
    available(router, agent(1), T + 2)
    return router


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        pytest.param(Strategy.LONGEST_IDLE, [2, 3, 1, 2], id="longest-idle"),
        pytest.param(Strategy.ROUND_ROBIN, [1, 2, 3, 1], id="round-robin"),
    ],
)
def test_strategy_sequence_with_quick_calls(strategy: Strategy, expected: list[int]) -> None:
    router = _three_agents(strategy)
    picked = []
    for i in range(4):
        now = T + 10 + i
        (offer,) = offers(router.enqueue(contact(i + 1, now), now))
        picked.append(offer[1])
        router.accept(offer[1], i + 1, now)
        router.complete(offer[1], i + 1, "resolved", now)  # back at the end of the idle line
    assert picked == expected


def test_longest_idle_prefers_an_agent_holding_nothing() -> None:
    router = make_router()
    available(router, agent(1), T)  # idle since T, then takes a chat and keeps it
    router.enqueue(contact(1, channel="chat"), T + 1)
    router.accept(1, 1, T + 1)
    available(router, agent(2), T + 5)  # came later, but holds nothing
    assert offers(router.enqueue(contact(2, channel="chat"), T + 6)) == [(2, 2)]


def test_longest_idle_ties_by_lower_id() -> None:
    router = make_router()
    available(router, agent(5), T)
    available(router, agent(4), T)
    assert offers(router.enqueue(contact(1), T)) == [(1, 4)]


def test_least_busy_picks_fewest_contacts_then_longest_idle() -> None:
    router = make_router(QueueSpec(id=1, name="q", strategy=Strategy.LEAST_BUSY))
    available(router, agent(1), T)  # longest idle, but will be the busiest
    for cid in (11, 12):
        router.enqueue(contact(cid, channel="chat"), T + 1)
        router.accept(1, cid, T + 1)
    available(router, agent(2), T + 2)
    router.enqueue(contact(13, channel="chat"), T + 3)
    router.accept(2, 13, T + 3)
    available(router, agent(3), T + 4)
    assert offers(router.enqueue(contact(20, channel="chat"), T + 5)) == [(20, 3)]
    router.accept(3, 20, T + 5)
    # Agents 2 and 3 now both have one chat: 2 has been idle (available) longer.
    assert offers(router.enqueue(contact(21, channel="chat"), T + 6)) == [(21, 2)]


def test_round_robin_skips_ineligible_and_wraps() -> None:
    router = make_router(QueueSpec(id=1, name="q", strategy=Strategy.ROUND_ROBIN))
    for a in (1, 2, 3):
        available(router, agent(a), T)
    assert offers(router.enqueue(contact(1), T)) == [(1, 1)]
    assert offers(router.enqueue(contact(2), T)) == [(2, 2)]
    router.accept(2, 2, T)
    router.accept(1, 1, T)
    router.complete(1, 1, "resolved", T)
    # 3 is next after 2; then the cursor wraps to 1 (2 is still busy on voice).
    assert offers(router.enqueue(contact(3), T)) == [(3, 3)]
    assert offers(router.enqueue(contact(4), T)) == [(4, 1)]


def test_idle_clock_restarts_only_when_load_drops_to_zero() -> None:
    router = make_router()
    available(router, agent(1), T)
    available(router, agent(2), T + 1)
    router.enqueue(contact(1, channel="chat"), T + 2)  # to agent 1
    router.enqueue(contact(2, channel="chat"), T + 2)  # to agent 2
    router.accept(1, 1, T + 3)
    router.accept(2, 2, T + 3)
    router.enqueue(contact(3, channel="chat"), T + 4)  # longest idle still agent 1
    assert router.offers_of(1) == [3]
    router.accept(1, 3, T + 5)
    router.complete(1, 1, "resolved", T + 6)  # 1 still has a chat: keeps its place
    assert offers(router.enqueue(contact(4, channel="chat"), T + 7)) == [(4, 1)]


# -- sticky owners ----------------------------------------------------------------------

STICKY = QueueSpec(id=1, name="sticky", sticky_seconds=60)


def test_sticky_owner_gets_first_refusal() -> None:
    router = make_router(STICKY)
    available(router, agent(1), T)  # longest idle
    available(router, agent(2), T + 1)
    effects = router.enqueue(contact(1, T + 2, owners=frozenset({2})), T + 2)
    assert offers(effects) == [(1, 2)]


def test_sticky_waits_for_busy_owner_then_anyone_after_sticky_seconds() -> None:
    router = make_router(STICKY)
    available(router, agent(2), T)
    router.enqueue(contact(9), T)
    router.accept(2, 9, T)  # owner 2 available but at voice capacity
    available(router, agent(1), T + 1)
    assert offers(router.enqueue(contact(1, T + 2, owners=frozenset({2})), T + 2)) == []
    assert offers(router.tick(T + 61)) == []
    assert router.next_deadline() == T + 62
    assert offers(router.tick(T + 62)) == [(1, 1)]


def test_sticky_owner_freed_within_window_gets_it() -> None:
    router = make_router(STICKY)
    available(router, agent(2), T)
    router.enqueue(contact(9), T)
    router.accept(2, 9, T)
    available(router, agent(1), T + 1)
    router.enqueue(contact(1, T + 2, owners=frozenset({2})), T + 2)
    assert offers(router.complete(2, 9, "resolved", T + 30)) == [(1, 2)]


@pytest.mark.parametrize(
    "owner_setup",
    [
        pytest.param(lambda r: None, id="unknown"),
        pytest.param(lambda r: r.connect(agent(2), T), id="away"),
        pytest.param(lambda r: available(r, agent(2), T) + r.disconnect(2, T), id="offline"),
    ],
)
def test_sticky_owner_absent_means_anyone_immediately(
    owner_setup: Callable[[Router], object],
) -> None:
    router = make_router(STICKY)
    owner_setup(router)
    available(router, agent(1), T)
    assert offers(router.enqueue(contact(1, owners=frozenset({2})), T + 1)) == [(1, 1)]


# -- offers: timeout, misses, reject, disconnect ----------------------------------------


def test_offer_timeout_goes_to_next_agent() -> None:
    router = make_router()
    available(router, agent(1), T)
    available(router, agent(2), T + 1)
    router.enqueue(contact(1), T + 2)
    assert router.offers_of(1) == [1]
    assert router.tick(T + 16.9) == []
    effects = router.tick(T + 17)
    timeout, offered = events(effects)
    assert (timeout.kind, timeout.agent_id, timeout.state) == (
        EventKind.OFFER_TIMEOUT,
        1,
        ContactState.QUEUED,
    )
    assert (offered.kind, offered.agent_id, offered.data) == (
        EventKind.OFFERED,
        2,
        {"expires_at": T + 32, "wait": 15.0},
    )
    assert router.offers_of(1) == []


def _miss(router: Router, now: float) -> list[Effect]:
    """Tick just past the pending offer's expiry, and again once the cool-down is over."""
    return router.tick(now + 15) + router.tick(now + 30)


def test_three_consecutive_misses_put_agent_away() -> None:
    router = make_router()
    available(router, agent(1), T)
    router.enqueue(contact(1), T)
    _miss(router, T)  # miss 1, re-offered to the lone agent after the cool-down
    _miss(router, T + 30)  # miss 2
    effects = router.tick(T + 75)  # miss 3
    assert [e.kind for e in events(effects)] == [EventKind.OFFER_TIMEOUT]
    assert effects[-1] == AgentStatusChanged(1, AgentStatus.AWAY, T + 75, "missed-offers")
    assert offers(router.tick(T + 200)) == []
    assert router.contact_state(1) is ContactState.QUEUED


def test_several_offers_missed_at_once_count_one_miss_each() -> None:
    router = make_router()
    offered_chats(router, *(1, 2, 3))
    effects = router.tick(T + 15)
    timed_out = [e.contact_id for e in events(effects, EventKind.OFFER_TIMEOUT)]
    assert timed_out == [1, 2, 3]
    assert effects[-1] == AgentStatusChanged(1, AgentStatus.AWAY, T + 15, "missed-offers")
    assert router.offers_of(1) == [] and router.agent_load(1) == {}


def test_two_missed_offers_of_three_leave_the_agent_available() -> None:
    router = make_router()
    offered_chats(router, *(1, 2, 3))
    router.accept(1, 2, T + 1)
    effects = router.tick(T + 15)
    assert [e.contact_id for e in events(effects, EventKind.OFFER_TIMEOUT)] == [1, 3]
    assert router.agent_status(1) is AgentStatus.AVAILABLE


@pytest.mark.parametrize(
    "reset",
    [
        pytest.param("accept", id="accept"),
        pytest.param("available", id="set-available"),
        pytest.param("reject", id="reject"),
    ],
)
def test_answering_resets_missed_offers(reset: str) -> None:
    router = make_router()
    available(router, agent(1), T)
    router.enqueue(contact(1), T)
    _miss(router, T)
    _miss(router, T + 30)  # two misses, offered again at T + 60
    if reset == "accept":
        router.accept(1, 1, T + 61)
        router.complete(1, 1, "resolved", T + 62)
        router.enqueue(contact(2, T + 62), T + 62)
        start = T + 62
    elif reset == "available":
        router.set_status(1, AgentStatus.AVAILABLE, T + 61)
        start = T + 60
    else:
        router.reject(1, 1, T + 61)
        start = T + 61
    effects = router.tick(start + 15) + router.tick(start + 30) + router.tick(start + 45)
    assert not [e for e in effects if isinstance(e, AgentStatusChanged)]
    assert router.agent_status(1) is AgentStatus.AVAILABLE


def test_reject_goes_to_next_agent_and_back_to_rejecter_after_cooldown() -> None:
    router = make_router()
    available(router, agent(1), T)
    available(router, agent(2), T + 1)
    router.enqueue(contact(1), T + 2)
    effects = router.reject(1, 1, T + 3)
    rejected = events(effects)[0]
    assert (rejected.kind, rejected.agent_id, rejected.data) == (
        EventKind.REJECTED,
        1,
        {"reason": "rejected"},
    )
    assert offers(effects) == [(1, 2)]
    # Agent 2 rejects too; agent 1 is still cooling down, so the contact waits.
    assert offers(router.reject(2, 1, T + 4)) == []
    assert offers(router.tick(T + 17.9)) == []
    assert offers(router.tick(T + 18)) == [(1, 1)]


def test_lone_rejecter_is_not_offered_during_cooldown() -> None:
    router = make_router()
    available(router, agent(1), T)
    router.enqueue(contact(1), T)
    router.enqueue(contact(2, T + 1), T + 1)
    # The next best contact goes to the rejecter meanwhile.
    assert offers(router.reject(1, 1, T + 2)) == [(2, 1)]


def test_disconnect_revokes_offer_and_reroutes() -> None:
    router = make_router()
    available(router, agent(1), T)
    available(router, agent(2), T + 1)
    router.enqueue(contact(1), T + 2)
    effects = router.disconnect(1, T + 3)
    assert effects[0] == AgentStatusChanged(1, AgentStatus.OFFLINE, T + 3, "disconnected")
    revoked = events(effects)[0]
    assert (revoked.kind, revoked.agent_id, revoked.data, revoked.state) == (
        EventKind.REJECTED,
        1,
        {"reason": "disconnected"},
        ContactState.QUEUED,
    )
    assert offers(effects) == [(1, 2)]
    assert router.disconnect(1, T + 4) == []  # idempotent


def test_disconnect_revokes_every_pending_offer() -> None:
    router = make_router()
    offered_chats(router, *(1, 2))
    router.accept(1, 1, T + 1)
    router.enqueue(contact(3, T + 1, channel="chat"), T + 1)
    effects = router.disconnect(1, T + 2)
    revoked = [(e.contact_id, e.data["reason"]) for e in events(effects, EventKind.REJECTED)]
    assert revoked == [(2, "disconnected"), (3, "disconnected")]
    assert router.agent_load(1) == {"chat": 1}  # the accepted chat stays theirs
    assert router.contact_state(2) is router.contact_state(3) is ContactState.QUEUED


def test_disconnect_keeps_active_contacts_and_reconnect_keeps_them() -> None:
    router = make_router()
    available(router, agent(1), T)
    router.enqueue(contact(1, channel="chat"), T)
    router.accept(1, 1, T)
    router.disconnect(1, T + 1)
    assert router.contact_state(1) is ContactState.ACTIVE
    assert router.agent_load(1) == {"chat": 1}
    router.connect(agent(1), T + 2)
    assert router.agent_status(1) is AgentStatus.AWAY
    router.end(1, 1, T + 3)
    router.complete(1, 1, "resolved", T + 4)
    assert router.agent_load(1) == {}


# -- queue limits -----------------------------------------------------------------------


def test_full_queue_expires_new_contact() -> None:
    router = make_router(QueueSpec(id=1, name="small", max_length=2))
    available(router, agent(1), T)
    router.enqueue(contact(1), T)  # offered: still counts as waiting
    router.enqueue(contact(2), T)
    effects = router.enqueue(contact(3), T)
    assert effects == [
        ContactEvent(
            EventKind.EXPIRED, T, 3, 1, None, ContactState.EXPIRED, {"reason": "queue-full"}
        )
    ]
    assert router.contact_state(3) is None
    assert router.waiting(1) == 2
    router.accept(1, 1, T + 1)  # answered: no longer waiting
    assert events(router.enqueue(contact(3), T + 2))[0].kind is EventKind.ENTERED


def test_waiting_and_oldest_entered() -> None:
    router = make_router()
    assert (router.waiting(1), router.oldest_entered(1)) == (0, None)
    router.enqueue(contact(1, T + 5, tier="A"), T + 5)
    router.enqueue(contact(2, T + 1), T + 6)
    assert (router.waiting(1), router.oldest_entered(1)) == (2, T + 1)


# -- wrap-up ----------------------------------------------------------------------------

WRAP = QueueSpec(id=1, name="q", dispositions=("resolved", "escalated"), wrapup_seconds=30)


def _active(router: Router) -> None:
    available(router, agent(1), T)
    router.enqueue(contact(1), T)
    router.accept(1, 1, T + 4)


def test_accept_end_complete_lifecycle() -> None:
    router = make_router(WRAP)
    available(router, agent(1), T)
    router.enqueue(contact(1), T)
    accepted = events(router.accept(1, 1, T + 4))[0]
    assert (accepted.kind, accepted.state, accepted.data) == (
        EventKind.ACCEPTED,
        ContactState.ACTIVE,
        {"wait": 4.0},
    )
    ended = events(router.end(1, 1, T + 10))[0]
    assert (ended.kind, ended.state, ended.data) == (
        EventKind.ENDED,
        ContactState.WRAPUP,
        {"wrapup_deadline": T + 40},
    )
    done = events(router.complete(1, 1, "escalated", T + 20))[0]
    assert (done.kind, done.state, done.data) == (
        EventKind.COMPLETED,
        ContactState.CLOSED,
        {"disposition": "escalated"},
    )
    assert router.contact_state(1) is None  # forgotten
    assert router.tick(T + 100) == []


def test_complete_straight_from_active() -> None:
    router = make_router(WRAP)
    _active(router)
    assert events(router.complete(1, 1, "resolved", T + 5))[0].kind is EventKind.COMPLETED
    assert router.agent_load(1) == {}


def test_invalid_disposition_lists_allowed_codes_and_changes_nothing() -> None:
    router = make_router(WRAP)
    _active(router)
    router.end(1, 1, T + 5)
    with pytest.raises(RoutingError, match=r"'sold'.*allowed: resolved, escalated"):
        router.complete(1, 1, "sold", T + 6)
    assert router.contact_state(1) is ContactState.WRAPUP


def test_wrapup_timeout_completes_without_disposition() -> None:
    router = make_router(WRAP)
    _active(router)
    router.enqueue(contact(2), T + 5)
    router.end(1, 1, T + 10)
    assert router.next_deadline() == T + 40
    assert router.tick(T + 39) == []
    effects = router.tick(T + 40)
    done = events(effects)[0]
    assert (done.kind, done.state, done.data) == (
        EventKind.COMPLETED,
        ContactState.CLOSED,
        {"disposition": None, "reason": "wrapup-timeout"},
    )
    assert offers(effects) == [(2, 1)]


# -- transfer ---------------------------------------------------------------------------


def test_transfer_to_queue_keeps_entered_at_and_frees_capacity() -> None:
    router = make_router(SALES, SUPPORT)
    available(router, agent(1), T)
    router.enqueue(contact(1, T - 100), T)
    router.accept(1, 1, T + 5)
    router.enqueue(contact(2, T + 6), T + 6)  # waits: agent 1 is on the phone
    effects = router.transfer(1, 1, T + 10, to_queue_id=2)
    moved = events(effects)[0]
    assert (moved.kind, moved.queue_id, moved.agent_id, moved.state) == (
        EventKind.TRANSFERRED,
        2,
        1,
        ContactState.QUEUED,
    )
    assert moved.data == {"from_queue": 1, "to_queue": 2, "to_agent": None, "from_agent": 1}
    assert offers(effects) == [(2, 1)]  # the freed agent takes the next sales call
    assert router.oldest_entered(2) == T - 100
    assert router.waiting(2) == 1
    available(router, agent(3, "billing"), T + 20)
    accepted = events(router.accept(3, 1, T + 22))[0]
    assert accepted.data == {"wait": 12.0}  # the wait restarts in the new queue


def test_transfer_to_agent_offers_only_that_agent_until_declined() -> None:
    router = make_router()
    available(router, agent(1), T)
    available(router, agent(2), T + 1)  # longest idle after 1 is busy
    available(router, agent(3), T + 2)
    router.enqueue(contact(1), T + 3)
    router.accept(1, 1, T + 4)
    effects = router.transfer(1, 1, T + 5, to_agent_id=3)
    assert events(effects)[0].data == {
        "from_queue": 1,
        "to_queue": 1,
        "to_agent": 3,
        "from_agent": 1,
    }
    assert offers(effects) == [(1, 3)]
    # Agent 3 declines: the queue's normal routing (longest idle) applies again.
    assert offers(router.reject(3, 1, T + 6)) == [(1, 2)]


def test_transfer_to_busy_agent_waits_for_them() -> None:
    router = make_router()
    available(router, agent(1), T)
    available(router, agent(2), T + 1)
    available(router, agent(3), T + 2)
    router.enqueue(contact(9), T + 3)  # to 1
    router.accept(1, 9, T + 3)
    router.enqueue(contact(8), T + 3)  # to 2
    router.accept(2, 8, T + 3)
    assert offers(router.transfer(2, 8, T + 4, to_agent_id=1)) == []
    assert offers(router.complete(1, 9, "resolved", T + 5)) == [(8, 1)]


# -- customer leaves --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "kind", "new_state", "agent_id", "data"),
    [
        pytest.param(
            "queued", EventKind.ABANDONED, ContactState.ABANDONED, None, {"wait": 10.0}, id="queued"
        ),
        pytest.param(
            "offered", EventKind.ABANDONED, ContactState.ABANDONED, 1, {"wait": 10.0}, id="offered"
        ),
        pytest.param(
            "active",
            EventKind.ENDED,
            ContactState.WRAPUP,
            1,
            {"wrapup_deadline": T + 70, "reason": "customer-left"},
            id="active",
        ),
    ],
)
def test_customer_left(
    state: str, kind: EventKind, new_state: ContactState, agent_id: int | None, data: dict
) -> None:
    router = make_router()
    if state != "queued":
        available(router, agent(1), T)
    router.enqueue(contact(1), T)
    if state == "active":
        router.accept(1, 1, T + 1)
    (event,) = events(router.customer_left(1, T + 10))
    assert (event.kind, event.state, event.agent_id, event.data) == (
        kind,
        new_state,
        agent_id,
        data,
    )
    assert router.waiting(1) == 0
    if state == "offered":
        assert router.offers_of(1) == []
        assert router.agent_load(1) == {}


@pytest.mark.parametrize("state", ["wrapup", "unknown"])
def test_customer_left_is_noop_otherwise(state: str) -> None:
    router = make_router()
    if state == "wrapup":
        available(router, agent(1), T)
        router.enqueue(contact(1), T)
        router.accept(1, 1, T)
        router.end(1, 1, T)
    assert router.customer_left(1, T + 1) == []


def test_abandon_frees_offered_agent_for_next_contact() -> None:
    router = make_router()
    available(router, agent(1), T)
    router.enqueue(contact(1), T)
    router.enqueue(contact(2, T + 1), T + 1)
    assert offers(router.customer_left(1, T + 2)) == [(2, 1)]


# -- restore ----------------------------------------------------------------------------


def test_restore_after_restart() -> None:
    router = make_router(WRAP)
    router.restore(contact(1, T), ContactState.QUEUED, None, T + 100)
    router.restore(contact(2, T + 1), ContactState.OFFERED, 5, T + 100, since=T + 50)
    router.restore(contact(3, T + 2, channel="chat"), ContactState.ACTIVE, 7, T + 100)
    router.restore(contact(4, T + 3, channel="chat"), ContactState.WRAPUP, 7, T + 100, T + 90)
    assert [router.contact_state(c) for c in (1, 2, 3, 4)] == [
        ContactState.QUEUED,
        ContactState.QUEUED,
        ContactState.ACTIVE,
        ContactState.WRAPUP,
    ]
    assert router.waiting(1) == 2
    # The agent is known, offline, and its contacts count against its capacity.
    assert router.agent_status(7) is AgentStatus.OFFLINE
    assert router.agent_load(7) == {"chat": 2}
    # Voice contacts 1 and 2 first (older), one at a time: agent 7 has voice capacity 1.
    available(router, agent(7), T + 101)
    assert router.offers_of(7) == [1]
    accepted = events(router.accept(7, 1, T + 101))[0]
    assert accepted.data == {"wait": 101.0}  # queued_at defaults to entered_at
    router.complete(7, 1, "resolved", T + 102)
    accepted = events(router.accept(7, 2, T + 103))[0]
    assert accepted.data == {"wait": 53.0}  # since=T + 50
    # Chat capacity 3 minus the restored two: room for one more.
    router.enqueue(contact(5, T + 104, channel="chat"), T + 104)
    router.accept(7, 5, T + 104)
    assert offers(router.enqueue(contact(6, T + 105, channel="chat"), T + 105)) == []
    effects = router.tick(T + 120)  # wrap-up deadline T + 90 + 30
    assert events(effects)[0].data == {"disposition": None, "reason": "wrapup-timeout"}
    assert offers(effects) == [(6, 7)]


def test_restore_emits_nothing_until_tick() -> None:
    router = make_router()
    available(router, agent(1), T)
    router.restore(contact(1), ContactState.QUEUED, None, T)
    assert router.offers_of(1) == []
    assert offers(router.tick(T)) == [(1, 1)]


# -- illegal calls ----------------------------------------------------------------------


def _with_offer() -> Router:
    router = make_router(SALES, SUPPORT)
    available(router, agent(1), T)
    available(router, agent(2), T + 1)
    router.enqueue(contact(7), T + 2)  # offered to agent 1
    return router


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda r: r.queue(9), "unknown queue 9", id="queue"),
        pytest.param(lambda r: r.waiting(9), "unknown queue 9", id="waiting"),
        pytest.param(lambda r: r.enqueue(contact(1, queue_id=9), T), "unknown queue 9", id="q"),
        pytest.param(lambda r: r.enqueue(contact(7), T), "contact 7 already exists", id="dup"),
        pytest.param(lambda r: r.agent_status(9), "unknown agent 9", id="agent"),
        pytest.param(lambda r: r.disconnect(9, T), "unknown agent 9", id="disconnect"),
        pytest.param(lambda r: r.update_agent(agent(9), T), "unknown agent 9", id="update"),
        pytest.param(
            lambda r: r.set_status(1, AgentStatus.OFFLINE, T),
            "use disconnect",
            id="status-offline",
        ),
        pytest.param(
            lambda r: (r.disconnect(2, T), r.set_status(2, AgentStatus.AVAILABLE, T)),
            "agent 2 is offline",
            id="status-of-offline",
        ),
        pytest.param(
            lambda r: r.accept(2, 7, T),
            r"contact 7 is not offered to agent 2 \(it is offered with agent 1\)",
            id="accept-other",
        ),
        pytest.param(
            lambda r: r.accept(1, 99, T),
            r"contact 99 is not offered to agent 1 \(it is unknown or finished\)",
            id="accept-unknown",
        ),
        pytest.param(lambda r: r.reject(2, 7, T), "not offered to agent 2", id="reject"),
        pytest.param(
            lambda r: r.end(1, 7, T),
            r"contact 7 is not active with agent 1 \(it is offered",
            id="end-offered",
        ),
        pytest.param(
            lambda r: r.complete(1, 7, "resolved", T),
            "contact 7 is not active or wrapup with agent 1",
            id="complete-offered",
        ),
        pytest.param(
            lambda r: (r.accept(1, 7, T), r.transfer(1, 7, T)),
            "exactly one of",
            id="transfer-no-target",
        ),
        pytest.param(
            lambda r: (r.accept(1, 7, T), r.transfer(1, 7, T, to_queue_id=2, to_agent_id=2)),
            "exactly one of",
            id="transfer-two-targets",
        ),
        pytest.param(
            lambda r: (r.accept(1, 7, T), r.transfer(1, 7, T, to_queue_id=9)),
            "unknown queue 9",
            id="transfer-unknown-queue",
        ),
        pytest.param(
            lambda r: (r.accept(1, 7, T), r.transfer(1, 7, T, to_agent_id=1)),
            "already with agent 1",
            id="transfer-to-self",
        ),
        pytest.param(
            lambda r: (r.accept(1, 7, T), r.disconnect(2, T), r.transfer(1, 7, T, to_agent_id=2)),
            "agent 2 is offline",
            id="transfer-to-offline",
        ),
        pytest.param(
            lambda r: r.transfer(2, 7, T, to_queue_id=2), "not active with agent 2", id="transfer"
        ),
        pytest.param(
            lambda r: r.restore(contact(8), ContactState.ACTIVE, None, T),
            "has no agent",
            id="restore-no-agent",
        ),
        pytest.param(
            lambda r: r.restore(contact(8), ContactState.CLOSED, None, T),
            "nothing to restore",
            id="restore-final",
        ),
    ],
)
def test_illegal_calls_raise_clear_errors(call: Callable[[Router], object], message: str) -> None:
    router = _with_offer()
    with pytest.raises(RoutingError, match=message):
        call(router)


def test_transfer_into_full_queue_is_refused_and_changes_nothing() -> None:
    tiny = QueueSpec(id=3, name="tiny", max_length=1, required_skills=frozenset({"x"}))
    router = make_router(SALES, tiny)
    router.enqueue(contact(5, queue_id=3), T)
    available(router, agent(1), T)
    router.enqueue(contact(1), T)
    router.accept(1, 1, T)
    with pytest.raises(RoutingError, match="queue 3 is full"):
        router.transfer(1, 1, T, to_queue_id=3)
    assert router.contact_state(1) is ContactState.ACTIVE
    assert router.agent_load(1) == {"voice": 1}
