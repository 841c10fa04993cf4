"""The scale-out broker on Redis: a stream for inputs, a lease key, Lua for numbered delivery."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterable

import redis.asyncio as aioredis

from contactcenter.broker.base import REPLAY_DEPTH, Broker, Frame, Message, agent_channel, head
from contactcenter.wire import dumps, loads

log = logging.getLogger(__name__)

# Numbering, buffering and publishing in one script, so two nodes delivering to the same agent
# can never hand out one sequence number twice or publish out of order. One call numbers a whole
# batch, given as one argument, a line per frame: agent id, space, the frame's head (Frame),
# space, its JSON (JSON as orjson writes it has no raw newline). Packing two keys and two
# arguments per frame was a third of the delivery's cost; the script names the keys itself, as
# the broker does (`_k`): one Redis, not a cluster. The batch goes out as one pub/sub message,
# a line per frame (channel, head, numbered JSON): redis-py's handling of each pub/sub message it
# reads cost more than the frame itself. An agent id marked "=" is one whose socket is on the
# calling node (`deliver_many`'s `here`): numbered and kept, not published.
_DELIVER = """
local depth, prefix, batch, channel = tonumber(ARGV[1]), ARGV[2], ARGV[4], ARGV[5]
local seqs, lines = {}, {}
local pos, n, published = 1, 0, 0
while pos <= #batch do
  local stop = string.find(batch, '\\n', pos, true) or (#batch + 1)
  local a = string.find(batch, ' ', pos, true)
  local b = string.find(batch, ' ', a + 1, true)
  local agent = string.sub(batch, pos, a - 1)
  local here = string.sub(agent, 1, 1) == '='
  if here then agent = string.sub(agent, 2) end
  local body = string.sub(batch, b + 1, stop - 1)
  local seq = redis.call('INCR', prefix .. ':seq:' .. agent)
  local numbered
  if body == '{}' then numbered = '{"seq":' .. seq .. '}'
  else numbered = '{"seq":' .. seq .. ',' .. string.sub(body, 2) end
  local buffer = prefix .. ':buf:' .. agent
  redis.call('RPUSH', buffer, numbered)
  redis.call('LTRIM', buffer, -depth, -1)
  n = n + 1
  seqs[n] = seq
  if not here then
    published = published + 1
    lines[published] = channel .. agent .. ' ' .. string.sub(batch, a + 1, b - 1) .. ' ' .. numbered
  end
  pos = stop + 1
end
if published > 0 then redis.call('PUBLISH', ARGV[3], table.concat(lines, '\\n')) end
return seqs
"""

# What a socket missed, from the tail of the buffer: a socket filling a gap wants the last few
# frames, not the whole buffer of screen-pops.
_REPLAY = """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local after = tonumber(ARGV[1])
if after >= last then return {last} end
return {last, redis.call('LRANGE', KEYS[2], after - last, -1)}
"""

# How long the outstanding XREAD waits in Redis: longer than the router's tick (one that came
# back with nothing costs a top-up read in the next round, `read_inputs`), and at most half the
# client's socket timeout (redis-py's default is 5 s; the URL may set another), which a
# blocking command must not reach.
_OUTSTANDING_READ_MS = 1000

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1
end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisBroker(Broker):
    def __init__(self, url: str, node_id: str, prefix: str = "cc",
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__(node_id)
        # Liveness of the lease, not business time; injected so a test can age it.
        self._monotonic = monotonic
        self._redis = aioredis.from_url(url, decode_responses=True)
        # Blocking XREAD gets its own connection so it never holds up deliveries.
        self._reader = aioredis.from_url(url, decode_responses=True)
        self._p = prefix
        self._deliver = self._redis.register_script(_DELIVER)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)
        self._replay = self._redis.register_script(_REPLAY)
        self._pubsub_task: asyncio.Task[None] | None = None
        self._pubsub = self._redis.pubsub()
        # Inputs waiting for the next XADD: see `submit_many`. A forwarded input (see
        # `_forward_local`) has no caller waiting on it.
        self._outgoing: list[tuple[str, asyncio.Future[None] | None]] = []
        self._flushing = False
        self._flusher: asyncio.Task[None] | None = None
        self._last_added = (0, 0)  # the id of this node's latest XADD
        # The router's side, when this node holds the lease: see `submit_many`.
        self._lease_until = 0.0  # monotonic
        self._local: list[Message] = []
        self._read_after: str | None = None  # the last stream entry the router has read
        self._read_pos = (0, 0)
        self._reading: asyncio.Task[list[tuple[str, Message]]] | None = None
        self._wake: asyncio.Future[None] | None = None
        self._read_lock = asyncio.Lock()
        pool = self._reader.connection_pool
        timeout = pool.connection_class(**pool.connection_kwargs).socket_timeout
        self._read_block_ms = (_OUTSTANDING_READ_MS if timeout is None
                               else max(1, min(_OUTSTANDING_READ_MS, int(timeout * 500))))

    def _k(self, *parts: object) -> str:
        return ":".join([self._p, *map(str, parts)])

    async def start(self) -> None:
        await self._pubsub.subscribe(self._k("frames"))
        await self._pubsub.psubscribe(self._k("pub", "*"))
        self._pubsub_task = asyncio.create_task(self._listen(), name="redis-pubsub")

    async def close(self) -> None:
        self._stop_reading()
        if self._pubsub_task:
            self._pubsub_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pubsub_task
        await self._pubsub.aclose()
        await self._redis.aclose()
        await self._reader.aclose()

    async def _listen(self) -> None:
        strip = len(self._k("pub", ""))
        while True:
            try:
                # listen() waits without a timeout per message: the timeout's own set-up was
                # a tenth of this loop's cost under load.
                async for msg in self._pubsub.listen():
                    kind = msg["type"]
                    try:
                        if kind == "message":  # a batch of agents' frames: see _DELIVER
                            for line in msg["data"].split("\n"):
                                channel, frame_head, text = line.split(" ", 2)
                                self._fan_out(channel, Frame.parse(frame_head, text))
                        elif kind == "pmessage":
                            self._fan_out(msg["channel"][strip:], loads(msg["data"]))
                    except Exception:
                        log.exception("pub/sub subscriber failed")
            except (ConnectionError, aioredis.ConnectionError):
                log.warning("redis pub/sub connection lost; retrying")
            # listen() also ends when nothing is subscribed; never spin on it.
            await asyncio.sleep(0.5)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except aioredis.RedisError:
            return False

    async def submit(self, message: Message) -> None:
        await self.submit_many([message])

    async def submit_many(self, messages: list[Message]) -> None:
        """Appended in order. Concurrent calls share one stream entry (a group commit): agents'
        commands arrive in bursts, and a round trip per command, then an XADD per command, was
        the scale-out node's largest cost. An entry's `m` is a JSON array of messages.

        On the node that holds the routing lease, its own inputs skip Redis: they go straight
        to its router (`read_inputs`), as they would on the embedded broker. Durability is not
        lost: a contact is committed before it is submitted (and a leader that dies before
        routing it leaves it to the next one's sweep), and an agent's command dies with the
        agent's socket on the same node. Order is kept per node: inputs go local only once the
        router has read everything this node added to the stream, and a node that stops
        leading forwards what its router did not read to the stream ahead of anything later."""
        if not messages:
            return
        if self._routes_locally():
            self._local += messages
            self._wake_reader()
            return
        self._forward_local()
        future = asyncio.get_running_loop().create_future()
        self._outgoing += [(dumps(m), future) for m in messages]
        self._start_flush()
        await future

    def _routes_locally(self) -> bool:
        return (self._monotonic() < self._lease_until and not self._outgoing
                and not self._flushing and self._read_pos >= self._last_added)

    def _forward_local(self) -> None:
        """What this node's router has not read goes to the stream, ahead of later inputs."""
        if self._local:
            local, self._local = self._local, []
            self._outgoing[:0] = [(dumps(m), None) for m in local]
            self._start_flush()

    def _start_flush(self) -> None:
        if not self._flushing:
            self._flushing = True
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._outgoing:
                batch, self._outgoing = self._outgoing, []
                entry = "[" + ",".join(body for body, _ in batch) + "]"
                try:
                    added = await self._redis.xadd(self._k("inputs"), {"m": entry},
                                                   maxlen=100_000, approximate=True)
                except Exception as e:
                    if any(future is None for _, future in batch):
                        log.error("router inputs this node held were lost: %r", e)
                    for _, future in batch:
                        if future is not None and not future.done():
                            future.set_exception(e)
                else:
                    self._last_added = _position(added)
                    for _, future in batch:
                        if future is not None and not future.done():
                            future.set_result(None)
        finally:
            self._flushing = False

    async def tail_id(self) -> str:
        last = await self._redis.xrevrange(self._k("inputs"), count=1)
        return last[0][0] if last else "0-0"

    async def read_inputs(self, after: str, block: float) -> list[tuple[str, Message]]:
        """The stream after `after`, then this node's own inputs (see `submit_many`), which
        carry the id of the last entry read. One blocking XREAD stays outstanding between
        calls, so a router busy with its own inputs makes no round trip to Redis to learn that
        no other node sent any, and its own first input wakes it at once. A read that came
        back before this call is topped up: entries may have come after it."""
        async with self._read_lock:
            if after != self._read_after:  # a new leadership, or another reader's cursor
                self._stop_reading()
                self._read_after, self._read_pos = after, _position(after)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + block
            while True:
                got: list[tuple[str, Message]] = []
                if self._reading is None or self._reading.done():
                    # None outstanding, or it came back before this call: what is there now.
                    if self._reading is not None:
                        got = self._take_reading()
                    more = await self._xread(0)
                    self._advance(more)
                    got += more
                else:
                    if not self._local:
                        self._wake = loop.create_future()
                        timer = loop.call_at(deadline, self._wake_reader)
                        try:
                            await self._wake
                        finally:
                            timer.cancel()
                            self._wake = None
                    if self._reading.done():  # it came back while this call waited
                        got = self._take_reading()
                if self._local:
                    local, self._local = self._local, []
                    got += [(self._read_after, m) for m in local]
                if self._reading is None:
                    self._reading = self._start_reading()
                if got or loop.time() >= deadline:
                    return got

    def _take_reading(self) -> list[tuple[str, Message]]:
        """The outstanding XREAD's entries, which it has returned; the cursor moves past them."""
        assert self._reading is not None
        reading, self._reading = self._reading, None
        got = reading.result()
        self._advance(got)
        return got

    def _advance(self, got: list[tuple[str, Message]]) -> None:
        if got:
            self._read_after = got[-1][0]
            self._read_pos = _position(self._read_after)

    def _start_reading(self) -> asyncio.Task[list[tuple[str, Message]]]:
        reading = asyncio.get_running_loop().create_task(self._xread(self._read_block_ms))
        reading.add_done_callback(self._read_done)
        return reading

    def _read_done(self, reading: asyncio.Task[list[tuple[str, Message]]]) -> None:
        if reading is self._reading:  # not one cancelled for another cursor
            self._wake_reader()

    async def _xread(self, block_ms: int) -> list[tuple[str, Message]]:
        """Entries after `_read_after`; block_ms 0 does not wait."""
        assert self._read_after is not None
        got = await self._reader.xread({self._k("inputs"): self._read_after}, count=1000,
                                       block=block_ms or None)
        if not got:
            return []
        # Each entry's messages share its id: the id marks where a reader is, not a message.
        return [(entry_id, message) for entry_id, fields in got[0][1]
                for message in loads(fields["m"])]

    def _wake_reader(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def _stop_reading(self) -> None:
        """Cancel the outstanding XREAD (its connection is dropped: a new leadership or
        `close` is rare)."""
        reading, self._reading = self._reading, None
        if reading is not None:
            reading.add_done_callback(_retrieved)
            reading.cancel()

    async def hold_lease(self, ttl: float) -> bool:
        started = self._monotonic()
        held = bool(
            await self._renew(keys=[self._k("leader")], args=[self.node_id, int(ttl * 1000)])
        )
        # Half the TTL: a router that has not renewed by then may be stalled, and a stalled
        # router's inputs are better in the stream, where the next leader finds them.
        self._lease_until = started + ttl / 2 if held else 0.0
        if not held:
            self._forward_local()
        return held

    async def release_lease(self) -> None:
        self._lease_until = 0.0
        self._forward_local()
        await self._release(keys=[self._k("leader")], args=[self.node_id])

    async def deliver(self, agent_id: int, message: Message) -> int:
        return (await self._numbered([(agent_id, message)]))[0]

    async def deliver_many(self, deliveries: list[tuple[int, Message]],
                           here: Collection[int] = ()) -> None:
        # One script call for a whole batch: a call per frame was most of the delivery's cost.
        if deliveries:
            await self._numbered(deliveries, here)

    async def _numbered(self, deliveries: list[tuple[int, Message]],
                        here: Collection[int] = ()) -> list[int]:
        texts = [dumps(message) for _, message in deliveries]
        heads = [head(message) for _, message in deliveries]
        batch = "\n".join(f"={agent_id} {h} {t}" if agent_id in here else f"{agent_id} {h} {t}"
                          for (agent_id, _), h, t in zip(deliveries, heads, texts, strict=True))
        seqs = [int(seq) for seq in await self._deliver(
            keys=[], args=[REPLAY_DEPTH, self._p, self._k("frames"), batch, agent_channel("")])]
        if here:
            # After the script: numbered and kept before any subscriber sees them, as with
            # what comes through pub/sub.
            for (agent_id, _), h, text, seq in zip(deliveries, heads, texts, seqs, strict=True):
                if agent_id in here:
                    numbered = (f'{{"seq":{seq}}}' if text == "{}"
                                else f'{{"seq":{seq},{text[1:]}')
                    kind, _, note = h.partition("=")
                    self._fan_out(agent_channel(agent_id), Frame(numbered, seq, kind, note))
        return seqs

    async def replay(self, agent_id: int, after_seq: int) -> list[Message] | None:
        got = await self._replay(keys=[self._k("seq", agent_id), self._k("buf", agent_id)],
                                 args=[after_seq])
        last = int(got[0])
        if after_seq >= last:
            return [] if after_seq == last else None
        kept = [loads(m) for m in got[1]]
        if not kept or kept[0]["seq"] > after_seq + 1:
            return None
        return [m for m in kept if m["seq"] > after_seq]

    async def last_seq(self, agent_id: int) -> int:
        return int(await self._redis.get(self._k("seq", agent_id)) or 0)

    async def publish(self, channel: str, message: Message) -> None:
        await self._redis.publish(self._k("pub", channel), dumps(message))

    async def heartbeat(self, agent_ids: Iterable[int], ttl: float) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for agent_id in agent_ids:
                pipe.set(self._k("presence", agent_id), self.node_id, px=int(ttl * 1000))
            await pipe.execute()

    async def clear_presence(self, agent_id: int) -> None:
        await self._redis.delete(self._k("presence", agent_id))

    async def present(self, agent_ids: Iterable[int]) -> set[int]:
        ids = list(agent_ids)
        if not ids:
            return set()
        values = await self._redis.mget([self._k("presence", a) for a in ids])
        return {a for a, v in zip(ids, values, strict=True) if v is not None}


def _position(stream_id: str) -> tuple[int, int]:
    """A stream id ("1764650000000-3") as it orders."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def _retrieved(task: asyncio.Task[list[tuple[str, Message]]]) -> None:
    """A cancelled read's failure is no one's to handle: read, so it is not reported."""
    if not task.cancelled():
        task.exception()
