"""Everything one server process holds, built once from the settings."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from contactcenter.broker import Broker, make_broker
from contactcenter.clock import Clock, SystemClock
from contactcenter.settings import Settings
from contactcenter.storage.db import make_engine, sessionmaker

if TYPE_CHECKING:
    from contactcenter.dispatch import Dispatcher


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[Any]
    broker: Broker
    node_id: str
    dispatcher: Dispatcher | None = None
    # The latest supervisor snapshot seen on this node (from the leader's broadcast).
    live_stats: dict[str, Any] = field(default_factory=dict)

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
        )
