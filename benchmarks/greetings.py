"""Plan a holiday greeting for 1,000,000 customers on PostgreSQL; print the time and peak memory.

    python benchmarks/greetings.py [--customers 1000000] [--batch 5000]

Creates (or empties) the database `bench_greetings`, fills it with customers server-side
(generate_series, so the fill is not what is measured), then runs the real planner
(`contactcenter.greetings.plan_greetings`) for the Spring Festival: every C and D customer gets a
holiday SMS, the day's birthdays get theirs, opted-out customers nothing. Planning reads
customers in batches and never holds them all; the peak memory line shows it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import time
from datetime import UTC, date, datetime

import asyncpg
from sqlalchemy import func, select, text

from contactcenter.greetings import plan_greetings
from contactcenter.rules.config import load_rules
from contactcenter.storage.db import make_engine, sessionmaker, upgrade
from contactcenter.storage.models import ScheduledWork

DB = "bench_greetings"
URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DB}"


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor())
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu} x {os.cpu_count()}, {mem:.1f} GiB, Python {platform.python_version()}"


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


async def prepare(n: int) -> None:
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DB):
        await admin.execute(f"CREATE DATABASE {DB}")
    await admin.close()
    engine = make_engine(URL)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await upgrade(engine)
    t = time.perf_counter()
    async with engine.begin() as conn:
        # Tier mix of the spec (5/15/30/50 %), one birthday per day of the year, 1 % opted out.
        await conn.execute(text("""
            INSERT INTO customers (id, kind, name, language, timezone, tier, birthday, source,
                                   created_at, updated_at)
            SELECT i, 'person', 'customer ' || i, CASE WHEN i % 5 = 0 THEN 'en' ELSE 'zh-CN' END,
                   'Asia/Shanghai',
                   CASE WHEN i % 100 < 5 THEN 'A' WHEN i % 100 < 20 THEN 'B'
                        WHEN i % 100 < 50 THEN 'C' ELSE 'D' END,
                   DATE '1960-01-01' + (i % 14000), 'demo', now(), now()
            FROM generate_series(1, :n) AS i"""), {"n": n})
        await conn.execute(text("""
            INSERT INTO consents (customer_id, purpose, granted, at, source)
            SELECT i, 'sms-marketing', false, now(), 'bench'
            FROM generate_series(1, :n, 100) AS i"""), {"n": n})
        await conn.execute(text("ANALYZE"))
    print(f"  filled {n:,} customers in {time.perf_counter() - t:.1f}s (not measured)")
    await engine.dispose()


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=5000)
    args = p.parse_args()
    print(f"machine: {machine()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    await prepare(args.customers)
    engine = make_engine(URL)
    sessions = sessionmaker(engine)
    rules = load_rules()
    day = date(2026, 2, 17)  # Spring Festival
    before = peak_mib()
    started = time.perf_counter()
    last = [started]

    def progress(read: int, scheduled: int) -> None:
        if time.perf_counter() - last[0] >= 5 or read == args.customers:
            last[0] = time.perf_counter()
            rate = read / (last[0] - started)
            print(f"  {read:>9,} customers read, {scheduled:>9,} greetings scheduled "
                  f"({rate:,.0f} customers/s, peak {peak_mib():.0f} MiB)", flush=True)

    read, scheduled = await plan_greetings(sessions, rules, day, datetime.now(UTC),
                                           batch=args.batch, progress=progress)
    took = time.perf_counter() - started
    async with sessions() as session:
        stored = await session.scalar(select(func.count()).select_from(ScheduledWork))
    again = time.perf_counter()
    _, added = await plan_greetings(sessions, rules, day, datetime.now(UTC), batch=args.batch)
    rerun = time.perf_counter() - again
    await engine.dispose()
    print(f"planned {scheduled:,} greetings for {read:,} customers in {took:.1f}s "
          f"({read / took:,.0f} customers/s); {stored:,} rows stored")
    print(f"peak memory {peak_mib():.0f} MiB (before planning {before:.0f} MiB); batch "
          f"{args.batch:,}")
    print(f"rerun: {added} added in {rerun:.1f}s (exactly once)")


if __name__ == "__main__":
    asyncio.run(main())
