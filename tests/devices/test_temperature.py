"""Temperature: conduction read at T relative to the programming temperature, drift coupled
to the activation energy, and the demarcation-energy relaxation clock.

The model (devices/pcm.toml, docs/physics.md section 4): a state verified at T_prog reads
G(T) = G(T_prog) exp(-Ea(g)/k (1/T - 1/T_prog)), Ea(g) = clip(Ea_gmax + s ln(1/g), Ea_gmax,
Ea_max); drift grows Ea by c k T_ref nu ln((t+t0)/t0) (Ielmini 2007, Wimmer 2014); time at T
ages the glass by ln(t_eq/tau0) = (T/T_ref) ln(t/tau0) (Ielmini et al. 2008).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from analogsim.devices import load_device
from analogsim.devices.age import DeploymentAge, DeviceTime
from analogsim.devices.physics import (
    BOLTZMANN_EV_PER_K,
    TEMPERATURE_RANGE_K,
    max_monotone_slope_eV,
    relaxation_rate,
    relaxed_age,
)
from analogsim.errors import ConfigError

HOUR = 3600.0
YEAR = 365.25 * 86400.0
T_LO, T_HI = TEMPERATURE_RANGE_K
LEVELS = torch.tensor([1e-3, 0.01, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.85, 1.0], dtype=torch.float64)


@pytest.fixture(scope="module")
def pcm():
    return load_device("pcm")


def _deterministic(card: str = "pcm"):
    """The card without random parts: programming, read noise, nu spread and faults off."""
    over = {
        "programming.scale": 0.0,
        "read_noise.scale": 0.0,
        "faults.stuck_at_gmin_rate": 0.0,
        "faults.stuck_at_gmax_rate": 0.0,
        "faults.outlier_rate": 0.0,
    }
    if load_device(card).drift is not None:
        over["drift.nu_std"] = {"form": "const", "c": [0.0]}
    return load_device(card, over)


def _held(dev, t: float, temperature: float) -> DeviceTime:
    key = dev.temperature.age_key
    return DeploymentAge.held(t, temperature, (key,)).device_time(key)


# ------------------------------------------------------------------ invariants (hypothesis)


@given(
    st.floats(0.0, 10 * YEAR),
    st.floats(T_LO, T_HI),
    st.floats(T_LO, T_HI),
    st.sampled_from(["pcm", "pcm_hermes", "rram"]),
)
@settings(deadline=None, max_examples=80)
def test_read_out_is_monotone_in_the_target_and_below_the_set_state(t, temperature, t_prog, card):
    """At any age, read temperature and programming temperature in range, a state
    programmed higher reads higher, and no state reads above the fully set one."""
    dev = _deterministic(card)
    g_t = dev.g_min + LEVELS * (dev.g_max - dev.g_min)
    g = dev.conductances(g_t, 0, _held(dev, t, temperature), temperature, t_prog_K=t_prog)
    assert bool((g[1:] > g[:-1]).all()), g
    assert float(g.max()) == float(g[-1])


@given(st.floats(0.0, 0.2), st.floats(0.0, 0.047))
@settings(deadline=None, max_examples=40)
def test_any_card_slope_below_the_bound_loads_and_above_it_is_refused(ea0, slope):
    load_device(
        "pcm",
        {"temperature.conduction_ea_gmax_eV": ea0, "temperature.conduction_ea_slope_eV": slope},
    )
    with pytest.raises(ConfigError, match="fold over"):
        load_device("pcm", {"temperature.conduction_ea_slope_eV": max_monotone_slope_eV()})


def _compensated_error(dev, w: torch.Tensor, t: float, temperature: float) -> float:
    """||c W_t - W|| / ||W|| with global compensation recalibrated at read time
    (c = mean|W_0| / mean|W_t|, W_0 read at programming)."""
    span = dev.g_max - dev.g_min

    def read(tt, temp):
        g = dev.conductances(dev.targets(w), 11, tt, temp)
        return (g[0] - g[1]) / span

    w0 = read(0.0, None)
    wt = read(_held(dev, t, temperature), temperature)
    c = w0.abs().mean() / wt.abs().mean()
    return float(torch.linalg.vector_norm(c * wt - w) / torch.linalg.vector_norm(w))


@given(st.floats(1.0, 1e3), st.floats(2.0, 1e4), st.floats(300.0, T_HI))
@settings(deadline=None, max_examples=25)
def test_hot_chip_does_not_improve_with_age(t1, factor, temperature):
    """At a fixed T above T_prog, the compensated relative weight error does not decrease
    with age beyond sampling error (40k weights: relative SE of the error ~0.5 %)."""
    dev = load_device("pcm")
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(40_000, generator=gen, dtype=torch.float64)
    w = w / w.abs().max()
    e1 = _compensated_error(dev, w, t1, temperature)
    e2 = _compensated_error(dev, w, t1 * factor, temperature)
    assert e2 >= e1 * (1 - 0.015), (e1, e2)


@pytest.mark.parametrize("card", ["pcm", "pcm_hermes", "rram", "ideal"])
@pytest.mark.parametrize("t", [0.0, 1.0, HOUR, YEAR])
def test_programming_and_reading_at_the_reference_is_bit_identical_to_none(card, t):
    dev = load_device(card)
    g_t = torch.linspace(0, dev.g_max, 2001, dtype=torch.float64)
    ref = dev.conductances(g_t, 7, t, None)
    t_ref = dev.temperature.t_ref_K
    assert torch.equal(dev.conductances(g_t, 7, t, t_ref), ref)
    assert torch.equal(dev.conductances(g_t, 7, t, t_ref, t_prog_K=t_ref), ref)
    assert torch.equal(dev.conductances(g_t, 7, _held(dev, t, t_ref), t_ref), ref)


# ------------------------------------------------------------------ closed forms


@pytest.mark.parametrize("temperature", [233.0, 330.0, 358.0, 398.15])
@pytest.mark.parametrize("t_prog", [280.0, 300.0, 330.0])
def test_conduction_and_drift_closed_form(pcm, temperature, t_prog):
    """G = P exp(-nu L (1 - c + c T_ref/T)) exp(-Ea(g)/k (1/T - 1/T_prog)) for nu at its mean."""
    dev = _deterministic()
    tm = dev.temperature
    g_rel = torch.tensor([0.01, 0.1, 0.5, 1.0], dtype=torch.float64)
    t = 1e5
    g = dev.conductances(g_rel * dev.g_max, 0, t, temperature, t_prog_K=t_prog) / (
        g_rel * dev.g_max
    )
    ea = (tm.conduction_ea_gmax_eV + tm.conduction_ea_slope_eV * torch.log(1 / g_rel)).clamp(
        tm.conduction_ea_gmax_eV, tm.conduction_ea_max_eV
    )
    nu = dev.drift.nu_mean(g_rel)
    c = tm.drift_ea_fraction
    L = math.log((t + dev.drift.t0_s) / dev.drift.t0_s)
    want = torch.exp(-nu * L * (1 - c + c * tm.t_ref_K / temperature)) * torch.exp(
        -ea / BOLTZMANN_EV_PER_K * (1 / temperature - 1 / t_prog)
    )
    torch.testing.assert_close(g, want, rtol=1e-10, atol=0)


def test_card_values_and_sources(pcm):
    tm = pcm.temperature
    assert tm.conduction_ea_max_eV == 0.33  # amorphous GST, Muneer et al. 2018
    assert tm.drift_ea_fraction == 1.0  # Ielmini 2007 / Wimmer 2014
    assert tm.conduction_ea_gmax_eV > 0  # the g_max state drifts: it is partly amorphous
    assert tm.conduction_ea_slope_eV < max_monotone_slope_eV()
    assert max_monotone_slope_eV() == pytest.approx(0.0484, abs=1e-4)
    for key in ("relaxation_tau0_s", "conduction_ea_slope_eV", "conduction_ea_gmax_eV"):
        assert key in tm.assumptions


def test_demarcation_law_closed_form_and_ode():
    """ln(theta'/tau0) = (T/T_ref) ln((theta/tau0)^(T_ref/T) + dt/tau0), theta = t_eq + t0;
    its derivative is the ODE rate; exact at T_ref; composes over stretches."""
    tau0, t0 = 1e-13, 20.0
    for T in (250.0, 330.0, 358.0):
        te = relaxed_age(0.0, HOUR, T, 300.0, tau0, t0)
        u0 = tau0 * (t0 / tau0) ** (300.0 / T)
        want = tau0 * ((u0 + HOUR) / tau0) ** (T / 300.0) - t0
        assert te == pytest.approx(want, rel=1e-9)
        h = 1e-3
        rate = (relaxed_age(te, h, T, 300.0, tau0, t0) - te) / h
        assert rate == pytest.approx(relaxation_rate(te, T, 300.0, tau0, t0), rel=1e-4)
        split = relaxed_age(
            relaxed_age(0.0, 1000.0, T, 300.0, tau0, t0), HOUR - 1000.0, T, 300.0, tau0, t0
        )
        assert split == pytest.approx(te, rel=1e-12)
    assert relaxed_age(5.0, HOUR, 300.0, 300.0, tau0, t0) == 5.0 + HOUR


def test_hot_hour_ages_like_months_not_a_constant_factor(pcm):
    """1 h at 85 C is ~1.6e3 h at 27 C, 1 y at 85 C ~9e3 y: the speed-up grows with age."""
    tm = pcm.temperature
    hour = tm.drift_age_after(0.0, HOUR, 358.0) / HOUR
    year = tm.drift_age_after(0.0, YEAR, 358.0) / YEAR
    assert 1e3 < hour < 3e3 and year > 3 * hour


def test_aihwkit_statistics_at_300K_do_not_move(pcm):
    """At g_max: mean drift factor 0.775 after 1 h, 0.50 after 1 y (REFERENCES.md)."""
    g_t = torch.full((200_000,), pcm.g_max, dtype=torch.float64)
    for t, want in ((HOUR, 0.775), (YEAR, 0.50)):
        g = pcm.conductances(g_t, 0, _held(pcm, t, 300.0), 300.0) / pcm.g_max
        assert float(g.mean()) == pytest.approx(want, abs=0.005)


def test_hot_mean_and_spread_at_85C(pcm):
    """Mean read at 85 C after 1 h relative to target rises at every state (thermally
    activated conduction beats the faster drift) and the relative spread grows (drift
    variance at the older equivalent age)."""
    for g_rel in (0.1, 1.0):
        g_t = torch.full((100_000,), g_rel * pcm.g_max, dtype=torch.float64)
        cold = pcm.conductances(g_t, 1, _held(pcm, HOUR, 300.0), 300.0) / g_t
        hot = pcm.conductances(g_t, 1, _held(pcm, HOUR, 358.0), 358.0) / g_t
        assert float(hot.mean()) > float(cold.mean())
        assert float(hot.std() / hot.mean()) > float(cold.std() / cold.mean())


def test_read_noise_runs_on_held_time_not_the_drift_age(pcm):
    """Held 1 h at 358 K: the noise interval is that of 1 h, not of the ~1600 h drift age."""
    tt = _held(pcm, HOUR, 358.0)
    assert tt.noise_s == HOUR and tt.drift_s > 1000 * HOUR
    assert pcm.noise_interval(tt) == pcm.noise_interval(HOUR)
