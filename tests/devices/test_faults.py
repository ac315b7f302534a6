"""Faults: stuck-at rates, heavy-tailed stuck-on outliers, Poisson fault onsets over time.

Counts of N devices with true probability p are binomial: tolerance Z sqrt(N p (1 - p)),
Z = 5 (tests/devices/_stats.py).
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from analogsim.devices import load_device
from tests.devices._stats import Z

N = 200_000


def _assert_binomial(count: int, n: int, p: float) -> None:
    se = math.sqrt(n * p * (1 - p))
    assert abs(count - n * p) <= Z * se, (
        f"{count} of {n} vs p = {p}: {abs(count - n * p) / se:.1f} SE"
    )


@pytest.fixture(scope="module")
def rram():
    return load_device("rram")


def test_card_rates_are_the_published_ones(rram):
    """Chen et al. 2015 via Chen 2017: 1.75 % stuck at the LRS (g_max), 9.04 % at the HRS (g_min)."""
    assert rram.faults.stuck_at_gmax_rate == 0.0175
    assert rram.faults.stuck_at_gmin_rate == 0.0904


@pytest.mark.parametrize("t", [0.0, 86400.0])
def test_stuck_at_counts_within_binomial_tolerance(rram, t):
    g = rram.conductances(torch.full((N,), 20.0), seed=41, t_s=t)
    # healthy devices are continuous around 20 uS: they never hit 1, 40 or >= 320 uS exactly
    _assert_binomial(int((g == rram.g_min).sum()), N, rram.faults.stuck_at_gmin_rate)
    _assert_binomial(int((g == rram.g_max).sum()), N, rram.faults.stuck_at_gmax_rate)
    _assert_binomial(
        int((g >= rram.faults.outlier_min_factor * rram.g_max).sum()), N, rram.faults.outlier_rate
    )


def test_stuck_devices_are_the_same_at_every_time_and_seeded(rram):
    g_t = torch.full((N,), 20.0)
    a = rram.conductances(g_t, seed=42, t_s=0.0)
    b = rram.conductances(g_t, seed=42, t_s=1e7, temperature_K=350.0)
    assert torch.equal(a == rram.g_min, b == rram.g_min)
    assert torch.equal(a == rram.g_max, b == rram.g_max)
    c = rram.conductances(g_t, seed=43, t_s=0.0)
    assert not torch.equal(a == rram.g_min, c == rram.g_min)


def test_fault_masks_agree_with_conductances(rram):
    g = rram.conductances(torch.full((N,), 20.0), seed=44, t_s=3600.0)
    m = rram.fault_masks((N,), seed=44, t_s=3600.0)
    assert torch.equal(m["stuck_at_gmin"], g == rram.g_min)
    assert torch.equal(m["stuck_at_gmax"], g == rram.g_max)
    assert torch.equal(m["outlier"], g > rram.g_max)


def test_outliers_follow_the_capped_pareto_tail(rram):
    """Stuck-on devices: G = g_max X, X ~ Pareto(x_m, alpha) capped at x_cap.

    P(X > x) = (x_m/x)^alpha for x_m <= x < x_cap, P(X = x_cap) = (x_m/x_cap)^alpha.
    Card: x_m = 8, alpha = 1.5, cap 30 (Liu 2017: 330-1200 uS for a 40 uS window).
    A high outlier rate gives enough outliers for the tail; each survival fraction is
    binomial over the outliers.
    """
    dev = rram.with_overrides({"faults.outlier_rate": 0.4})
    f = dev.faults
    g = dev.conductances(torch.full((N,), 20.0), seed=45, t_s=0.0)
    x = g[g > dev.g_max] / dev.g_max
    n_out = x.numel()
    _assert_binomial(n_out, N, 0.4)
    assert float(x.min()) >= f.outlier_min_factor * (1 - 1e-6)
    assert float(x.max()) <= f.outlier_max_factor * (1 + 1e-6)
    for level in (9.0, 12.0, 16.0, 24.0):
        p = (f.outlier_min_factor / level) ** f.outlier_alpha
        _assert_binomial(int((x > level).sum()), n_out, p)
    p_cap = (f.outlier_min_factor / f.outlier_max_factor) ** f.outlier_alpha
    at_cap = int((x >= f.outlier_max_factor * (1 - 1e-6)).sum())
    _assert_binomial(at_cap, n_out, p_cap)


def test_rates_add_up_in_disjoint_classes(rram):
    dev = rram.with_overrides(
        {
            "faults.stuck_at_gmin_rate": 0.3,
            "faults.stuck_at_gmax_rate": 0.3,
            "faults.outlier_rate": 0.4,
        }
    )
    g = dev.conductances(torch.full((20_000,), 20.0), seed=46, t_s=0.0)
    healthy = (g != dev.g_min) & (g != dev.g_max) & (g <= dev.g_max)
    assert int(healthy.sum()) == 0


LAM_MIN, LAM_MAX = 2e-5, 1e-5  # per second


@pytest.fixture(scope="module")
def onset_device():
    # the ideal device keeps healthy conductances exactly at their targets
    return load_device(
        "ideal", {"faults.onset_gmin_per_s": LAM_MIN, "faults.onset_gmax_per_s": LAM_MAX}
    )


@pytest.mark.parametrize("t", [600.0, 3600.0, 36000.0, 86400.0])
def test_onsets_follow_exponential_law(onset_device, t):
    """P(failed by t) = 1 - exp(-(l_min + l_max) t); the type splits as l_min : l_max."""
    dev = onset_device
    g = dev.conductances(torch.full((N,), 12.5), seed=47, t_s=t)
    lam = LAM_MIN + LAM_MAX
    p = -math.expm1(-lam * t)
    assert dev.faults.onset_probability(t) == pytest.approx(p, rel=1e-12)
    _assert_binomial(int((g == dev.g_min).sum()), N, p * LAM_MIN / lam)
    _assert_binomial(int((g == dev.g_max).sum()), N, p * LAM_MAX / lam)
    assert int(((g != 12.5) & (g != dev.g_min) & (g != dev.g_max)).sum()) == 0


def test_no_onset_at_time_zero(onset_device):
    g_t = torch.full((N,), 12.5)
    assert torch.equal(onset_device.conductances(g_t, seed=48, t_s=0.0), g_t)


def test_failed_devices_stay_failed_at_the_same_level(onset_device):
    """Monotone in time: a device failed at t1 is failed at every t2 > t1, at the same level."""
    dev = onset_device
    g_t = torch.full((N,), 12.5)
    times = [1800.0, 3600.0, 7200.0, 36000.0, 86400.0]
    states = [dev.conductances(g_t, seed=49, t_s=t) for t in times]
    for early, late in itertools.pairwise(states):
        failed = early != 12.5
        assert torch.equal(late[failed], early[failed])
        assert int((late != 12.5).sum()) > int(failed.sum())
    masks = [dev.fault_masks((N,), seed=49, t_s=t) for t in times]
    for m, s in zip(masks, states, strict=True):
        assert torch.equal(m["onset_gmin"], s == dev.g_min)
        assert torch.equal(m["onset_gmax"], s == dev.g_max)


def test_onsets_only_hit_healthy_devices(rram):
    """Devices already stuck at programming keep their static fault class."""
    dev = rram.with_overrides({"faults.onset_gmax_per_s": 1e-4})
    g_t = torch.full((N,), 20.0)
    g0 = dev.conductances(g_t, seed=50, t_s=0.0)
    g1 = dev.conductances(g_t, seed=50, t_s=3600.0)
    stuck_min = g0 == dev.g_min
    assert bool((g1[stuck_min] == dev.g_min).all())
    healthy = (g0 != dev.g_min) & (g0 != dev.g_max) & (g0 < dev.g_max)
    p = -math.expm1(-1e-4 * 3600.0)
    n_h = int(healthy.sum())
    _assert_binomial(int((g1[healthy] == dev.g_max).sum()), n_h, p)
