"""SMS through Twilio, end to end: webhooks signed with the real RequestValidator reach a real
server, `websockets` clients play agents, and replies go to a fake Twilio REST API on loopback
through the real `twilio` client. Each test runs on both backends (see `stack`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from fake_twilio import ACCOUNT_SID, FakeTwilio, post_webhook, twilio_settings
from harness import Agent, Node, add_queue, add_user, login, start_node
from sqlalchemy import func, select

from contactcenter.clock import ManualClock
from contactcenter.customers import find_by_phone
from contactcenter.storage.models import AuditEntry, Contact, Conversation, Message
from tests.conftest import NOW

PUBLIC = "https://cc.example.com"  # what Twilio calls and signs; the server sits behind it
OURS = "+14155550199"  # our Twilio number
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
WANG = "+8613800138000"  # a Chinese number: a new customer speaks zh-CN
JOHN = "+14155550100"  # a US number: en


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
async def node(
    stack: tuple[str, str | None, str], clock: ManualClock, fake: FakeTwilio
) -> AsyncIterator[Node]:
    n = await start_node(
        *stack,
        clock=clock,
        **twilio_settings(fake.url, PUBLIC),
        send_retry_seconds=[0.05, 0.05],
        company_name="宏达",
    )
    await add_queue(n, "texts", channels=["sms"])
    yield n
    await n.stop()


async def connect_agent(node: Node, username: str) -> Agent:
    user_id = await add_user(node, username)
    agent = await Agent.connect(node, await login(node, username), user_id)
    assert (await agent.recv())["type"] == "snapshot"
    await agent.available()
    return agent


def form(sender: str, body: str, **extra: str) -> dict[str, str]:
    return {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "To": OURS,
        "Body": body,
        "NumMedia": "0",
        **extra,
    }


async def sms(node: Node, params: dict[str, str], **kw: Any) -> tuple[int, str]:
    return await post_webhook(node.url, PUBLIC, "/twilio/sms", params, **kw)


async def status_report(node: Node, sid: str, status: str, **extra: str) -> int:
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT_SID,
        "MessageStatus": status,
        "From": OURS,
        **extra,
    }
    code, _ = await post_webhook(node.url, PUBLIC, "/twilio/sms/status", params)
    return code


async def count(node: Node, model: Any) -> int:
    async with node.rt.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def accept_offer(agent: Agent, body: str) -> dict[str, Any]:
    offer = await agent.expect("offer", contact__body=body)
    await agent.send(type="accept", contact_id=offer["contact"]["id"])
    await agent.expect("contact", contact__state="active")
    return offer


async def test_sms_reaches_agent_and_reply_goes_out_with_delivery_status(
    node: Node, fake: FakeTwilio
) -> None:
    agent = await connect_agent(node, "li")
    status, text = await sms(node, form(WANG, "我的订单到哪了?"))
    assert status == 200
    assert text == '<?xml version="1.0" encoding="UTF-8"?><Response />'

    offer = await accept_offer(agent, "我的订单到哪了?")
    assert offer["contact"]["channel"] == "sms"
    assert offer["contact"]["from"] == WANG and offer["contact"]["to"] == OURS
    assert offer["contact"]["queue"] == "texts"
    assert offer["customer"]["phones"] == [{"number": WANG, "label": None}]
    assert offer["customer"]["is_new"] is True
    contact_id = offer["contact"]["id"]

    await agent.send(type="reply", contact_id=contact_id, body="已发货,明天送达。")
    echo = await agent.expect("message", contact_id=contact_id)
    message_id = echo["message"]["id"]
    await agent.expect("message_status", message_id=message_id, status="sent")
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", MESSAGES_PATH)
    assert request.form == {
        "To": WANG,
        "From": OURS,
        "Body": "已发货,明天送达。",
        "StatusCallback": f"{PUBLIC}/twilio/sms/status",
    }

    async with node.rt.sessions() as session:
        message = await session.get(Message, message_id)
        assert message is not None and message.external_id is not None
        sid = message.external_id.removeprefix("sms:")
    assert sid.startswith("SM")
    assert await status_report(node, sid, "delivered") == 204
    await agent.expect("message_status", message_id=message_id, status="delivered", error=None)
    # Twilio may report out of order: a late "sent" does not undo "delivered".
    assert await status_report(node, sid, "sent") == 204
    async with node.rt.sessions() as session:
        message = await session.get(Message, message_id)
        assert message is not None and message.status == "delivered"
    # A report for a message that is not ours is acknowledged and changes nothing.
    assert await status_report(node, "SM" + "0" * 32, "delivered") == 204
    await agent.close()


async def test_undelivered_report_keeps_twilio_error_code(node: Node, fake: FakeTwilio) -> None:
    agent = await connect_agent(node, "li")
    await sms(node, form(JOHN, "hello"))
    offer = await accept_offer(agent, "hello")
    await agent.send(type="reply", contact_id=offer["contact"]["id"], body="hi John")
    message_id = (await agent.expect("message"))["message"]["id"]
    await agent.expect("message_status", message_id=message_id, status="sent")
    async with node.rt.sessions() as session:
        message = await session.get(Message, message_id)
        assert message is not None and message.external_id is not None
    sid = message.external_id.removeprefix("sms:")
    assert await status_report(node, sid, "undelivered", ErrorCode="30003") == 204
    frame = await agent.expect("message_status", message_id=message_id, status="undelivered")
    assert frame["error"] == "Twilio error 30003"
    await agent.close()


async def test_sms_within_window_joins_the_contact_and_after_it_starts_a_new_one(
    node: Node, clock: ManualClock
) -> None:
    agent = await connect_agent(node, "li")
    await sms(node, form(JOHN, "first"))
    first = (await accept_offer(agent, "first"))["contact"]["id"]

    clock.advance(3600)
    await sms(node, form(JOHN, "second, an hour later"))
    joined = await agent.expect("message", contact_id=first)
    assert joined["message"]["direction"] == "inbound"
    assert joined["message"]["body"] == "second, an hour later"
    await agent.nothing_for(0.3)  # no new offer: it joined the contact in progress
    await agent.send(type="wrapup", contact_id=first, disposition="resolved")
    await agent.expect("contact", contact__id=first, contact__state="closed")

    clock.advance(timedelta(hours=25).total_seconds())
    await sms(node, form(JOHN, "a day later"))
    second = (await accept_offer(agent, "a day later"))["contact"]["id"]
    assert second != first
    async with node.rt.sessions() as session:
        a = await session.get(Contact, first)
        b = await session.get(Contact, second)
        assert a is not None and b is not None
        assert a.conversation_id != b.conversation_id
        bodies = (
            await session.scalars(
                select(Message.body)
                .where(Message.conversation_id == a.conversation_id)
                .order_by(Message.id)
            )
        ).all()
    assert bodies == ["first", "second, an hour later"]
    await agent.close()


async def test_bad_signature_replay_and_malformed_requests(node: Node) -> None:
    params = form(JOHN, "hello")
    status, _ = await sms(node, params, bad_signature=True)
    assert status == 403
    assert await count(node, Message) == 0 and await count(node, Contact) == 0

    for _ in range(2):  # Twilio retries a webhook it thinks failed: one message
        status, _ = await sms(node, params)
        assert status == 200
    assert await count(node, Message) == 1 and await count(node, Contact) == 1

    for bad in (
        {k: v for k, v in form(JOHN, "no sender").items() if k != "From"},
        {k: v for k, v in form(JOHN, "no id").items() if k != "MessageSid"},
        form(JOHN, "not a sid", MessageSid="SM-../1"),
        form(JOHN, "media?", NumMedia="lots"),
        form(JOHN, "missing media url", NumMedia="1"),
    ):
        status, text = await sms(node, bad)
        assert status == 400, (bad, text)
    assert await count(node, Message) == 1 and await count(node, Contact) == 1

    code, _ = await post_webhook(
        node.url,
        PUBLIC,
        "/twilio/sms/status",
        {"MessageSid": "SM" + "1" * 32, "MessageStatus": "failed"},
        bad_signature=True,
    )
    assert code == 403


async def test_media_urls_are_kept_in_the_message(node: Node) -> None:
    agent = await connect_agent(node, "li")
    url0 = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM1/Media/ME1"
    url1 = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/MM1/Media/ME2"
    await sms(
        node,
        form(
            JOHN,
            "photos of the damage",
            NumMedia="2",
            MediaUrl0=url0,
            MediaContentType0="image/jpeg",
            MediaUrl1=url1,
            MediaContentType1="image/png",
        ),
    )
    offer = await accept_offer(agent, "photos of the damage")
    async with node.rt.sessions() as session:
        [message] = (
            await session.scalars(
                select(Message).where(Message.contact_id == offer["contact"]["id"])
            )
        ).all()
    assert message.meta == {
        "media": [
            {"url": url0, "content_type": "image/jpeg"},
            {"url": url1, "content_type": "image/png"},
        ]
    }
    await agent.close()


async def test_failed_send_is_retried_then_failed_and_visible(node: Node, fake: FakeTwilio) -> None:
    agent = await connect_agent(node, "li")
    await sms(node, form(JOHN, "call me"))
    contact_id = (await accept_offer(agent, "call me"))["contact"]["id"]

    fake.fail_next(times=3, status=503, code=20503, message="Service Unavailable")
    await agent.send(type="reply", contact_id=contact_id, body="we will")
    message_id = (await agent.expect("message"))["message"]["id"]
    await agent.expect("message_status", message_id=message_id, status="retrying")
    await agent.expect("message_status", message_id=message_id, status="retrying")
    failed = await agent.expect("message_status", message_id=message_id, status="failed")
    assert "20503" in failed["error"]
    assert len(fake.posted("/Messages.json")) == 3  # the first try and two retries

    # An invalid number is not Twilio's trouble: no retry.
    fake.fail_next(status=400, code=21211, message="The 'To' number is not a valid phone number.")
    await agent.send(type="reply", contact_id=contact_id, body="again")
    second = (await agent.expect("message", message__body="again"))["message"]["id"]
    failed = await agent.expect("message_status", message_id=second, status="failed")
    assert "21211" in failed["error"]
    assert len(fake.posted("/Messages.json")) == 4
    async with node.rt.sessions() as session:
        message = await session.get(Message, second)
        assert message is not None and message.attempts == 1

    # Twilio recovered: the next reply goes.
    await agent.send(type="reply", contact_id=contact_id, body="third time")
    third = (await agent.expect("message", message__body="third time"))["message"]["id"]
    await agent.expect("message_status", message_id=third, status="sent")
    await agent.close()


async def consent(node: Node, number: str) -> tuple[bool | None, str | None]:
    async with node.rt.sessions() as session:
        customer = await find_by_phone(session, number)
        assert customer is not None
        row = next((c for c in customer.consents if c.purpose == "sms-marketing"), None)
        return (row.granted, row.source) if row else (None, None)


async def wait_for_sends(fake: FakeTwilio, n: int) -> list[Any]:
    for _ in range(200):
        sent = fake.posted("/Messages.json")
        if len(sent) >= n:
            return sent
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {n} messages at the fake Twilio, got {fake.requests}")


@pytest.mark.parametrize(
    ("word", "recorded"),
    [
        ("STOP", "STOP"),
        (" stop\n", "STOP"),
        ("退订", "退订"),
        ("td", "TD"),
        ("ＳＴＯＰ", "STOP"),
    ],
)
async def test_opt_out_keyword_withdraws_consent_and_is_acknowledged(
    node: Node, fake: FakeTwilio, word: str, recorded: str
) -> None:
    agent = await connect_agent(node, "li")
    params = form(WANG, word)
    for _ in range(2):  # a retried keyword webhook changes and sends nothing more
        status, _ = await sms(node, params)
        assert status == 200
    await agent.nothing_for(0.5)  # not work for an agent

    assert await consent(node, WANG) == (False, f"sms:{recorded}")

    [ack] = await wait_for_sends(fake, 1)
    text = node.rt.templates.render("sms_opt_out", "zh-CN", company="宏达")
    assert ack.form == {
        "To": WANG,
        "From": OURS,
        "Body": text,
        "StatusCallback": f"{PUBLIC}/twilio/sms/status",
    }
    assert "宏达" in text
    async with node.rt.sessions() as session:
        stored = (await session.scalars(select(Message).order_by(Message.id))).all()
        audit = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "update"))
        ).all()
    assert [(m.direction, m.body, m.contact_id) for m in stored] == [
        ("inbound", word, None),
        ("outbound", text, None),
    ]
    assert stored[0].conversation_id == stored[1].conversation_id is not None
    assert [a.after for a in audit] == [{"consents": {"sms-marketing": False}}]
    assert await count(node, Contact) == 0
    await agent.close()


async def test_start_opts_back_in_and_a_keyword_does_not_block_service(
    node: Node, fake: FakeTwilio, clock: ManualClock
) -> None:
    agent = await connect_agent(node, "li")
    await sms(node, form(JOHN, "STOP"))
    await wait_for_sends(fake, 1)
    assert await consent(node, JOHN) == (False, "sms:STOP")

    # Later, a question: a contact on the same conversation, and the agent serves it.
    clock.advance(600)
    await sms(node, form(JOHN, "where is my parcel?"))
    contact_id = (await accept_offer(agent, "where is my parcel?"))["contact"]["id"]

    # START during the contact: the agent sees it and the acknowledgement, no new offer.
    await sms(node, form(JOHN, "Start"))
    keyword = await agent.expect("message", contact_id=contact_id, message__body="Start")
    assert keyword["message"]["meta"]["keyword"] == "START"
    ack = await agent.expect("message", contact_id=contact_id, message__direction="outbound")
    text = node.rt.templates.render("sms_opt_in", "en", company="宏达")
    assert ack["message"]["body"] == text
    assert ack["message"]["author_user_id"] is None
    await agent.nothing_for(0.3)
    assert await consent(node, JOHN) == (True, "sms:START")
    sent = await wait_for_sends(fake, 2)
    assert sent[1].form["Body"] == text and sent[1].form["To"] == JOHN

    # An opted-out customer still gets service replies from the agent.
    await sms(node, form(JOHN, "stop"))
    await agent.expect("message", contact_id=contact_id, message__body="stop")
    await wait_for_sends(fake, 3)
    assert await consent(node, JOHN) == (False, "sms:STOP")
    await agent.send(type="reply", contact_id=contact_id, body="It arrives tomorrow.")
    reply = (await agent.expect("message", message__body="It arrives tomorrow."))["message"]
    await agent.expect("message_status", message_id=reply["id"], status="sent")
    assert fake.posted("/Messages.json")[-1].form["Body"] == "It arrives tomorrow."

    async with node.rt.sessions() as session:
        conversations = await session.scalar(select(func.count()).select_from(Conversation))
    assert conversations == 1  # all within the window: one conversation
    assert await count(node, Contact) == 1
    await agent.close()


async def test_sentence_with_a_keyword_is_an_ordinary_message(node: Node, fake: FakeTwilio) -> None:
    agent = await connect_agent(node, "li")
    await sms(node, form(JOHN, "please stop calling me at work"))
    await accept_offer(agent, "please stop calling me at work")
    assert await consent(node, JOHN) == (None, None)
    assert fake.requests == []
    await agent.close()
