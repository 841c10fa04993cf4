"""The `contactcenter` command."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from aiohttp import web

from contactcenter import logs
from contactcenter.clock import utc
from contactcenter.errors import ContactCenterError
from contactcenter.runtime import Runtime, tune_collector
from contactcenter.settings import Settings
from contactcenter.storage.db import upgrade


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="contactcenter", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the contact server")
    serve.add_argument("--host", help="listen address (default 127.0.0.1, CC_HOST)")
    serve.add_argument("--port", type=int, help="listen port (default 8080, CC_PORT)")
    serve.add_argument("--demo", action="store_true",
                       help="load demo queues, users and customers into an empty database")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply all migrations")

    user = sub.add_parser("user", help="users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="create a user")
    add.add_argument("--username", required=True)
    add.add_argument("--password", required=True)
    add.add_argument("--role", required=True, choices=["agent", "supervisor", "admin"])
    add.add_argument("--skills", default="", help="comma-separated, e.g. sales,repairs")
    add.add_argument("--team")
    add.add_argument("--display-name")
    leave = user_sub.add_parser(
        "deactivate", help="deactivate an agent, handing their customers to teammates")
    leave.add_argument("--username", required=True)

    grade = sub.add_parser("grade", help="regrade every customer now (spec §1)")
    grade.add_argument("--no-progress", action="store_true")

    rules = sub.add_parser("rules", help="the callback rules file")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_sub.add_parser("check", help="validate a rules file (default: the active one)")
    check.add_argument("file", type=Path, nargs="?")
    rules_sub.add_parser("show", help="print the active rules file")

    imp = sub.add_parser("import", help="import data")
    imp_sub = imp.add_subparsers(dest="import_command", required=True)
    cust = imp_sub.add_parser("customers", help="import customers from a CSV file")
    cust.add_argument("file", type=Path)
    cust.add_argument("--no-progress", action="store_true")
    events = imp_sub.add_parser("events", help="import customer events from a CSV file")
    events.add_argument("file", type=Path)
    events.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    logs.setup(settings.log_level)
    try:
        if args.command == "rules":
            return _rules(settings, args)
        if args.command == "serve":
            if args.host:
                settings.host = args.host
            if args.port:
                settings.port = args.port
            asyncio.run(_serve(settings, demo=args.demo))
            return 0
        return asyncio.run(_once(settings, args))
    except ContactCenterError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _rules(settings: Settings, args: argparse.Namespace) -> int:
    from contactcenter.rules.config import SHIPPED, RulesError, load_rules

    active = settings.rules_file or SHIPPED
    if args.rules_command == "show":
        print(active.read_text(encoding="utf-8"), end="")
        return 0
    path = args.file or active
    try:
        rules = load_rules(path)
    except RulesError as e:
        print(f"{path}: {len(e.problems)} problem(s)", file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"{path}: OK ({len(rules.callbacks)} callback rules, grading "
          f"{rules.grading.scheme}, business hours in {rules.calendar.timezone})")
    return 0


async def _once(settings: Settings, args: argparse.Namespace) -> int:
    rt = Runtime.build(settings)
    try:
        await upgrade(rt.engine)
        if args.command == "db":
            print("database is at the newest schema")
            return 0
        if args.command == "grade":
            return await _grade(rt, progress=not args.no_progress)
        if args.command == "user" and args.user_command == "deactivate":
            return await _deactivate(rt, args.username)
        if args.command == "user":
            from contactcenter.users import create_user

            async with rt.sessions.begin() as session:
                user = await create_user(
                    session, username=args.username, password=args.password, role=args.role,
                    now=utc(rt.clock.now()), skills=args.skills.split(","), team=args.team,
                    display_name=args.display_name,
                )
            print(f"created {user.role} {user.username} (id {user.id})")
            return 0
        if args.command == "import":
            from contactcenter.event_import import import_events
            from contactcenter.importer import format_report, import_customers

            if not args.file.is_file():
                print(f"error: no such file: {args.file}", file=sys.stderr)
                return 2
            now = utc(rt.clock.now())
            if args.import_command == "events":
                report = await import_events(rt.sessions, args.file, rt.rules, now=now,
                                             templates=rt.templates,
                                             progress=not args.no_progress)
            else:
                report = await import_customers(rt.sessions, args.file, now=now,
                                                progress=not args.no_progress)
            print(format_report(report))
            return 1 if report.errors else 0
        raise AssertionError(args.command)
    finally:
        await rt.engine.dispose()


async def _grade(rt: Runtime, *, progress: bool) -> int:
    from sqlalchemy import func, select
    from tqdm import tqdm

    from contactcenter.regrade import regrade
    from contactcenter.storage.models import Customer

    async with rt.sessions() as session:
        total = await session.scalar(select(func.count()).select_from(Customer))
    bars: dict[str, tqdm] = {}

    def show(phase: str, done: int) -> None:
        if phase not in bars:
            bars[phase] = tqdm(total=total if phase == "read" else None, unit="customer",
                               desc={"read": "reading", "write": "writing"}[phase],
                               file=sys.stderr, disable=not progress)
        bars[phase].update(done - bars[phase].n)

    summary = await regrade(rt.sessions, rt.rules, utc(rt.clock.now()), templates=rt.templates,
                            progress=show)
    for bar in bars.values():
        bar.close()
    print(f"Regrade ({rt.rules.grading.scheme}): {summary.text()}")
    return 0


async def _deactivate(rt: Runtime, username: str) -> int:
    from sqlalchemy import select

    from contactcenter.offboarding import deactivate_agent
    from contactcenter.storage.models import User

    async with rt.sessions.begin() as session:
        user_id = await session.scalar(select(User.id).where(User.username == username))
        if user_id is None:
            print(f"error: no user {username!r}", file=sys.stderr)
            return 2
        done = await deactivate_agent(session, rt.rules, rt.templates, user_id, actor_id=None,
                                      now=utc(rt.clock.now()), company=rt.settings.company_name)
    print(f"deactivated {username}: {len(done.reassigned)} customers reassigned, "
          f"{done.sms} SMS and {done.visits} introduction visits planned")
    return 0


async def _serve(settings: Settings, *, demo: bool) -> None:
    from contactcenter.rules.config import load_rules
    from contactcenter.server.app import create_app

    load_rules(settings.rules_file)  # an invalid rules file stops the start, saying why
    rt = Runtime.build(settings)
    await upgrade(rt.engine)
    if demo:
        from contactcenter.demo import load_demo

        credentials = await load_demo(rt.sessions, now=utc(rt.clock.now()))
        if credentials is None:
            print("demo: the database already has data; nothing loaded")
        else:
            print("demo data loaded. Log in at the console with:")
            for username, password in credentials.items():
                print(f"  {username:<12} {password}")
    runner = web.AppRunner(create_app(rt), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    tune_collector()
    backend = "PostgreSQL" if settings.database_url else f"SQLite {settings.sqlite_path}"
    broker = "Redis" if settings.redis_url else "in-process broker"
    print(f"contactcenter listening on http://{settings.host}:{settings.port}/ "
          f"({backend}, {broker}); Ctrl-C stops", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    sys.exit(main())
