"""Exactly once across processes: two scheduler processes on one PostgreSQL (and Redis) work
the same due greetings and callbacks at the same moment; every customer gets one SMS and every
callback becomes one contact."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

from conftest import REDIS_URL
from fake_twilio import FakeTwilio, twilio_settings
from sqlalchemy import func, select

from contactcenter.customers import CustomerIn, create_customer
from contactcenter.events import record_event
from contactcenter.rules.config import load_rules
from contactcenter.storage.db import make_engine, sessionmaker
from contactcenter.storage.models import Contact, Queue, ScheduledWork

NOW = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)  # Monday 10:30 in Shanghai: sends and calls
CUSTOMERS = 40


async def test_two_scheduler_processes_send_each_sms_and_make_each_callback_once(
    pg_url: str, fake: FakeTwilio, tmp_path: Path
) -> None:
    engine = make_engine(pg_url)
    async with sessionmaker(engine).begin() as session:
        session.add(Queue(name="callbacks", channels=["callback"], dispositions=["done"]))
        for i in range(CUSTOMERS):
            c = await create_customer(session, CustomerIn(
                name=f"客户{i}", phones=[f"1380013{i:04d}"], birthday=date(1990, 11, 23)),
                actor_id=None, now=NOW)
            if i % 2 == 0:  # half of them also wrote in with a suggestion: C7, due at once
                await record_event(session, load_rules(), customer_id=c.id,
                                   kind="proposal-written", at=NOW, now=NOW,
                                   external_id=f"letter-{i}")
    env = {**os.environ, "CC_DATABASE_URL": pg_url, "CC_REDIS_URL": REDIS_URL,
           "CC_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:8]}", "CC_SCHEDULER_SECONDS": "0",
           "CC_PERIODIC_JOBS": "false", "CC_SMS_FROM": "+8610000", "CC_INBOUND_SMTP_PORT": "0",
           "CC_LOG_LEVEL": "WARNING",
           **{f"CC_{k.upper()}": str(v)
              for k, v in twilio_settings(fake.url, "https://cc.example.com").items()}}
    script = Path(__file__).with_name("scheduler_node.py")
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(NOW.timestamp()), "3", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=(tmp_path / f"node{n}.log").open("wb"))
        for n in (1, 2)]
    codes = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), 120)
    logs = [(tmp_path / f"node{n}.log").read_text() for n in (1, 2)]
    assert codes == [0, 0], logs

    sent = Counter(r.form["To"] for r in fake.posted("/Messages.json"))
    assert len(sent) == CUSTOMERS and set(sent.values()) == {1}, sent  # one birthday SMS each
    async with sessionmaker(engine)() as session:
        callbacks = Counter((await session.scalars(
            select(Contact.customer_id).where(Contact.channel == "callback"))).all())
        pending = await session.scalar(select(func.count()).select_from(ScheduledWork).where(
            ScheduledWork.state == "pending"))
    await engine.dispose()
    assert len(callbacks) == CUSTOMERS // 2 and set(callbacks.values()) == {1}, callbacks
    assert pending == 0
