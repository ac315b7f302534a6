"""Statistics over seeds for the experiment reports: means with Student-t confidence
intervals, and per-seed threshold crossings.

Each seed of a noise study is one noise draw scaled by sigma (common random numbers,
:mod:`analogsim.runner.points`), so each seed gives one curve and one crossing; the
interval is over those per-seed values (a seed whose curve never crosses is counted and
left out of the mean, and said). Assumption: seeds are independent draws, so the t
interval ``mean +- t(0.975, n-1) s / sqrt(n)`` applies; with n = 1 there is no interval.
Perplexities are averaged in log space (geometric mean; the interval is multiplicative).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as _st

from analogsim.studies.sweep import crossing

__all__ = ["Estimate", "crossings_by_seed", "difference", "estimate", "fmt_ci"]


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` values with its 95 % interval ``[lo, hi]`` (NaN when n < 2);
    ``inf`` when any value is infinite (an exploded perplexity)."""

    mean: float
    lo: float
    hi: float
    n: int

    @property
    def half(self) -> float:
        return (self.hi - self.lo) / 2


def estimate(values: Sequence[float], level: float = 0.95, *, log: bool = False) -> Estimate:
    """Mean and Student-t interval of ``values`` (NaN values dropped). With ``log``
    (perplexities: heavy right tail, always > 0) the interval is computed on ``log(v)``
    and mapped back: a geometric mean with an asymmetric interval, never below 0."""
    if log:
        vals = [float(v) for v in values if not math.isnan(float(v))]
        if any(v <= 0 for v in vals):
            return estimate(vals, level)
        e = estimate([math.log(v) for v in vals], level)
        return Estimate(
            *(math.exp(x) if not math.isnan(x) else x for x in (e.mean, e.lo, e.hi)), e.n
        )
    vals = [float(v) for v in values if not math.isnan(float(v))]
    n = len(vals)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    if any(math.isinf(v) for v in vals):
        m = math.inf if any(v > 0 for v in vals if math.isinf(v)) else -math.inf
        return Estimate(m, math.nan, math.nan, n)
    mean = sum(vals) / n
    if n < 2:
        return Estimate(mean, math.nan, math.nan, n)
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    t = float(_st.t.ppf(0.5 + level / 2, n - 1))
    return Estimate(mean, mean - t * sd / math.sqrt(n), mean + t * sd / math.sqrt(n), n)


def difference(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Estimate:
    """``mean(a) - mean(b)`` of two independent samples with a Welch t interval."""
    ea, eb = estimate(a), estimate(b)
    if ea.n < 2 or eb.n < 2 or not (math.isfinite(ea.mean) and math.isfinite(eb.mean)):
        return Estimate(ea.mean - eb.mean, math.nan, math.nan, min(ea.n, eb.n))
    va = _var(a) / ea.n
    vb = _var(b) / eb.n
    se = math.sqrt(va + vb)
    if se == 0:
        d = ea.mean - eb.mean
        return Estimate(d, d, d, min(ea.n, eb.n))
    df = (va + vb) ** 2 / ((va**2) / (ea.n - 1) + (vb**2) / (eb.n - 1))
    t = float(_st.t.ppf(0.5 + level / 2, df))
    d = ea.mean - eb.mean
    return Estimate(d, d - t * se, d + t * se, min(ea.n, eb.n))


def _var(values: Sequence[float]) -> float:
    v = [float(x) for x in values]
    m = sum(v) / len(v)
    return sum((x - m) ** 2 for x in v) / (len(v) - 1)


def crossings_by_seed(
    curves: dict[int, list[tuple[float, float]]], level: float
) -> tuple[list[float], int]:
    """The sigma where each seed's curve (``[(sigma, perplexity)]``, sorted by sigma)
    first reaches ``level`` (log-linear interpolation, :func:`analogsim.studies.sweep.crossing`);
    returns the crossings and how many seeds never reach it inside the grid."""
    out, never = [], 0
    for pts in curves.values():
        pts = sorted(pts)
        x = crossing([p[0] for p in pts], [p[1] for p in pts], level, log=True, rising=True)
        if x is None:
            never += 1
        else:
            out.append(x)
    return out, never


def fmt_ci(e: Estimate, digits: int = 4) -> str:
    """``0.0213 [0.0201, 0.0225]`` (n = 1: the value alone; inf: ``inf``)."""
    if e.n == 0:
        return "-"
    if math.isinf(e.mean):
        return "inf" if e.mean > 0 else "-inf"
    if math.isnan(e.lo):
        return f"{e.mean:.{digits}g}"
    return f"{e.mean:.{digits}g} [{e.lo:.{digits}g}, {e.hi:.{digits}g}]"
