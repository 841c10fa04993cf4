"""The email channel end to end: customers' mail is sent with `smtplib` to our SMTP server, agents
are `websockets` clients, and our outbound mail goes to a local `aiosmtpd` relay that records
what it receives (the outside world). Each test runs on both backends (see `stack`)."""

from __future__ import annotations

import asyncio
import base64
import re
import smtplib
from collections.abc import AsyncIterator
from email import policy
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest
from harness import Agent, Node, add_queue, add_user, login, start_node
from smtp_relay import Relay
from sqlalchemy import func, select

from channels.mail import MAIL
from channels.mail_parse import base_subject, decode_bytes, html_to_text, visible_text
from contactcenter.clock import ManualClock
from contactcenter.storage.models import Attachment, Contact, Conversation, Customer, Message

DOMAIN = "support.example.com"
SUPPORT = f"support@{DOMAIN}"
CUSTOMER = "wang@example.cn"


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
async def node(stack: tuple[str, str | None, str], relay: Relay) -> AsyncIterator[Node]:
    n = await start_node(
        *stack, clock=ManualClock(1_795_000_000.0), inbound_smtp_port=0,
        inbound_smtp_max_bytes=64 * 1024, email_domain=DOMAIN, email_address=SUPPORT,
        smtp_host="127.0.0.1", smtp_port=relay.port, company_name="Acme",
        send_retry_seconds=[0.2],
    )
    await add_queue(n, "support")
    yield n
    await n.stop()


def smtp_port(node: Node) -> int:
    port = node.runner.app[MAIL].port
    assert port is not None
    return port


async def send_mail(node: Node, message: EmailMessage | bytes, *, mail_from: str = CUSTOMER,
                    to: tuple[str, ...] = (SUPPORT,)) -> dict[str, Any]:
    """A customer's mail server delivering to ours; returns the refused recipients."""
    raw = message.as_bytes(policy=policy.SMTP) if isinstance(message, EmailMessage) else message

    def deliver() -> dict[str, Any]:
        with smtplib.SMTP("127.0.0.1", smtp_port(node), timeout=10) as client:
            return client.sendmail(mail_from, list(to), raw)

    return await asyncio.to_thread(deliver)


def mail(subject: str, body: str, *, sender: str = f"Wang Fang <{CUSTOMER}>",
         to: str = SUPPORT, in_reply_to: str | None = None, references: str | None = None,
         message_id: str | None = None) -> EmailMessage:
    m = EmailMessage()
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m["Message-ID"] = message_id or make_msgid(domain="example.cn")
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
    if references:
        m["References"] = references
    m.set_content(body)
    return m


def b64_word(text: str, codec: str, label: str | None = None) -> str:
    """An RFC 2047 encoded word: `text` encoded with `codec`, labelled `label` (or `codec`)."""
    return f"=?{label or codec}?B?{base64.b64encode(text.encode(codec)).decode()}?="


async def connect_agent(node: Node, username: str) -> Agent:
    user_id = await add_user(node, username)
    agent = await Agent.connect(node, await login(node, username), user_id)
    assert (await agent.recv())["type"] == "snapshot"
    await agent.available()
    return agent


async def take(agent: Agent) -> dict[str, Any]:
    offer = await agent.expect("offer")
    await agent.send(type="accept", contact_id=offer["contact"]["id"])
    await agent.expect("contact", contact__state="active")
    return offer


async def count(node: Node, model: Any) -> int:
    async with node.rt.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def inbound_messages(node: Node) -> list[Message]:
    async with node.rt.sessions() as session:
        return list((await session.scalars(
            select(Message).where(Message.direction == "inbound").order_by(Message.id))).all())


async def conversation_of(node: Node, contact_id: int) -> Conversation:
    async with node.rt.sessions() as session:
        contact = await session.get(Contact, contact_id)
        assert contact is not None and contact.conversation_id is not None
        conversation = await session.get(Conversation, contact.conversation_id)
        assert conversation is not None
        return conversation


