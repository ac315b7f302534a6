"""Intervals over seeds and per-seed crossings."""

from __future__ import annotations

import math

from scipy import stats

from analogsim.runner.stats import crossings_by_seed, difference, estimate, fmt_ci


def test_t_interval_matches_scipy() -> None:
    vals = [1.0, 2.0, 4.0, 3.5]
    e = estimate(vals)
    lo, hi = stats.t.interval(0.95, len(vals) - 1, loc=sum(vals) / 4, scale=stats.sem(vals))
    assert math.isclose(e.lo, lo) and math.isclose(e.hi, hi) and e.n == 4


def test_log_interval_is_geometric_and_positive() -> None:
    e = estimate([10.0, 1000.0, 100.0], log=True)
    assert math.isclose(e.mean, 100.0) and e.lo > 0 and e.lo < 100 < e.hi
    assert math.isclose(e.mean / e.lo, e.hi / e.mean)  # multiplicative interval


def test_infinite_and_single_values() -> None:
    assert estimate([1.0, math.inf]).mean == math.inf
    one = estimate([3.0])
    assert one.mean == 3.0 and math.isnan(one.lo) and fmt_ci(one) == "3"
    assert fmt_ci(estimate([])) == "-"


def test_crossings_per_seed() -> None:
    curves = {"0": [(0.0, 10.0), (0.1, 10.0), (0.2, 40.0)], "1": [(0.0, 10.0), (0.2, 15.0)]}
    xs, never = crossings_by_seed(curves, 20.0)
    assert never == 1 and len(xs) == 1
    assert math.isclose(xs[0], 0.15)  # half way in log space between 10 and 40


def test_difference_interval_covers_the_true_gap() -> None:
    a = [2.0, 2.1, 1.9, 2.05]
    b = [1.0, 1.1, 0.9, 1.02]
    d = difference(a, b)
    assert d.lo < 1.0 < d.hi and d.lo > 0
