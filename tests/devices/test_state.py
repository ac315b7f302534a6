"""The one-pass device state: counter-based draws, the dyadic Brownian motion, reproducibility.

Tolerances of the statistical checks are derived from the sample size (5 standard errors).
"""

from __future__ import annotations

import math

import pytest
import torch

from analogsim.devices import load_device, state
from analogsim.devices.rng import counter_bits, counter_normal, counter_normal_pair, counter_uniform

N = 1 << 20


def _moments(x: torch.Tensor) -> tuple[float, float, float]:
    x = x.double()
    m = float(x.mean())
    v = float(x.var())
    k = float(((x - m) ** 4).mean()) / v**2
    return m, v, k


def test_counter_normals_have_normal_moments_and_are_independent():
    ctr = torch.arange(N)
    se_mean, se_var = 1 / math.sqrt(N), math.sqrt(2 / N)
    a, b = counter_normal_pair(torch.tensor(12345), ctr, torch.float32)
    c = counter_normal(torch.tensor(777), ctr, torch.float32)
    for x in (a, b, c):
        m, v, k = _moments(x)
        assert abs(m) < 5 * se_mean
        assert abs(v - 1) < 5 * se_var
        assert abs(k - 3) < 5 * math.sqrt(24 / N)  # kurtosis of a normal, its standard error
        # tails: P(|x| > 3) = 0.0027
        p = float((x.abs() > 3).double().mean())
        assert abs(p - 0.0027) < 5 * math.sqrt(0.0027 / N)
    # the two halves of a pair, two streams, neighbouring counters: uncorrelated
    for x, y in ((a, b), (a, c), (c[1:], c[:-1])):
        r = float(torch.corrcoef(torch.stack((x.double(), y.double())))[0, 1])
        assert abs(r) < 5 / math.sqrt(N)


def test_counter_uniforms_are_uniform_and_keys_give_new_streams():
    ctr = torch.arange(N)
    u = counter_uniform(torch.tensor(3), ctr, torch.float64)
    assert float(u.min()) > 0 and float(u.max()) < 1
    hist = torch.histc(u.float(), bins=16, min=0, max=1)
    expected = N / 16
    chi2 = float(((hist - expected) ** 2 / expected).sum())
    assert chi2 < 15 + 5 * math.sqrt(2 * 15)  # chi-square with 15 degrees of freedom
    same = counter_bits(torch.tensor(3), ctr)
    assert torch.equal(same, counter_bits(torch.tensor(3), ctr))  # a pure function
    assert (same != counter_bits(torch.tensor(4), ctr)).float().mean() > 0.99


@pytest.mark.parametrize("v0, dv", [(17.5, 1.0), (0.0, 1.0), (3.0, 0.5)])
def test_brownian_draws_have_the_exact_covariance_of_the_sequential_walk(v0, dv):
    """``B(v)`` as weights of independent normals: covariance min(v, v') at grid points and
    the bridge covariance inside an interval, as the sequential construction (increments
    one by one, bridge draw per interval) has it, exactly."""

    def sequential(v: float) -> dict[tuple, float]:
        x = max(v, v0) - v0
        k = math.floor(x / dv + 1e-12)
        f = x / dv - k
        out = {("root",): math.sqrt(v0)} if v0 > 0 else {}
        for i in range(1, k + 2):
            w = 1.0 if i <= k else f
            if w:
                out[("inc", i)] = w * math.sqrt(dv)
        if f > 1e-12:
            out[("bridge", k)] = math.sqrt(f * (1 - f) * dv)
        return out

    def cov(a: dict, b: dict) -> float:
        return sum(c * b.get(node, 0.0) for node, c in a.items())

    def dyadic(v: float) -> dict:
        return dict(state.noise_draws(v0, dv, v)[2])

    rng = torch.Generator().manual_seed(0)
    top = v0 + 45 * dv  # past the dyadic range (32 intervals): plain increments there
    vs = [v0 + k * dv for k in range(0, 46, 3)] + [
        v0 + float(x) * (top - v0) for x in torch.rand(30, generator=rng, dtype=torch.float64)
    ]
    for va in vs:
        assert math.isclose(cov(dyadic(va), dyadic(va)), max(va, v0), rel_tol=1e-12)
        for vb in vs:
            expected = cov(sequential(va), sequential(vb))
            assert math.isclose(cov(dyadic(va), dyadic(vb)), expected, rel_tol=1e-9, abs_tol=1e-9)
    # a fixed number of draws at any age inside the dyadic range
    assert max(len(state.noise_draws(v0, dv, v)[2]) for v in vs if v < v0 + 32 * dv) <= 9


def _layer_weights(n_out: int, n_in: int, seed: int) -> torch.Tensor:
    return torch.rand(n_out, n_in, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("card", ["pcm", "rram"])
def test_pair_state_is_the_conductances_of_the_pair_and_reproducible(card):
    dev = load_device(card)
    w = _layer_weights(60, 50, 1)
    for t, temp in ((0.0, None), (3600.0, None), (86400.0, 358.0)):
        a = dev.pair_state(w, 7, t, temp)
        assert torch.equal(a, dev.pair_state(w, 7, t, temp))
        g = dev.conductances(dev.targets(w.reshape(-1)), 7, t, temp)
        torch.testing.assert_close(a, ((g[0] - g[1]) / (dev.g_max - dev.g_min)).view_as(w))
        assert not torch.equal(a, dev.pair_state(w, 8, t, temp))


def test_pair_state_does_not_depend_on_the_thread_count():
    dev = load_device("pcm")
    w = _layer_weights(40, 30, 2)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = dev.pair_state(w, 3, 86400.0, 330.0)
        torch.set_num_threads(2)
        two = dev.pair_state(w, 3, 86400.0, 330.0)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


@pytest.mark.slow
def test_compiled_pass_equals_the_eager_pass(monkeypatch):
    """Above the size threshold the pass is one compiled kernel: same formulas and draws
    (integer hashing is exact; transcendentals may differ by an ulp)."""
    dev = load_device("pcm")
    w = _layer_weights(256, state.COMPILE_MIN_ELEMENTS // 256, 3)
    monkeypatch.setenv("ANALOGSIM_COMPILE", "1")
    compiled = dev.pair_state(w, 5, 86400.0, 358.0)
    monkeypatch.setenv("ANALOGSIM_COMPILE", "0")
    eager = dev.pair_state(w, 5, 86400.0, 358.0)
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