def ids(header: str) -> list[str]:
    return header.split()


# -- inbound, acknowledgement and replies -----------------------------------------------------


async def test_plain_mail_is_offered_with_screen_pop_and_acknowledged(
    node: Node, relay: Relay
) -> None:
    agent = await connect_agent(node, "li")
    first = mail("Printer broken", "My printer prints blank pages.",
                 message_id="<m1@example.cn>")
    assert await send_mail(node, first) == {}

    offer = await agent.expect("offer")
    assert offer["contact"]["channel"] == "email"
    assert offer["contact"]["subject"] == "Printer broken"
    assert offer["contact"]["body"] == "My printer prints blank pages."
    assert offer["contact"]["from"] == CUSTOMER and offer["contact"]["to"] == SUPPORT
    assert offer["customer"]["name"] == "Wang Fang"
    assert offer["customer"]["emails"] == [CUSTOMER]
    assert offer["customer"]["is_new"] is True

    ack = await relay.next()
    conversation = await conversation_of(node, offer["contact"]["id"])
    assert conversation.token and conversation.subject == "Printer broken"
    assert ack.mail_from == SUPPORT and ack.rcpt_tos == [CUSTOMER]
    assert ack.message["From"].addresses[0].addr_spec == SUPPORT
    assert ack.header("To") == CUSTOMER
    assert ack.header("Reply-To") == f"reply+{conversation.token}@{DOMAIN}"
    assert ack.header("In-Reply-To") == "<m1@example.cn>"
    assert ack.header("References") == "<m1@example.cn>"
    assert ack.header("Subject") == "We received your message: Printer broken"
    assert ack.header("Auto-Submitted") == "auto-replied"
    assert ack.header("Message-ID").endswith(f"@{DOMAIN}>")
    assert ack.text.startswith("Dear Wang Fang,") and "Acme" in ack.text

    # The acknowledgement is on the record, with its Message-ID for threading.
    for _ in range(50):
        async with node.rt.sessions() as session:
            stored = await session.scalar(select(Message).where(Message.direction == "outbound"))
        if stored is not None and stored.status == "sent":
            break
        await asyncio.sleep(0.05)
    assert stored is not None and stored.status == "sent"
    assert stored.external_id == "email:" + ack.header("Message-ID").strip("<>")
    assert stored.conversation_id == conversation.id
    messages = await inbound_messages(node)
    assert [m.external_id for m in messages] == ["email:m1@example.cn"]
    await agent.close()


