"""The supervisor board's tier charts: the customers per tier now and the tier movements of
the last months (queries in contactcenter/tier_board.py)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from contactcenter import tier_board
from contactcenter.clock import utc
from contactcenter.domain import Role
from contactcenter.rules.config import TIERS
from contactcenter.server.api import api
from contactcenter.server.endpoint import Call


class MonthsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    months: int = Field(6, ge=1, le=24, description="how many months of movements, ending "
                                                    "with the current one")


@api.route("GET", "/supervisor/tiers", role=Role.SUPERVISOR, query=MonthsQuery,
           tag="supervisor", summary="Customers per effective tier now (`none`: not graded) "
                                     "and, per month, tier changes up, down, first graded and "
                                     "cleared, with each from → to pair")
async def tiers(call: Call) -> dict[str, Any]:
    zone = ZoneInfo(call.rt.rules.calendar.timezone)
    today = utc(call.rt.clock.now()).astimezone(zone).date()
    starts = tier_board.month_starts(today, call.query.months)
    async with call.rt.sessions() as session:
        distribution = await tier_board.tier_distribution(session)
        movements = await tier_board.tier_movements(session, starts, zone)
    return {"tiers": list(TIERS), "distribution": distribution, "months": movements}
