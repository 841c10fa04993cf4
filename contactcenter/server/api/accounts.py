"""Grading, tier overrides, coverage, agents leaving and operator-raised events
(spec §1, §4, §5); see docs/rules-jobs.md."""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from contactcenter.clock import utc
from contactcenter.customers import CustomerPatch, customer_card, get_customer, update_customer
from contactcenter.domain import Role
from contactcenter.errors import Conflict
from contactcenter.health_jobs import coverage_gap_list
from contactcenter.jobruns import claim, finish
from contactcenter.offboarding import deactivate_agent
from contactcenter.regrade import regrade, retention_plan
from contactcenter.rules.health import needs_retention
from contactcenter.scheduler import schedule
from contactcenter.segments import Segment, campaign_report, raise_event
from contactcenter.server.api import api
from contactcenter.server.endpoint import Call
from contactcenter.storage.models import JobRun

log = logging.getLogger(__name__)
Tier = Literal["A", "B", "C", "D"]


@api.route("POST", "/grading/run", role=Role.SUPERVISOR, status=202,
           summary="Regrade every customer now; runs in the background (see GET /grading/runs)")
async def run_grading(call: Call) -> Any:
    rt = call.rt
    now = utc(rt.clock.now())
    period = f"on-demand {now.isoformat()}"
    if not await claim(rt.sessions, "grading", period, rt.node_id, now):
        raise Conflict("a regrade was started at this very moment already")

    async def work() -> None:
        try:
            summary = await regrade(rt.sessions, rt.rules, now, templates=rt.templates,
                                    actor_id=call.actor.id)
            await finish(rt.sessions, "grading", period, utc(rt.clock.now()), summary.as_dict())
        except Exception:
            log.exception("on-demand regrade failed")
            await finish(rt.sessions, "grading", period, utc(rt.clock.now()),
                         {"error": "failed; see the server log"})

    rt.spawn(work())
    return {"run": {"name": "grading", "period": period, "started_at": now.isoformat()}}


@api.route("GET", "/grading/runs", role=Role.SUPERVISOR,
           summary="The latest regrades, scheduled and on demand, with their summaries")
async def grading_runs(call: Call) -> dict[str, Any]:
    async with call.rt.sessions() as session:
        runs = (await session.scalars(select(JobRun).where(JobRun.name == "grading")
                                      .order_by(JobRun.started_at.desc()).limit(20))).all()
    return {"runs": [{"period": r.period, "node": r.node, "started_at": r.started_at.isoformat(),
                      "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                      "result": r.result} for r in runs]}


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: Tier | None = Field(description="the tier that wins over the graded one; null clears")


@api.route("PUT", "/customers/{customer_id}/tier-override", role=Role.SUPERVISOR,
           body=OverrideIn, summary="Set or clear a supervisor's tier override (audited, kept "
                                    "in the tier history)")
async def set_tier_override(call: Call) -> dict[str, Any]:
    now = utc(call.rt.clock.now())
    async with call.rt.sessions.begin() as session:
        customer = await get_customer(session, call.params["customer_id"])
        before = customer.effective_tier
        customer = await update_customer(session, customer.id,
                                         CustomerPatch(tier_override=call.body.tier),
                                         actor_id=call.actor.id, now=now)
        retention = needs_retention(before, customer.effective_tier, call.rt.rules)
        if retention:
            await schedule(session, [retention_plan(call.rt.rules, call.rt.templates,
                                                    customer.id, customer.language, now)], now)
        return {"customer": customer_card(customer), "retention_callback": retention}


class GapsQuery(BaseModel):
    limit: int = Field(500, ge=1, le=5000)


@api.route("GET", "/coverage-gaps", role=Role.SUPERVISOR, query=GapsQuery,
           summary="A/B customers with fewer owners than their tier needs (spec §5)")
async def coverage_gaps(call: Call) -> dict[str, Any]:
    async with call.rt.sessions() as session:
        return await coverage_gap_list(session, call.rt.rules, limit=call.query.limit)


@api.route("POST", "/users/{user_id}/deactivate", role=Role.ADMIN,
           summary="Deactivate an agent and hand their customers to teammates at once (409 "
                   "with the reason if someone would be left without an owner)")
async def deactivate(call: Call) -> dict[str, Any]:
    rt = call.rt
    async with rt.sessions.begin() as session:
        done = await deactivate_agent(session, rt.rules, rt.templates, call.params["user_id"],
                                      actor_id=call.actor.id, now=utc(rt.clock.now()),
                                      company=rt.settings.company_name)
        return done.as_dict()


class SegmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tiers: list[Tier] = []
    tags: list[str] = []
    owner_id: int | None = None


class SegmentEventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="e.g. 'price change 2026-12'")
    action: Literal["callback", "sms", "email"]
    text: str = Field(min_length=1, max_length=10000,
                      description="the SMS or email (may use {{ name }}, {{ company }}) or the "
                                  "callback's purpose")
    subject: str | None = Field(None, max_length=200,
                                description="email: the subject (required; may use the same "
                                            "placeholders)")
    segment: SegmentIn
    category: str = Field("explanation", description="callbacks: the content category")
    within_days: int = Field(7, ge=1, le=90, description="callbacks: due within")


class CampaignQuery(BaseModel):
    reply_days: int = Field(14, ge=1, le=365, description="a reply counts this long after the "
                            "SMS or email was sent")
    limit: int = Field(200, ge=1, le=5000, description="customers listed")


@api.route("GET", "/segment-events/{event_id}", role=Role.SUPERVISOR, query=CampaignQuery,
           summary="Who an event's SMS or email went to and who replied (campaigns such as "
                   "the annual conference's invitations)")
async def get_segment_event(call: Call) -> dict[str, Any]:
    q: CampaignQuery = call.query
    async with call.rt.sessions() as session:
        return await campaign_report(session, call.params["event_id"],
                                     reply_days=q.reply_days, limit=q.limit)


@api.route("POST", "/segment-events", role=Role.SUPERVISOR, body=SegmentEventIn, status=201,
           summary="Raise a mandatory-contact event: one callback, SMS or email per customer "
                   "of a segment, exactly once")
async def post_segment_event(call: Call) -> dict[str, Any]:
    b: SegmentEventIn = call.body
    async with call.rt.sessions.begin() as session:
        event = await raise_event(
            session, call.rt.rules, name=b.name, action=b.action, text=b.text,
            segment=Segment(b.segment.tiers, b.segment.tags, b.segment.owner_id),
            category=b.category, within_days=b.within_days, actor_id=call.actor.id,
            now=utc(call.rt.clock.now()), subject=b.subject)
        return {"id": event.id, "name": event.name, "action": event.action,
                "segment": event.segment, "customers": event.customers}
