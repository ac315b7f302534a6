"""Tests for analogsim.devices.model: the device model as a whole and the noise process in time.

The accumulated noise is documented as a Brownian motion B in the variance clock
v(t) = ln((t + t0 + t_offset)/t_scale), sampled on a grid of step dv with a bridge in between:
Var B(v) = v at every v (the published marginal Q_s^2 v for PCM), Cov(B(v1), B(v2)) =
min(v1, v2) for v1, v2 in different grid intervals, continuous in t, and a pure function of
the seed and t (so one jump equals many small steps).
"""

from __future__ import annotations

import math

import pytest
import torch

from analogsim.devices import load_device
from analogsim.devices.model import DeviceModel
from tests.devices._stats import Z, assert_close_mean, assert_close_std

N = 200_000
T0, T_READ = 20.0, 250e-9
Q_S = 0.0088  # at g_max


@pytest.fixture(scope="module")
def pcm():
    return load_device("pcm")


@pytest.fixture(scope="module")
def pcm_read_only(pcm):
    return pcm.with_overrides({"programming.scale": 0.0, "drift.scale": 0.0})


def _v(t: float) -> float:
    return math.log((t + T0 + T_READ) / (2 * T_READ))


def _t_of_v(v: float) -> float:
    """Inverse of the PCM variance clock."""
    return 2 * T_READ * math.exp(v) - T0 - T_READ


V0 = _v(0.0)


def _b(dev: DeviceModel, t: float, seed: int = 31) -> torch.Tensor:
    """B(v(t)) of N devices at g_max: (G/G_T - 1)/Q_s (relative noise, nothing else on)."""
    g = dev.conductances(torch.full((N,), dev.g_max, dtype=torch.float64), seed, t)
    return (g / dev.g_max - 1.0) / Q_S


@pytest.mark.parametrize("dv_from_v0", [0.0, 0.37, 1.0, 2.5, 4.93, 13.1])
def test_marginal_variance_on_and_off_grid(pcm_read_only, dv_from_v0):
    """Var B(v) = v: the published marginal Q_s^2 ln((t + t0 + t_r)/(2 t_r)) at any time."""
    t = _t_of_v(V0 + dv_from_v0)
    b = _b(pcm_read_only, t)
    assert_close_mean(b, 0.0)
    assert_close_std(b, math.sqrt(_v(t)))


@pytest.mark.parametrize(("d1", "d2"), [(1.0, 4.0), (0.5, 3.7), (2.3, 2.9 + 1.0)])
def test_covariance_across_grid_intervals_is_min(pcm_read_only, d1, d2):
    """Cov(B(v1), B(v2)) = v1 for v1 < v2 in different grid intervals (independent increments).

    For jointly Gaussian X, Y with Cov c: Var(XY) = Var X Var Y + c^2, so the SE of the
    sample covariance is sqrt((v1 v2 + v1^2)/N).
    """
    v1, v2 = V0 + d1, V0 + d2
    b1 = _b(pcm_read_only, _t_of_v(v1))
    b2 = _b(pcm_read_only, _t_of_v(v2))
    cov = float(((b1 - b1.mean()) * (b2 - b2.mean())).mean())
    se = math.sqrt((v1 * v2 + v1 * v1) / N)
    assert abs(cov - v1) <= Z * se, f"cov {cov:.4f} vs {v1:.4f}"
    # and the increment is independent of the past: Var(B2 - B1) = v2 - v1
    assert_close_std(b2 - b1, math.sqrt(v2 - v1))


@pytest.mark.parametrize("t", [3600.0, _t_of_v(V0 + 3.0), _t_of_v(V0 + 7.0)])
def test_trajectory_is_continuous(pcm, t):
    """A tiny time step gives a tiny change, also across a grid point of the construction."""
    g_t = torch.linspace(0.5, 25.0, 20_000, dtype=torch.float64)
    for dt in (1e-6 * t, -1e-6 * t):
        a = pcm.conductances(g_t, 7, t)
        b = pcm.conductances(g_t, 7, t + dt)
        # drift changes by nu dt/(t + t0) <= 1e-7 relative; the noise term by
        # Q_s sqrt(dv) |z| with dv ~ 1e-6: both far below 1e-3 relative
        assert float(((a - b).abs() / g_t).max()) < 1e-3
    far = pcm.conductances(g_t, 7, 10 * t)
    assert float(((a - far).abs() / g_t).max()) > 1e-2  # but time does change the state


def test_state_is_a_pure_function_of_seed_and_time(pcm):
    g_t = torch.linspace(0.0, 25.0, 10_000)
    first = pcm.conductances(g_t, 9, 86400.0)
    for t in (1.0, 3600.0, 1e7):
        pcm.conductances(g_t, 9, t)
    assert torch.equal(pcm.conductances(g_t, 9, 86400.0), first)
    assert not torch.equal(pcm.conductances(g_t, 10, 86400.0), first)


