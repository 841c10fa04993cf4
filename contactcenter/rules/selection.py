"""Choosing customers for callbacks (spec §7) and retrying unanswered calls (§9)."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import date, datetime

from contactcenter.rules.config import Rules


def random_selection(active_customer_ids: Iterable[int], month: date, rules: Rules) -> list[int]:
    """The month's random sample (default 1%), the same on every run and every node: the seed
    is the rules' seed and the month, so a rerun after a crash picks the same customers."""
    ids = sorted(set(active_customer_ids))
    share = rules.selection.random_share_per_month
    if not ids or share <= 0:
        return []
    k = max(1, round(len(ids) * share))
    rng = random.Random(f"{rules.selection.random_seed}:{month:%Y-%m}")
    return sorted(rng.sample(ids, k))


def low_satisfaction(score: int, rules: Rules) -> bool:
    return score <= rules.selection.low_satisfaction_max_score


def next_attempt_after_no_answer(attempts_so_far: int, at: datetime, rules: Rules
                                 ) -> datetime | None:
    """When to call again after a no-answer, or None: close the task as unreachable.
    `attempts_so_far` counts the calls made, the first included."""
    r = rules.retries
    if attempts_so_far > r.no_answer_attempts:
        return None
    hours = rules.calendar.hours()
    return hours.next_open(r.no_answer_every.after(at, hours))  # callbacks only in hours
