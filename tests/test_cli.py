"""The `contactcenter` command, run as a user runs it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
from sqlalchemy import func, select

from contactcenter.storage.db import make_engine, sessionmaker
from contactcenter.storage.models import Customer, User
from contactcenter.users import verify_password


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CC_DATABASE_URL": db_url, "CC_LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "contactcenter.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


async def _count(db_url: str, model: type) -> int:
    engine = make_engine(db_url)
    async with sessionmaker(engine)() as session:
        n = await session.scalar(select(func.count()).select_from(model))
    await engine.dispose()
    return n or 0


async def test_user_add_creates_a_user_with_a_hashed_password(db_url: str) -> None:
    done = cli(db_url, "user", "add", "--username", "li", "--password", "s3cret-pass",
               "--role", "agent", "--skills", "sales,repairs", "--team", "north")
    assert done.returncode == 0, done.stderr
    assert "created agent li" in done.stdout
    engine = make_engine(db_url)
    async with sessionmaker(engine)() as session:
        user = await session.scalar(select(User).where(User.username == "li"))
    await engine.dispose()
    assert user is not None and user.skills == ["repairs", "sales"] and user.team == "north"
    assert user.password_hash != "s3cret-pass" and verify_password(user.password_hash,
                                                                   "s3cret-pass")

    again = cli(db_url, "user", "add", "--username", "li", "--password", "s3cret-pass",
                "--role", "agent")
    assert again.returncode == 2 and "already exists" in again.stderr
    short = cli(db_url, "user", "add", "--username", "x", "--password", "short", "--role", "agent")
    assert short.returncode == 2 and "at least 8" in short.stderr


async def test_db_upgrade_is_repeatable(db_url: str) -> None:
    for _ in range(2):
        done = cli(db_url, "db", "upgrade")
        assert done.returncode == 0, done.stderr


async def test_import_customers_reports_bad_rows_and_keeps_good_ones(
    db_url: str, tmp_path: Path
) -> None:
    csv = tmp_path / "customers.csv"
    csv.write_text(
        "name,phones,emails,birthday,tier\n"
        "王芳,13800138000,wang@example.com,1985-03-08,A\n"
        "Bad Phone,12ab,,,\n"
        "John Smith,+44 20 7946 0958,john@example.co.uk,1979-02-29,C\n",
        encoding="utf-8",
    )
    done = cli(db_url, "import", "customers", str(csv), "--no-progress")
    assert done.returncode == 1, done.stderr
    assert "Imported 1 of 3 rows" in done.stdout
    assert "line 3" in done.stdout and "line 4" in done.stdout
    assert await _count(db_url, Customer) == 1

    missing = cli(db_url, "import", "customers", str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_serve_demo_prints_logins_that_work(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "CC_SQLITE_PATH": str(tmp_path / "demo.db"), "CC_PORT": str(port),
           "CC_LOG_LEVEL": "WARNING"}
    env.pop("CC_DATABASE_URL", None)
    env.pop("CC_REDIS_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "contactcenter.cli", "serve", "--demo", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or "listening" not in lines[-1]:
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            assert line, f"serve exited: {lines}"
            lines.append(line.decode())
        logins = dict(ln.split() for ln in lines if ln.startswith("  "))
        assert {"admin", "supervisor", "agent1"} <= set(logins)
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{port}/api/v1/auth/login",
                                 json={"username": "agent1",
                                       "password": logins["agent1"]}) as r:
                assert r.status == 200
                token = (await r.json())["token"]
            async with http.get(f"http://127.0.0.1:{port}/api/v1/customers",
                                params={"q": "王"},
                                headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200 and (await r.json())["customers"]
            async with http.get(f"http://127.0.0.1:{port}/") as r:
                assert r.status == 200 and "contactcenter" in await r.text()
    finally:
        proc.terminate()
        await proc.wait()
