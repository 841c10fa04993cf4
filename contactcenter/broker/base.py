"""What the server needs from a broker, whether in-process (embedded) or Redis (scale-out).

Four jobs:
- an ordered input log: any node submits routing inputs, the one leader reads them in order;
- a leadership lease, so exactly one node runs the router at a time;
- per-agent delivery with sequence numbers and a replay buffer, fanned out to whichever node
  holds the agent's websocket;
- presence: a heartbeat key per connected agent that expires when its node stops refreshing it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable
from typing import Any

from contactcenter.wire import dumps, loads

Message = dict[str, Any]
Callback = Callable[[Message], None]


# Events kept per agent for a reconnecting client; older gaps get a full snapshot instead.
REPLAY_DEPTH = 500


class Frame:
    """A numbered message for one agent, as its socket sends it: `text`, its JSON, which the
    socket sends as it is. What the socket itself reads of it comes without parsing that JSON
    (an offer's is a whole screen-pop): `seq`, `kind` (the message's type) and `note` (a
    status frame's status, an offer's `created_at`). Off Redis they travel beside the JSON as
    the frame's `head` (see broker/redis.py); `message` parses the JSON when something needs
    all of it. Not to be changed once made."""

    __slots__ = ("_message", "kind", "note", "seq", "text")

    def __init__(self, text: str, seq: int, kind: str, note: str,
                 message: Message | None = None) -> None:
        self.text, self.seq, self.kind, self.note = text, seq, kind, note
        self._message = message

    @classmethod
    def of(cls, seq: int, message: Message) -> Frame:
        numbered = {"seq": seq, **message}
        kind, note = _head_of(message)
        return cls(dumps(numbered), seq, kind, note, numbered)

    @classmethod
    def parse(cls, head: str, text: str) -> Frame:
        """From `head` (see `head`) and the numbered JSON, which starts '{"seq":N'."""
        end = text.find(",", 7)
        kind, _, note = head.partition("=")
        return cls(text, int(text[7:end if end > 0 else -1]), kind, note)

    @property
    def message(self) -> Message:
        if self._message is None:
            self._message = loads(self.text)
        return self._message


def head(message: Message) -> str:
    """What an agent's socket needs of a message, as one token: its type, "=", its note."""
    kind, note = _head_of(message)
    return f"{kind}={note}" if note else kind


def _head_of(message: Message) -> tuple[str, str]:
    kind = message.get("type")
    kind = kind if isinstance(kind, str) and kind.isidentifier() else ""
    note = None
    if kind == "status":
        note = message.get("status")
    elif kind == "offer":
        note = (message.get("contact") or {}).get("created_at")
    # The head is a token of a line: no space, no newline.
    note = note if isinstance(note, str) and " " not in note and "\n" not in note else ""
    return kind, note


class Broker(ABC):
    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self._subscribers: dict[str, set[Callback]] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:  # noqa: B027 - optional hook
        pass

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass

    @abstractmethod
    async def ping(self) -> bool: ...

    # -- ordered router inputs ---------------------------------------------------------------
    @abstractmethod
    async def submit(self, message: Message) -> None: ...

    async def submit_many(self, messages: list[Message]) -> None:
        """Several inputs in order; brokers with a network round trip batch them."""
        for message in messages:
            await self.submit(message)

    @abstractmethod
    async def tail_id(self) -> str:
        """The id after which inputs not yet submitted will appear."""

    @abstractmethod
    async def read_inputs(self, after: str, block: float) -> list[tuple[str, Message]]:
        """Inputs after `after`, in order; waits up to `block` seconds for the first."""

    # -- leadership --------------------------------------------------------------------------
    @abstractmethod
    async def hold_lease(self, ttl: float) -> bool:
        """Take or renew the router lease; False when another node holds it."""

    @abstractmethod
    async def release_lease(self) -> None: ...

    # -- per-agent delivery ------------------------------------------------------------------
    @abstractmethod
    async def deliver(self, agent_id: int, message: Message) -> int:
        """Number the message in the agent's sequence, keep it for replay, fan it out."""

    async def deliver_many(self, deliveries: list[tuple[int, Message]],
                           here: Collection[int] = ()) -> None:
        """Several deliveries in order; brokers with a network round trip batch them. `here`:
        agents whose current socket is on this node. Their frames are numbered and kept as
        ever, but go straight to this node's subscribers, not round the fan-out to every node
        and back; a socket elsewhere sees a gap in the numbers and fills it from the replay
        buffer (server/agent_ws.py)."""
        for agent_id, message in deliveries:
            await self.deliver(agent_id, message)

    @abstractmethod
    async def replay(self, agent_id: int, after_seq: int) -> list[Message] | None:
        """Messages after `after_seq`, or None when some of them are no longer kept, or when
        `after_seq` is ahead of the agent's last number (a client of an older server's data)."""

    @abstractmethod
    async def last_seq(self, agent_id: int) -> int: ...

    # -- fan-out to every node ---------------------------------------------------------------
    @abstractmethod
    async def publish(self, channel: str, message: Message) -> None: ...

    def subscribe(self, channel: str, callback: Callback) -> Callable[[], None]:
        """Call `callback` on this node for every message on `channel`; returns unsubscribe."""
        self._subscribers.setdefault(channel, set()).add(callback)

        def unsubscribe() -> None:
            subs = self._subscribers.get(channel)
            if subs is not None:
                subs.discard(callback)
                if not subs:
                    del self._subscribers[channel]

        return unsubscribe

    def _fan_out(self, channel: str, message: Message) -> None:
        for callback in list(self._subscribers.get(channel, ())):
            callback(message)

    # -- presence ----------------------------------------------------------------------------
    @abstractmethod
    async def heartbeat(self, agent_ids: Iterable[int], ttl: float) -> None: ...

    @abstractmethod
    async def clear_presence(self, agent_id: int) -> None: ...

    @abstractmethod
    async def present(self, agent_ids: Iterable[int]) -> set[int]: ...


def agent_channel(agent_id: int) -> str:
    return f"agent:{agent_id}"