async def test_agent_reply_is_threaded_and_the_customers_answer_reaches_the_agent(
    node: Node, relay: Relay
) -> None:
    agent = await connect_agent(node, "li")
    # A customer answering some old mail of ours we no longer know: a new conversation, and our
    # reply must not say "Re: Re:".
    await send_mail(node, mail("RE: Invoice 42", "The invoice total is wrong.",
                               message_id="<c1@example.cn>"))
    offer = await take(agent)
    contact_id = offer["contact"]["id"]
    ack = await relay.next()
    token = (await conversation_of(node, contact_id)).token

    await agent.send(type="reply", contact_id=contact_id, body="Sorry, a corrected invoice "
                     "is attached to your account.\n\n李娜")
    sent = await agent.expect("message_status", contact_id=contact_id, status="sent")
    reply = await relay.next()
    assert reply.rcpt_tos == [CUSTOMER] and reply.mail_from == SUPPORT
    assert reply.header("Subject") == "Re: Invoice 42"
    assert reply.header("In-Reply-To") == "<c1@example.cn>"
    assert ids(reply.header("References")) == ["<c1@example.cn>", ack.header("Message-ID")]
    assert reply.header("Reply-To") == f"reply+{token}@{DOMAIN}"
    reply_id = reply.header("Message-ID")
    assert reply_id.endswith(f"@{DOMAIN}>") and reply_id != ack.header("Message-ID")
    assert reply.text == "Sorry, a corrected invoice is attached to your account.\n\n李娜"
    async with node.rt.sessions() as session:
        stored = await session.get(Message, sent["message_id"])
        assert stored is not None and stored.external_id == "email:" + reply_id.strip("<>")

    # The customer answers our reply from a client that quotes it below the answer.
    answer = mail("Re: Invoice 42", "Thanks, that worked.\n\nOn Mon, 23 Nov 2026 at 10:00, "
                  f"Acme <{SUPPORT}> wrote:\n> Sorry, a corrected invoice\n> is attached.",
                  in_reply_to=reply_id, references=f"<c1@example.cn> {reply_id}",
                  message_id="<c2@example.cn>")
    await send_mail(node, answer)
    frame = await agent.expect("message", contact_id=contact_id)
    assert frame["message"]["direction"] == "inbound"
    assert "> Sorry, a corrected invoice" in frame["message"]["body"]  # the full text is kept
    assert frame["message"]["meta"]["visible"] == "Thanks, that worked."
    await relay.nothing_for(0.3)  # no acknowledgement for a conversation under way

    # The next reply answers the customer's latest mail and carries the whole chain.
    await agent.send(type="reply", contact_id=contact_id, body="Glad to hear it.")
    second = await relay.next()
    assert second.header("In-Reply-To") == "<c2@example.cn>"
    assert ids(second.header("References")) == [
        "<c1@example.cn>", ack.header("Message-ID"), reply_id, "<c2@example.cn>"]
    assert second.header("Subject") == "Re: Invoice 42"
    async with node.rt.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Conversation)) == 1
    await agent.close()


async def test_a_reply_to_a_closed_conversation_queues_it_again(node: Node, relay: Relay) -> None:
    agent = await connect_agent(node, "li")
    await send_mail(node, mail("Delivery", "Where is my parcel?", message_id="<d1@example.cn>"))
    offer = await take(agent)
    await relay.next()  # the acknowledgement
    first_id = offer["contact"]["id"]
    await agent.send(type="wrapup", contact_id=first_id, disposition="resolved")
    await agent.expect("contact", contact__state="closed")

    await send_mail(node, mail("Re: Delivery", "It has still not arrived.",
                               in_reply_to="<d1@example.cn>", references="<d1@example.cn>"))
    again = await agent.expect("offer")
    assert again["contact"]["id"] != first_id
    conversation = await conversation_of(node, first_id)
    assert (await conversation_of(node, again["contact"]["id"])).id == conversation.id
    assert [h["contact_id"] for h in again["history"]] == [first_id]
    await relay.nothing_for(0.3)  # not a new conversation: no second acknowledgement
    await agent.close()


async def test_outlook_reply_to_the_token_address_without_headers_still_threads(
    node: Node, relay: Relay
) -> None:
    await send_mail(node, mail("Account locked", "I cannot log in."))
    ack = await relay.next()
    reply_to = ack.header("Reply-To")
    local, domain = reply_to.split("@")
    # Outlook drops In-Reply-To/References, rewrites the subject, and mailers may change the
    # address's case; the token address alone must find the conversation.
    broken = mail("AW: Account locked", "Still locked, please help.",
                  to=f"{local.upper()}@{domain.upper()}")
    assert await send_mail(node, broken, to=(f"{local.upper()}@{domain.upper()}",)) == {}
    messages = await inbound_messages(node)
    assert len(messages) == 2
    assert messages[0].conversation_id == messages[1].conversation_id
    assert messages[1].meta["to"] == [SUPPORT]  # the token is not shown to agents
    assert messages[1].contact_id == messages[0].contact_id  # the contact is still queued
    await relay.nothing_for(0.3)


