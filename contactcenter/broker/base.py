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
from collections.abc import Callable, Iterable
from typing import Any

from contactcenter.wire import dumps, loads

Message = dict[str, Any]
Callback = Callable[[Message], None]


# Events kept per agent for a reconnecting client; older gaps get a full snapshot instead.
REPLAY_DEPTH = 500


class Frame(dict[str, Any]):
    """A message with `text`, its JSON as the broker made it (for an agent's replay buffer) or
    received it (off Redis pub/sub): an agent's socket sends that text as it is instead of
    encoding the message a second time. Not to be changed once made."""

    __slots__ = ("text",)
    text: str

    @classmethod
    def of(cls, message: Message) -> Frame:
        frame = cls(message)
        frame.text = dumps(frame)
        return frame

    @classmethod
    def parse(cls, text: str) -> Frame:
        frame = cls(loads(text))
        frame.text = text
        return frame


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

    async def deliver_many(self, deliveries: list[tuple[int, Message]]) -> None:
        """Several deliveries in order; brokers with a network round trip batch them."""
        for agent_id, message in deliveries:
            await self.deliver(agent_id, message)

    @abstractmethod
    async def replay(self, agent_id: int, after_seq: int) -> list[Message] | None:
        """Messages after `after_seq`, or None when some of them are no longer kept."""

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

