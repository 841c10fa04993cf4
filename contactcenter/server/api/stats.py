from __future__ import annotations

from typing import Any

from contactcenter.domain import Role
from contactcenter.server.api import api
from contactcenter.server.endpoint import Call


@api.route("GET", "/stats/live", role=Role.SUPERVISOR,
           summary="Latest live queue and agent statistics (also pushed on /supervisor/ws)")
async def live(call: Call) -> dict[str, Any]:
    return call.rt.live_stats or {"queues": [], "agents": []}
