"""Everything one server process holds, built once from the settings."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from contactcenter.broker import Broker, make_broker
from contactcenter.clock import Clock, SystemClock
from contactcenter.queues import QueueCache
from contactcenter.rules.config import Rules, load_rules
from contactcenter.settings import Settings
from contactcenter.storage.db import make_engine, sessionmaker
from contactcenter.templates import Templates

if TYPE_CHECKING:
    from contactcenter.contacts import IntakeBatcher
    from contactcenter.dispatch import Dispatcher
    from contactcenter.outbound import Sender
    from contactcenter.routing import ContactEvent

# Called on the routing node for each event of a contact on the hook's channel (voice: connect
# the caller when an agent accepts). Runs in the background; it must not block routing.
EventHook = Callable[["Runtime", "ContactEvent"], Awaitable[None]]


def tune_collector() -> None:
    """Once start-up is done. What it built (modules, the schema, compiled statements) lives as
    long as the process: out of the collector's sight, full collections under load cost a
    fraction. Under load most young objects die by reference count before a collection sees
    them; collecting every 700 allocations walked the survivors of a request many times over."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[Any]
    broker: Broker
    node_id: str
    dispatcher: Dispatcher | None = None
    templates: Templates = field(default_factory=Templates.load)
    rules: Rules = field(default_factory=load_rules)
    queue_cache: QueueCache = field(default_factory=QueueCache)
    intake: IntakeBatcher | None = None  # inbound items waiting to be stored together
    # The latest supervisor snapshot seen on this node (from the leader's broadcast).
    live_stats: dict[str, Any] = field(default_factory=dict)
    # Filled by the channel adapters when they are mounted (see channels/__init__.py).
    senders: dict[str, Sender] = field(default_factory=dict)
    event_hooks: dict[str, EventHook] = field(default_factory=dict)
    _background: set[asyncio.Task[Any]] = field(default_factory=set)
    _sqlite_writer: asyncio.Lock = field(default_factory=asyncio.Lock)

    def writing(self) -> AbstractAsyncContextManager[Any]:
        """Held around the hot write transactions (the intake's, the dispatcher's). SQLite lets
        one writer in at a time and the others sleep and retry (storage/sqlite_inline.py), a
        millisecond or more each; taking turns here first costs nothing. PostgreSQL needs no
        turns."""
        if self.engine.dialect.name == "sqlite":
            return self._sqlite_writer
        return nullcontext()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run in the background, keeping a reference so the task is not collected early."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        node_id = settings.node_id or f"{socket.gethostname()}:{settings.port}:{os.getpid()}"
        engine = make_engine(settings.resolved_database_url())
        return cls(
            settings=settings,
            clock=clock or SystemClock(),
            engine=engine,
            sessions=sessionmaker(engine),
            broker=make_broker(settings.redis_url, node_id, settings.redis_prefix),
            node_id=node_id,
            templates=Templates.load(settings.messages_file),
            rules=load_rules(settings.rules_file),
        )
