"""Temperature: Arrhenius drift acceleration and thermally activated conduction at read.

The model (devices/pcm.toml, docs): time at T counts as exp(-Ea_drift/k (1/T - 1/T_ref))
seconds at T_ref (Ielmini et al. 2008, Arrhenius form), and a conductance read at T is
multiplied by exp(-Ea(g)/k (1/T - 1/T_ref)), Ea interpolated linearly in g_T/g_max between
the card's g_min and g_max values (Muneer et al. 2018 for amorphous GST).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from analogsim.devices import load_device
from tests.devices._stats import Z, folded_normal_mgf, se_mean

K_B_EV = 1.380649e-23 / 1.602176634e-19
N = 200_000
HOUR = 3600.0
YEAR = 365.0 * 86400.0


@pytest.fixture(scope="module")
def pcm():
    return load_device("pcm")


def test_acceleration_exactly_one_at_reference(pcm):
    assert pcm.temperature.acceleration(pcm.temperature.t_ref_K) == 1.0


@given(st.floats(200.0, 500.0), st.floats(200.0, 500.0))
@settings(deadline=None, max_examples=100)
def test_acceleration_monotone_in_temperature(t1, t2):
    temp = load_device("pcm").temperature
    lo, hi = sorted((t1, t2))
    a_lo, a_hi = temp.acceleration(lo), temp.acceleration(hi)
    assert a_lo <= a_hi
    # strictly, once 1/T differs from 1/T_ref by more than float rounding
    if hi > temp.t_ref_K + 1e-6:
        assert a_hi > 1.0
    if lo < temp.t_ref_K - 1e-6:
        assert a_lo < 1.0
    if hi > lo + 1e-6:
        assert a_lo < a_hi


@pytest.mark.parametrize("temperature", [273.15, 330.0, 358.15, 398.15])
def test_acceleration_closed_form(pcm, temperature):
    tm = pcm.temperature
    expected = math.exp(-tm.drift_ea_eV / K_B_EV * (1 / temperature - 1 / tm.t_ref_K))
    assert tm.acceleration(temperature) == pytest.approx(expected, rel=1e-9)


def test_card_comment_one_hour_at_85C(pcm):
    """devices/pcm.toml: '1 h at 85 C ~ 43 h at 27 C' (Ea = 0.6 eV)."""
    assert pcm.temperature.acceleration(358.15) == pytest.approx(43.0, rel=0.02)


@pytest.mark.parametrize("card", ["pcm", "pcm_hermes", "rram", "ideal"])
@pytest.mark.parametrize("t", [0.0, 1.0, HOUR, YEAR])
def test_reference_temperature_is_bit_identical_to_none(card, t):
    dev = load_device(card)
    g_t = torch.linspace(0.0, dev.g_max, 5000)
    a = dev.conductances(g_t, seed=5, t_s=t, temperature_K=None)
    b = dev.conductances(g_t, seed=5, t_s=t, temperature_K=dev.temperature.t_ref_K)
    assert torch.equal(a, b)


@pytest.mark.parametrize("temperature", [250.0, 330.0, 358.0, 400.0])
def test_conduction_factor_closed_form(pcm, temperature):
    """Only conduction at read (no noise, no drift): G(T) = G_T exp(-Ea(g)/k (1/T - 1/T_ref))."""
    dev = pcm.with_overrides(
        {"programming.scale": 0.0, "drift.scale": 0.0, "read_noise.scale": 0.0}
    )
    tm = dev.temperature
    g_rel = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    g_t = g_rel * dev.g_max
    ea = tm.conduction_ea_gmin_eV + (tm.conduction_ea_gmax_eV - tm.conduction_ea_gmin_eV) * g_rel
    expected = g_t * torch.exp(-ea / K_B_EV * (1 / temperature - 1 / tm.t_ref_K))
    got = dev.conductances(g_t, seed=0, t_s=HOUR, temperature_K=temperature)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=0)
    # card values: 0.33 eV at g_min (amorphous GST), 0.02 eV at g_max
    if temperature > tm.t_ref_K:
        assert bool((got[1:] > g_t[1:]).all())
    else:
        assert bool((got[1:] < g_t[1:]).all())


@pytest.mark.parametrize("t", [HOUR, YEAR])
def test_hot_chip_mean_conductance_is_lower(pcm, t):
    """358 K held since programming vs 300 K, at g_max: lower mean G/G_T.

    Expected at T: E[drift factor at t_eq = t acc(T)] x conduction factor at g_max (noise is
    zero-mean); nu ~ |N(0.049, 0.008)| at g_max (see test_pcm_statistics.py).
    """
    hot = 358.0
    acc = pcm.temperature.acceleration(hot)
    g_t = torch.full((N,), pcm.g_max)
    cold = pcm.conductances(g_t, seed=21, t_s=t) / pcm.g_max
    warm = pcm.conductances(g_t, seed=21, t_s=t * acc, temperature_K=hot) / pcm.g_max
    cond = math.exp(-pcm.temperature.conduction_ea_gmax_eV / K_B_EV * (1 / hot - 1 / 300.0))
    expected_warm = cond * folded_normal_mgf(math.log((t * acc + 20.0) / 20.0), 0.049, 0.008)
    expected_cold = folded_normal_mgf(math.log((t + 20.0) / 20.0), 0.049, 0.008)
    assert abs(float(warm.mean()) - expected_warm) <= Z * se_mean(warm)
    assert abs(float(cold.mean()) - expected_cold) <= Z * se_mean(cold)
    assert float(warm.mean()) + Z * se_mean(warm) < float(cold.mean()) - Z * se_mean(cold)


def test_zero_activation_energies_remove_temperature(pcm):
    dev = pcm.with_overrides(
        {
            "temperature.drift_ea_eV": 0.0,
            "temperature.conduction_ea_gmin_eV": 0.0,
            "temperature.conduction_ea_gmax_eV": 0.0,
        }
    )
    assert dev.temperature.acceleration(400.0) == 1.0
    g_t = torch.linspace(0.0, dev.g_max, 1000)
    assert torch.equal(
        dev.conductances(g_t, 3, HOUR, temperature_K=400.0), dev.conductances(g_t, 3, HOUR)
    )
