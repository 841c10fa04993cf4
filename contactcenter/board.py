"""What the supervisor board shows (spec §5, §6, §9), each answer one or a few set-based
queries whatever the number of rows: aggregates in the database, lists capped by a limit.

A callback is a `callback` item of the scheduler; once due it has become a contact on channel
`callback` with external id `scheduled:<key>` (see callbacks.py), joined here on that unique
pair. A callback is **done** when its contact reached state `closed`, at `closed_at`; it is
done **inside its window** when that is no later than the item's `latest_at`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from contactcenter.domain import Channel, ContactState
from contactcenter.rules.config import Rules
from contactcenter.rules.health import coverage_gaps as gaps_by_rule
from contactcenter.storage.models import (
    Complaint,
    Contact,
    Customer,
    CustomerOwner,
    Message,
    MessageDelivery,
    ScheduledWork,
)

CLOSED = ContactState.CLOSED.value


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The company's local day `day` as a UTC-comparable [start, end)."""
    start = datetime.combine(day, time(0), zone)
    return start, datetime.combine(day + timedelta(days=1), time(0), zone)


def _callbacks() -> Any:
    """Callback items, each with its contact when it has become one."""
    contact_of = and_(Contact.channel == Channel.CALLBACK.value,
                      Contact.external_id == literal("scheduled:") + ScheduledWork.key)
    return (select(ScheduledWork, Contact).select_from(ScheduledWork)
            .outerjoin(Contact, contact_of)
            .where(ScheduledWork.kind == "callback"))


def _callback_state() -> ColumnElement[str]:
    return case(
        (ScheduledWork.state == "cancelled", "cancelled"),
        (Contact.id.is_(None), "pending"),
        (Contact.state == CLOSED, "done"),
        else_="open")


def _item(work: ScheduledWork, contact: Contact | None, now: datetime) -> dict[str, Any]:
    done = contact is not None and contact.state == CLOSED
    return {
        "key": work.key, "rule": work.rule_id, "customer_id": work.customer_id,
        "category": (work.payload or {}).get("category"),
        "due_at": work.due_at.isoformat(),
        "latest_at": work.latest_at.isoformat() if work.latest_at else None,
        "contact_id": contact.id if contact else None,
        "contact_state": contact.state if contact else None,
        "agent_id": contact.agent_id if contact else None,
        "overdue": not done and work.latest_at is not None and work.latest_at < now,
    }


async def callbacks_due(session: AsyncSession, start: datetime, end: datetime, now: datetime,
                        limit: int) -> dict[str, Any]:
    """Callbacks due in [start, end): counts by state and the first `limit` by due time."""
    in_range = and_(ScheduledWork.due_at >= start, ScheduledWork.due_at < end)
    state = _callback_state()
    counts = dict((await session.execute(
        _callbacks().where(in_range).with_only_columns(state, func.count())
        .group_by(state))).all())
    rows = (await session.execute(
        _callbacks().where(in_range).order_by(ScheduledWork.due_at, ScheduledWork.id)
        .limit(limit))).all()
    return {"counts": {s: counts.get(s, 0) for s in ("pending", "open", "done", "cancelled")},
            "total": sum(counts.values()),
            "callbacks": [_item(w, c, now) for w, c in rows]}


async def callbacks_overdue(session: AsyncSession, now: datetime, since: datetime, limit: int
                            ) -> dict[str, Any]:
    """Callbacks whose latest due time passed in [since, now) and that are not done (nor
    cancelled). The lower bound keeps the scan to recent windows as callbacks accumulate."""
    overdue = and_(ScheduledWork.latest_at >= since, ScheduledWork.latest_at < now,
                   ScheduledWork.state != "cancelled",
                   or_(Contact.id.is_(None), Contact.state != CLOSED))
    total = await session.scalar(_callbacks().where(overdue).with_only_columns(func.count()))
    rows = (await session.execute(
        _callbacks().where(overdue).order_by(ScheduledWork.latest_at, ScheduledWork.id)
        .limit(limit))).all()
    return {"total": total or 0, "callbacks": [_item(w, c, now) for w, c in rows]}


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


