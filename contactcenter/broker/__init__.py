"""Brokers: in-process for the embedded default, Redis for several server processes."""

from __future__ import annotations

from contactcenter.broker.base import Broker
from contactcenter.broker.memory import MemoryBroker


def make_broker(redis_url: str | None, node_id: str, prefix: str = "cc") -> Broker:
    if not redis_url:
        return MemoryBroker(node_id)
    from contactcenter.broker.redis import RedisBroker

    return RedisBroker(redis_url, node_id, prefix)


__all__ = ["Broker", "MemoryBroker", "make_broker"]
