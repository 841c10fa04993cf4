"""The day's greetings planned for every customer in batches, exactly once."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from contactcenter.greetings import plan_greetings
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
    }  # the opted-out customer gets neither
    assert scheduled == 4
    assert await plan_greetings(sessions, RULES, SPRING_FESTIVAL, NOW) == (7, 0)  # once only