async def callback_compliance(session: AsyncSession, start: datetime, end: datetime,
                              now: datetime) -> dict[str, Any]:
    """Of the callbacks whose window ended in [start, end) (and by now), how many were done
    inside it, done late, or not done; per rule and overall."""
    closed_at = Contact.closed_at
    done = Contact.state == CLOSED
    in_window = func.sum(case((and_(done, closed_at <= ScheduledWork.latest_at), 1), else_=0))
    late = func.sum(case((and_(done, closed_at > ScheduledWork.latest_at), 1), else_=0))
    rows = (await session.execute(
        _callbacks().where(ScheduledWork.latest_at >= start, ScheduledWork.latest_at < end,
                           ScheduledWork.latest_at <= now, ScheduledWork.state != "cancelled")
        .with_only_columns(ScheduledWork.rule_id, func.count(), in_window, late)
        .group_by(ScheduledWork.rule_id).order_by(ScheduledWork.rule_id))).all()

    def entry(total: int, inside: int, late_: int) -> dict[str, Any]:
        return {"total": total, "in_window": inside, "late": late_,
                "not_done": total - inside - late_, "compliance": _share(inside, total)}

    per_rule = [{"rule": rule, **entry(t, int(i or 0), int(la or 0))}
                for rule, t, i, la in rows]
    overall = entry(sum(r["total"] for r in per_rule), sum(r["in_window"] for r in per_rule),
                    sum(r["late"] for r in per_rule))
    return {**overall, "rules": per_rule}


async def complaints_by_step(session: AsyncSession, rules: Rules, now: datetime
                             ) -> dict[str, Any]:
    """Open complaints by step and escalation level; how many are past their deadline."""
    open_ = Complaint.archived_at.is_(None)
    overdue = func.sum(case((Complaint.deadline_at < now, 1), else_=0))
    rows = (await session.execute(
        select(Complaint.step, Complaint.level, func.count(), overdue).where(open_)
        .group_by(Complaint.step, Complaint.level))).all()
    archived = await session.scalar(
        select(func.count()).select_from(Complaint).where(Complaint.archived_at.is_not(None)))
    order = ("verify", "review", "rectify", "callback", "archive")
    groups = sorted(({"step": s, "level": lv, "level_name": rules.complaints.levels[lv - 1],
                      "count": n, "overdue": int(o or 0)} for s, lv, n, o in rows),
                    key=lambda g: (order.index(g["step"]), g["level"]))
    return {"open": sum(g["count"] for g in groups), "archived": archived or 0,
            "overdue": sum(g["overdue"] for g in groups), "groups": groups}


async def greeting_runs(session: AsyncSession, days: Sequence[date], zone: ZoneInfo
                        ) -> list[dict[str, Any]]:
    """Per day and rule: greetings planned, still pending, skipped, sent (left us through the
    provider), delivered, failed. One grouped query per day (days are few)."""
    message_id = ScheduledWork.result["message_id"].as_integer()
    sent = func.sum(case((MessageDelivery.sent_at.is_not(None), 1), else_=0))
    delivered = func.sum(case((MessageDelivery.delivered_at.is_not(None), 1), else_=0))
    failed = func.sum(case((Message.status.in_(("failed", "undelivered")), 1), else_=0))
    pending = func.sum(case((ScheduledWork.state == "pending", 1), else_=0))
    skipped = func.sum(case((and_(ScheduledWork.state == "done", Message.id.is_(None)), 1),
                            else_=0))
    runs: list[dict[str, Any]] = []
    for day in days:
        start, end = day_bounds(day, zone)
        rows = (await session.execute(
            select(ScheduledWork.rule_id, func.count(), pending, skipped, sent, delivered,
                   failed)
            .select_from(ScheduledWork)
            .outerjoin(Message, Message.id == message_id)
            .outerjoin(MessageDelivery, MessageDelivery.message_id == Message.id)
            .where(ScheduledWork.kind == "sms", ScheduledWork.due_at >= start,
                   ScheduledWork.due_at < end)
            .group_by(ScheduledWork.rule_id).order_by(ScheduledWork.rule_id))).all()
        runs.extend({"day": day.isoformat(), "rule": rule, "planned": planned,
                     "pending": int(p or 0), "skipped": int(sk or 0), "sent": int(s or 0),
                     "delivered": int(d or 0), "failed": int(f or 0)}
                    for rule, planned, p, sk, s, d, f in rows)
    return runs


