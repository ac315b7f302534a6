"""Tests for analogsim.devices.physics: each pure function against its closed form."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from analogsim.devices import physics

# Boltzmann constant from the exact SI definitions (2019): k_B / e in eV/K.
K_B_EV = 1.380649e-23 / 1.602176634e-19


def test_boltzmann_constant_matches_si_definition():
    assert abs(physics.BOLTZMANN_EV_PER_K / K_B_EV - 1) < 1e-9


@pytest.mark.parametrize("temperature", [250.0, 300.0, 358.15, 400.0])
@pytest.mark.parametrize("ea", [0.0, 0.02, 0.33, 0.6])
def test_arrhenius_factor_closed_form(temperature, ea):
    expected = math.exp(-ea / K_B_EV * (1.0 / temperature - 1.0 / 300.0))
    assert physics.arrhenius_factor(temperature, 300.0, ea) == pytest.approx(expected, rel=1e-9)


def test_arrhenius_factor_is_one_at_reference_and_above_one_when_hotter():
    assert physics.arrhenius_factor(300.0, 300.0, 0.6) == 1.0
    assert physics.arrhenius_factor(358.0, 300.0, 0.6) > 1.0
    assert physics.arrhenius_factor(250.0, 300.0, 0.6) < 1.0
    assert physics.arrhenius_factor(358.0, 300.0, 0.0) == 1.0


def test_arrhenius_factor_hand_value():
    # 85 C vs 27 C at 0.6 eV: 0.6 / 8.617333e-5 * (1/300 - 1/358.15) = 3.7697 -> e^3.7697 = 43.38
    assert physics.arrhenius_factor(358.15, 300.0, 0.6) == pytest.approx(43.38, rel=2e-3)


def test_arrhenius_factor_per_device_tensor():
    ea = torch.tensor([0.0, 0.1, 0.33], dtype=torch.float64)
    out = physics.arrhenius_factor(330.0, 300.0, ea)
    expected = torch.exp(-ea / K_B_EV * (1 / 330.0 - 1 / 300.0))
    # the module's k_B is rounded to 10 significant digits
    torch.testing.assert_close(out, expected, rtol=1e-9, atol=0)


def test_relative_conductance_abs_and_floor():
    g = torch.tensor([-12.5, 0.0, 25.0, 50.0])
    out = physics.relative_conductance(g, 25.0)
    torch.testing.assert_close(out, torch.tensor([0.5, 1e-7, 1.0, 2.0]))


@given(
    st.lists(st.floats(-3, 3), min_size=1, max_size=5),
    st.floats(-2, 2),
)
@settings(deadline=None, max_examples=50)
def test_polynomial_equals_direct_sum(coeffs, x):
    xt = torch.tensor([x], dtype=torch.float64)
    direct = sum(c * x**i for i, c in enumerate(coeffs))
    assert float(physics.polynomial(xt, coeffs)[0]) == pytest.approx(direct, abs=1e-9)


PCM_C = (0.26348, 1.9650, -1.1731)


@pytest.mark.parametrize(
    ("g_rel", "expected_uS"),
    [
        (0.0, 0.26348),
        # 0.26348 + 1.9650 * 0.5 - 1.1731 * 0.25 = 0.952705
        (0.5, 0.952705),
        # 0.26348 + 1.9650 - 1.1731 = 1.05538
        (1.0, 1.05538),
    ],
)
def test_programming_sigma_pcm_polynomial(g_rel, expected_uS):
    g = torch.tensor([g_rel * 25.0], dtype=torch.float64)
    out = physics.programming_sigma(g, 25.0, PCM_C, 25.0)
    assert float(out[0]) == pytest.approx(expected_uS, rel=1e-12)


def test_programming_sigma_scales_with_gmax_over_reference():
    # Same relative level, twice the window: the sigma in uS doubles (aihwkit convention).
    g25 = physics.programming_sigma(torch.tensor([12.5]), 25.0, PCM_C, 25.0)
    g50 = physics.programming_sigma(torch.tensor([25.0]), 50.0, PCM_C, 25.0)
    torch.testing.assert_close(g50, 2 * g25)


def test_program_clamps_at_zero():
    g_t = torch.tensor([1.0, 1.0, 10.0])
    sigma = torch.tensor([0.5, 0.5, 2.0])
    xi = torch.tensor([1.0, -3.0, -1.5])
    torch.testing.assert_close(physics.program(g_t, sigma, xi), torch.tensor([1.5, 0.0, 7.0]))


def test_drift_exponent_is_folded_and_scaled():
    mu = torch.tensor([0.05, 0.05])
    sd = torch.tensor([0.01, 0.01])
    xi = torch.tensor([1.0, -7.0])
    torch.testing.assert_close(physics.drift_exponent(mu, sd, xi), torch.tensor([0.06, 0.02]))
    torch.testing.assert_close(
        physics.drift_exponent(mu, sd, xi, scale=2.0), torch.tensor([0.12, 0.04])
    )


def test_drift_factor_power_law():
    nu = torch.tensor([0.0, 0.05, 0.1], dtype=torch.float64)
    out = physics.drift_factor(nu, 3600.0, 20.0)
    expected = (3620.0 / 20.0) ** (-nu)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(physics.drift_factor(nu, 0.0, 20.0), torch.ones(3).double())


def test_log_time_variance():
    # PCM read-noise clock at 1 h: ln((3600 + 20 + 250 ns) / 500 ns)
    v = physics.log_time_variance(3620.0, 2.5e-7, 5e-7)
    assert v == pytest.approx(math.log((3620.0 + 2.5e-7) / 5e-7), rel=1e-12)
    assert physics.log_time_variance(0.0, 1.0, 10.0) == 0.0  # clamped: ln(0.1) < 0


def test_read_noise_amplitude_pcm():
    g = torch.tensor([25.0, 12.5, 1e-6, 0.0], dtype=torch.float64)
    out = physics.read_noise_amplitude_pcm(g, 25.0)
    assert float(out[0]) == pytest.approx(0.0088)
    assert float(out[1]) == pytest.approx(0.0088 / 0.5**0.65)
    assert float(out[2]) == 0.2  # capped
    assert float(out[3]) == 0.2


@pytest.mark.parametrize(("bits", "levels"), [(2, 1), (4, 7), (8, 127), (9, 255)])
def test_levels_for_bits(bits, levels):
    assert physics.levels_for_bits(bits) == levels


def test_quantize_symmetric_rounds_and_clips():
    x = torch.tensor([0.26, -0.24, 0.74, 5.0, -5.0])
    out = physics.quantize_symmetric(x, 0.5, 3)
    torch.testing.assert_close(out, torch.tensor([0.5, -0.0, 0.5, 1.5, -1.5]))
