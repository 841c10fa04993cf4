"""Customer grading (spec §1): a weighted score of percentile ranks, cut into tiers by rank.

Score = Σ weight × percentile rank of the metric among all active customers (default 40%
contract amount, 40% profit contribution, 20% purchase frequency). Tiers by score rank:
cumulative shares, e.g. A = top 5%, B = the next 15% (A+B = 20%), C = the next 30%, D = the rest.
Equal scores always get the same tier, so a cut never splits a tie. A customer with nothing in
any metric (nothing bought in the period) gets the last tier, ranked below every buyer: a
crowd tied at zero must not be promoted by the cut (with 3% of customers buying, the other 97%
would otherwise share the "top 5%"). Percentile ranks are still taken among all customers.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

METRICS = ("contract_amount", "profit", "frequency")


@dataclass(frozen=True)
class Metrics:
    customer_id: int
    contract_amount: float
    profit: float
    frequency: float


@dataclass(frozen=True)
class Scheme:
    weights: Mapping[str, float]
    # (tier, cumulative share of customers from the top), ascending, the last one 1.0.
    cutoffs: Sequence[tuple[str, float]]

    def __post_init__(self) -> None:
        if set(self.weights) != set(METRICS):
            raise ValueError(f"weights must name exactly {', '.join(METRICS)}")
        if abs(sum(self.weights.values()) - 1.0) > 1e-9:
            raise ValueError("weights must add up to 1")
        shares = [share for _, share in self.cutoffs]
        if not shares or shares != sorted(shares) or shares[-1] != 1.0 or shares[0] <= 0:
            raise ValueError("cutoffs must rise and end at 1.0")


DEFAULT_WEIGHTS = {"contract_amount": 0.4, "profit": 0.4, "frequency": 0.2}
WEIGHTED = Scheme(DEFAULT_WEIGHTS, [("A", 0.05), ("B", 0.20), ("C", 0.50), ("D", 1.0)])
# The value pyramid of seed 000: VIP top 1%, important top 5%, ordinary top 20%, small the rest.
PYRAMID = Scheme(DEFAULT_WEIGHTS, [("A", 0.01), ("B", 0.05), ("C", 0.20), ("D", 1.0)])


def percentile_ranks(values: Sequence[float]) -> list[float]:
    """Each value's share of the population below it, ties counted half (mid-rank), in [0, 1)."""
    ordered = sorted(values)
    n = len(values)
    return [(bisect_left(ordered, v) + (bisect_right(ordered, v) - bisect_left(ordered, v)) / 2)
            / n for v in values]


def scores(customers: Sequence[Metrics], weights: Mapping[str, float]) -> list[float]:
    ranks = {m: percentile_ranks([getattr(c, m) for c in customers]) for m in METRICS}
    return [sum(weights[m] * ranks[m][i] for m in METRICS) for i in range(len(customers))]


def grade(customers: Sequence[Metrics], scheme: Scheme = WEIGHTED) -> dict[int, str]:
    """customer id -> tier. O(n log n): fine for millions of customers in one pass."""
    tiers = grade_columns([c.contract_amount for c in customers], [c.profit for c in customers],
                          [c.frequency for c in customers], scheme)
    return {c.customer_id: t for c, t in zip(customers, tiers, strict=True)}


def grade_columns(contract_amount: Sequence[float], profit: Sequence[float],
                  frequency: Sequence[float], scheme: Scheme = WEIGHTED) -> list[str]:
    """The tiers of customers given as columns (position i = one customer): the same as
    `grade`, without an object per customer, so a million customers fit in a few MB."""
    n = len(contract_amount)
    if not n:
        return []
    columns = {"contract_amount": contract_amount, "profit": profit, "frequency": frequency}
    values = [0.0] * n
    for metric in METRICS:
        weight = scheme.weights[metric]
        for i, rank in enumerate(percentile_ranks(columns[metric])):
            values[i] += weight * rank
    bought = [bool(a or p or f) for a, p, f in zip(contract_amount, profit, frequency,
                                                  strict=True)]
    ascending = sorted(v for v, b in zip(values, bought, strict=True) if b)
    buyers = len(ascending)
    cutoffs = list(scheme.cutoffs)
    tiers = []
    last = cutoffs[-1][0]
    for score, b in zip(values, bought, strict=True):
        if not b:
            tiers.append(last)
            continue
        share = (buyers - bisect_right(ascending, score)) / n  # of customers ranked above
        tiers.append(next(t for t, cut in cutoffs if share < cut))
    return tiers
