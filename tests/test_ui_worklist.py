"""The callback worklist, the callback workspace and the visits calendar in a real browser
(Chromium through Playwright) against a real server node on a controlled clock: an event makes a
callback due, the agent takes it, reads the script with their own name in it and records "no
answer", and the retry shows up as planned; a visit booked by hand lands in its day's column and
recording that it took place updates it. These tests also make the screenshots
docs/screenshots/worklist-*.png and visits-*.png."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from browser import embedded_node, log_in, new_page, screenshot
from harness import PASSWORD, Api, Node, add_queue, add_user, login
from playwright.async_api import Browser, Locator, Page, expect

from contactcenter.callbacks import run_callbacks
from contactcenter.clock import ManualClock, utc
from contactcenter.customers import CustomerIn, create_customer

SH = ZoneInfo("Asia/Shanghai")
MON = datetime(2026, 11, 23, 10, tzinfo=SH)  # a Monday, 10:00 in Shanghai (the company's zone)


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(MON)


@pytest.fixture
async def node(tmp_path, clock: ManualClock) -> AsyncIterator[Node]:
    # The browser tests are about the browser: the embedded backend is enough (the follow-up
    # API has its own tests on SQLite and PostgreSQL). Offers wait 600 s and the clock stands
    # still, so none expires while the browser works.
    n = await embedded_node(tmp_path, clock)
    await add_queue(n, "callbacks", channels=["callback"], offer_timeout_seconds=600,
                    dispositions=["resolved", "follow-up"])
    yield n
    await n.stop()


async def seed(node: Node) -> tuple[int, int]:
    """Agent li (Li Na) owning customer 王芳 (honorific 王女士, English speaker)."""
    li = await add_user(node, "li", display_name="Li Na", language="en")
    async with node.rt.sessions.begin() as session:
        customer = await create_customer(session, CustomerIn(
            name="王芳", honorific="Ms Wang", phones=["13800138000"], language="en",
            owner_ids=[li]), actor_id=None, now=utc(node.rt.clock.now()))
        return li, customer.id


async def open_page(browser: Browser, node: Node, *, locale: str = "en-GB") -> Page:
    # The browser's clock agrees with the server's, so "this week" and "today" are MON's.
    page = await new_page(browser, node.url, locale=locale)
    await page.clock.install(time=MON)
    await log_in(page, "li", PASSWORD)
    return page


async def by_hand_for(page: Page, name: str) -> Locator:
    """Open the view's "by hand" form and pick the customer by keyboard search; the form."""
    form = page.locator(".work-by-hand")
    await form.locator("summary").click()
    await form.locator("input[name=customer-q]").fill(name)
    await form.locator("input[name=customer-q]").press("Enter")
    await form.locator(f".picker-results button:has-text('{name}')").click()
    return form


async def test_a_due_callback_is_worked_from_the_script_to_no_answer_and_its_retry(
    node: Node, browser: Browser
) -> None:
    _, wang = await seed(node)
    api = Api(node, await login(node, "li"))
    status, body = await api.call("POST", "/events", json={"customer_id": wang,
                                                            "kind": "proposal-written"})
    assert status == 201, body
    (planned,) = body["scheduled"]

    page = await open_page(browser, node)
    await expect(page.locator("#conn")).to_have_class(re.compile(r"\bonline\b"))
    await page.select_option("#status", "available")
    await page.click("#nav a[href='#callbacks']")
    due = page.locator(".group-due")
    await expect(due.locator(".count")).to_have_text("1")
    item = due.locator(".work-item")
    await expect(item.locator(".customer-name")).to_have_text("王芳")
    await expect(item.locator(".purpose")).to_have_text(
        "Confirm we received the proposal and thank the customer.")
    await expect(item.locator(".category")).to_have_text("suggestion")
    await expect(item.locator(".due")).to_contain_text("23 Nov 2026, 10:00")
    await expect(page.locator(".group-overdue .count")).to_have_text("0")

    # A callback by hand for later today, from the form under the lists.
    form = await by_hand_for(page, "王芳")
    await form.locator("input[name=due]").fill("2026-11-23T16:00")
    await form.locator("input[name=category]").fill("service")
    await form.locator("input[name=purpose]").fill("Ask how the new unit works <b>")
    await form.locator("button[type=submit]").click()
    later = page.locator(".group-today")
    await expect(later.locator(".count")).to_have_text("1")
    await expect(later.locator(".purpose")).to_have_text("Ask how the new unit works <b>")
    await screenshot(page, "worklist-en")

    # The scheduler releases the due one; the agent takes it from the console.
    (contact_id,) = await run_callbacks(node.rt)
    await page.click("#nav a[href='#console']")
    await page.locator(".offer button.accept").click()
    panel = page.locator(".workspace .callback-panel")
    await expect(panel.locator(".script")).to_contain_text("I am Li Na, customer service")
    await expect(panel.locator(".script")).to_contain_text("Ms Wang")
    await expect(panel.locator(".script")).not_to_contain_text("{agent}")
    await expect(panel.locator(".purpose")).to_have_text(planned["purpose"])
    await expect(panel.locator(".category")).to_have_text("suggestion")
    await panel.get_by_label("No answer").check()
    await panel.locator("form.callback-outcome button[type=submit]").click()
    await expect(panel.locator(".outcome-done")).to_contain_text("Recorded: No answer.")
    await expect(panel.locator(".next-call")).to_contain_text("23 Nov 2026, 12:00")
    await screenshot(page, "callback-workspace-en")

    status, body = await api.call("GET", f"/customers/{wang}/callbacks")
    retry = next(c for c in body["callbacks"] if c["key"] == f"{planned['key']}:retry:2")
    assert retry["attempt"] == 2 and retry["state"] == "pending"
    assert datetime.fromisoformat(retry["due"]) == datetime(2026, 11, 23, 12, tzinfo=SH)
    first = next(c for c in body["callbacks"] if c["key"] == planned["key"])
    assert first["outcome"]["outcome"] == "no-answer"
    assert first["outcome"]["contact_id"] == contact_id

    # The usual wrap-up follows the outcome.
    await page.locator(".workspace button.end").click()
    wrapup = page.locator(".workspace form.wrapup")
    await wrapup.locator("select").select_option("follow-up")
    await wrapup.locator("button[type=submit]").click()
    await expect(page.locator(".workspace")).to_have_count(0)

    await page.click("#nav a[href='#callbacks']")
    await expect(page.locator(".group-due .count")).to_have_text("0")
    await expect(later.locator(".count")).to_have_text("2")
    await expect(later.locator(".work-item").first.locator(".due")).to_contain_text("12:00")
    await expect(later.locator(".work-item").first.locator(".chip")).to_contain_text(["call 2"])

    # Chinese labels, same data.
    await page.select_option(".topbar select.lang", "zh-CN")
    await expect(page.locator(".group-today h3")).to_contain_text("今日稍后")
    await screenshot(page, "worklist-zh-CN")
    await api.close()


