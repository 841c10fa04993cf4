"""Visits (spec §2, §4) and satisfaction by SMS (§8), end to end on both backends: regular and
holiday visits planned once, taken in with a booking call a week ahead, booked, done; the
survey SMS goes out through the fake Twilio once, in the customer's waking hours, and the
customer's reply comes back as a signed webhook."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from callback_agent import available_agent, take, wrap_up
from fake_twilio import ACCOUNT_SID, FakeTwilio, post_webhook, twilio_settings
from harness import Api, Node, add_queue, add_user, login, start_node
from sqlalchemy import select

from contactcenter.callbacks import run_callbacks
from contactcenter.clock import ManualClock, utc
from contactcenter.customers import CustomerIn, create_customer
from contactcenter.greetings import send_due_greetings
from contactcenter.jobs import run_once
from contactcenter.storage.models import (
    Consent,
    Contact,
    Message,
    ScheduledWork,
    Survey,
    Visit,
)
from contactcenter.surveys import send_due_surveys
from contactcenter.visits import plan_visits, take_in_due_visits

SH = ZoneInfo("Asia/Shanghai")
MON = datetime(2026, 11, 23, 10, tzinfo=SH)
PUBLIC = "https://cc.example.com"
OURS = "+14155550199"


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SH)


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(MON)


@pytest.fixture
async def node(stack: tuple[str, str | None, str], clock: ManualClock, fake: FakeTwilio
               ) -> AsyncIterator[Node]:
    n = await start_node(*stack, clock=clock, scheduler_seconds=3600, sms_from=OURS,
                         token_ttl_hours=24 * 400, send_retry_seconds=[0.05],
                         **twilio_settings(fake.url, PUBLIC))
    await add_queue(n, "callbacks", channels=["callback"])
    await add_queue(n, "texts", channels=["sms"])
    yield n
    await n.stop()


@pytest.fixture
async def people(node: Node) -> AsyncIterator[dict[str, Any]]:
    """Agents li and wu, supervisor boss; customers per tier, li owning the A and B ones."""
    ids: dict[str, Any] = {"li": await add_user(node, "li"), "wu": await add_user(node, "wu"),
                           "boss": await add_user(node, "boss", "supervisor")}
    now = utc(node.rt.clock.now())
    async with node.rt.sessions.begin() as session:
        for name, tier, phone, language in (("vip", "A", "13800138001", "zh-CN"),
                                            ("key", "B", "13800138002", "en"),
                                            ("plain", "C", "13800138003", "zh-CN")):
            c = await create_customer(session, CustomerIn(
                name=name, tier=tier, phones=[phone], language=language,
                owner_ids=[ids["li"]] if tier != "C" else []), actor_id=None, now=now)
            ids[name] = c.id
    ids["api"] = {n: Api(node, await login(node, n)) for n in ("li", "wu", "boss")}
    yield ids
    for api in ids["api"].values():
        await api.close()


async def rows(node: Node, model: Any, *where: Any) -> list[Any]:
    async with node.rt.sessions() as session:
        return list((await session.scalars(select(model).where(*where).order_by(
            model.id))).all())


async def wait_for_sms(fake: FakeTwilio, n: int) -> list[Any]:
    for _ in range(100):
        if len(fake.posted("/Messages.json")) >= n:
            break
        await asyncio.sleep(0.05)
    return fake.posted("/Messages.json")


async def reply(node: Node, sender: str, body: str, sid: str | None = None) -> str:
    sid = sid or "SM" + uuid.uuid4().hex
    status, _ = await post_webhook(node.url, PUBLIC, "/twilio/sms", {
        "MessageSid": sid, "AccountSid": ACCOUNT_SID, "From": sender, "To": OURS,
        "Body": body, "NumMedia": "0"})
    assert status == 200
    return sid


async def test_regular_visits_are_planned_once_taken_in_with_a_booking_call_and_done(
    node: Node, people: dict[str, Any], clock: ManualClock, fake: FakeTwilio
) -> None:
    assert await plan_visits(node.rt, MON.date(), batch=1) == 2  # A and B, not C
    assert await plan_visits(node.rt, MON.date()) == 0  # once only
    planned = await rows(node, ScheduledWork, ScheduledWork.kind == "visit")
    assert [w.key for w in planned] == [f"regular-visit:{people['vip']}:2026-11-30",
                                        f"regular-visit:{people['key']}:2026-11-30"]

    # A week ahead the visits are taken in and their booking calls are due now.
    assert len(await take_in_due_visits(node.rt)) == 2
    assert await take_in_due_visits(node.rt) == []
    visits = await rows(node, Visit)
    assert [(v.customer_id, v.owner_user_id, v.state, v.due_at) for v in visits] == [
        (people["vip"], people["li"], "pending", at(11, 30, 9)),
        (people["key"], people["li"], "pending", at(11, 30, 9))]
    bookings = await rows(node, ScheduledWork, ScheduledWork.rule_id == "visit-booking")
    assert [(b.due_at, b.latest_at, b.payload["visit_id"]) for b in bookings] == [
        (MON, at(11, 27, 18), visits[0].id), (MON, at(11, 27, 18), visits[1].id)]
    assert bookings[1].payload["purpose"].startswith("Book the visit")  # B speaks English

    contacts = await run_callbacks(node.rt)
    assert len(contacts) == 2
    boss, li, wu = (people["api"][n] for n in ("boss", "li", "wu"))
    agent = await available_agent(node, li.token, people["li"])
    await take(agent, contacts[0])
    status, body = await li.call("POST", f"/contacts/{contacts[0]}/callback-outcome", json={
        "outcome": "reached", "visit_at": at(12, 1, 14).isoformat()})
    assert status == 201, body
    assert await rows(node, ScheduledWork, ScheduledWork.kind == "survey") == []  # the visit's
    await wrap_up(agent, contacts[0])
    await take(agent, contacts[1])
    status, body = await li.call("POST", f"/contacts/{contacts[1]}/callback-outcome", json={
        "outcome": "reached"})  # the time stays as planned
    assert status == 201, body
    await wrap_up(agent, contacts[1])
    await agent.close()
    status, body = await li.call("GET", "/visits", params={"start": "2026-11-30",
                                                           "end": "2026-12-06"})
    assert status == 200
    key, vip = body["visits"]  # ordered by due time: key's Monday 09:00, vip's Tuesday 14:00
    assert (key["customer_id"], key["state"]) == (people["key"], "booked")
    assert datetime.fromisoformat(key["due"]) == at(11, 30, 9)
    assert (vip["customer_id"], vip["state"]) == (people["vip"], "booked")
    assert datetime.fromisoformat(vip["due"]) == at(12, 1, 14)
    status, _ = await li.call("GET", "/visits", params={"start": "2026-11-30",
                                                        "end": "2026-12-06",
                                                        "owner_id": people["wu"]})
    assert status == 403
    status, _ = await wu.call("POST", f"/visits/{vip['id']}/outcome", json={"outcome": "done"})
    assert status == 403  # not the owner

    clock.set(at(12, 1, 16))
    status, body = await li.call("POST", f"/visits/{vip['id']}/outcome", json={
        "outcome": "done", "notes": "设备运行正常"})
    assert status == 201 and body["visit"]["state"] == "done"
    status, body = await li.call("POST", f"/visits/{vip['id']}/outcome", json={
        "outcome": "done"})
    assert status == 409
    move = {"due": at(12, 2, 10).isoformat(), "reason": "客户改约周三上午"}
    status, _ = await wu.call("POST", f"/visits/{key['id']}/move", json=move)
    assert status == 403
    status, body = await li.call("POST", f"/visits/{key['id']}/move", json=move)
    assert status == 200 and datetime.fromisoformat(body["visit"]["due"]) == at(12, 2, 10)
    assert datetime.fromisoformat(body["visit"]["latest"]) == at(12, 2, 18)
    status, body = await boss.call("POST", f"/visits/{key['id']}/cancel",
                                   json={"reason": "客户停业装修"})
    assert status == 200 and body["visit"]["state"] == "cancelled"
    status, body = await li.call("GET", f"/visits/{key['id']}")
    assert [(c["action"], c["reason"]) for c in body["changes"]] == [
        ("booked", "booking call"), ("moved", "客户改约周三上午"), ("cancelled", "客户停业装修")]

    # The survey goes out; a bare score back verifies the visit and is not routed.
    assert await send_due_surveys(node.rt) == 1
    (sms,) = await wait_for_sms(fake, 1)
    assert sms.form["To"] == "+8613800138001"
    assert sms.form["Body"] == node.rt.rules.satisfaction.template.zh_cn
    await reply(node, "138 0013 8001", "5")
    (survey,) = await rows(node, Survey)
    assert (survey.subject, survey.subject_id, survey.score) == ("visit", vip["id"], 5)
    (done,) = await rows(node, Visit, Visit.id == vip["id"])
    assert done.verified_at == at(12, 1, 16)
    assert await rows(node, Contact, Contact.channel == "sms") == []

    # The next regular visit is 90 days after this one took place.
    await plan_visits(node.rt, date(2026, 12, 2))
    nxt = await rows(node, ScheduledWork, ScheduledWork.key.like(
        f"regular-visit:{people['vip']}:%"), ScheduledWork.state == "pending")
    assert [w.key for w in nxt] == [f"regular-visit:{people['vip']}:2027-03-01"]


async def test_the_background_job_plans_holiday_visits_and_books_them(
    node: Node, people: dict[str, Any], clock: ManualClock
) -> None:
    clock.set(at(12, 20, 10))  # a Sunday: the booking calls wait for Monday
    planned: set[Any] = set()
    await run_once(node.rt, planned)
    await run_once(node.rt, planned)  # a second round adds nothing
    holiday = await rows(node, Visit, Visit.rule_id == "holiday-visit")
    assert [(v.customer_id, v.due_at, v.latest_at) for v in holiday] == [
        (people["vip"], at(12, 25, 9), at(12, 31, 18)),
        (people["key"], at(12, 25, 9), at(12, 31, 18))]
    bookings = await rows(node, ScheduledWork, ScheduledWork.rule_id == "visit-booking",
                          ScheduledWork.key.like("booking:holiday-visit:%"))
    assert [(b.state, b.due_at) for b in bookings] == [("pending", at(12, 21, 9))] * 2


async def test_survey_replies(node: Node, people: dict[str, Any], clock: ManualClock,
                              fake: FakeTwilio) -> None:
    boss = people["api"]["boss"]
    async with node.rt.sessions.begin() as session:  # 'plain' opted out of marketing
        session.add(Consent(customer_id=people["plain"], purpose="sms-marketing",
                            granted=False, at=utc(node.rt.clock.now())))
    for name in ("plain", "key"):
        status, _ = await boss.call("POST", f"/customers/{people[name]}/callbacks", json={
            "due": MON.isoformat(), "category": "service", "purpose": "回访"})
        assert status == 201
    contacts = await run_callbacks(node.rt)
    agent = await available_agent(node, people["api"]["li"].token, people["li"])
    for _ in contacts:  # the router picks the order (the B customer's first)
        await wrap_up(agent, await take(agent))
    await agent.close()
    clock.set(at(11, 23, 21, 30))  # quiet hours: the surveys wait for 09:00
    for contact_id in contacts:  # the supervisor records them after the calls
        status, _ = await boss.call("POST", f"/contacts/{contact_id}/callback-outcome",
                                    json={"outcome": "reached"})
        assert status == 201
    assert await send_due_surveys(node.rt) == 0
    clock.set(at(11, 24, 9))
    assert await send_due_surveys(node.rt) == 2  # a service message: the opt-out still gets it
    assert await send_due_surveys(node.rt) == 0
    sent = await wait_for_sms(fake, 2)
    assert sorted(s.form["Body"] for s in sent) == sorted(
        [node.rt.rules.satisfaction.template.zh_cn, node.rt.rules.satisfaction.template.en])

    # A score and more: stored, routed to an agent, and a mediation callback planned.
    clock.set(at(11, 24, 10))
    sid = await reply(node, "+8613800138003", "2 电话没人接,等了很久")
    await reply(node, "+8613800138003", "2 电话没人接,等了很久", sid)  # Twilio retries
    plain = (await rows(node, Survey))[0]
    assert (plain.score, plain.reply_number, plain.reply_text) == (
        2, "+8613800138003", "2 电话没人接,等了很久")
    assert plain.replied_at == at(11, 24, 10)
    routed = await rows(node, Contact, Contact.channel == "sms")
    assert [(c.customer_id, c.body) for c in routed] == [(people["plain"],
                                                          "2 电话没人接,等了很久")]
    (mediation,) = await rows(node, ScheduledWork, ScheduledWork.rule_id == "mediation")
    assert (mediation.key, mediation.payload["category"]) == (plain.mediation_key, "mediation")
    assert (mediation.due_at, mediation.latest_at) == (at(11, 24, 10), at(11, 25, 10))

    # Answered already: a second score is an ordinary message. Not a score: routed too.
    await reply(node, "+8613800138003", "4")
    await reply(node, "+8613800138002", "thanks, all good")
    # After 7 days the survey is closed: a late score goes to an agent.
    clock.set(at(12, 2, 10))
    await reply(node, "+8613800138002", "5")
    assert [(s.score, s.reply_text) for s in await rows(node, Survey)] == [
        (2, "2 电话没人接,等了很久"), (None, None)]
    inbound = await rows(node, Message, Message.direction == "inbound")
    assert [m.body for m in inbound] == ["2 电话没人接,等了很久", "4", "thanks, all good", "5"]
    assert all(m.contact_id is not None for m in inbound)  # each went to a queue


async def test_a_visit_booked_by_hand_is_on_the_owners_calendar_with_who_and_why(
    node: Node, people: dict[str, Any]
) -> None:
    li, wu, boss = (people["api"][n] for n in ("li", "wu", "boss"))
    when = {"due": at(11, 24, 14).isoformat(), "latest": at(11, 24, 16).isoformat()}
    status, body = await li.call("POST", f"/customers/{people['plain']}/visits", json={
        **when, "notes": "客户要求上门看看热水器", "reason": "customer asked on the phone"})
    assert status == 201, body
    visit = body["visit"]
    assert (visit["state"], visit["owner_id"], visit["rule"]) == ("booked", people["li"],
                                                                  "manual")
    assert visit["booking_key"] is None  # agreed with the customer: no booking call
    status, body = await li.call("GET", "/visits", params={"start": "2026-11-24",
                                                            "end": "2026-11-24"})
    assert status == 200 and [v["id"] for v in body["visits"]] == [visit["id"]], body
    status, body = await li.call("GET", f"/visits/{visit['id']}")
    assert status == 200, body
    (created,) = body["changes"]
    assert (created["action"], created["reason"]) == ("created", "customer asked on the phone")

    # An agent books only for themselves; a supervisor for anyone active.
    status, body = await wu.call("POST", f"/customers/{people['plain']}/visits",
                                 json={**when, "owner_id": people["li"]})
    assert status == 403, body
    status, body = await boss.call("POST", f"/customers/{people['vip']}/visits",
                                   json={**when, "owner_id": people["wu"]})
    assert status == 201 and body["visit"]["owner_id"] == people["wu"], body
    status, body = await boss.call("POST", f"/customers/{people['vip']}/visits",
                                   json={**when, "owner_id": 98765})
    assert status == 422 and "owner_id" in body["error"]["message"], body
    status, body = await li.call("POST", "/customers/98765/visits", json=when)
    assert status == 404, body


async def test_a_campaign_shows_who_was_invited_and_who_replied(
    node: Node, clock: ManualClock, fake: FakeTwilio, people: dict[str, Any]
) -> None:
    """The annual conference's invitations (spec §4): an SMS to the A/B customers, and the
    supervisor sees who got one and who answered within the reply window."""
    boss = people["api"]["boss"]
    status, body = await boss.call("POST", "/segment-events", json={
        "name": "2027 客户年会", "action": "sms", "segment": {"tiers": ["A", "B"]},
        "text": "{{ name }},诚邀您参加1月15日的客户年会,回复“参加”即可报名。"})
    assert status == 201 and body["customers"] == 2, body
    event_id = body["id"]
    assert await send_due_greetings(node.rt) == 2
    sent = await wait_for_sms(fake, 2)
    assert {m.form["To"] for m in sent} == {"+8613800138001", "+8613800138002"}

    clock.set(at(11, 23, 11))
    await reply(node, "+8613800138001", "参加,带一位同事")
    clock.set(at(12, 20, 11))  # 27 days later: past a 14-day window
    await reply(node, "+8613800138002", "参加")
    status, report = await boss.call("GET", f"/segment-events/{event_id}")
    assert status == 200, report
    assert (report["planned"], report["sent"], report["replied"]) == (2, 2, 1)
    assert report["reply_rate"] == 0.5
    replied = {c["name"]: c["reply"] for c in report["customers"]}
    assert replied == {"vip": "参加,带一位同事", "key": None}
    status, report = await boss.call("GET", f"/segment-events/{event_id}",
                                     params={"reply_days": 30})
    assert status == 200 and report["replied"] == 2
    status, _ = await people["api"]["li"].call("GET", f"/segment-events/{event_id}")
    assert status == 403
    status, _ = await boss.call("GET", "/segment-events/999")
    assert status == 404
