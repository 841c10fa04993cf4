"""The voice channel end to end: Twilio's webhooks signed with the real RequestValidator, the
TwiML answers parsed as XML, agents played by `websockets` clients, and a fake Twilio REST API
that records how the server connects a caller to the agent who accepted.

Each server test runs on the embedded default and on PostgreSQL + Redis (see `stack`)."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from conftest import NOW
from fake_twilio import ACCOUNT_SID, FakeTwilio, post_webhook, twilio_settings
from harness import Agent, Node, add_queue, add_user, login, start_node
from sqlalchemy import func, select

from channels.ivr import load_ivr
from contactcenter.clock import ManualClock, utc
from contactcenter.customers import CustomerIn, create_customer
from contactcenter.errors import InvalidInput
from contactcenter.storage.models import Contact, ContactEvent

PUBLIC = "https://cc.example.com"
OUR_NUMBER = "+8657188880000"
SALES_LINE = "+862160001234"
CHINA = "+8613912345678"
US = "+14155550123"
ALWAYS = ["voice", "callback"]
WEEKDAYS = {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}

IVR = """
[default]
default_queue = "support"
timeout_seconds = 6

[[default.options]]
digit = "1"
queue = "repairs"
label = { en = "repairs", zh-CN = "报修" }

[[default.options]]
digit = "2"
queue = "complaints"
label = { en = "complaints", zh-CN = "投诉" }

[numbers."+86 21 6000 1234"]
default_queue = "sales"