async def test_a_new_subject_from_the_same_sender_is_a_new_conversation(
    node: Node, relay: Relay
) -> None:
    await send_mail(node, mail("Order 1001", "Where is order 1001?"))
    await send_mail(node, mail("Invoice request", "Please send an invoice."))
    # Even the same subject again, without threading headers, is not merged.
    await send_mail(node, mail("Order 1001", "Where is order 1001?"))
    acks = [await relay.next() for _ in range(3)]
    assert len({a.header("Reply-To") for a in acks}) == 3
    messages = await inbound_messages(node)
    assert len({m.conversation_id for m in messages}) == 3
    assert await count(node, Customer) == 1
    assert await count(node, Contact) == 3


async def test_a_repeated_message_id_is_stored_once(node: Node, relay: Relay) -> None:
    original = mail("Duplicate", "Sent twice by a retrying server.",
                    message_id="<dup@example.cn>")
    assert await send_mail(node, original) == {}
    assert await send_mail(node, original) == {}  # the retry is accepted, and a no-op
    await relay.next()
    await relay.nothing_for(0.3)
    assert await count(node, Contact) == 1
    assert [m.external_id for m in await inbound_messages(node)] == ["email:dup@example.cn"]


async def test_an_oversized_mail_is_refused_with_552_and_nothing_is_stored(
    node: Node, relay: Relay
) -> None:
    big = mail("Huge", ("0123456789" * 7 + "\n") * 1200)
    raw = big.as_bytes(policy=policy.SMTP)
    assert len(raw) > 64 * 1024
    # A client that declares the size is refused at MAIL FROM…
    with pytest.raises(smtplib.SMTPSenderRefused) as declared:
        await send_mail(node, raw)
    assert declared.value.smtp_code == 552

    # …and one that does not, after the data.
    def undeclared() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", smtp_port(node), timeout=10) as client:
            client.ehlo()
            client.mail(CUSTOMER)
            client.rcpt(SUPPORT)
            return client.data(raw)

    code, reply = await asyncio.to_thread(undeclared)
    assert code == 552, reply
    assert await count(node, Message) == 0 and await count(node, Contact) == 0


async def test_unknown_recipients_are_refused_with_550(node: Node, relay: Relay) -> None:
    for stranger in (f"sales@{DOMAIN}", "someone@elsewhere.example", f"reply+x@other.{DOMAIN}"):
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            await send_mail(node, mail("Hi", "hello", to=stranger), to=(stranger,))
        assert refused.value.recipients[stranger][0] == 550
    assert await count(node, Message) == 0 and await count(node, Customer) == 0

    # With one good recipient among them, the message is taken once, for the good one.
    refused_some = await send_mail(node, mail("Hi", "hello"), to=(f"sales@{DOMAIN}", SUPPORT))
    assert refused_some[f"sales@{DOMAIN}"][0] == 550
    # Counted inbound only: the acknowledgement may already be stored beside it.
    assert len(await inbound_messages(node)) == 1
    await relay.next()


async def test_automatic_mail_and_bounces_are_taken_in_but_never_acknowledged(
    node: Node, relay: Relay
) -> None:
    away = mail("Out of office", "I am away until Monday.")
    away["Auto-Submitted"] = "auto-replied"
    await send_mail(node, away)
    bounce = mail("Undelivered Mail Returned to Sender", "The mail could not be delivered.",
                  sender="MAILER-DAEMON@mx.example.cn")
    await send_mail(node, bounce, mail_from="")  # the null sender <>
    assert len(await inbound_messages(node)) == 2
    await relay.nothing_for(0.5)


async def test_a_reply_the_relay_refuses_is_marked_failed(node: Node, relay: Relay) -> None:
    relay.refuse.add("gone@example.cn")
    agent = await connect_agent(node, "li")
    await send_mail(node, mail("Hello", "Please call me.", sender="gone@example.cn"),
                    mail_from="gone@example.cn")
    offer = await take(agent)
    await agent.send(type="reply", contact_id=offer["contact"]["id"], body="We will call.")
    failed = await agent.expect("message_status", status="failed")
    assert "550" in failed["error"] and "gone@example.cn" in failed["error"]
    async with node.rt.sessions() as session:
        attempts = await session.scalar(select(Message.attempts).where(
            Message.id == failed["message_id"]))
    assert attempts == 1  # a permanent refusal is not retried
    await agent.close()