async def test_a_visit_booked_by_hand_is_placed_in_its_day_and_its_outcome_recorded(
    node: Node, browser: Browser
) -> None:
    _, wang = await seed(node)
    page = await open_page(browser, node)
    await page.click("#nav a[href='#visits']")
    await expect(page.locator(".week .day")).to_have_count(7)
    await expect(page.locator(".week .day").first).to_have_attribute("data-day", "2026-11-23")
    await expect(page.locator(".week .day.today")).to_have_attribute("data-day", "2026-11-23")

    form = await by_hand_for(page, "王芳")
    await form.locator("input[name=due]").fill("2026-11-26T14:00")
    await form.locator("input[name=latest]").fill("2026-11-26T16:00")
    await form.locator("input[name=notes]").fill("Bring the <script> brochure")
    await form.locator("button[type=submit]").click()

    thursday = page.locator(".week .day[data-day='2026-11-26']")
    visit = thursday.locator("button.visit")
    await expect(visit).to_have_count(1)
    await expect(visit.locator(".customer-name")).to_have_text("王芳")
    await expect(visit.locator(".visit-time")).to_have_text("14:00–16:00")
    await expect(visit.locator(".state")).to_have_text("booked")
    await expect(page.locator(".week button.visit")).to_have_count(1)
    await visit.click()
    card = page.locator(".visit-card")
    await expect(card.locator(".notes")).to_have_text("Bring the <script> brochure")
    await screenshot(page, "visits-en")

    await card.locator("select[name=outcome]").select_option("done")
    await card.locator(".visit-outcome-form button[type=submit]").click()
    await expect(visit.locator(".state")).to_have_text("done")
    await expect(card.locator(".visit-outcome")).to_contain_text("Took place")
    await expect(card.locator(".visit-outcome-form")).to_have_count(0)

    api = Api(node, await login(node, "li"))
    status, body = await api.call("GET", "/visits?start=2026-11-23&end=2026-11-29")
    assert status == 200
    (stored,) = body["visits"]
    assert (stored["customer_id"], stored["state"], stored["outcome"]) == (wang, "done", "done")
    assert datetime.fromisoformat(stored["due"]) == datetime(2026, 11, 26, 14, tzinfo=SH)
    await api.close()

    # The week moves: nothing the week after, the visit again on the way back.
    await page.locator("button.next-week").click()
    await expect(page.locator(".week .day").first).to_have_attribute("data-day", "2026-11-30")
    await expect(page.locator(".week button.visit")).to_have_count(0)
    await page.locator("button.prev-week").click()
    await expect(thursday.locator("button.visit .state")).to_have_text("done")

    await page.select_option(".topbar select.lang", "zh-CN")
    await expect(thursday.locator("button.visit .state")).to_have_text("已完成")
    await expect(page.locator(".view-visits h2")).to_have_text("拜访")
    await screenshot(page, "visits-zh-CN")
