"""An agent leaves (spec §5, orphan customers): deactivated, and in the same transaction every
customer they own reassigned to active teammates (`rules/health.py: reassign`), each customer
told by SMS who their contact person is now, A/B customers given an introduction visit.

Either all of it happens or none: if some customer would be left without an owner (nobody else
in the team), the deactivation is refused with a 409 that says why, and nothing changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from contactcenter.customers import audit
from contactcenter.domain import Role
from contactcenter.errors import Conflict, NotFound
from contactcenter.rules.config import Rules
from contactcenter.rules.health import Agent, NoOneToReassignTo, Owned, Reassignment, reassign
from contactcenter.rules.plan import Customer as Facts
from contactcenter.rules.plan import SmsPlan, VisitPlan, release
from contactcenter.scheduler import schedule
from contactcenter.storage.models import Customer, CustomerOwner, User
from contactcenter.templates import Templates

NEW_OWNER_RULE = "new-owner"  # a service message: it goes to customers who opted out of greetings
_CHUNK = 1000


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for i in range(0, len(ids), _CHUNK):
        yield list(ids[i:i + _CHUNK])


@dataclass(frozen=True)
class Offboarding:
    user_id: int
    reassigned: list[Reassignment]
    sms: int
    visits: int

    def as_dict(self) -> dict[str, object]:
        return {"user_id": self.user_id, "sms": self.sms, "visits": self.visits,
                "reassigned": [{"customer_id": r.customer_id, "added": list(r.added)}
                               for r in self.reassigned]}


async def _owned(session: AsyncSession, leaving: int) -> list[Owned]:
    ids = list((await session.scalars(select(CustomerOwner.customer_id)
                                      .where(CustomerOwner.user_id == leaving))).all())
    owned = []
    for chunk in _chunks(ids):
        owners: dict[int, set[int]] = defaultdict(set)
        for cid, uid in (await session.execute(select(CustomerOwner.customer_id,
                                                      CustomerOwner.user_id)
                                               .where(CustomerOwner.customer_id.in_(chunk)))):
            owners[cid].add(uid)
        for cid, tier, override in (await session.execute(
                select(Customer.id, Customer.tier, Customer.tier_override)
                .where(Customer.id.in_(chunk)))):
            owned.append(Owned(cid, override or tier, frozenset(owners[cid])))
    return owned


async def _team(session: AsyncSession, leaving: User) -> list[Agent]:
    same_team = (User.team == leaving.team) if leaving.team is not None else User.team.is_(None)
    members = (await session.execute(
        select(User.id, User.active).where(same_team, User.role == Role.AGENT.value))).all()
    load = dict((await session.execute(
        select(CustomerOwner.user_id, func.count())
        .where(CustomerOwner.user_id.in_([m.id for m in members]))
        .group_by(CustomerOwner.user_id))).all())
    return [Agent(m.id, leaving.team, m.active, load.get(m.id, 0)) for m in members]


async def deactivate_agent(
    session: AsyncSession, rules: Rules, templates: Templates, user_id: int, *,
    actor_id: int | None, now: datetime, company: str,
) -> Offboarding:
    """Deactivate `user_id` and hand their customers over; all in the caller's transaction."""
    leaving = await session.get(User, user_id)
    if leaving is None:
        raise NotFound(f"user {user_id} not found", user_id=user_id)
    if not leaving.active:
        raise Conflict(f"user {leaving.username!r} is already inactive")
    owned = await _owned(session, leaving.id)
    team = await _team(session, leaving)
    me = Agent(leaving.id, leaving.team, False, len(owned))
    try:
        moves = reassign(me, team, owned, rules)
    except NoOneToReassignTo as e:
        raise Conflict(f"cannot deactivate {leaving.username!r}: {e}; add or activate another "
                       f"agent in team {leaving.team!r} first", customers=len(owned),
                       reason=str(e)) from None

    before = {o.customer_id: o.owner_ids for o in owned}
    tiers = {o.customer_id: o.tier for o in owned}
    await session.execute(delete(CustomerOwner).where(CustomerOwner.user_id == leaving.id))
    added = [{"customer_id": m.customer_id, "user_id": u, "since": now}
             for m in moves for u in m.added]
    if added:
        await session.execute(insert(CustomerOwner), added)
    leaving.active = False

    names = dict((await session.execute(select(User.id, User.display_name))).all())
    sms: list[SmsPlan] = []
    visits: list[VisitPlan] = []
    hours = rules.calendar.hours()
    intro_due, intro_latest = hours.clip(
        now, now + timedelta(days=rules.visits.introduction_within_days))
    moved = {m.customer_id: m for m in moves}
    for chunk in _chunks(list(moved)):
        for c in (await session.execute(
                select(Customer.id, Customer.name, Customer.honorific, Customer.language,
                       Customer.timezone).where(Customer.id.in_(chunk)))):
            m = moved[c.id]
            kept = sorted(before[c.id] - {leaving.id})
            after = kept + list(m.added)
            audit(session, c.id, "reassign", actor_id=actor_id, now=now,
                  before={"owners": sorted(before[c.id])}, after={"owners": after})
            contact_person = names[m.added[0] if m.added else kept[0]]
            who = Facts(id=c.id, tier=tiers[c.id], timezone=c.timezone, language=c.language)
            text = templates.render("sms_new_owner", c.language, name=c.honorific or c.name,
                                    owner=contact_person, company=company)
            # The text is rendered now (it names today's owner); "{{ text }}" keeps the
            # sender from reading a customer's name as template syntax.
            sms.append(SmsPlan(key=f"{NEW_OWNER_RULE}:{c.id}:{leaving.id}",
                               rule_id=NEW_OWNER_RULE, customer_id=c.id,
                               send_at=release(now, who, rules), template="{{ text }}",
                               values={"text": text}))
            tier = tiers[c.id]
            if tier in rules.tiers and rules.tiers[tier].visit_every_days > 0:  # type: ignore[index]
                visits.append(VisitPlan(key=f"introduction:{c.id}:{leaving.id}",
                                        rule_id="introduction", customer_id=c.id,
                                        due=intro_due, latest=intro_latest))
    sent = await schedule(session, sms, now)
    booked = await schedule(session, visits, now)
    return Offboarding(leaving.id, moves, sent, booked)
