"""The demo data set, loaded into both database backends."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contactcenter.clock import ManualClock
from contactcenter.customers import customer_card, customer_history, search_customers
from contactcenter.demo import load_demo
from contactcenter.phones import normalize_phone
from contactcenter.storage.db import make_engine, sessionmaker, upgrade
from contactcenter.storage.models import (
    AuditEntry,
    Contact,
    ContactEvent,
    Customer,
    CustomerOwner,
    Queue,
    TierChange,
    User,
)
from contactcenter.users import create_user, verify_password
from tests.conftest import NOW
from tests.harness import start_node

Sessions = async_sessionmaker[AsyncSession]
EVENT_ORDER = ["entered", "offered", "accepted", "ended", "completed"]


@pytest.fixture
def sm(engine: AsyncEngine) -> Sessions:
    return sessionmaker(engine)


async def _counts(sm: Sessions) -> dict[str, int]:
    async with sm() as s:
        return {
            m.__name__: int(await s.scalar(select(func.count()).select_from(m)) or 0)
            for m in (Customer, User, Queue, Contact, ContactEvent, AuditEntry, TierChange)
        }


async def test_demo_data(sm: Sessions) -> None:
    passwords = await load_demo(sm, now=NOW)
    assert passwords is not None
    assert set(passwords) == {f"agent{i}" for i in range(1, 9)} | {"supervisor", "admin"}

    async with sm() as s:
        users = {u.username: u for u in await s.scalars(select(User))}
        for username, password in passwords.items():
            assert verify_password(users[username].password_hash, password)
        assert not verify_password(users["admin"].password_hash, passwords["supervisor"])
        roles = Counter(u.role for u in users.values())
        assert roles == {"agent": 8, "supervisor": 1, "admin": 1}

        queues = {q.name: q for q in await s.scalars(select(Queue))}
        assert set(queues) == {"sales", "support", "repairs", "complaints"}
        assert queues["sales"].channels == ["voice", "sms", "chat", "email", "api"]
        assert set(queues["support"].channels) == {
            "voice", "sms", "email", "chat", "api", "callback"
        }  # fmt: skip
        assert queues["repairs"].channels == ["voice", "sms", "api"]
        assert queues["repairs"].sticky_seconds == 30
        assert queues["complaints"].base_priority == 10
        for q in queues.values():
            assert q.required_skills == [q.name]
            assert q.sl_threshold_seconds == 20
            assert "resolved" in q.dispositions
            assert q.business_hours["timezone"] == "Asia/Shanghai"
            assert q.business_hours["weekly"]["mon"] == [["09:00", "18:00"]]
            assert "sat" not in q.business_hours["weekly"]
            # Every queue can be served by at least two agents.
            skilled = [u for u in users.values() if u.role == "agent" and q.name in u.skills]
            assert len(skilled) >= 2

        customers = list(await s.scalars(select(Customer).order_by(Customer.id)))
        assert len(customers) == 300
        assert Counter(c.tier for c in customers) == {"A": 15, "B": 45, "C": 90, "D": 150}
        assert Counter(c.language for c in customers) == {"zh-CN": 150, "en": 150}
        assert {c.source for c in customers} == {"demo"}
        owners = dict(
            (
                await s.execute(
                    select(CustomerOwner.customer_id, func.count()).group_by(
                        CustomerOwner.customer_id
                    )
                )
            ).all()
        )
        agent_ids = {u.id for u in users.values() if u.role == "agent"}
        for c in customers:
            assert c.phones, c.name
            for phone in c.phones:
                assert normalize_phone(phone.number) == phone.number
            mobile = c.phones[0].number
            assert mobile.startswith("+86" if c.language == "zh-CN" else ("+1", "+44"))
            assert owners[c.id] == (2 if c.tier in ("A", "B") else 1)
            assert {o.user_id for o in c.owners} <= agent_ids
        chinese = [c for c in customers if c.language == "zh-CN" and c.kind == "person"]
        assert all(1 < len(c.name) <= 4 and c.honorific in ("先生", "女士") for c in chinese)
        assert 50 < sum(bool(c.emails) for c in customers) < 250
        assert 100 < sum(c.birthday is not None for c in customers) < 250
        assert any(c.kind == "organisation" and c.legal_representative for c in customers)
        assert all("vip" in customer_card(c)["tags"] for c in customers if c.tier == "A")

        contacts = list(await s.scalars(select(Contact)))
        assert 300 < len(contacts) < 1800
        by_customer = {c.id: c for c in customers}
        for contact in contacts:
            assert contact.state == "closed" and contact.disposition and contact.notes
            assert NOW - timedelta(days=180) <= contact.created_at
            assert contact.created_at < contact.answered_at  # type: ignore[operator]
            assert contact.answered_at < contact.ended_at < contact.closed_at < NOW  # type: ignore[operator]
            queue = next(q for q in queues.values() if q.id == contact.queue_id)
            assert contact.channel in queue.channels
            agent = next(u for u in users.values() if u.id == contact.agent_id)
            assert queue.name in agent.skills
            assert contact.disposition in queue.dispositions
            owner = by_customer[contact.customer_id]
            if contact.channel == "email":
                assert contact.from_address == owner.emails[0].address
            assert contact.direction == ("outbound" if contact.channel == "callback" else "inbound")

        events: dict[int, list[ContactEvent]] = defaultdict(list)
        for e in await s.scalars(select(ContactEvent).order_by(ContactEvent.id)):
            events[e.contact_id].append(e)
        assert set(events) == {c.id for c in contacts}
        for contact in contacts:
            rows = events[contact.id]
            assert [e.kind for e in rows] == EVENT_ORDER
            assert [e.at for e in rows] == sorted(e.at for e in rows)
            assert rows[0].at == contact.created_at and rows[-1].at == contact.closed_at
            assert rows[2].at == contact.answered_at and rows[3].at == contact.ended_at
            assert {e.queue_id for e in rows} == {contact.queue_id}
            assert [e.agent_id for e in rows[1:]] == [contact.agent_id] * 4
            assert rows[-1].data == {"disposition": contact.disposition}

        # The demo customers work with the customer functions the API uses.
        busiest = Counter(c.customer_id for c in contacts).most_common(1)[0][0]
        history = await customer_history(s, busiest)
        assert len(history) >= 2
        assert [h["created_at"] for h in history] == sorted(
            (h["created_at"] for h in history), reverse=True
        )
        first_chinese = chinese[0]
        assert first_chinese.id in [c.id for c in await search_customers(s, first_chinese.name)]

    before = await _counts(sm)
    assert before["AuditEntry"] == before["TierChange"] == 300
    assert before["ContactEvent"] == 5 * before["Contact"]
    assert await load_demo(sm, now=NOW) is None
    assert await _counts(sm) == before


async def test_demo_skips_a_database_with_users(sm: Sessions) -> None:
    async with sm() as s:
        await create_user(s, username="boss", password="secret-pw", role="admin", now=NOW)
        await s.commit()
    assert await load_demo(sm, now=NOW) is None
    counts = await _counts(sm)
    assert (counts["User"], counts["Customer"], counts["Queue"]) == (1, 0, 0)


async def _snapshot(path: Path, seed: int) -> list[tuple[str, list[str], str | None, int]]:
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine)
        sm = sessionmaker(engine)
        await load_demo(sm, now=NOW, seed=seed)
        async with sm() as s:
            customers = await s.scalars(select(Customer).order_by(Customer.id))
            contacts = Counter(await s.scalars(select(Contact.customer_id)))
            return [
                (c.name, [p.number for p in c.phones], c.tier, contacts[c.id]) for c in customers
            ]
    finally:
        await engine.dispose()


async def test_demo_is_deterministic(tmp_path: Path) -> None:
    first = await _snapshot(tmp_path / "a.db", seed=7)
    assert len(first) == 300
    assert await _snapshot(tmp_path / "b.db", seed=7) == first


async def test_a_server_on_the_demo_data_routes_and_counts_todays_answers(
    db_url: str, sm: Sessions
) -> None:
    """The demo's history reaches into today; the node folding it into the live statistics
    must become the router (it once failed on every try: the demo's answers had no wait), and
    a malformed row is left out of the figures instead of stopping all routing."""
    await load_demo(sm, now=NOW)
    async with sm() as s:
        rows = (await s.scalars(select(ContactEvent).where(ContactEvent.kind == "accepted"))).all()
    assert rows and all(isinstance(r.data.get("wait"), float) for r in rows)
    async with sm.begin() as s:  # and one malformed row (an answer without its wait) today
        s.add(ContactEvent(at=NOW - timedelta(minutes=5), kind="accepted",
                           contact_id=rows[0].contact_id, queue_id=rows[0].queue_id,
                           agent_id=rows[0].agent_id, data={}))
    node = await start_node(db_url, None, "demo", ManualClock(NOW))
    try:
        dispatcher = node.rt.dispatcher
        assert dispatcher is not None
        for _ in range(200):
            if dispatcher.is_leader:
                break
            await asyncio.sleep(0.05)
        assert dispatcher.is_leader and dispatcher.stats is not None
        today = NOW.astimezone(ZoneInfo(node.rt.settings.timezone)).date()
        answered = sum(dispatcher.stats.queue(q.id, today).answered
                       for q in await _queues(sm))
        tz = ZoneInfo(node.rt.settings.timezone)
        expected = sum(1 for r in rows if r.at.astimezone(tz).date() == today)
        assert answered == expected > 0
    finally:
        await node.stop()


async def _queues(sm: Sessions) -> list[Queue]:
    async with sm() as s:
        return list((await s.scalars(select(Queue))).all())
