"""The supervisor board's data (issue 4: the API now, the board in the UI issue). Each view is
computed by set-based queries in contactcenter/board.py."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contactcenter import board
from contactcenter.clock import utc
from contactcenter.domain import Role
from contactcenter.server.api import api
from contactcenter.server.endpoint import Call

MAX_DAYS = 31


class Page(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(200, ge=1, le=1000)


class DayPage(Page):
    day: date | None = Field(None, description="a day in the company's time zone; default "
                                               "today")


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_: date | None = Field(None, alias="from", description="first day (company time "
                                                               "zone); default 6 days ago")
    to: date | None = Field(None, description="last day, included; default today")

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.from_ and self.to and self.from_ > self.to:
            raise ValueError("from is after to")
        if self.from_ and self.to and (self.to - self.from_).days >= MAX_DAYS:
            raise ValueError(f"at most {MAX_DAYS} days at a time")
        return self

    def days(self, today: date) -> list[date]:
        last = self.to or today
        first = self.from_ or min(last, today) - timedelta(days=6)
        if first > last:  # only `to` given, before the default start
            first = last - timedelta(days=6)
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]


class OverduePage(Page):
    days: int = Field(90, ge=1, le=366, description="look back this many days for windows "
                                                    "that ended")


class CoveragePage(Page):
    after_id: int = Field(0, ge=0, description="page: customers after this id")


def _zone(call: Call) -> ZoneInfo:
    return ZoneInfo(call.rt.rules.calendar.timezone)


def _now(call: Call) -> datetime:
    return utc(call.rt.clock.now())


def _today(call: Call) -> date:
    return _now(call).astimezone(_zone(call)).date()


def _span(call: Call, days: list[date]) -> tuple[datetime, datetime]:
    return (board.day_bounds(days[0], _zone(call))[0], board.day_bounds(days[-1], _zone(call))[1])


def _range_body(days: list[date]) -> dict[str, str]:
    return {"from": days[0].isoformat(), "to": days[-1].isoformat()}


@api.route("GET", "/supervisor/callbacks/due", role=Role.SUPERVISOR, query=DayPage,
           tag="supervisor", summary="Callbacks due on a day (default today): counts by state "
                                     "(pending, open, done, cancelled) and the list")
async def callbacks_due(call: Call) -> dict[str, Any]:
    q: DayPage = call.query
    day = q.day or _today(call)
    start, end = board.day_bounds(day, _zone(call))
    async with call.rt.sessions() as session:
        body = await board.callbacks_due(session, start, end, _now(call), q.limit)
    return {"day": day.isoformat(), **body}


@api.route("GET", "/supervisor/callbacks/overdue", role=Role.SUPERVISOR, query=OverduePage,
           tag="supervisor", summary="Callbacks past their latest due time (in the last `days` "
                                     "days) and not done")
async def callbacks_overdue(call: Call) -> dict[str, Any]:
    q: OverduePage = call.query
    now = _now(call)
    async with call.rt.sessions() as session:
        return await board.callbacks_overdue(session, now, now - timedelta(days=q.days),
                                             q.limit)


@api.route("GET", "/supervisor/callbacks/compliance", role=Role.SUPERVISOR, query=Range,
           tag="supervisor", summary="Share of callbacks done inside their window, of those "
                                     "whose window ended in the range; per rule and overall")
async def callback_compliance(call: Call) -> dict[str, Any]:
    days = call.query.days(_today(call))
    start, end = _span(call, days)
    async with call.rt.sessions() as session:
        body = await board.callback_compliance(session, start, end, _now(call))
    return {**_range_body(days), **body}


@api.route("GET", "/supervisor/complaints", role=Role.SUPERVISOR, tag="supervisor",
           summary="Open complaints by step and escalation level, with how many are overdue")
async def complaints(call: Call) -> dict[str, Any]:
    async with call.rt.sessions() as session:
        return await board.complaints_by_step(session, call.rt.rules, _now(call))


@api.route("GET", "/supervisor/greetings", role=Role.SUPERVISOR, query=Range, tag="supervisor",
           summary="Greeting runs per day and rule: planned, pending, skipped, sent, "
                   "delivered, failed")
async def greetings(call: Call) -> dict[str, Any]:
    days = call.query.days(_today(call))
    async with call.rt.sessions() as session:
        runs = await board.greeting_runs(session, days, _zone(call))
    return {**_range_body(days), "runs": runs}


@api.route("GET", "/supervisor/sms-providers", role=Role.SUPERVISOR, query=Range,
           tag="supervisor", summary="Per SMS provider: delivery rate (delivered ÷ sent) and "
                                     "p50/p95 seconds from sent to delivered")
async def sms_providers(call: Call) -> dict[str, Any]:
    days = call.query.days(_today(call))
    start, end = _span(call, days)
    async with call.rt.sessions() as session:
        providers = await board.sms_providers(session, start, end)
    return {**_range_body(days), "providers": providers}


@api.route("GET", "/supervisor/coverage-gaps", role=Role.SUPERVISOR, query=CoveragePage,
           tag="supervisor", summary="Customers with fewer owners than their tier needs "
                                     "(A/B: 2)")
async def coverage(call: Call) -> dict[str, Any]:
    q: CoveragePage = call.query
    async with call.rt.sessions() as session:
        return await board.coverage_gaps(session, call.rt.rules, after_id=q.after_id,
                                         limit=q.limit)
