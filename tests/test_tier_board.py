"""The board's tier charts API: customers per effective tier now and tier movements per
month, from customers made graded and tiers moved by supervisors' overrides (the real path
that writes the tier history), across month ends in the company's time zone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from harness import Api, Node, add_user, login, start_node

from contactcenter.clock import ManualClock, utc
from contactcenter.customers import CustomerIn, create_customer

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock(datetime(2026, 9, 15, 10, 0, tzinfo=SH))


@pytest.fixture
async def node(stack: tuple[str, str | None, str], clock: ManualClock) -> AsyncIterator[Node]:
    n = await start_node(*stack, clock=clock, scheduler_seconds=0)
    yield n
    await n.stop()


async def _customer(node: Node, name: str, tier: str | None) -> int:
    async with node.rt.sessions.begin() as session:
        c = await create_customer(session, CustomerIn(name=name, tier=tier), actor_id=None,
                                  now=utc(node.rt.clock.now()))
        return c.id


async def _override(boss: Api, customer_id: int, tier: str | None) -> None:
    boss.token = await login(boss.node, "boss")  # the clock moved on past the last token
    status, body = await boss.call("PUT", f"/customers/{customer_id}/tier-override",
                                   json={"tier": tier})
    assert status == 200, body


async def test_distribution_and_monthly_movements(node: Node, clock: ManualClock) -> None:
    await add_user(node, "boss", "supervisor")
    await add_user(node, "li")
    boss = Api(node, await login(node, "boss"))
    try:
        # September: three customers graded for the first time, one not graded.
        ann = await _customer(node, "Ann", "A")
        await _customer(node, "Bo", "B")
        cai = await _customer(node, "Cai", "C")
        await _customer(node, "Dee", None)
        clock.set(datetime(2026, 10, 10, 9, 0, tzinfo=SH))
        await _override(boss, cai, "A")  # C → A: up
        # 23:30 on 31 October in Shanghai is still October there (15:30 UTC).
        clock.set(datetime(2026, 10, 31, 23, 30, tzinfo=SH))
        await _override(boss, ann, "D")  # A → D: down
        clock.set(datetime(2026, 11, 23, 10, 0, tzinfo=SH))
        await _override(boss, cai, None)  # the override cleared: A → C, down

        boss.token = await login(node, "boss")
        status, body = await boss.call("GET", "/supervisor/tiers?months=3")
        assert status == 200, body
        assert body["tiers"] == ["A", "B", "C", "D"]
        assert body["distribution"] == {"A": 0, "B": 1, "C": 1, "D": 1, "none": 1}
        sep, oct_, nov = body["months"]
        assert (sep["month"], oct_["month"], nov["month"]) == ("2026-09", "2026-10", "2026-11")
        assert {k: sep[k] for k in ("first", "up", "down", "cleared")} == {
            "first": 3, "up": 0, "down": 0, "cleared": 0}
        assert sep["moves"] == [{"from": None, "to": "A", "count": 1},
                                {"from": None, "to": "B", "count": 1},
                                {"from": None, "to": "C", "count": 1}]
        assert (oct_["up"], oct_["down"], oct_["first"]) == (1, 1, 0)
        assert oct_["moves"] == [{"from": "A", "to": "D", "count": 1},
                                 {"from": "C", "to": "A", "count": 1}]
        assert (nov["up"], nov["down"]) == (0, 1)
        assert nov["moves"] == [{"from": "A", "to": "C", "count": 1}]

        # One month back only: September's grading is outside the range.
        status, body = await boss.call("GET", "/supervisor/tiers?months=1")
        assert [m["month"] for m in body["months"]] == ["2026-11"]

        status, body = await boss.call("GET", "/supervisor/tiers?months=0")
        assert status in (400, 422) and "error" in body
        li = Api(node, await login(node, "li"))
        try:
            status, _ = await li.call("GET", "/supervisor/tiers")
            assert status == 403
        finally:
            await li.close()
    finally:
        await boss.close()


def test_month_starts_cross_the_year() -> None:
    from datetime import date

    from contactcenter.tier_board import month_starts
    assert month_starts(date(2027, 2, 14), 4) == [
        date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1), date(2027, 2, 1)]