[agents]
wang = "+8613800138000"
"""

T = TypeVar("T")


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(NOW)  # Monday 10:00 in Shanghai


@pytest.fixture
async def node(stack: tuple[str, str | None, str], clock: ManualClock, fake: FakeTwilio,
               tmp_path: Path) -> AsyncIterator[Node]:
    ivr = tmp_path / "ivr.toml"
    ivr.write_text(IVR, encoding="utf-8")
    n = await start_node(*stack, clock=clock, ivr_file=ivr, **twilio_settings(fake.url, PUBLIC))
    yield n
    await n.stop()


# -- helpers -------------------------------------------------------------------------------


async def webhook(node: Node, path: str, **params: str) -> ET.Element:
    status, text = await post_webhook(node.url, PUBLIC, path, params)
    assert status == 200, text
    root = ET.fromstring(text)
    assert root.tag == "Response"
    return root


def call(sid: str, caller: str = CHINA, to: str = OUR_NUMBER, **more: str) -> dict[str, str]:
    return {"CallSid": sid, "AccountSid": ACCOUNT_SID, "From": caller, "To": to,
            "Direction": "inbound", **more}


def verbs(root: ET.Element) -> list[str]:
    return [child.tag for child in root]


async def eventually(probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool],
                     timeout: float = 10.0) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if ok(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still {value!r} after {timeout}s")
        await asyncio.sleep(0.05)


async def contacts(node: Node, **where: Any) -> list[Contact]:
    async with node.rt.sessions() as session:
        stmt = select(Contact).order_by(Contact.id)
        for column, value in where.items():
            stmt = stmt.where(getattr(Contact, column) == value)
        return list((await session.scalars(stmt)).all())


async def contact_of(node: Node, call_sid: str) -> Contact:
    [contact] = await contacts(node, channel="voice", external_id=call_sid)
    return contact


async def state_of(node: Node, call_sid: str, state: str) -> Contact:
    return await eventually(lambda: contact_of(node, call_sid), lambda c: c.state == state)


async def events(node: Node, contact_id: int) -> list[ContactEvent]:
    async with node.rt.sessions() as session:
        return list((await session.scalars(select(ContactEvent).where(
            ContactEvent.contact_id == contact_id).order_by(ContactEvent.id))).all())


async def count_contacts(node: Node) -> int:
    async with node.rt.sessions() as session:
        return await session.scalar(select(func.count()).select_from(Contact)) or 0


async def voice_queues(node: Node, **hours: Any) -> dict[str, int]:
    return {name: await add_queue(node, name, channels=ALWAYS, **hours)
            for name in ("support", "repairs", "complaints", "sales")}


async def connect_agent(node: Node, username: str) -> Agent:
    user_id = await add_user(node, username)
    agent = await Agent.connect(node, await login(node, username), user_id)
    assert (await agent.recv())["type"] == "snapshot"
    await agent.expect("status", status="away")
    await agent.available()
    return agent


def calls_updated(fake: FakeTwilio, call_sid: str) -> list[Any]:
    return fake.posted(f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call_sid}.json")


# -- the menu ------------------------------------------------------------------------------


async def test_menu_is_spoken_in_the_callers_language(node: Node) -> None:
    # A stranger from China hears Chinese…
    root = await webhook(node, "/twilio/voice", **call("CA100", caller=CHINA))
    assert verbs(root) == ["Gather"]
    gather = root[0]
    assert gather.attrib["numDigits"] == "1"
    assert gather.attrib["action"] == f"{PUBLIC}/twilio/voice/menu"
    assert gather.attrib["timeout"] == "6"
    assert gather.attrib["actionOnEmptyResult"] == "true"
    says = gather.findall("Say")
    assert [s.attrib["language"] for s in says] == ["zh-CN", "zh-CN"]
    assert says[0].text == "您好,欢迎致电contactcenter。"
    assert says[1].text == "报修请按1。投诉请按2。"

    # …one from the US hears English…
    root = await webhook(node, "/twilio/voice", **call("CA101", caller=US))
    says = root.find("Gather").findall("Say")  # type: ignore[union-attr]
    assert {s.attrib["language"] for s in says} == {"en-US"}
    assert says[1].text == "For repairs, press 1. For complaints, press 2."

    # …and a known customer hears their own language, whatever the number's country.
    async with node.rt.sessions.begin() as session:
        await create_customer(session, CustomerIn(name="Anna", phones=["+86 139 0000 1111"],
                                                  language="en"),
                              actor_id=None, now=utc(node.rt.clock.now()))
    root = await webhook(node, "/twilio/voice", **call("CA102", caller="+8613900001111"))
    says = root.find("Gather").findall("Say")  # type: ignore[union-attr]
    assert {s.attrib["language"] for s in says} == {"en-US"}
    assert await count_contacts(node) == 0  # the menu stores nothing: the choice does


async def test_each_key_goes_to_its_queue_and_anything_else_to_the_default(node: Node) -> None:
    queues = await voice_queues(node)
    cases = [("CA201", "1", OUR_NUMBER, "repairs"), ("CA202", "2", OUR_NUMBER, "complaints"),
             ("CA203", "9", OUR_NUMBER, "support"), ("CA204", "", OUR_NUMBER, "support"),
             ("CA205", "", SALES_LINE, "sales")]  # that number has a menu of its own
    for sid, digit, to, queue in cases:
        params = call(sid, to=to, **({"Digits": digit} if digit else {}))
        root = await webhook(node, "/twilio/voice/menu", **params)
        assert verbs(root) == ["Enqueue"]
        enqueue = root[0]
        assert enqueue.text == f"cc-{queue}"
        assert enqueue.attrib["waitUrl"] == f"{PUBLIC}/twilio/voice/wait"
        assert enqueue.attrib["action"] == f"{PUBLIC}/twilio/voice/enqueue-action"
        contact = await contact_of(node, sid)
        assert contact.queue_id == queues[queue]
        assert contact.from_address == CHINA and contact.to_address == to
        assert contact.meta == {"ivr_digit": digit or None, "twilio_queue": f"cc-{queue}",
                                "language": "zh-CN"}

    # A menu without options sends the caller straight on to its default queue.
    root = await webhook(node, "/twilio/voice", **call("CA206", to=SALES_LINE))
    assert verbs(root) == ["Say", "Redirect"]
    assert root[1].text == f"{PUBLIC}/twilio/voice/menu"


async def test_bad_signature_malformed_and_replayed_webhooks(node: Node) -> None:
    await voice_queues(node)
    params = call("CA300", Digits="1")
    status, _ = await post_webhook(node.url, PUBLIC, "/twilio/voice/menu", params,
                                   bad_signature=True)
    assert status == 403
    status, _ = await post_webhook(node.url, PUBLIC, "/twilio/voice/menu", params,
                                   token="someone-elses-token")
    assert status == 403
    for missing in ("CallSid", "From"):
        status, text = await post_webhook(node.url, PUBLIC, "/twilio/voice/menu",
                                          {k: v for k, v in params.items() if k != missing})
        assert status == 400 and missing in text
    status, _ = await post_webhook(node.url, PUBLIC, "/twilio/voice/voicemail?queue=1",
                                   call("CA301"))  # no RecordingUrl
    assert status == 400
    assert await count_contacts(node) == 0

    first = await webhook(node, "/twilio/voice/menu", **params)
    again = await webhook(node, "/twilio/voice/menu", **params)  # Twilio retried
    assert ET.tostring(first) == ET.tostring(again)
    assert await count_contacts(node) == 1


# -- agents --------------------------------------------------------------------------------


async def test_agent_is_offered_the_call_and_accepting_rings_the_agent(
    node: Node, fake: FakeTwilio, clock: ManualClock
) -> None:
    queues = await voice_queues(node)
    li = await connect_agent(node, "li")
    await webhook(node, "/twilio/voice/menu", **call("CA400", Digits="2"))
    contact = await contact_of(node, "CA400")

    offer = await li.expect("offer", contact__id=contact.id)
    assert offer["contact"]["channel"] == "voice"
    assert offer["contact"]["from"] == CHINA
    assert offer["contact"]["to"] == OUR_NUMBER
    assert offer["contact"]["queue"] == "complaints"
    assert offer["customer"]["name"] == CHINA  # a new caller: a card made from the number
    assert offer["customer"]["is_new"] is True
    assert fake.requests == []  # nothing rings before the agent accepts

    clock.advance(12)
    await li.send(type="accept", contact_id=contact.id)
    await li.expect("contact", contact__state="active")
    [update] = await eventually(lambda: _async(calls_updated(fake, "CA400")), bool)
    assert update.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/CA400.json"
    assert update.form == {"Twiml": (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f'<Dial action="{PUBLIC}/twilio/voice/dial-action" callerId="{OUR_NUMBER}" '
        'method="POST"><Client>li</Client></Dial></Response>')}

    # Twilio tells us the caller left its queue for the agent, then that they talked.
    root = await webhook(node, "/twilio/voice/enqueue-action",
                         **call("CA400", QueueResult="redirected", QueueTime="12"))
    assert verbs(root) == []
    clock.advance(170)
    root = await webhook(node, "/twilio/voice/dial-action",
                         **call("CA400", DialCallStatus="completed", DialCallDuration="170"))
    assert verbs(root) == ["Hangup"]
    await li.expect("contact", contact__state="wrapup", contact__reason="customer-left")
    await webhook(node, "/twilio/voice/status",
                  **call("CA400", CallStatus="completed", CallDuration="185"))
    done = await contact_of(node, "CA400")
    assert done.state == "wrapup"
    assert done.queue_id == queues["complaints"]
    assert done.meta is not None
    assert done.meta["call_status"] == "completed" and done.meta["duration"] == 185
    assert done.meta["talk_seconds"] == 170 and done.meta["answered"] is True
    assert done.meta["agent_target"] == "client:li"
    assert [e.kind for e in await events(node, contact.id)] == [
        "entered", "offered", "accepted", "ended"]
    await li.close()


async def _async(value: T) -> T:
    return value


def _queue_stats(node: Node, queue_id: int) -> dict[str, Any] | None:
    return next((q for q in node.rt.live_stats.get("queues", ()) if q["id"] == queue_id), None)


async def test_an_agent_with_a_phone_is_dialed_there_and_a_miss_puts_the_caller_back(
    node: Node, fake: FakeTwilio
) -> None:
    await voice_queues(node)
    wang = await connect_agent(node, "wang")  # the IVR file gives wang a phone number
    await webhook(node, "/twilio/voice/menu", **call("CA500", Digits="1"))
    contact = await contact_of(node, "CA500")
    await wang.expect("offer", contact__id=contact.id)
    await wang.send(type="accept", contact_id=contact.id)
    [update] = await eventually(lambda: _async(calls_updated(fake, "CA500")), bool)
    dial = ET.fromstring(update.form["Twiml"]).find("Dial")
    assert dial is not None and dial.attrib["callerId"] == OUR_NUMBER
    assert [(n.tag, n.text) for n in dial] == [("Number", "+8613800138000")]
    await state_of(node, "CA500", "active")

    # The phone rang out: the caller waits again and is offered again.
    root = await webhook(node, "/twilio/voice/dial-action",
                         **call("CA500", DialCallStatus="no-answer", DialCallDuration="0"))
    assert verbs(root) == ["Enqueue"] and root[0].text == "cc-repairs"
    await wang.expect("offer", contact__id=contact.id, timeout=15)
    assert [e.kind for e in await events(node, contact.id)][-2:] == ["transferred", "offered"]

    # The REST API refuses to connect: the agent is told and the caller waits again.
    fake.fail_next(status=400, code=21220, message="Call is not in-progress")
    await wang.send(type="accept", contact_id=contact.id)
    error = await wang.expect("error", contact_id=contact.id)
    assert "Call is not in-progress" in error["message"]
    await wang.expect("offer", contact__id=contact.id, timeout=15)
    await wang.close()


# -- leaving the queue ---------------------------------------------------------------------


async def test_hanging_up_in_the_queue_is_abandoned_with_the_wait(
    node: Node, clock: ManualClock
) -> None:
    await voice_queues(node)
    await webhook(node, "/twilio/voice/menu", **call("CA600", Digits="1"))
    contact = await contact_of(node, "CA600")
    await eventually(lambda: events(node, contact.id), lambda es: len(es) == 1)
    clock.advance(45)
    root = await webhook(node, "/twilio/voice/enqueue-action",
                         **call("CA600", QueueResult="hangup", QueueTime="45"))
    assert verbs(root) == ["Hangup"]
    gone = await state_of(node, "CA600", "abandoned")
    assert gone.meta is not None and gone.meta["queue_result"] == "hangup"
    assert gone.meta["queue_time"] == 45
    log = await events(node, contact.id)
    assert [e.kind for e in log] == ["entered", "abandoned"]
    assert log[1].data["wait"] == pytest.approx(45)

    # The status callback that follows changes nothing but the call details.
    await webhook(node, "/twilio/voice/status",
                  **call("CA600", CallStatus="completed", CallDuration="52"))
    await asyncio.sleep(0.3)
    assert [e.kind for e in await events(node, contact.id)] == ["entered", "abandoned"]
    assert (await contact_of(node, "CA600")).meta["duration"] == 52  # type: ignore[index]


async def test_waiting_caller_hears_place_in_line_then_may_ask_for_a_callback(
    node: Node, clock: ManualClock
) -> None:
    queues = await voice_queues(node)
    await webhook(node, "/twilio/voice/menu", **call("CA700", caller=US, Digits="1"))
    voice = await contact_of(node, "CA700")

    root = await webhook(node, "/twilio/voice/wait",
                         **call("CA700", caller=US, QueuePosition="3", QueueTime="30",
                                CurrentQueueSize="3", AvgQueueTime="20"))
    assert verbs(root) == ["Say", "Pause"]
    assert root[0].attrib["language"] == "en-US"
    assert root[0].text == ("You are number 3 in line. "
                            "The expected wait is about 3 minutes.")
    assert root[1].attrib["length"] == "20"

    # Twilio's QueueTime, not a timer of ours, decides when the callback is offered.
    clock.advance(125)
    root = await webhook(node, "/twilio/voice/wait",
                         **call("CA700", caller=US, QueuePosition="2", QueueTime="120"))
    assert verbs(root) == ["Say", "Gather"]
    gather = root[1]
    assert gather.attrib["numDigits"] == "1"
    assert gather.attrib["action"] == f"{PUBLIC}/twilio/voice/callback-choice"
    assert [(c.tag, c.text) for c in gather] == [
        ("Say", "To be called back instead of waiting, press 1."), ("Pause", None)]

    # Another key: keep waiting.
    root = await webhook(node, "/twilio/voice/callback-choice",
                         **call("CA700", caller=US, Digits="5"))
    assert verbs(root) == ["Redirect"] and root[0].text == f"{PUBLIC}/twilio/voice/wait"
    assert await contacts(node, channel="callback") == []

    for _ in range(2):  # pressed, and Twilio retried the request
        root = await webhook(node, "/twilio/voice/callback-choice",
                             **call("CA700", caller=US, Digits="1"))
        assert verbs(root) == ["Say", "Hangup"]
        assert root[0].text == "Thank you. We will call you back at this number. Goodbye."
    [callback] = await contacts(node, channel="callback")
    assert callback.from_address == US and callback.to_address == OUR_NUMBER
    assert callback.queue_id == queues["repairs"]
    assert callback.created_at == voice.created_at == NOW  # the caller's place in line…
    # …which is what the router orders by: the queue's longest wait is the caller's.
    await eventually(lambda: _async(_queue_stats(node, queues["repairs"])),
                     lambda q: q is not None and q["waiting"] == 1
                     and q["longest_wait"] == pytest.approx(125))
    assert callback.meta == {"voice_contact_id": voice.id, "language": "en"}
    assert callback.state == "queued"

    await state_of(node, "CA700", "abandoned")
    log = await events(node, voice.id)
    assert [e.kind for e in log] == ["entered", "abandoned"]
    assert log[1].data["wait"] == pytest.approx(125)
    assert (await contact_of(node, "CA700")).meta["callback_requested"] is True  # type: ignore


async def test_no_callback_offer_when_no_queue_takes_callbacks(node: Node) -> None:
    await add_queue(node, "support", channels=["voice"])
    await webhook(node, "/twilio/voice/menu", **call("CA710"))
    root = await webhook(node, "/twilio/voice/wait",
                         **call("CA710", QueuePosition="1", QueueTime="600"))
    assert verbs(root) == ["Say", "Pause"]
    assert root[0].attrib["language"] == "zh-CN"
    assert root[0].text == "您前面还有0位客户,预计等待约1分钟。"


# -- out of hours --------------------------------------------------------------------------


async def test_out_of_hours_caller_leaves_a_voicemail_offered_with_the_recording(
    node: Node, clock: ManualClock, fake: FakeTwilio
) -> None:
    hours = {"timezone": "Asia/Shanghai", "holidays": "CN", "weekly": WEEKDAYS}
    queues = await voice_queues(node, business_hours=hours)
    # National Day, a Thursday at 10:00 in Shanghai: a holiday, so closed.
    clock.set(datetime(2026, 10, 1, 2, 0, tzinfo=UTC))
    root = await webhook(node, "/twilio/voice/menu", **call("CA800", Digits="1"))
    assert verbs(root) == ["Say", "Record", "Hangup"]
    # Monday 20:00 in Shanghai: after hours.
    clock.set(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    root = await webhook(node, "/twilio/voice/menu", **call("CA801", Digits="1"))
    assert verbs(root) == ["Say", "Record", "Hangup"]
    assert root[0].attrib["language"] == "zh-CN"
    assert root[0].text == "现在是非工作时间。请在提示音后留言,我们会尽快给您回电。"
    record = root[1]
    assert record.attrib["action"] == (
        f"{PUBLIC}/twilio/voice/voicemail?queue={queues['repairs']}&digit=1")
    assert record.attrib["maxLength"] == "120"
    assert await count_contacts(node) == 0  # nobody waits in a closed queue

    recording = "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE801"
    params = call("CA801", RecordingUrl=recording, RecordingDuration="35", RecordingSid="RE801")
    for _ in range(2):  # Twilio retried
        status, text = await post_webhook(
            node.url, PUBLIC, f"/twilio/voice/voicemail?queue={queues['repairs']}&digit=1",
            params)
        assert status == 200, text
        assert verbs(ET.fromstring(text)) == ["Hangup"]
    [voicemail] = await contacts(node)
    assert voicemail.channel == "voice" and voicemail.queue_id == queues["repairs"]
    assert voicemail.meta == {"voicemail": True, "recording_url": recording,
                              "recording_duration": 35, "recording_sid": "RE801",
                              "ivr_digit": "1", "language": "zh-CN"}

    li = await connect_agent(node, "li")
    offer = await li.expect("offer", contact__id=voicemail.id)
    assert offer["contact"]["body"] == recording
    assert offer["contact"]["subject"] == "Voicemail (35 s)"
    await li.send(type="accept", contact_id=voicemail.id)
    await li.expect("contact", contact__state="active")
    # The call has ended: its status callback must not end the agent's work on the voicemail,
    # and accepting a recording rings nobody.
    await webhook(node, "/twilio/voice/status",
                  **call("CA801", CallStatus="completed", CallDuration="48"))
    await li.nothing_for(0.5, "contact")
    assert (await contact_of(node, "CA801")).state == "active"
    assert fake.requests == []
    await li.close()


# -- the IVR file --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "error"), [
    ('[default]\ndefault_queue = "s"\n[[default.options]]\ndigit = "12"\nqueue = "r"\n'
     'label = { en = "r", zh-CN = "r" }\n',
     "default.options[0].digit: must be one key 0-9, not '12'"),
    ('[default]\ndefault_queue = "s"\n' + '[[default.options]]\ndigit = "1"\nqueue = "r"\n'
     'label = { en = "r", zh-CN = "r" }\n' * 2,
     "default.options: digit 1 is used twice"),
    ('[default]\ndefault_queue = "s"\n[[default.options]]\ndigit = "1"\nqueue = "r"\n'
     'label = { en = "repairs" }\n', "default.options[0].label: needs a 'zh-CN' text"),
    ('[default]\ndefault_queue = "s"\n[numbers."not a number"]\ndefault_queue = "x"\n',
     "numbers: 'not a number' is not a phone number"),
    ('[default]\ndefault_queue = "s"\n[numbers."+8657188880000"]\ndefault_qeue = "x"\n',
     'numbers."+8657188880000".default_qeue: Extra inputs are not permitted'),
    ('[default]\ndefault_queue = "s"\n[agents]\nli = "my desk"\n',
     "agents: li: 'my desk' is not client:<identity>, sip:<uri> or a phone number"),
    ('[defualt]\ndefault_queue = "s"\n', "default: Field required"),
    ('[default\n', "Expected ']'"),
])
def test_a_bad_ivr_file_is_refused_naming_the_entry(tmp_path: Path, text: str,
                                                     error: str) -> None:
    path = tmp_path / "ivr.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        load_ivr(path)
    assert str(path) in caught.value.message
    assert error in caught.value.message


def test_the_shipped_ivr_file_is_valid() -> None:
    ivr = load_ivr()
    assert ivr.default.queue_for("1") == "repairs"
    assert ivr.default.queue_for(None) == "support"
    assert ivr.agent_target("li") == "client:li"


async def test_the_server_does_not_start_with_a_bad_ivr_file(tmp_path: Path) -> None:
    path = tmp_path / "ivr.toml"
    path.write_text('[default]\ndefault_queue = "support"\nhold_music = "music.mp3"\n',
                    encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"default\.hold_music: must be an http"):
        await start_node(f"sqlite+aiosqlite:///{tmp_path / 'cc.db'}", None, "cc",
                         ManualClock(NOW), ivr_file=path)
