"""JSON on the wire: agent and chat frames, broker messages, REST answers, all one encoding.

orjson, because encoding frames (an offer carries the whole screen-pop) was a tenth of the
server's CPU per contact with the standard library. Values JSON has no type for (a Decimal, an
enum) are sent as their `str`; datetimes as ISO 8601.
"""

from __future__ import annotations

from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> str:
    return orjson.dumps(value, default=str, option=_OPTIONS).decode()


def loads(data: str | bytes) -> Any:
    """Raises ValueError on anything that is not JSON."""
    return orjson.loads(data)
