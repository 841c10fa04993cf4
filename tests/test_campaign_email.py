"""Campaign email (spec §4, the annual conference's invitations to A/B customers) end to end on
both backends: a supervisor raises an email segment event, the background job sends one mail per
customer with an address through a local relay (the outside world, see test_channel_mail), an
`email-marketing` opt-out stops it, the customer's answer comes back by SMTP to our own server,
threads into the campaign's conversation and shows in the report."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from harness import Api, Node, add_queue, add_user, login, start_node
from smtp_relay import Relay
from sqlalchemy import select
from test_channel_mail import mail, send_mail

from contactcenter.clock import ManualClock, utc
from contactcenter.customers import CustomerIn, create_customer
from contactcenter.jobs import Planned, run_once
from contactcenter.storage.models import Contact, Conversation, Message, ScheduledWork

SH = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=SH)
DOMAIN = "support.example.com"
SUPPORT = f"support@{DOMAIN}"


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(MONDAY)


@pytest.fixture
async def node(stack: tuple[str, str | None, str], clock: ManualClock, relay: Relay
               ) -> AsyncIterator[Node]:
    n = await start_node(*stack, clock=clock, scheduler_seconds=3600, inbound_smtp_port=0,
                         email_domain=DOMAIN, email_address=SUPPORT, smtp_host="127.0.0.1",
                         smtp_port=relay.port, company_name="Acme", send_retry_seconds=[0.05],
                         token_ttl_hours=24 * 400)
    await add_queue(n, "support")
    yield n
    await n.stop()


@pytest.fixture
async def boss(node: Node) -> AsyncIterator[Api]:
    await add_user(node, "boss", "supervisor")
    api = Api(node, await login(node, "boss"))
    yield api
    await api.close()


async def customers(node: Node) -> dict[str, int]:
    """A and B customers: one to invite, one opted out of marketing email, one without an
    address; a C customer outside the segment."""
    ids = {}
    async with node.rt.sessions.begin() as session:
        for key, tier, emails, consents in (
            ("vip", "A", ["wang@example.cn"], {"sms-marketing": False}),
            ("quiet", "B", ["li@example.cn"], {"email-marketing": False}),
            ("nomail", "B", [], {}),
            ("plain", "C", ["zhao@example.cn"], {}),
        ):
            c = await create_customer(session, CustomerIn(
                name=key, honorific=f"{key} 先生", tier=tier, emails=emails,
                consents=consents), actor_id=None, now=utc(node.rt.clock.now()))
            ids[key] = c.id
    return ids


async def sent_message(node: Node, message_id: int) -> Message:
    for _ in range(100):
        async with node.rt.sessions() as session:
            message = await session.get(Message, message_id)
        assert message is not None
        if message.status == "sent":
            return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"message {message_id} was never sent: {message.status}")


@pytest.mark.parametrize("bad", [{}, {"subject": ""}, {"subject": "   "},
                                 {"subject": "{{ name"}])
async def test_an_email_event_needs_a_subject(node: Node, boss: Api, bad: dict[str, Any]
                                              ) -> None:
    status, body = await boss.call("POST", "/segment-events", json={
        "name": "2027 年会", "action": "email", "text": "hi", "segment": {}, **bad})
    assert status == 422, body
    assert "subject" in str(body)
    async with node.rt.sessions() as session:
        assert (await session.scalars(select(ScheduledWork))).all() == []


async def test_the_invitation_goes_out_once_and_the_reply_is_reported(
    node: Node, boss: Api, relay: Relay, clock: ManualClock
) -> None:
    ids = await customers(node)
    status, body = await boss.call("POST", "/segment-events", json={
        "name": "2027 客户年会", "action": "email", "segment": {"tiers": ["A", "B"]},
        "subject": "{{ company }} 2027 客户年会邀请",
        "text": "{{ name }},诚邀您参加1月15日的客户年会,回复“参加”即可报名。"})
    assert status == 201, body
    assert body["action"] == "email" and body["customers"] == 3
    event_id = body["id"]

    planned: Planned = set()
    await run_once(node.rt, planned)
    invitation = await relay.next()
    # Only the customer with an address who did not opt out of marketing email (an SMS opt-out
    # is another purpose), and only once however often the job runs.
    await run_once(node.rt, planned)
    await relay.nothing_for(0.3)
    assert invitation.rcpt_tos == ["wang@example.cn"]
    assert invitation.header("Subject") == "Acme 2027 客户年会邀请"
    assert invitation.text == "vip 先生,诚邀您参加1月15日的客户年会,回复“参加”即可报名。"
    assert invitation.header("Reply-To").startswith("reply+")
    assert invitation.header("Reply-To").endswith(f"@{DOMAIN}")

    async with node.rt.sessions() as session:
        results = {w.customer_id: w.result for w in (await session.scalars(
            select(ScheduledWork).where(ScheduledWork.kind == "email"))).all()}
    assert set(results) == {ids["vip"], ids["quiet"], ids["nomail"]}
    assert results[ids["quiet"]] == {"skipped": "opted out"}
    assert results[ids["nomail"]] == {"skipped": "no email address"}
    ours = await sent_message(node, results[ids["vip"]]["message_id"])
    assert ours.external_id == f"email:{invitation.header('Message-ID').strip('<>')}"

    clock.set(MONDAY + timedelta(hours=3))
    quoted = "在2026年11月23日 10:00,Acme 写道:\n> " + invitation.text
    answer = mail("Re: Acme 2027 客户年会邀请", "参加,带一位同事\n\n" + quoted,
                  sender="Wang <wang@example.cn>", to=invitation.header("Reply-To"),
                  in_reply_to=invitation.header("Message-ID"))
    refused = await send_mail(node, answer, mail_from="wang@example.cn",
                              to=(invitation.header("Reply-To"),))
    assert refused == {}
    async with node.rt.sessions() as session:
        reply = (await session.scalars(select(Message).where(
            Message.direction == "inbound"))).one()
        conversation = await session.get(Conversation, reply.conversation_id)
        contact = await session.get(Contact, reply.contact_id)
    assert reply.conversation_id == ours.conversation_id  # threaded into the invitation's
    assert conversation is not None and conversation.channel == "email"
    assert contact is not None and contact.customer_id == ids["vip"]
    await relay.nothing_for(0.3)  # a threaded answer gets no new-conversation ack

    status, report = await boss.call("GET", f"/segment-events/{event_id}")
    assert status == 200, report
    assert report["event"]["action"] == "email"
    assert report["event"]["subject"] == "{{ company }} 2027 客户年会邀请"
    assert (report["planned"], report["pending"], report["skipped"], report["sent"],
            report["replied"]) == (3, 0, 2, 1, 1)
    assert report["reply_rate"] == 1.0
    (invited,) = report["customers"]
    assert invited["customer_id"] == ids["vip"] and invited["reply"] == "参加,带一位同事"
    assert datetime.fromisoformat(invited["replied_at"]) == MONDAY + timedelta(hours=3)


async def test_a_reply_after_the_window_does_not_count(
    node: Node, boss: Api, relay: Relay, clock: ManualClock
) -> None:
    await customers(node)
    status, body = await boss.call("POST", "/segment-events", json={
        "name": "年会", "action": "email", "segment": {"tiers": ["A"]}, "subject": "年会",
        "text": "{{ name }},请回复。"})
    assert status == 201, body
    await run_once(node.rt, set())
    invitation = await relay.next()
    clock.set(MONDAY + timedelta(days=20))
    await send_mail(node, mail("Re: 年会", "参加", sender="wang@example.cn",
                               to=invitation.header("Reply-To")),
                    mail_from="wang@example.cn", to=(invitation.header("Reply-To"),))
    status, report = await boss.call("GET", f"/segment-events/{body['id']}")
    assert status == 200 and (report["sent"], report["replied"]) == (1, 0)
    status, report = await boss.call("GET", f"/segment-events/{body['id']}",
                                     params={"reply_days": 30})
    assert status == 200 and report["replied"] == 1
