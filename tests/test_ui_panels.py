"""The console's panels over the issue 4 APIs, in a real browser (tests/browser.py): the
screen-pop's timeline of purchases, repairs and complaints, and the board's sections —
callbacks due and overdue, compliance, complaints by step and level, coverage gaps, SMS
providers and greetings, tiers now and their movements — all from data made through the REST
API. These tests also take the board's screenshots in English and Chinese."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta

import pytest
from browser import embedded_node, log_in, new_page, screenshot
from fake_twilio import ACCOUNT_SID, FakeTwilio, post_webhook, twilio_settings
from harness import PASSWORD, Api, Node, add_queue, add_user, login
from playwright.async_api import Browser, Dialog, Page, expect
from sqlalchemy import select

from contactcenter.clock import SystemClock, utc
from contactcenter.storage.models import Message

XSS = "<img src=x onerror=alert(1)>"
PUBLIC = "https://cc.example.com"
SMS_FROM = "+8610000"


@pytest.fixture
async def node(tmp_path, fake: FakeTwilio) -> AsyncIterator[Node]:
    # Real time for the browser's sake (see test_ui_console.py); no background scheduler, so
    # the callbacks the events plan stay as planned and the board's counts hold still.
    # A written complaint's acknowledgement goes out by SMS through the fake Twilio.
    n = await embedded_node(tmp_path, SystemClock(), scheduler_seconds=0, sms_from=SMS_FROM,
                            **twilio_settings(fake.url, PUBLIC))
    yield n
    await n.stop()


@pytest.fixture
async def boss(node: Node) -> AsyncIterator[Api]:
    await add_user(node, "boss", role="supervisor", display_name="Zhou Min", language="en")
    api = Api(node, await login(node, "boss"))
    yield api
    await api.close()


async def _ok(api: Api, method: str, path: str, body: dict | None = None) -> dict:
    status, answer = await api.call(method, path, json=body)
    assert status in (200, 201), (path, answer)
    return answer


async def _customer(api: Api, name: str, phone: str) -> int:
    return (await _ok(api, "POST", "/customers", {"name": name, "phones": [phone]}))["id"]


async def _event(api: Api, customer_id: int, kind: str, data: dict, at: datetime | None = None
                 ) -> None:
    body = {"customer_id": customer_id, "kind": kind, "data": data,
            "external_id": uuid.uuid4().hex}
    if at is not None:
        body["at"] = at.isoformat()
    await _ok(api, "POST", "/events", body)


async def test_the_screen_pop_shows_purchases_repairs_and_complaints(
    node: Node, boss: Api, browser: Browser
) -> None:
    await add_queue(node, "integrations", channels=["api"], offer_timeout_seconds=600)
    await add_user(node, "li", display_name="Li Na", language="en")
    wang = await _customer(boss, "Wang Fang", "+8613800138000")
    await _event(boss, wang, "purchase", {"product": "Heat pump HP-9", "amount": 12800})
    await _event(boss, wang, "repair-dispatched", {"repair_id": "R-77", "promised_duration": "4h"})
    await _event(boss, wang, "complaint-written", {"channel": "letter", "summary": XSS})
    await _event(boss, wang, "complaint-written",
                 {"channel": "letter", "summary": "The technician came two days late."})

    agent = await new_page(browser, node.url)
    dialogs: list[str] = []

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    agent.on("dialog", on_dialog)
    await log_in(agent, "li", PASSWORD)
    await agent.select_option("#status", "available")
    await expect(agent.locator(".empty")).to_contain_text("You are available")
    await boss.post_contact("+8613800138000", "Is my pump fixed yet?", queue="integrations")
    await agent.locator(".offer button.accept").click()

    side = agent.locator(".workspace")
    purchases = side.locator(".part-purchases")
    await expect(purchases.locator("h3")).to_have_text("Purchases")
    await expect(purchases.locator("li")).to_have_count(1)
    await expect(purchases).to_contain_text("Heat pump HP-9")
    await expect(purchases.locator(".amount")).to_contain_text("12,800")
    repairs = side.locator(".part-repairs")
    await expect(repairs.locator(".chip")).to_have_text("Repair dispatched")
    await expect(repairs).to_contain_text("Promised within 4h")
    complaints = side.locator(".part-complaints li")
    await expect(complaints).to_have_count(2)
    # Newest first; a written complaint starts at the verify step, escalation level 1.
    await expect(complaints.nth(0).locator(".subject")).to_have_text(
        "The technician came two days late.")
    await expect(complaints.nth(1).locator(".subject")).to_have_text(XSS)
    await expect(complaints.nth(0).locator(".step-badge")).to_have_text("Verify")
    await expect(complaints.nth(0).locator(".deadline")).to_contain_text("Step due")
    # The summary a customer wrote is text: no element made from it, nothing run.
    assert await agent.locator(".workspace img").count() == 0
    await agent.wait_for_timeout(200)
    assert dialogs == []
    await screenshot(agent, "console-timeline-en")


async def _board_data(node: Node, boss: Api) -> dict[str, int]:
    """Customers, events and tiers made through the API, so each section has numbers."""
    now = utc(node.rt.clock.now())
    ids = {name: await _customer(boss, name, phone) for name, phone in (
        ("Wang Fang", "+8613800138000"), ("Chen Jie", "+8613800138001"),
        ("Liu Yang", "+8613800138002"), ("Zhao Lei", "+8613800138003"))}
    # Two purchases whose usage check (C2) passed undone — overdue — and whose window ended
    # inside the last 7 days: a not-done each for the compliance chart.
    bought = _ended_days_ago(node, "C2", now)
    await _event(boss, ids["Wang Fang"], "purchase", {"product": "Heat pump HP-9"}, at=bought)
    await _event(boss, ids["Chen Jie"], "purchase", {"product": "Boiler B2"}, at=bought)
    await _event(boss, ids["Liu Yang"], "complaint-written",
                 {"channel": "letter", "summary": "Noisy pump"})
    await _event(boss, ids["Zhao Lei"], "complaint-written",
                 {"channel": "web", "summary": "Late visit"})
    await _event(boss, ids["Zhao Lei"], "installation-completed", {})
    # The two complaints' acknowledgements went out by SMS: Twilio reports one delivered.
    acks = await _sent(node, 2)
    sid = (acks[0].external_id or "").removeprefix("sms:")
    status, _ = await post_webhook(node.url, PUBLIC, "/twilio/sms/status", {
        "MessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID,
        "MessageStatus": "delivered", "From": SMS_FROM})
    assert status == 204
    # Tiers by supervisors' overrides: A and B need two owners, these have none.
    await _ok(boss, "PUT", f"/customers/{ids['Wang Fang']}/tier-override", {"tier": "A"})
    await _ok(boss, "PUT", f"/customers/{ids['Chen Jie']}/tier-override", {"tier": "B"})
    await _ok(boss, "PUT", f"/customers/{ids['Liu Yang']}/tier-override", {"tier": "C"})
    return ids


def _ended_days_ago(node: Node, rule_id: str, now: datetime) -> datetime:
    """When an event must have happened for its `rule_id` window to have closed 1-5 days ago.
    Windows are clipped to business time, so a fixed age ended outside the chart's week when
    its end fell on a weekend (a purchase 18 days before a Friday shortly after midnight)."""
    rules = node.rt.rules
    hours = rules.calendar.hours()
    rule = next(r for r in rules.callbacks if r.id == rule_id)
    for age in range(1, 60):
        at = now - timedelta(days=age)
        _, latest = hours.clip(rule.after.after(at, hours), rule.within.after(at, hours))
        if latest is not None and now - timedelta(days=5) <= latest <= now - timedelta(days=1):
            return at
    raise AssertionError(f"no event time closes {rule_id}'s window 1-5 days before {now}")


async def _sent(node: Node, count: int) -> list[Message]:
    """The outbound SMS, once `count` of them have left through the provider."""
    for _ in range(200):
        async with node.rt.sessions() as session:
            rows = (await session.scalars(select(Message).where(
                Message.direction == "outbound", Message.status.in_(("sent", "delivered")))
                .order_by(Message.id))).all()
        if len(rows) >= count:
            return list(rows)
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} SMS sent")


async def _open_board(browser: Browser, node: Node, lang: str = "en") -> Page:
    board = await new_page(browser, node.url, locale="en-GB" if lang == "en" else "zh-CN")
    await log_in(board, "boss", PASSWORD)
    if lang != "en":
        await board.locator("#lang-holder select").select_option(lang)
    await expect(board.locator(".board-extra .panel-card")).to_have_count(6)
    return board


async def _shoot_sections(board: Page, name: str) -> None:
    """The sections fill the laptop screen below the live board: scrolled to them."""
    await board.evaluate("window.scrollTo(0, document.querySelector('.board-extra').offsetTop - 8)")
    await screenshot(board, name)


async def test_the_board_sections_show_the_api_numbers(
    node: Node, boss: Api, browser: Browser
) -> None:
    await add_queue(node, "integrations", channels=["api"])
    ids = await _board_data(node, boss)
    # What the board should show, as the API answers it (the API's own tests check the sums).
    due = await _ok(boss, "GET", "/supervisor/callbacks/due")
    board = await _open_board(browser, node)

    callbacks = board.locator('[data-section="callbacks"]')
    await expect(callbacks.locator(".stat-overdue .value")).to_have_text("2")
    await expect(callbacks.locator(".stat-due .value")).to_have_text(str(due["total"]))
    # The installation and the complaints plan callbacks: due today in business hours, or on
    # a coming day when the suite runs after them (this node keeps real time for the browser).
    today = date.fromisoformat(due["day"])
    coming = [await _ok(boss, "GET", f"/supervisor/callbacks/due?day={today + timedelta(d)}")
              for d in range(1, 5)]
    assert sum(day["total"] for day in [due, *coming]) >= 1
    await expect(callbacks.locator(".overdue-list li")).to_have_count(2)
    await expect(callbacks.locator(".overdue-list")).to_contain_text("Wang Fang")
    await expect(callbacks.locator(".overdue-list")).to_contain_text("C2")

    compliance = board.locator('[data-section="compliance"]')
    row = compliance.locator('.bar-row[data-rule="C2"]')
    await expect(row.locator(".bar-value")).to_have_text("0%")
    await expect(row.locator(".bar-count")).to_have_text("2")
    await expect(row.locator(".seg-bad")).to_have_count(1)  # the chart's red: not done

    complaints = board.locator('[data-section="complaints"]')
    await expect(complaints.locator(".stat-open .value")).to_have_text("2")
    await expect(complaints.locator('td[data-step="verify"][data-level="1"]')).to_contain_text("2")
    await expect(complaints.locator('td[data-step="review"][data-level="1"]')).to_have_text("·")

    coverage = board.locator('[data-section="coverage"]')
    await expect(coverage.locator(".stat-gaps .value")).to_have_text("2")
    await expect(coverage.locator(".gap-list li")).to_have_count(2)
    link = coverage.locator(".gap-list a", has_text="Chen Jie")
    await expect(link).to_have_attribute("href", f"#customers/{ids['Chen Jie']}")

    provider = board.locator('[data-section="messages"] tr[data-provider="twilio"]')
    await expect(provider.locator("td").nth(1)).to_have_text("2")  # sent
    await expect(provider.locator(".rate .bar-value")).to_have_text("50%")  # delivered
    await expect(provider.locator(".rate .seg-good")).to_have_count(1)
    await expect(provider.locator(".rate .seg-first")).to_have_count(1)  # no report yet
    await expect(provider.locator(".rate .seg-bad")).to_have_count(0)  # none failed
    await expect(provider.locator(".p50")).not_to_have_text("–")  # the one delivery's latency

    tiers = board.locator('[data-section="tiers"]')
    now_bars = tiers.locator(".tier-now .col-group")
    await expect(now_bars).to_have_count(5)
    await expect(now_bars.nth(0).locator(".col-value")).to_have_text("1")  # A
    await expect(now_bars.nth(3).locator(".col-value")).to_have_text("0")  # D
    await expect(now_bars.nth(4).locator(".col-value")).to_have_text("1")  # not graded
    month = tiers.locator(".tier-moves .col-group").last
    await expect(month.locator(".seg-first")).to_have_count(1)
    await expect(month.locator(".col-value").nth(2)).to_have_text("3")  # first graded
    await _shoot_sections(board, "board-panels-en")

    # The link opens the customer.
    await link.click()
    await expect(board.locator(".customer-detail .customer-name")).to_have_text("Chen Jie")


async def test_the_board_sections_in_chinese(node: Node, boss: Api, browser: Browser) -> None:
    await add_queue(node, "integrations", channels=["api"])
    await _board_data(node, boss)
    board = await _open_board(browser, node, "zh-CN")
    await expect(board.locator('[data-section="compliance"] h3')).to_have_text("回访合规率")
    await expect(board.locator('[data-section="complaints"] tbody th').first).to_have_text("核实")
    overdue = board.locator('[data-section="callbacks"] .stat-overdue .label')
    await expect(overdue).to_have_text("超期")
    await expect(board.locator('[data-section="tiers"] .bar-legend')).to_contain_text("首次评级")
    await _shoot_sections(board, "board-panels-zh-CN")
