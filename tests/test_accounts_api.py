"""Supervisor and admin endpoints of accounts: tier overrides, regrade on demand, coverage
gaps, an agent leaving (orphan customers, spec §5), mandatory-contact events (§4), events in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from harness import Api, Node, add_user, login, start_node
from sqlalchemy import func, select

from contactcenter.clock import ManualClock, utc
from contactcenter.customers import CustomerIn, create_customer
from contactcenter.events import record_event
from contactcenter.periodic_jobs import run_periodic_jobs
from contactcenter.storage.models import (
    AuditEntry,
    Customer,
    CustomerOwner,
    ScheduledWork,
    TierChange,
    User,
)

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
LATE = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai: quiet hours


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
async def node(stack: tuple[str, str | None, str], clock: ManualClock) -> AsyncIterator[Node]:
    n = await start_node(*stack, clock=clock, scheduler_seconds=3600, company_name="好家电")
    yield n
    await n.stop()


@pytest.fixture
async def boss(node: Node) -> AsyncIterator[Api]:
    await add_user(node, "boss", role="admin")
    client = Api(node, await login(node, "boss"))
    yield client
    await client.close()


async def _customer(node: Node, name: str, tier: str | None = None, owners: list[int] = (),
                    phone: str | None = None, tags: list[str] = (),
                    language: str = "zh-CN") -> int:
    async with node.rt.sessions.begin() as session:
        c = await create_customer(session, CustomerIn(
            name=name, tier=tier, owner_ids=list(owners), phones=[phone] if phone else [],
            tags=list(tags), language=language), actor_id=None, now=utc(node.rt.clock.now()))
        return c.id


async def _work(node: Node) -> dict[str, ScheduledWork]:
    async with node.rt.sessions() as session:
        return {w.key: w for w in (await session.scalars(select(ScheduledWork))).all()}


async def test_tier_override_is_a_supervisors_audited_call(node: Node, boss: Api) -> None:
    await add_user(node, "li")
    agent = Api(node, await login(node, "li"))
    cid = await _customer(node, "王芳", tier="A")
    status, body = await agent.call("PUT", f"/customers/{cid}/tier-override", json={"tier": "C"})
    assert status == 403
    status, body = await boss.call("PUT", f"/customers/{cid}/tier-override", json={"tier": "C"})
    assert status == 200, body
    assert body["customer"]["tier"] == "C" and body["customer"]["tier_computed"] == "A"
    assert body["retention_callback"] is True  # A dropped to C (§5)
    status, body = await boss.call("PUT", f"/customers/{cid}/tier-override", json={"tier": None})
    assert status == 200 and body["customer"]["tier"] == "A" and not body["retention_callback"]
    status, body = await boss.call("PUT", f"/customers/{cid}/tier-override", json={"tier": "E"})
    assert status == 422
    async with node.rt.sessions() as session:
        history = [(h.tier_from, h.tier_to, h.reason) for h in (await session.scalars(
            select(TierChange).where(TierChange.customer_id == cid)
            .order_by(TierChange.id))).all()]
        audits = (await session.scalars(select(AuditEntry.after).where(
            AuditEntry.entity_id == cid, AuditEntry.action == "update"))).all()
    assert history == [(None, "A", "initial"), ("A", "C", "override"),
                       ("C", "A", "override-cleared")]
    assert [a["tier_override"] for a in audits] == ["C", None]
    (retention,) = (await _work(node)).values()
    assert retention.rule_id == "retention" and retention.payload["category"] == "emotional"
    await agent.close()


async def test_regrade_on_demand_runs_in_the_background(node: Node, boss: Api) -> None:
    for i in range(1, 5):
        cid = await _customer(node, f"c{i}")
        status, _ = await boss.call("POST", "/events", json={
            "customer_id": cid, "kind": "purchase", "data": {"amount": i * 100, "profit": i}})
        assert status == 201
    status, body = await boss.call("POST", "/grading/run")
    assert status == 202, body
    for _ in range(100):
        status, runs = await boss.call("GET", "/grading/runs")
        if runs["runs"] and runs["runs"][0]["finished_at"]:
            break
        await asyncio.sleep(0.05)
    result = runs["runs"][0]["result"]
    # 4 buyers: top 5% -> 1 A; 1 of 4 above is 25%, past B's 20% -> C; the rest D.
    assert result["graded"] == 4 and result["per_tier"] == {"A": 1, "C": 1, "D": 2}
    async with node.rt.sessions() as session:
        assert await session.scalar(select(Customer.tier).where(Customer.name == "c4")) == "A"


async def test_coverage_gaps_list_a_b_customers_short_of_owners(node: Node, boss: Api) -> None:
    one, two = await add_user(node, "one"), await add_user(node, "two")
    gap = await _customer(node, "one owner", tier="A", owners=[one])
    await _customer(node, "covered", tier="B", owners=[one, two])
    await _customer(node, "ordinary", tier="C")
    status, body = await boss.call("GET", "/coverage-gaps")
    assert status == 200
    assert body == {"total": 1, "customers": [{"id": gap, "name": "one owner", "tier": "A",
                                               "owners": 1, "needed": 2}]}


async def test_an_agent_leaving_hands_every_customer_over_at_once(
    node: Node, clock: ManualClock
) -> None:
    clock.set(LATE)  # the SMS must wait for the end of quiet hours
    await add_user(node, "boss", role="admin")
    boss = Api(node, await login(node, "boss"))
    leaving = await add_user(node, "leaving", team="north", display_name="张伟")
    busy = await add_user(node, "busy", team="north", display_name="李娜")
    idle = await add_user(node, "idle", team="north", display_name="王强")
    await add_user(node, "south", team="south")
    for i in range(3):
        await _customer(node, f"busy's {i}", tier="D", owners=[busy])
    a = await _customer(node, "A-cust", tier="A", owners=[leaving, busy], phone="13800138001")
    c = await _customer(node, "C-cust", tier="C", owners=[leaving], phone="13800138002",
                        language="en")
    leaver = Api(node, await login(node, "leaving"))

    status, body = await boss.call("POST", f"/users/{leaving}/deactivate")
    assert status == 200, body
    async with node.rt.sessions() as session:
        owners = {cid: sorted((await session.scalars(select(CustomerOwner.user_id).where(
            CustomerOwner.customer_id == cid))).all()) for cid in (a, c)}
        active = await session.scalar(select(User.active).where(User.id == leaving))
        audit = (await session.scalars(select(AuditEntry).where(
            AuditEntry.action == "reassign").order_by(AuditEntry.entity_id))).all()
    # A keeps two owners: busy stays, idle (fewest customers) joins; C goes to idle too.
    assert owners == {a: sorted([busy, idle]), c: [idle]}
    assert active is False
    assert [(x.entity_id, x.before, x.after) for x in audit] == [
        (a, {"owners": sorted([leaving, busy])}, {"owners": [busy, idle]}),
        (c, {"owners": [leaving]}, {"owners": [idle]})]
    work = await _work(node)
    sms_a, sms_c = work[f"new-owner:{a}:{leaving}"], work[f"new-owner:{c}:{leaving}"]
    assert "王强" in sms_a.payload["values"]["text"] and "好家电" in sms_a.payload["values"]["text"]
    assert sms_c.payload["values"]["text"].startswith("Dear C-cust, from now on 王强")
    assert sms_a.due_at == datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 09:00 next morning
    intro = work[f"introduction:{a}:{leaving}"]
    assert intro.kind == "visit" and intro.latest_at - intro.due_at <= timedelta(days=14)
    assert f"introduction:{c}:{leaving}" not in work  # C gets no visit
    status, _ = await leaver.call("GET", "/customers")
    assert status == 401  # a deactivated user's token no longer works

    status, body = await boss.call("POST", f"/users/{leaving}/deactivate")
    assert status == 409  # already inactive
    await leaver.close()
    await boss.close()


async def test_leaving_is_refused_when_a_customer_would_be_ownerless(
    node: Node, boss: Api
) -> None:
    alone = await add_user(node, "alone", team="east")
    cid = await _customer(node, "orphan", tier="C", owners=[alone])
    status, body = await boss.call("POST", f"/users/{alone}/deactivate")
    assert status == 409
    assert "east" in body["error"]["message"] and "alone" in body["error"]["message"]
    async with node.rt.sessions() as session:  # nothing changed
        assert await session.scalar(select(User.active).where(User.id == alone)) is True
        assert (await session.scalars(select(CustomerOwner.user_id).where(
            CustomerOwner.customer_id == cid))).all() == [alone]
        assert await session.scalar(select(func.count()).select_from(ScheduledWork)) == 0


async def test_a_segment_event_plans_one_sms_or_callback_per_customer(
    node: Node, boss: Api
) -> None:
    owner = await add_user(node, "owner")
    c1 = await _customer(node, "c-member", tier="C", tags=["member"])
    c2 = await _customer(node, "d-member", tier="D", tags=["member", "vip"], owners=[owner])
    await _customer(node, "c-other", tier="C")
    await _customer(node, "a-member", tier="A", tags=["member"])
    status, body = await boss.call("POST", "/segment-events", json={
        "name": "油价调整", "action": "sms", "text": "{{ name }},油价将于明日调整。",
        "segment": {"tiers": ["C", "D"], "tags": ["member"]}})
    assert status == 201, body
    assert body["customers"] == 2
    work = await _work(node)
    assert set(work) == {f"segment:{c1}:{body['id']}", f"segment:{c2}:{body['id']}"}
    status, body = await boss.call("POST", "/segment-events", json={
        "name": "storm", "action": "callback", "text": "check the outdoor unit",
        "category": "guidance", "segment": {"owner_id": owner}})
    assert status == 201 and body["customers"] == 1
    (callback,) = [w for w in (await _work(node)).values() if w.kind == "callback"]
    assert callback.customer_id == c2 and callback.payload["purpose"].startswith("storm")
    for bad in ({"action": "fax"}, {"text": "{{ oops"}, {"category": "nonsense",
                                                        "action": "callback"}):
        status, body = await boss.call("POST", "/segment-events", json={
            "name": "x", "action": "sms", "text": "hi", "segment": {}, **bad})
        assert status == 422, bad


async def test_events_in_accept_every_kind_and_check_what_jobs_read(
    node: Node, boss: Api
) -> None:
    cid = await _customer(node, "王芳", tier="B")
    for kind in ("visit-completed", "paid-service-ordered", "complaint-archived",
                 "repair-dispatched", "installation-completed", "proposal-written"):
        status, body = await boss.call("POST", "/events", json={"customer_id": cid,
                                                                "kind": kind})
        assert status == 201, (kind, body)
    for data in ({"amount": "lots"}, {"profit": True}):
        status, body = await boss.call("POST", "/events", json={
            "customer_id": cid, "kind": "purchase", "data": data})
        assert status == 422 and "data." in body["error"]["message"]
    status, body = await boss.call("POST", "/events", json={
        "customer_id": cid, "kind": "repair-dispatched",
        "data": {"promised_duration": "soon"}})
    assert status == 422 and "promised_duration" in body["error"]["message"]
    status, body = await boss.call("POST", "/events", json={"customer_id": cid,
                                                            "kind": "customer-lost"})
    assert status == 201
    (retention,) = body["scheduled"]  # a B customer marked lost: retention callback (§5)
    assert retention["rule"] == "retention" and retention["category"] == "emotional"


async def test_the_monthly_regrade_runs_on_one_node_of_two(
    stack: tuple[str, str | None, str]
) -> None:
    clock = ManualClock(datetime(2026, 11, 30, 17, 59, tzinfo=UTC))  # 1 Dec 01:59 Shanghai
    one = await start_node(*stack, clock=clock, scheduler_seconds=3600)
    two = await start_node(*stack, clock=clock, scheduler_seconds=3600)
    try:
        cid = await _customer(one, "buyer")
        async with one.rt.sessions.begin() as session:
            await record_event(session, one.rt.rules, customer_id=cid, kind="purchase",
                               at=utc(clock.now()), now=utc(clock.now()), data={"amount": 9})
        seen_one: set[tuple[str, str]] = set()
        seen_two: set[tuple[str, str]] = set()
        first = await run_periodic_jobs(one.rt, seen_one)
        assert "grading" not in first and "health" in first  # the regrade is due at 02:00
        clock.set(datetime(2026, 11, 30, 18, 0, tzinfo=UTC))  # 02:00: due
        ran = await asyncio.gather(run_periodic_jobs(one.rt, seen_one),
                                   run_periodic_jobs(two.rt, seen_two))
        graders = [r["grading"] for r in ran if "grading" in r]
        assert len(graders) == 1 and graders[0]["per_tier"] == {"A": 1}
        assert await run_periodic_jobs(one.rt, seen_one) == {}  # nothing more this period
        assert await run_periodic_jobs(two.rt, set()) == {}  # nor on a restarted node
    finally:
        await one.stop()
        await two.stop()