# -- Chinese charsets, HTML, attachments -------------------------------------------------------


async def test_a_gbk_mail_is_decoded(node: Node, relay: Relay) -> None:
    agent = await connect_agent(node, "li")
    body = "您好,我的订单还没有到,请帮忙查一下。"
    raw = (
        f"From: {b64_word('王芳', 'gbk')} <{CUSTOMER}>\r\n"
        f"To: {SUPPORT}\r\nSubject: {b64_word('关于订单的问题', 'gbk')}\r\n"
        "Message-ID: <gbk1@example.cn>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=GBK\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + base64.encodebytes(body.encode("gbk")).replace(b"\n", b"\r\n")
    await send_mail(node, raw)
    offer = await agent.expect("offer")
    assert offer["contact"]["subject"] == "关于订单的问题"
    assert offer["contact"]["body"] == body
    assert offer["customer"]["name"] == "王芳"
    # A stranger writing Chinese is acknowledged in Chinese.
    ack = await relay.next()
    assert ack.header("Subject") == "我们已收到您的来信:关于订单的问题"
    assert ack.text.startswith("王芳,您好!")
    await agent.close()


async def test_a_gb2312_declared_mail_with_a_gbk_only_character_is_decoded(
    node: Node, relay: Relay
) -> None:
    # 喆 is not in GB2312; mailers write it in GBK and still label the part GB2312.
    body = "张喆的发票抬头写错了。"
    quoted = "".join(f"={b:02X}" for b in "张喆".encode("gbk"))
    raw = (
        f"From: =?gb2312?Q?{quoted}?= <zhang@example.cn>\r\n"
        f"To: {SUPPORT}\r\nSubject: {b64_word('张喆的发票', 'gbk', 'gb2312')}\r\n"
        "Message-ID: <gb2312@example.cn>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=\"gb2312\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + body.encode("gbk") + b"\r\n"
    await send_mail(node, raw, mail_from="zhang@example.cn")
    [message] = await inbound_messages(node)
    assert message.body == body
    assert message.meta["subject"] == "张喆的发票"
    async with node.rt.sessions() as session:
        customer = await session.scalar(select(Customer))
        assert customer is not None and customer.name == "张喆"
    await relay.next()


async def test_a_big5_mail_is_decoded(node: Node, relay: Relay) -> None:
    body = "請問我的帳戶餘額為什麼不對?"
    raw = (
        f"From: {b64_word('陳大文', 'big5')} <chan@example.hk>\r\n"
        f"To: {SUPPORT}\r\nSubject: {b64_word('查詢帳戶餘額', 'big5')}\r\n"
        "Message-ID: <big5@example.hk>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=big5\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + body.encode("big5") + b"\r\n"
    await send_mail(node, raw, mail_from="chan@example.hk")
    [message] = await inbound_messages(node)
    assert message.body == body
    async with node.rt.sessions() as session:
        contact = await session.scalar(select(Contact))
        customer = await session.scalar(select(Customer))
    assert contact is not None and contact.subject == "查詢帳戶餘額"
    assert customer is not None and customer.name == "陳大文"
    await relay.next()


async def test_an_html_only_mail_becomes_plain_text(node: Node, relay: Relay) -> None:
    # One long line (over SMTP's 1000 octets, as unwrapped HTML mail often is).
    html = (
        "<html><head><!-- " + "x" * 1200 + " -->"
        "<style>p {color: red}</style><script>alert('x')</script></head><body>"
        "<p>Hello &amp; thanks,</p><p>the <b>new</b> router<br>keeps rebooting.</p>"
        "<div>On Mon, 23 Nov 2026, Acme wrote:</div>"
        "<blockquote><p>Please restart it.</p></blockquote></body></html>"
    )
    raw = (
        f"From: {CUSTOMER}\r\nTo: {SUPPORT}\r\nSubject: Router\r\n"
        "Message-ID: <html1@example.cn>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        "--alt\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + html.encode() + b"\r\n--alt--\r\n"
    await send_mail(node, raw)
    [message] = await inbound_messages(node)
    assert re.search(r"</?[a-z]", message.body) is None
    assert "alert" not in message.body and "color" not in message.body
    assert message.body.startswith("Hello & thanks,\n\nthe new router\nkeeps rebooting.")
    assert "> Please restart it." in message.body
    assert message.meta["visible"] == "Hello & thanks,\n\nthe new router\nkeeps rebooting."
    assert message.meta["from_html"] is True
    await relay.next()


async def test_attachments_are_stored(node: Node, relay: Relay) -> None:
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 4
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    m = mail("Invoice attached", "See the attached invoice and a screenshot.")
    m.add_attachment(pdf, maintype="application", subtype="pdf", filename="发票 2026.pdf")
    m.add_attachment(png, maintype="image", subtype="png", filename="screen.png")
    await send_mail(node, m)
    [message] = await inbound_messages(node)
    assert message.body == "See the attached invoice and a screenshot."
    async with node.rt.sessions() as session:
        attachments = (await session.scalars(
            select(Attachment).where(Attachment.message_id == message.id)
            .order_by(Attachment.id))).all()
    assert [(a.filename, a.content_type, a.size) for a in attachments] == [
        ("发票 2026.pdf", "application/pdf", len(pdf)), ("screen.png", "image/png", len(png))]
    assert attachments[0].content == pdf and attachments[1].content == png
    await relay.next()


# -- the parsing rules on their own ------------------------------------------------------------


@pytest.mark.parametrize(("text", "visible"), [
    ("Thanks!\n\nOn Mon, 23 Nov 2026 at 10:00, Acme <support@x.com>\nwrote:\n> old\n> older",
     "Thanks!"),
    ("好的,谢谢。\n\n在 2026年11月23日 10:00,客服 <support@x.com> 写道:\n> 旧的内容",
     "好的,谢谢。"),
    ("收到\n\n王芳 <a@b.cn> 于2026年11月23日周一 10:00写道:\n\n旧的内容", "收到"),
    ("Done.\n\n-----Original Message-----\nFrom: Acme\nSent: Monday\n\nold", "Done."),
    ("Done.\n________________________________\nFrom: Acme\nSent: Monday\nTo: me\n\nold",
     "Done."),
    ("好\n\n------------------ 原始邮件 ------------------\n发件人: 客服\n发送时间: 周一\n\n旧",
     "好"),
    ("> you said\nI disagree.\n> and this\nAnd this too.", "I disagree.\nAnd this too."),
    ("On Monday I wrote: nothing arrived.\nStill nothing.", None),
    ("No quotes at all.", None),
])
def test_quoted_earlier_mail_is_folded(text: str, visible: str | None) -> None:
    assert visible_text(text) == visible


def test_reply_prefixes_are_not_stacked() -> None:
    assert base_subject("RE: 回复: Re[2]: AW: 订单") == "订单"
    assert base_subject("Fwd: report") == "Fwd: report"


def test_html_is_reduced_to_text() -> None:
    text = html_to_text('<p>a &lt;b&gt; <a href="https://x.example/p">link</a></p>'
                        "<ul><li>one</li><li>two</li></ul><script>evil()</script>")
    assert text == "a <b> link <https://x.example/p>\n\n- one\n- two"


def test_chinese_charsets_are_decoded_leniently() -> None:
    assert decode_bytes("喆".encode("gbk"), "gb2312") == "喆"
    assert decode_bytes("碁".encode("cp950"), "big5") == "碁"
    assert decode_bytes("中文".encode(), None) == "中文"
    assert decode_bytes("中文".encode("gb18030"), "us-ascii") == "中文"
