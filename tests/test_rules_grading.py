"""Grading (spec §1) against hand-checkable cases."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contactcenter.rules.grading import (
    PYRAMID,
    WEIGHTED,
    Metrics,
    Scheme,
    grade,
    percentile_ranks,
    scores,
)


def population(n: int) -> list[Metrics]:
    """Customer i has contract amount, profit and frequency all equal to i: score order = id."""
    return [Metrics(i, float(i), float(i), float(i)) for i in range(1, n + 1)]


def test_weighted_scheme_cuts_5_15_30_50_percent() -> None:
    tiers = grade(population(100))
    assert Counter(tiers.values()) == {"A": 5, "B": 15, "C": 30, "D": 50}
    assert {tiers[i] for i in range(96, 101)} == {"A"}
    assert tiers[95] == "B" and tiers[81] == "B" and tiers[80] == "C" and tiers[50] == "D"


def test_pyramid_scheme_cuts_1_4_15_80_percent() -> None:
    tiers = grade(population(100), PYRAMID)
    assert Counter(tiers.values()) == {"A": 1, "B": 4, "C": 15, "D": 80}
    assert tiers[100] == "A"


def test_weights_decide_between_strengths() -> None:
    # 2 has the larger contract, 3 the larger profit, 1 buys most often; weights 40/40/20.
    customers = [Metrics(1, 0, 0, 10), Metrics(2, 10, 5, 0), Metrics(3, 5, 10, 5)]
    assert percentile_ranks([0, 10, 5]) == pytest.approx([1 / 6, 5 / 6, 1 / 2])  # mid-ranks
    scheme = Scheme(WEIGHTED.weights, [("A", 1 / 3), ("B", 2 / 3), ("D", 1.0)])
    tiers = grade(customers, scheme)
    # scores: 1 -> .4/6 + .4/6 + .2*5/6 = .30, 2 -> .4*5/6 + .4/2 + .2/6 = .57,
    #         3 -> .4/2 + .4*5/6 + .2/2 = .63
    assert tiers == {3: "A", 2: "B", 1: "D"}


def test_ties_get_the_same_tier() -> None:
    customers = [Metrics(i, 1.0, 1.0, 1.0) for i in range(10)]
    assert set(grade(customers).values()) == {"A"}


@pytest.mark.parametrize(
    ("weights", "cutoffs"),
    [({"contract_amount": 1.0}, [("A", 1.0)]),
     ({"contract_amount": 0.5, "profit": 0.4, "frequency": 0.2}, [("A", 1.0)]),
     ({"contract_amount": 0.4, "profit": 0.4, "frequency": 0.2}, [("A", 0.5), ("B", 0.9)])],
)
def test_bad_schemes_are_refused(weights: dict, cutoffs: list) -> None:
    with pytest.raises(ValueError):
        Scheme(weights, cutoffs)


@given(st.lists(st.tuples(st.floats(0, 1e6), st.floats(-1e5, 1e6), st.integers(0, 50)),
                min_size=1, max_size=200))
def test_tier_order_follows_score_order(rows: list[tuple[float, float, int]]) -> None:
    customers = [Metrics(i, a, p, f) for i, (a, p, f) in enumerate(rows)]
    tiers = grade(customers)
    s = scores(customers, WEIGHTED.weights)
    buyers = [i for i, c in enumerate(customers) if c.contract_amount or c.profit or c.frequency]
    for i in buyers:
        for j in buyers:
            if s[i] > s[j]:
                assert tiers[i] <= tiers[j]  # "A" < "B" < ...: a higher score is never lower
    # The best buyer is always A: no buyer scores above them. Who bought nothing is D.
    if buyers:
        assert tiers[max(buyers, key=s.__getitem__)] == "A"
    assert all(tiers[i] == "D" for i in range(len(customers)) if i not in buyers)


def test_nothing_bought_is_the_last_tier_however_many_share_it() -> None:
    # 2 of 40 bought: the 38 tied at zero would otherwise all be "above 95%" and get A.
    customers = [Metrics(1, 50.0, 5.0, 1.0), Metrics(2, 10.0, 1.0, 1.0)] + [
        Metrics(i, 0.0, 0.0, 0.0) for i in range(3, 41)]
    tiers = grade(customers)
    assert tiers[1] == "A" and tiers[2] == "A"  # both in the top 5% (2 of 40)
    assert {tiers[i] for i in range(3, 41)} == {"D"}
