"""Tests for analogsim.clock.schedules: sigma(k) values and the noise applied per token."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from analogsim.clock.schedules import (
    Constant,
    Exponential,
    Linear,
    Sine,
    Step,
    StepSchedule,
    parse_schedule,
    standard_draw,
)
from analogsim.errors import ConfigError

N_WEIGHTS = 1_000_000
# For n independent N(0, s^2) samples the sample std has a standard deviation of about
# s / sqrt(2 n) (0.07 % of s for n = 1e6). Five of those is the tolerance: a correct
# construction fails it with probability ~6e-7, and it is 50x tighter than the errors the
# wrong construction makes below.
STD_TOL = 5.0 / math.sqrt(2 * N_WEIGHTS)


@pytest.fixture(scope="module")
def xi() -> torch.Tensor:
    """One fixed standard draw per weight, from a seeded generator."""
    gen = torch.Generator().manual_seed(1234)
    return standard_draw((1000, N_WEIGHTS // 1000), generator=gen, dtype=torch.float64)


def std_matches(x: torch.Tensor, sigma: float) -> bool:
    """Population std of ``x`` within STD_TOL (relative) of ``sigma``."""
    return abs(x.std(correction=0).item() - sigma) <= STD_TOL * sigma


def wrong_cumulative_noise(schedule, k: int, shape, generator) -> torch.Tensor:
    """The construction NOT to use (the public noisy-LLM study): add a fresh independent
    draw at every token, sized by the schedule's step, W_k = W_{k-1} + delta_k.

    Its std after k tokens is sqrt(sum_j (sigma(j) - sigma(j-1))^2), e.g.
    sigma_end / sqrt(n - 1) for a linear ramp from 0, and it can never go down.
    """
    acc = torch.zeros(shape, dtype=torch.float64)
    for j in range(1, k + 1):
        step = abs(schedule.sigma(j) - schedule.sigma(j - 1))
        acc += step * torch.randn(shape, generator=generator, dtype=torch.float64)
    return acc


# ------------------------------------------------------------------------------------------
# sigma(k)


def test_linear_values_exact_at_ends_and_hold():
    s = Linear(0.1, 0.3, 11)
    assert s.sigma(0) == 0.1
    assert s.sigma(10) == 0.3  # exact, not 0.30000000000000004
    assert s.sigma(5) == pytest.approx(0.2, rel=1e-15)
    assert s.sigma(1000) == 0.3
    assert Linear(0.0, 0.02, 1).sigma(0) == 0.0
    np.testing.assert_array_equal(s.sigma(np.arange(11)), [s.sigma(k) for k in range(11)])
    assert s.sigma(np.arange(6).reshape(2, 3)).shape == (2, 3)


def test_exponential_is_geometric_with_exact_ends():
    s = Exponential(0.001, 0.1, 5)
    values = s.sigma(np.arange(5))
    assert values[0] == 0.001
    assert values[-1] == 0.1
    np.testing.assert_allclose(values[1:] / values[:-1], math.sqrt(math.sqrt(100.0)), rtol=1e-13)
    assert s.sigma(99) == 0.1


def test_exponential_from_and_to_zero_uses_the_floor():
    up = Exponential(0.0, 0.02, 11)
    assert up.sigma(0) == 0.0
    assert up.sigma(10) == 0.02
    # geometric from floor = 2e-5 (at k = 0, replaced by 0) to 0.02
    assert up.sigma(1) == pytest.approx(2e-5 * 1000.0**0.1, rel=1e-13)
    assert up.sigma(5) == pytest.approx(2e-5 * 1000.0**0.5, rel=1e-13)
    down = Exponential(0.02, 0.0, 11, floor=1e-4)
    assert down.sigma(0) == 0.02
    assert down.sigma(10) == 0.0
    assert down.sigma(9) == pytest.approx(0.02 * (1e-4 / 0.02) ** 0.9, rel=1e-13)
    assert np.all(Exponential(0.0, 0.0, 4).sigma(np.arange(4)) == 0.0)


def test_step_staircase_sine_constant_values():
    step = Step(0.01, 0.0, 5)
    np.testing.assert_array_equal(step.sigma(np.arange(7)), [0.01] * 5 + [0.0] * 2)
    stairs = StepSchedule((0.0, 0.01, 0.03), every=2)
    np.testing.assert_array_equal(
        stairs.sigma(np.arange(8)), [0, 0, 0.01, 0.01, 0.03, 0.03, 0.03, 0.03]
    )
    sine = Sine(0.0, 0.02, 8)
    np.testing.assert_allclose(
        sine.sigma(np.array([0, 2, 4, 6, 8, 12])), [0, 0.01, 0.02, 0.01, 0, 0.02], atol=1e-17
    )
    assert Constant(0.5).sigma(123) == 0.5


def test_sigma_rejects_negative_token():
    with pytest.raises(ValueError, match="finite and >= 0"):
        Linear(0.0, 1.0, 3).sigma(-1)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Linear(-0.1, 0.2, 5), "key 'start': sigma must be finite and >= 0"),
        (lambda: Linear(0.0, 0.2, 0), "key 'n': must be >= 1"),
        (lambda: Linear(0.0, 0.2, 2.5), "key 'n': not an integer"),
        (lambda: Exponential(0.0, 0.2, 5, floor=0.0), "key 'floor': floor must be > 0"),
        (lambda: Step(0.0, math.nan, 3), "key 'after'"),
        (lambda: StepSchedule((), 2), "needs at least one value"),
        (lambda: StepSchedule((0.1,), 0), "key 'every': must be >= 1"),
        (lambda: Sine(0.2, 0.1, 10), "high is below low"),
        (lambda: Sine(0.0, 0.1, 0), "period must be > 0 tokens"),
    ],
)
def test_invalid_schedules(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


@settings(max_examples=100, deadline=None)
@given(
    start=st.floats(0.0, 1.0),
    end=st.floats(0.0, 1.0),
    n=st.integers(1, 5000),
    frac=st.floats(0.0, 1.0),
    geometric=st.booleans(),
)
def test_monotone_schedules_stay_between_their_ends(start, end, n, frac, geometric):
    s = Exponential(start, end, n) if geometric else Linear(start, end, n)
    k = round(frac * (n - 1))
    value = s.sigma(k)
    lo, hi = min(start, end), max(start, end)
    if geometric and min(start, end) == 0.0:
        lo = 0.0
    assert lo * (1 - 1e-12) <= value <= hi * (1 + 1e-12)
    assert s.sigma(0) == start
    assert s.sigma(n - 1) == (end if n > 1 else start)


# ------------------------------------------------------------------------------------------
# the perturbation per token


def test_noise_at_is_sigma_times_the_fixed_draw(xi):
    s = Linear(0.0, 0.02, 50)
    before = xi.clone()
    for k in (0, 1, 17, 49):
        out = s.noise_at(k, xi)
        assert torch.equal(out, xi * s.sigma(k))
        assert out.dtype == xi.dtype and out.shape == xi.shape
    assert torch.equal(xi, before)  # the draw is never modified
    assert torch.count_nonzero(s.noise_at(0, xi)) == 0


@pytest.mark.parametrize(
    "schedule",
    [
        Linear(0.0, 0.02, 100),
        Exponential(0.001, 0.05, 100),
        Sine(0.005, 0.03, 40),
        Step(0.03, 0.01, 60),
    ],
)
def test_perturbation_std_is_exactly_sigma_at_every_token(xi, schedule):
    for k in (1, 10, 37, 60, 99):
        sigma = schedule.sigma(k)
        assert std_matches(schedule.noise_at(k, xi), sigma), (k, sigma)


def test_perturbation_shrinks_when_the_schedule_goes_down(xi):
    s = Linear(0.03, 0.005, 20)
    early, late = s.noise_at(2, xi), s.noise_at(18, xi)
    assert torch.all(late.abs() <= early.abs())
    assert late.std() < 0.5 * early.std()
    # continuous in k: neighbouring tokens differ by |sigma(k+1) - sigma(k)| * |xi|
    step = (s.noise_at(11, xi) - s.noise_at(10, xi)).abs().max().item()
    assert step == pytest.approx(abs(s.sigma(11) - s.sigma(10)) * xi.abs().max().item(), rel=1e-9)


def test_wrong_cumulative_increment_construction_fails_the_same_check():
    n = 50
    s = Linear(0.0, 0.02, n)
    gen = torch.Generator().manual_seed(7)
    shape = (20_000,)
    wrong = wrong_cumulative_noise(s, n - 1, shape, gen)
    # accumulated std: sqrt(49 * (0.02 / 49)^2) = 0.02 / sqrt(49), a seventh of the schedule
    # (sample std of 20k draws: within 0.5 % of the truth, so 3 % is a loose bound)
    assert wrong.std(correction=0).item() == pytest.approx(0.02 / math.sqrt(n - 1), rel=0.03)
    assert not std_matches(wrong, s.sigma(n - 1))
    right = s.noise_at(n - 1, standard_draw(shape, generator=gen, dtype=torch.float64))
    assert abs(right.std(correction=0).item() - 0.02) <= 5 * 0.02 / math.sqrt(2 * shape[0])
    # and it cannot go down: a decreasing schedule still accumulates variance
    down = Linear(0.02, 0.0, n)
    gen.manual_seed(8)
    assert wrong_cumulative_noise(down, n - 1, shape, gen).std() > 0.002
    assert down.sigma(n - 1) == 0.0


def test_standard_draw_is_seeded_and_standard():
    a = standard_draw((4, 5), generator=torch.Generator().manual_seed(3))
    b = standard_draw((4, 5), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert a.dtype == torch.float32
    with pytest.raises(TypeError, match=r"torch\.Generator"):
        standard_draw((2,), generator=None)


def test_noise_at_argument_errors():
    s = Constant(0.1)
    with pytest.raises(TypeError, match="floating-point"):
        s.noise_at(0, torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="one token index"):
        s.noise_at(np.arange(2), torch.zeros(3))


# ------------------------------------------------------------------------------------------
# command-line grammar


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.01", Constant(0.01)),
        ("const:0.01", Constant(0.01)),
        ("linear:0:0.02", Linear(0.0, 0.02, 64)),
        ("exp:0.001:0.05", Exponential(0.001, 0.05, 64)),
        ("exponential:0:0.05:1e-5", Exponential(0.0, 0.05, 64, 1e-5)),
        ("step:0:0.02:32", Step(0.0, 0.02, 32)),
        ("steps:0,0.01,0.02:16", StepSchedule((0.0, 0.01, 0.02), 16)),
        ("sine:0:0.02:12.5", Sine(0.0, 0.02, 12.5)),
        (" LINEAR:0:0.02 ", Linear(0.0, 0.02, 64)),
    ],
)
def test_parse_schedule_forms_and_round_trip(text, expected):
    got = parse_schedule(text, 64)
    assert got == expected
    assert parse_schedule(got.spec(), 64) == got


@pytest.mark.parametrize(
    ("text", "n", "match"),
    [
        ("", 10, "empty sigma schedule"),
        ("linear:0", 10, "linear takes 2 fields, got 1; write linear:START:END"),
        ("linear:0:x", 10, "sigma 'x' is not a finite number"),
        ("linear:0:-0.1", 10, "sigma '-0.1' is negative"),
        ("cubic:0:1", 10, "unknown schedule kind 'cubic'"),
        ("step:0:0.1:2.5", 10, "AT_TOKEN '2.5' is not an integer"),
        ("steps::4", 10, "at least one value"),
        ("steps:0.1:0", 10, "EVERY_TOKENS must be >= 1"),
        ("sine:0:0.1:0", 10, "PERIOD_TOKENS must be > 0"),
        ("sine:0.1:0:5", 10, "high is below low"),
        ("exp:0:0.1:0", 10, "floor must be > 0"),
        ("linear:0:0.1", 0, "key 'n_tokens': must be >= 1"),
    ],
)
def test_parse_schedule_errors(text, n, match):
    with pytest.raises(ConfigError, match=match) as info:
        parse_schedule(text, n)
    if n > 0:
        assert "allowed: SIGMA or const:SIGMA, linear:START:END" in str(info.value)
