"""The words every part of the server shares: channels, states, roles, event kinds.

Plain enums only, so the routing core, storage and the adapters can all import this module
without pulling in each other.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    VOICE = "voice"
    SMS = "sms"
    EMAIL = "email"
    CHAT = "chat"
    API = "api"
    CALLBACK = "callback"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class ContactState(StrEnum):
    QUEUED = "queued"
    OFFERED = "offered"
    ACTIVE = "active"
    WRAPUP = "wrapup"
    CLOSED = "closed"
    ABANDONED = "abandoned"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset({ContactState.CLOSED, ContactState.ABANDONED, ContactState.EXPIRED})


class AgentStatus(StrEnum):
    OFFLINE = "offline"  # no live websocket
    AWAY = "away"
    AVAILABLE = "available"


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    def includes(self, other: Role) -> bool:
        """A supervisor may do what an agent may; an admin what a supervisor may."""
        order = [Role.AGENT, Role.SUPERVISOR, Role.ADMIN]
        return order.index(self) >= order.index(other)


class Strategy(StrEnum):
    LONGEST_IDLE = "longest-idle"
    ROUND_ROBIN = "round-robin"
    LEAST_BUSY = "least-busy"


class EventKind(StrEnum):
    """Kinds in the append-only contact event log (after Asterisk's queue_log)."""

    ENTERED = "entered"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    OFFER_TIMEOUT = "offer-timeout"
    ABANDONED = "abandoned"
    TRANSFERRED = "transferred"
    ENDED = "ended"  # conversation over, agent now in wrap-up
    COMPLETED = "completed"  # wrap-up done with a disposition
    EXPIRED = "expired"  # dropped from a full queue or never answerable


DEFAULT_CAPACITY: dict[str, int] = {
    Channel.VOICE: 1,
    Channel.CHAT: 3,
    Channel.SMS: 5,
    Channel.EMAIL: 5,
    Channel.API: 5,
    Channel.CALLBACK: 1,
}