@dataclass(frozen=True)
class _Latency:
    p50: float | None
    p95: float | None


async def _percentiles(session: AsyncSession, where: Sequence[ColumnElement[bool]], n: int
                       ) -> _Latency:
    """Nearest-rank percentiles of latency, each one indexed row read (no PERCENTILE_CONT in
    SQLite)."""
    async def rank(p: float) -> float | None:
        if n == 0:
            return None
        offset = max(math.ceil(p * n) - 1, 0)
        return await session.scalar(
            select(MessageDelivery.latency_seconds).where(*where)
            .order_by(MessageDelivery.latency_seconds).offset(offset).limit(1))
    return _Latency(await rank(0.5), await rank(0.95))


async def sms_providers(session: AsyncSession, start: datetime, end: datetime
                        ) -> list[dict[str, Any]]:
    """Per SMS provider, of the messages sent in [start, end): delivered ÷ sent, failed, and
    the p50/p95 seconds from sent to delivered."""
    sent_in = [MessageDelivery.channel == Channel.SMS.value,
               MessageDelivery.sent_at >= start, MessageDelivery.sent_at < end]
    delivered = func.count(MessageDelivery.delivered_at)
    failed = func.count(MessageDelivery.failed_at)
    timed = func.count(MessageDelivery.latency_seconds)
    rows = (await session.execute(
        select(MessageDelivery.provider, func.count(), delivered, failed, timed)
        .where(*sent_in).group_by(MessageDelivery.provider)
        .order_by(MessageDelivery.provider))).all()
    report = []
    for provider, sent, got, lost, n in rows:
        latency = await _percentiles(
            session, [*sent_in, MessageDelivery.provider == provider,
                      MessageDelivery.latency_seconds.is_not(None)], n)
        report.append({"provider": provider, "sent": sent, "delivered": got, "failed": lost,
                       "delivery_rate": _share(got, sent), "latency_p50_seconds": latency.p50,
                       "latency_p95_seconds": latency.p95})
    return report


async def coverage_gaps(session: AsyncSession, rules: Rules, *, after_id: int, limit: int
                        ) -> dict[str, Any]:
    """Customers with fewer owners than their tier's minimum (spec §5: A/B need 2). The
    database narrows to customers of tiers needing more than one owner who have fewer than
    the largest minimum; the rule itself decides."""
    needy = {t: s.min_owners for t, s in rules.tiers.items() if s.min_owners > 1}
    if not needy:
        return {"total": 0, "customers": [], "next_after_id": None}
    tier = func.coalesce(Customer.tier_override, Customer.tier)
    owners = func.count(CustomerOwner.user_id)
    base = (select(Customer.id, tier, owners).select_from(Customer)
            .outerjoin(CustomerOwner, CustomerOwner.customer_id == Customer.id)
            .where(tier.in_(list(needy)))
            .group_by(Customer.id, tier)
            .having(owners < max(needy.values())))
    # Exact per tier in SQL too, so the count is right when the tiers' minimums differ.
    exact = base.having(owners < case(*((tier == t, n) for t, n in needy.items()),
                                      else_=literal(0, Integer)))
    total = await session.scalar(select(func.count()).select_from(exact.subquery()))
    rows = (await session.execute(
        base.where(Customer.id > after_id).order_by(Customer.id).limit(limit))).all()
    found = {cid: (t, n) for cid, t, n in rows}
    flagged = gaps_by_rule(found, rules)
    return {"total": total or 0,
            "customers": [{"customer_id": cid, "tier": found[cid][0], "owners": found[cid][1],
                           "min_owners": needy[found[cid][0]]} for cid in flagged],
            # The page read `limit` candidates; the next one starts after the last of them.
            "next_after_id": rows[-1][0] if len(rows) == limit else None}
