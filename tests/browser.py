"""A real browser for the console tests: Debian's Chromium (/usr/bin/chromium, installed by
.ci/run) driven by Playwright's async API on the test's own event loop, next to a real server
node. Outside CI a machine without Chromium skips these tests; with CI=true it fails them."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness import Node, start_node
from playwright.async_api import Browser, Page, async_playwright

from contactcenter.clock import Clock
from contactcenter.storage.db import make_engine, upgrade

CHROMIUM = Path("/usr/bin/chromium")
# The committed screenshots are rewritten only when asked (CC_UPDATE_SCREENSHOTS=1), so a test
# run leaves the work tree clean; otherwise they are still taken, into a temporary folder.
DOCS_SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
SCREENSHOTS = (DOCS_SCREENSHOTS if os.environ.get("CC_UPDATE_SCREENSHOTS") == "1"
               else Path(tempfile.gettempdir()) / "cc-screenshots")
LAPTOP = {"width": 1366, "height": 768}  # the screen the console is designed for


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{CHROMIUM} must exist when CI=true (.ci/run installs Debian's chromium)")
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")


# Uncaught JavaScript errors of every page of a test; the `browser` fixture fails the test on any.
PAGE_ERRORS: list[str] = []


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    PAGE_ERRORS.clear()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield browser
        await browser.close()
    assert PAGE_ERRORS == [], f"JavaScript errors in the console: {PAGE_ERRORS}"


async def embedded_node(tmp_path: Path, clock: Clock, **settings: object) -> Node:
    """The server the browser talks to. The browser tests are about the browser: the embedded
    backend is enough (the server's own tests run every flow on PostgreSQL and Redis too)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ui.db'}"
    engine = make_engine(url)
    await upgrade(engine)
    await engine.dispose()
    return await start_node(url, None, "cc", clock=clock, **settings)


async def new_page(browser: Browser, base_url: str, *, locale: str = "en-GB",
                   timezone: str = "Asia/Shanghai") -> Page:
    """A fresh browser profile (its own localStorage), as a second person's computer would be."""
    context = await browser.new_context(base_url=base_url, viewport=LAPTOP, locale=locale,
                                        timezone_id=timezone)
    page = await context.new_page()
    page.on("pageerror", lambda error: PAGE_ERRORS.append(str(error)))
    page.set_default_timeout(15_000)
    return page


async def log_in(page: Page, username: str, password: str) -> None:
    await page.goto("/")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", password)
    await page.click("form#login button")
    await page.wait_for_selector("#shell:not([hidden])")


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
