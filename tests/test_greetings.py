"""The day's greetings planned for every customer in batches, exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

from fake_twilio import FakeTwilio, twilio_settings
from harness import start_node
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from contactcenter.clock import ManualClock
from contactcenter.customers import CustomerIn, create_customer
from contactcenter.greetings import plan_greetings, send_due_greetings
from contactcenter.rules.config import load_rules
from contactcenter.storage.db import sessionmaker
from contactcenter.storage.models import Consent, Customer, CustomerTag, ScheduledWork

NOW = datetime(2026, 2, 16, 18, 0, tzinfo=UTC)
SPRING_FESTIVAL = date(2026, 2, 17)
RULES = load_rules()


async def test_holiday_and_birthday_greetings_for_everyone_in_batches(engine: AsyncEngine) -> None:
    sessions = sessionmaker(engine)
    people = [
        ("a", "A", None, False), ("b", "B", None, False), ("c", "C", None, False),
        ("d", "D", date(1990, 2, 17), False), ("quit", "C", date(1980, 2, 17), True),
        ("vip-birthday", "A", date(1970, 2, 17), False), ("none", None, None, False),
    ]
    async with sessions.begin() as session:
        for name, tier, birthday, quit_ in people:
            c = Customer(name=name, tier=tier, birthday=birthday, created_at=NOW,
                         updated_at=NOW)
            if quit_:
                c.consents = [Consent(purpose="sms-marketing", granted=False, at=NOW)]
            c.tags = [CustomerTag(tag="member")]
            session.add(c)
    seen: list[int] = []
    read, scheduled = await plan_greetings(sessions, RULES, SPRING_FESTIVAL, NOW, batch=2,
                                           progress=lambda r, s: seen.append(r))
    assert read == 7 and seen == [2, 4, 6, 7]  # four batches, never all at once
    async with sessions() as session:
        keys = set((await session.scalars(select(ScheduledWork.key))).all())
    ids = {name: i + 1 for i, (name, *_) in enumerate(people)}
    assert keys == {
        f"holiday:{ids['c']}:2026-02-17:Chinese New Year (Spring Festival)",
        f"holiday:{ids['d']}:2026-02-17:Chinese New Year (Spring Festival)",
        f"birthday:{ids['d']}:2026",
        f"birthday:{ids['vip-birthday']}:2026",  # A/B get a visit, not a holiday SMS
        # Not graded yet: greeted as D, the tier grading gives everyone outside A-C.
        f"holiday:{ids['none']}:2026-02-17:Chinese New Year (Spring Festival)",
    }  # the opted-out customer gets neither
    assert scheduled == 5
    assert await plan_greetings(sessions, RULES, SPRING_FESTIVAL, NOW) == (7, 0)  # once only


async def test_due_greetings_go_out_once_through_the_sms_channel(
    stack: tuple[str, str | None, str], fake: FakeTwilio
) -> None:
    birthday = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai, Monday
    clock = ManualClock(birthday)
    node = await start_node(*stack, clock=clock, scheduler_seconds=0, sms_from="+8610000",
                            **twilio_settings(fake.url, "https://cc.example.com"))
    try:
        async with node.rt.sessions.begin() as session:
            for name, phone in (("王芳", "13800138000"), ("李伟", "13900139000")):
                await create_customer(session, CustomerIn(
                    name=name, honorific=f"{name[0]}女士" if name == "王芳" else None,
                    phones=[phone], birthday=date(1985, 11, 23)), actor_id=None, now=birthday)
        await plan_greetings(node.rt.sessions, RULES, date(2026, 11, 23), birthday)
        async with node.rt.sessions.begin() as session:  # 李伟 texts STOP after the planning
            session.add(Consent(customer_id=2, purpose="sms-marketing", granted=False,
                                at=birthday))
        assert await send_due_greetings(node.rt) == 0  # 08:30: not yet
        clock.set(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))  # 09:00 in Shanghai
        assert await send_due_greetings(node.rt) == 1
        for _ in range(50):
            if fake.posted("/Messages.json"):
                break
            await asyncio.sleep(0.05)
        (sent,) = fake.posted("/Messages.json")
        assert sent.form["To"] == "+8613800138000" and sent.form["From"] == "+8610000"
        assert sent.form["Body"] == "王女士,祝您生日快乐!contactcenter敬贺。"
        assert await send_due_greetings(node.rt) == 0  # exactly once
        async with node.rt.sessions() as session:
            results = {w.key: w.result for w in (await session.scalars(
                select(ScheduledWork))).all()}
        assert sorted(r and next(iter(r)) for r in results.values()) == ["message_id",
                                                                          "skipped"]
    finally:
        await node.stop()


async def test_a_late_greeting_in_quiet_hours_waits_for_nine(
    stack: tuple[str, str | None, str], fake: FakeTwilio
) -> None:
    evening = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai: quiet hours
    node = await start_node(*stack, clock=ManualClock(evening), scheduler_seconds=0,
                            sms_from="+8610000",
                            **twilio_settings(fake.url, "https://cc.example.com"))
    try:
        async with node.rt.sessions.begin() as session:
            await create_customer(session, CustomerIn(name="王芳", phones=["13800138000"],
                                                      birthday=date(1985, 11, 23)),
                                  actor_id=None, now=evening)
        await plan_greetings(node.rt.sessions, RULES, date(2026, 11, 23), evening)
        assert await send_due_greetings(node.rt) == 0  # due at 09:00, but it is 22:00 now
        async with node.rt.sessions() as session:
            item = await session.scalar(select(ScheduledWork))
        assert item is not None and item.state == "pending"
        assert item.due_at == datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # 09:00 next morning
        assert fake.posted("/Messages.json") == []
    finally:
        await node.stop()
