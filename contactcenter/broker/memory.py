"""The embedded broker: one process, plain data structures, no network."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Collection, Iterable

from contactcenter.broker.base import REPLAY_DEPTH, Broker, Frame, Message, agent_channel
from contactcenter.wire import loads


class MemoryBroker(Broker):
    def __init__(self, node_id: str = "embedded") -> None:
        super().__init__(node_id)
        # Only what the one reader (this process's dispatcher) has not read yet: inputs carry
        # screen-pops, and a long log of them kept the garbage collector busy for nothing.
        self._inputs: deque[tuple[int, Message]] = deque(maxlen=100_000)
        self._next_input = 1
        self._arrived = asyncio.Event()
        self._seq: dict[int, int] = {}
        # Replay buffers hold the frames as JSON text: thousands of nested dicts kept for a
        # possible reconnect were a tenth of the CPU in garbage collection under load.
        self._buffers: dict[int, deque[tuple[int, str]]] = {}
        self._presence: dict[int, float] = {}

    async def ping(self) -> bool:
        return True

    async def submit(self, message: Message) -> None:
        self._inputs.append((self._next_input, message))
        self._next_input += 1
        self._arrived.set()

    async def tail_id(self) -> str:
        return str(self._next_input - 1)

    async def read_inputs(self, after: str, block: float) -> list[tuple[str, Message]]:
        start = int(after) + 1
        while self._inputs and self._inputs[0][0] < start:
            self._inputs.popleft()
        if self._next_input <= start:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), block)
            except TimeoutError:
                return []
        return [(str(i), m) for i, m in self._inputs]

    async def hold_lease(self, ttl: float) -> bool:
        return True  # the only process is always the leader

    async def release_lease(self) -> None:
        pass

    async def deliver(self, agent_id: int, message: Message) -> int:
        return self._number(agent_id, message)

    async def deliver_many(self, deliveries: list[tuple[int, Message]],
                           here: Collection[int] = ()) -> None:
        # Every socket is on this node: `here` changes nothing. A plain loop, not an awaited
        # `deliver` per frame: a round's frames are a few hundred.
        for agent_id, message in deliveries:
            self._number(agent_id, message)

    def _number(self, agent_id: int, message: Message) -> int:
        seq = self._seq.get(agent_id, 0) + 1
        self._seq[agent_id] = seq
        frame = Frame.of(seq, message)
        buffer = self._buffers.get(agent_id)
        if buffer is None:
            buffer = self._buffers[agent_id] = deque(maxlen=REPLAY_DEPTH)
        buffer.append((seq, frame.text))
        self._fan_out(agent_channel(agent_id), frame)
        return seq

    async def replay(self, agent_id: int, after_seq: int) -> list[Message] | None:
        buffer = self._buffers.get(agent_id, deque())
        last = self._seq.get(agent_id, 0)
        if after_seq >= last:
            return [] if after_seq == last else None
        if not buffer or buffer[0][0] > after_seq + 1:
            return None
        return [loads(m) for seq, m in buffer if seq > after_seq]

    async def last_seq(self, agent_id: int) -> int:
        return self._seq.get(agent_id, 0)

    async def publish(self, channel: str, message: Message) -> None:
        self._fan_out(channel, message)

    # Presence uses the monotonic clock: it is liveness of this process's sockets, not a rule.
    async def heartbeat(self, agent_ids: Iterable[int], ttl: float) -> None:
        expires = time.monotonic() + ttl
        for agent_id in agent_ids:
            self._presence[agent_id] = expires

    async def clear_presence(self, agent_id: int) -> None:
        self._presence.pop(agent_id, None)

    async def present(self, agent_ids: Iterable[int]) -> set[int]:
        now = time.monotonic()
        return {a for a in agent_ids if self._presence.get(a, 0) > now}