def test_chunks_have_their_own_draws(pcm):
    g_t = torch.full((1000,), 12.5)
    a = pcm.conductances(g_t, 9, 3600.0, chunk=0)
    b = pcm.conductances(g_t, 9, 3600.0, chunk=1)
    assert not torch.equal(a, b)
    assert torch.equal(a, pcm.conductances(g_t, 9, 3600.0, chunk=0))


def test_rram_absolute_relaxation():
    """RRAM (faults off, Wan 2022 fits): G = G_T + sigma_1s(g) xi_p + A(g) B(ln(1 + t/1 s));
    no drift. Var G = sigma_1s^2 + A^2 ln(1 + t), and at 1 day it is the 1-day fit."""
    rram = load_device(
        "rram",
        {
            "faults.stuck_at_gmin_rate": 0.0,
            "faults.stuck_at_gmax_rate": 0.0,
            "faults.outlier_rate": 0.0,
        },
    )
    g_t = torch.full((N,), 20.0, dtype=torch.float64)
    poly = [0.348, 16.030, -43.853, 45.393, -16.815]  # aihwkit ReRamWan2022NoiseModel, 1 s
    day = [0.701, 22.086, -50.773, 47.095, -16.458]  # ... 1 day
    s1 = sum(c * 0.5**i for i, c in enumerate(poly))
    s_day = sum(c * 0.5**i for i, c in enumerate(day))
    amp = sum(c * 0.5**i for i, c in enumerate([0.18038, 4.65189, -9.15004, 7.33462, -2.29883]))
    for t in (0.0, 3600.0, 1e7):
        g = rram.conductances(g_t, 3, t)
        assert_close_mean(g, 20.0)
        assert_close_std(g, math.sqrt(s1**2 + amp**2 * math.log(1.0 + t)))
    assert math.sqrt(s1**2 + amp**2 * math.log(1.0 + 86400.0)) == pytest.approx(s_day, abs=0.01)


def test_targets_differential_pair():
    """G+ = g_min + (g_max - g_min) max(w, 0), G- = g_min + (g_max - g_min) max(-w, 0)."""
    rram = load_device("rram", {"conductance.g_min_uS": 1.0})  # g_min 1, g_max 40
    w = torch.tensor([-1.0, -0.5, 0.0, 0.25, 1.0])
    g = rram.targets(w)
    torch.testing.assert_close(g[0], torch.tensor([1.0, 1.0, 1.0, 10.75, 40.0]))
    torch.testing.assert_close(g[1], torch.tensor([40.0, 20.5, 1.0, 1.0, 1.0]))
    torch.testing.assert_close((g[0] - g[1]) / 39.0, w)


def test_ideal_device_reproduces_targets():
    ideal = load_device("ideal")
    assert ideal.is_ideal and not ideal.time_dependent()
    g_t = torch.linspace(0.0, 25.0, 101)
    for t, temp in ((0.0, None), (1e7, 400.0)):
        assert torch.equal(ideal.conductances(g_t, 1, t, temp), g_t)


def test_is_ideal_and_time_dependent_flags(pcm):
    assert not pcm.is_ideal and pcm.time_dependent()
    off = pcm.with_overrides(
        {
            "programming.scale": 0.0,
            "drift.scale": 0.0,
            "read_noise.scale": 0.0,
            "temperature.conduction_ea_gmax_eV": 0.0,
            "temperature.conduction_ea_slope_eV": 0.0,
            "temperature.drift_ea_fraction": 0.0,
        }
    )
    assert off.is_ideal and not off.time_dependent()
    g_t = torch.linspace(0.0, 25.0, 101)
    assert torch.equal(off.conductances(g_t, 1, 1e6, 350.0), g_t)
    onset = load_device("ideal", {"faults.onset_gmax_per_s": 1e-9})
    assert not onset.is_ideal and onset.time_dependent()


def test_temperature_assumptions_are_labelled(pcm):
    """REFERENCES.md: no source for the drift-rate activation energy; it must be an assumption."""
    assert "relaxation_tau0_s" in pcm.assumptions()["temperature"]
    assert "conduction_ea_slope_eV" in pcm.assumptions()["temperature"]
    assert "drift_ea_eV" in load_device("rram").assumptions()["temperature"]
    assert "conduction_ea_max_eV" not in pcm.assumptions()["temperature"]  # Muneer 2018
    assert "drift_ea_fraction" not in pcm.assumptions()["temperature"]  # Ielmini 2007


def test_summary(pcm):
    s = pcm.summary()
    assert s["name"] == "pcm" and s["g_max_uS"] == 25.0
    assert "nu(gmax)=0.049" in s["drift"]
    assert load_device("ideal").summary()["drift"] == "none"
