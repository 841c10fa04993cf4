"""The agent console and the supervisor board in a real browser (Debian's Chromium, through
Playwright), against a real server node with SMS coming in as Twilio's signed webhooks and
replies going out to a fake Twilio REST API. These tests also make the screenshots in
docs/screenshots/ that the README shows."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
from browser import embedded_node, log_in, new_page, screenshot
from fake_twilio import ACCOUNT_SID, FakeTwilio, post_webhook, twilio_settings
from harness import PASSWORD, Api, Node, add_queue, add_user, login
from playwright.async_api import Browser, Dialog, Locator, Page, expect
from sqlalchemy import select

from contactcenter.clock import SystemClock, utc
from contactcenter.contacts import AttachmentIn, Inbound, take_in
from contactcenter.customers import CustomerIn, create_customer
from contactcenter.storage.models import CannedResponse, Contact

PUBLIC = "https://cc.example.com"
OURS = "+14155550199"
WANG = "+8613800138000"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


@pytest.fixture
async def node(tmp_path, fake: FakeTwilio) -> AsyncIterator[Node]:
    # The browser counts offers down against its own clock, so the server runs on real time
    # here; offers wait long enough that a slow machine never sees one expire.
    n = await embedded_node(tmp_path, SystemClock(), **twilio_settings(fake.url, PUBLIC),
                            send_retry_seconds=[0.05, 0.05])
    yield n
    await n.stop()


async def seed(node: Node) -> int:
    """A queue for SMS, an agent, a supervisor, and a known A-tier customer with one earlier
    contact, so the screen-pop has a card and a history to show."""
    queue_id = await add_queue(node, "texts", channels=["sms"], offer_timeout_seconds=600,
                               dispositions=["resolved", "follow-up", "complaint"])
    await add_user(node, "li", display_name="Li Na", language="en")
    boss = await add_user(node, "boss", role="supervisor", display_name="Zhou Min", language="en")
    now = utc(node.rt.clock.now())
    async with node.rt.sessions.begin() as session:
        customer = await create_customer(session, CustomerIn(
            name="Wang Fang", phones=[{"number": WANG, "label": "mobile"}], tier="A",
            emails=["wang.fang@example.com"], tags=["vip", "wholesale"],
            birthday=date(1986, 4, 12), employer="Hongda Trading", owner_ids=[boss],
        ), actor_id=None, now=now)
        session.add(Contact(
            channel="email", state="closed", customer_id=customer.id, queue_id=queue_id,
            subject="Invoice for October", body="Could you send the October invoice again?",
            disposition="resolved", created_at=now - timedelta(days=3),
            closed_at=now - timedelta(days=3, hours=-1),
        ))
        session.add(CannedResponse(name="thanks", created_at=now, updated_at=now,
                                   body="Thank you, {{ customer.name }}. {{ agent.name }}"))
    return queue_id


async def sms(node: Node, body: str, sender: str = WANG) -> None:
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": ACCOUNT_SID, "From": sender,
              "To": OURS, "Body": body, "NumMedia": "0"}
    status, _ = await post_webhook(node.url, PUBLIC, "/twilio/sms", params)
    assert status == 200


async def go_available(page: Page) -> None:
    await expect(page.locator("#conn")).to_have_class(re.compile(r"\bonline\b"))
    await page.select_option("#status", "available")
    await expect(page.locator(".empty")).to_contain_text("You are available")


async def open_customer(page: Page, query: str, name: str) -> Locator:
    """Search from the Customers tab and open the one named; its detail panel."""
    await page.click("#nav a[href='#customers']")
    await page.fill(".customers input[name=q]", query)
    await page.press(".customers input[name=q]", "Enter")
    await page.click(f".results button:has-text('{name}')")
    return page.locator(".customer-detail")


def tile_value(board: Page, queue: str, stat: str) -> Locator:
    return board.locator(f'.tile[data-queue="{queue}"] .stat-{stat} .value')


async def test_sms_offer_accept_reply_wrap_up_and_the_board_follows(
    node: Node, fake: FakeTwilio, browser: Browser
) -> None:
    await seed(node)
    board = await new_page(browser, node.url)
    await log_in(board, "boss", PASSWORD)
    await expect(board.locator(".board h2")).to_have_text("Live board")
    await expect(tile_value(board, "texts", "waiting")).to_have_text("0")
    await expect(tile_value(board, "texts", "answered")).to_have_text("0")

    agent = await new_page(browser, node.url)
    await log_in(agent, "li", PASSWORD)
    await go_available(agent)

    await sms(node, "Where is my parcel? Order 7731.")
    offer = agent.locator(".offer")
    await expect(offer).to_be_visible()
    await expect(offer.locator(".customer-name")).to_have_text("Wang Fang")
    await expect(offer.locator(".tier")).to_have_text("A")
    await expect(offer.locator(".customer-card .owner")).to_have_text("Zhou Min")
    await expect(offer.locator(".preview")).to_have_text("Where is my parcel? Order 7731.")
    await expect(offer.locator(".timeline")).to_contain_text(
        "Could you send the October invoice again?")
    await expect(offer.locator(".timeline")).to_contain_text("resolved")
    await expect(tile_value(board, "texts", "waiting")).to_have_text("1")

    await offer.locator("button.accept").click()
    workspace = agent.locator(".workspace")
    await expect(workspace.locator(".msg.in")).to_have_text(re.compile("Where is my parcel"))
    await expect(agent.locator(".offer")).to_have_count(0)
    await expect(tile_value(board, "texts", "waiting")).to_have_text("0")
    await expect(tile_value(board, "texts", "answered")).to_have_text("1")

    reply = workspace.locator("textarea.reply")
    await reply.fill("It left our warehouse today and arrives tomorrow.")
    await expect(workspace.locator(".counter")).to_contain_text("1 SMS")
    await reply.press("Control+Enter")
    await expect(workspace.locator(".msg.out .delivery")).to_contain_text("sent")
    [sent] = fake.posted("/Messages.json")
    assert sent.path == MESSAGES_PATH
    assert sent.form["To"] == WANG and sent.form["From"] == OURS
    assert sent.form["Body"] == "It left our warehouse today and arrives tomorrow."

    # A private note stays with the contact, styled as a note, and is never sent.
    note_text = "Customer asked twice; check the courier tomorrow."
    await reply.fill(note_text)
    await workspace.locator("button.add-note").click()
    note = workspace.locator(".msg.private")
    await expect(note.locator(".body")).to_have_text(note_text)
    await expect(note.locator(".note-label")).to_contain_text("Private note")
    await expect(reply).to_have_value("")
    assert len(fake.posted("/Messages.json")) == 1

    # A canned response by keyboard: "/" and the start of its name, Tab takes it, filled in.
    await reply.fill("Dear customer, /tha")
    await expect(workspace.locator(".canned-suggest li").first).to_contain_text("/thanks")
    await reply.press("Tab")
    await expect(reply).to_have_value("Dear customer, Thank you, Wang Fang. Li Na")
    await expect(workspace.locator(".canned-suggest")).to_be_hidden()
    await reply.fill("")
    await screenshot(agent, "console-en")
    await screenshot(board, "board-en")

    await workspace.locator("button.end").click()
    wrapup = workspace.locator("form.wrapup")
    await wrapup.locator("select").select_option("resolved")
    await wrapup.locator("textarea").fill("Tracking number sent.")
    await wrapup.locator("button[type=submit]").click()
    await expect(agent.locator(".workspace")).to_have_count(0)
    await expect(agent.locator(".empty")).to_contain_text("You are available")
    async with node.rt.sessions() as session:
        contact = await session.scalar(select(Contact).where(Contact.channel == "sms"))
        assert contact is not None
        assert (contact.state, contact.disposition) == ("closed", "resolved")
        assert contact.notes == "Tracking number sent."
    await expect(tile_value(board, "texts", "answered")).to_have_text("1")
    await expect(tile_value(board, "texts", "waiting")).to_have_text("0")


async def test_markup_in_an_sms_is_shown_as_text_and_never_run(
    node: Node, browser: Browser
) -> None:
    await seed(node)
    agent = await new_page(browser, node.url)
    dialogs: list[str] = []

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    agent.on("dialog", on_dialog)
    await log_in(agent, "li", PASSWORD)
    await go_available(agent)
    payload = "<img src=x onerror=alert(1)>"
    await sms(node, payload)
    await expect(agent.locator(".offer .preview")).to_have_text(payload)
    await agent.locator(".offer button.accept").click()
    await expect(agent.locator(".workspace .msg.in .body")).to_have_text(payload)
    # The customer's text is a text node: no <img> was made, and nothing ran.
    assert await agent.locator("img").count() == 0
    await agent.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert dialogs == []


async def test_switching_to_chinese_relabels_and_is_remembered_for_the_user(
    node: Node, browser: Browser
) -> None:
    await seed(node)
    agent = await new_page(browser, node.url)
    await log_in(agent, "li", PASSWORD)
    await expect(agent.locator("#nav a").first).to_have_text("Console")
    await agent.locator("#lang-holder select").select_option("zh-CN")
    await expect(agent.locator("#nav a").first).to_have_text("工作台")
    await expect(agent.locator("#status option[value=available]")).to_have_text("空闲")
    await expect(agent.locator(".empty")).to_contain_text("离开")
    assert await agent.evaluate("document.documentElement.lang") == "zh-CN"

    # Remembered on the server: a new browser logging in as the same user gets Chinese.
    api = Api(node, await login(node, "li"))
    assert (await api.call("GET", "/me"))[1]["language"] == "zh-CN"
    await api.close()
    agent2 = await new_page(browser, node.url)
    await log_in(agent2, "li", PASSWORD)  # replaces the first page's agent connection
    await expect(agent2.locator("#nav a").first).to_have_text("工作台")
    await expect(agent2.locator("#status option[value=away]")).to_have_text("离开")
    await agent.context.close()

    board = await new_page(browser, node.url, locale="zh-CN")
    await log_in(board, "boss", PASSWORD)
    await board.locator("#lang-holder select").select_option("zh-CN")
    await expect(board.locator(".board h2")).to_have_text("实时看板")

    await agent2.select_option("#status", "available")
    await sms(node, "你好,我想改一下送货地址。")
    await sms(node, "发票抬头需要改成公司名称。", sender="+8613900139000")
    # Texts take five at once (capacity sms 5): both are offered together, oldest first.
    await expect(agent2.locator(".offer")).to_have_count(2)
    await agent2.locator(".offer button.accept").first.click()
    await expect(agent2.locator(".workspace .msg.in")).to_have_count(1)
    await expect(agent2.locator(".offer")).to_have_count(1)
    await expect(agent2.locator(".offer button.accept")).to_have_text("接受")
    await expect(agent2.locator(".offer .timeline h3")).to_have_text("历史记录")
    await agent2.locator(".workspace textarea.reply").fill("好的,请把新地址发给我。")
    await expect(agent2.locator(".workspace .counter")).to_contain_text("1 条短信")
    await expect(tile_value(board, "texts", "answered")).to_have_text("1")
    await expect(tile_value(board, "texts", "waiting")).to_have_text("1")
    await expect(board.locator(".tile .stat-waiting .label")).to_have_text("排队")
    await screenshot(agent2, "console-zh-CN")
    await screenshot(board, "board-zh-CN")


async def test_an_agent_finds_and_edits_a_customer_and_sees_the_change_in_the_audit(
    node: Node, browser: Browser
) -> None:
    await seed(node)
    agent = await new_page(browser, node.url)
    await log_in(agent, "li", PASSWORD)
    detail = await open_customer(agent, "Wang", "Wang Fang")
    await expect(detail.locator(".customer-name")).to_have_text("Wang Fang")
    await expect(detail.locator(".timeline")).to_contain_text("Invoice for October")
    await expect(detail.locator(".audit")).to_contain_text("created")

    await detail.locator("details.edit-box summary").click()
    await detail.locator("input[name=employer]").fill("Hongda Trading (Shenzhen)")
    await detail.locator("form.edit button[type=submit]").click()
    await expect(detail.locator(".facts")).to_contain_text("Hongda Trading (Shenzhen)")
    latest = detail.locator(".audit > ol > li").first
    await expect(latest).to_contain_text("li")
    await expect(latest).to_contain_text("edited")
    await expect(latest.locator(".diff")).to_contain_text('"Hongda Trading (Shenzhen)"')
    api = Api(node, await login(node, "li"))
    customers = (await api.call("GET", "/customers?q=Wang"))[1]["customers"]
    assert customers[0]["employer"] == "Hongda Trading (Shenzhen)"
    await api.close()


async def test_a_supervisor_watches_a_live_sms_read_only_and_reassigns_the_owner(
    node: Node, browser: Browser
) -> None:
    await seed(node)
    agent = await new_page(browser, node.url)
    await log_in(agent, "li", PASSWORD)
    await go_available(agent)
    await sms(node, "Can I change the delivery address?")
    await agent.locator(".offer button.accept").click()
    workspace = agent.locator(".workspace")
    await expect(workspace.locator(".msg.in")).to_have_count(1)

    board = await new_page(browser, node.url)
    await log_in(board, "boss", PASSWORD)
    row = board.locator(".live-contacts tr").first
    await expect(row).to_contain_text("Li Na")
    await expect(row).to_contain_text(WANG)
    await row.locator("button.watch").click()
    panel = board.locator(".watch-panel")
    await expect(panel.locator(".msg.in .body")).to_have_text("Can I change the delivery address?")
    await expect(panel.locator("textarea")).to_have_count(0)  # watching never speaks

    await workspace.locator("textarea.reply").fill("Yes — send me the new one.")
    await workspace.locator("textarea.reply").press("Control+Enter")
    await expect(panel.locator(".msg.out .body")).to_have_text("Yes — send me the new one.")

    # The supervisor sends it back to its queue, on the agent's behalf.
    await panel.locator("button.reassign").click()
    await panel.locator("form.transfer select").select_option(index=0)
    await panel.locator("form.transfer button[type=submit]").click()
    await expect(panel.locator("[role=status]")).to_contain_text("Reassigned")
    await expect(panel.locator(".watch-head")).not_to_contain_text("Active")
    await panel.locator("button.close-watch").click()
    await expect(panel).to_be_hidden()

    # The owner moves from the supervisor to Li Na; the audit shows who did it.
    detail = await open_customer(board, "Wang", "Wang Fang")
    await expect(detail.locator(".customer-card .owner")).to_have_text("you")
    await detail.locator(".owner-form select").select_option(label="Li Na")
    await detail.locator(".owner-form button[type=submit]").click()
    await expect(detail.locator(".customer-card .owner")).to_have_text("Li Na")
    latest = detail.locator(".audit > ol > li").first
    await expect(latest).to_contain_text("boss")
    await expect(latest.locator(".diff")).to_contain_text("owners")


async def test_an_email_lists_its_attachments_and_each_downloads_as_a_file(
    node: Node, browser: Browser
) -> None:
    await seed(node)
    await add_queue(node, "mail", channels=["email"], offer_timeout_seconds=600)
    agent = await new_page(browser, node.url)
    await log_in(agent, "li", PASSWORD)
    await go_available(agent)
    html = b"<script>alert(1)</script>"
    await take_in(node.rt, Inbound(
        channel="email", address="wang.fang@example.com", subject="Invoice", body="Attached.",
        attachments=[AttachmentIn("invoice.pdf", "application/pdf", b"%PDF-1.4 x"),
                     AttachmentIn("page.html", "text/html", html)]))
    await agent.locator(".offer button.accept").click()
    files = agent.locator(".workspace .msg.in .attachments button.attachment")
    await expect(files).to_have_text(["invoice.pdf", "page.html"])
    async with agent.expect_download() as info:
        await files.nth(1).click()
    download = await info.value
    assert download.suggested_filename == "page.html"
    path = await download.path()
    assert path is not None and path.read_bytes() == html
    assert await agent.locator("script:has-text('alert(1)')").count() == 0
