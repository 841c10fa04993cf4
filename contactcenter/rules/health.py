"""Relationship health (spec §5) and satisfaction replies (§8): pure decisions."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from statistics import median

from contactcenter.rules.config import Rules


def cycle_anomaly_due(purchases: Sequence[datetime], rules: Rules) -> datetime | None:
    """When a customer with a buying rhythm is overdue: last purchase + median interval +
    grace days (001: 超过固定周期3天不进站 → 异常). None without enough purchases."""
    h = rules.health
    if len(purchases) < h.cycle_min_purchases:
        return None
    ordered = sorted(purchases)
    cycle = median(b - a for a, b in pairwise(ordered))
    return ordered[-1] + cycle + timedelta(days=h.cycle_grace_days)


def dormant_since(last_contact: datetime, rules: Rules) -> datetime:
    """The moment a customer with no contact of any kind becomes dormant."""
    return last_contact + timedelta(days=rules.health.dormant_days)


def needs_retention(tier_before: str | None, tier_after: str | None, rules: Rules) -> bool:
    """A high-value customer (a tier that gets visits) dropping to one that does not."""
    def valued(t: str | None) -> bool:
        return t is not None and rules.tiers[t].visit_every_days > 0  # type: ignore[index]

    return valued(tier_before) and not valued(tier_after)


@dataclass(frozen=True)
class Agent:
    id: int
    team: str | None
    active: bool
    owned: int  # customers owned now


@dataclass(frozen=True)
class Owned:
    customer_id: int
    tier: str | None
    owner_ids: frozenset[int]


@dataclass(frozen=True)
class Reassignment:
    customer_id: int
    removed: int
    added: tuple[int, ...]  # new owners (an A/B customer may need more than one)


class NoOneToReassignTo(Exception):
    pass


def reassign(leaving: Agent, agents: Sequence[Agent], customers: Sequence[Owned],
             rules: Rules) -> list[Reassignment]:
    """Every customer of a deactivated agent goes at once to another active agent of the same
    team, least-owned first, keeping each customer at its tier's minimum number of owners.
    Nothing is left ownerless: with nobody to take them, it raises instead of dropping them."""
    load = {a.id: a.owned for a in agents if a.active and a.id != leaving.id
            and a.team == leaving.team}
    if not load and customers:
        raise NoOneToReassignTo(f"no other active agent in team {leaving.team!r}")
    out = []
    for c in sorted(customers, key=lambda c: (c.tier or "Z", c.customer_id)):
        keep = c.owner_ids - {leaving.id}
        wanted = rules.tiers[c.tier].min_owners if c.tier in rules.tiers else 1
        added: list[int] = []
        candidates = sorted((n, a) for a, n in load.items() if a not in keep)
        while len(keep) + len(added) < max(wanted, 1) and candidates:
            _, chosen = candidates.pop(0)
            added.append(chosen)
            load[chosen] += 1
        if not keep and not added:
            raise NoOneToReassignTo(f"customer {c.customer_id} would be left without an owner")
        out.append(Reassignment(c.customer_id, leaving.id, tuple(added)))
    return out


def coverage_gaps(owners: Mapping[int, tuple[str | None, int]], rules: Rules) -> list[int]:
    """Customers with fewer owners than their tier's minimum (flagged on the board)."""
    return sorted(cid for cid, (tier, n) in owners.items()
                  if tier in rules.tiers and n < rules.tiers[tier].min_owners)  # type: ignore[index]


_SCORE = re.compile(r"^\s*([1-5])\s*(?:分|星)?\s*[.!。!]?\s*$")
_LEADING_SCORE = re.compile(r"^\s*([1-5])(?!\d)")


@dataclass(frozen=True)
class SurveyReply:
    score: int | None
    only_the_score: bool  # else the reply carries more and goes to an agent queue


def parse_survey_reply(text: str) -> SurveyReply:
    """A reply to the 1-5 satisfaction SMS: "4", "5分", "4!" are bare scores; "2 the
    technician was late" has a score and more to say; anything else has no score."""
    full = _SCORE.match(text)
    if full:
        return SurveyReply(int(full.group(1)), True)
    lead = _LEADING_SCORE.match(text)
    return SurveyReply(int(lead.group(1)) if lead else None, False)
