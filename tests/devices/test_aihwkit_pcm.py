"""Side by side with the reference implementation: aihwkit 1.1.0 PCM noise models.

For the same target conductances, aihwkit's three steps (``apply_programming_noise_to_conductance``,
``generate_drift_coefficients``, ``apply_drift_noise_to_conductance``) and analogsim's
``DeviceModel.conductances`` must give the same distribution of G/G_target at every level and
time. analogsim maps a weight onto a pair (G+, G-); aihwkit's noise model acts on single
conductances, so the comparison is per conductance: both get the same 1-D tensor of targets.

Tolerances (independent samples of N each, Z = 5):
* means: |m_a - m_b| <= Z sqrt(SE_a^2 + SE_b^2), SE = s/sqrt(N);
* stds: |s_a - s_b| <= Z sqrt(SE_a^2 + SE_b^2), SE(s) from the fourth moment (_stats.se_std);
* whole distribution: two-sample Kolmogorov-Smirnov, D <= c(alpha) sqrt(2/N) with
  c(alpha) = sqrt(-ln(alpha/2)/2) at alpha = 1e-6 (c = 2.69).
"""

from __future__ import annotations

import math

import pytest
import torch

from analogsim.devices import load_device
from tests.devices._stats import Z, se_mean, se_std

pytest.importorskip("aihwkit")

# aihwkit 1.1.0's HermesNoiseModel indexes with a list of masks (a torch deprecation warning)
pytestmark = pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning")

N = 100_000
LEVELS = (0.05, 0.1, 0.3, 0.6, 1.0)
TIMES = (0.0, 1.0, 3600.0, 86400.0, 365.0 * 86400.0)
KS_C = math.sqrt(-math.log(1e-6 / 2) / 2)


def _aihwkit(model, g_target: torch.Tensor, t: float, seed: int) -> torch.Tensor:
    """aihwkit's programming -> drift coefficients -> drift and accumulated noise.

    aihwkit draws from the global torch RNG: seed it, and restore it afterwards.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        g_prog = model.apply_programming_noise_to_conductance(g_target.clone())
        nu = model.generate_drift_coefficients(g_target.clone())
        return model.apply_drift_noise_to_conductance(g_prog, nu, t)


def _ks(a: torch.Tensor, b: torch.Tensor) -> float:
    """Two-sample Kolmogorov-Smirnov statistic sup |F_a - F_b|."""
    a, _ = a.double().sort()
    b, _ = b.double().sort()
    grid = torch.cat([a, b])
    fa = torch.searchsorted(a, grid, right=True).double() / a.numel()
    fb = torch.searchsorted(b, grid, right=True).double() / b.numel()
    return float((fa - fb).abs().max())


def _compare(ours: torch.Tensor, ref: torch.Tensor, g_t: float) -> None:
    ra, rb = ours.double() / g_t, ref.double() / g_t
    d_mean = abs(float(ra.mean() - rb.mean()))
    assert d_mean <= Z * math.hypot(se_mean(ra), se_mean(rb)), (
        f"mean {float(ra.mean()):.5f} vs aihwkit {float(rb.mean()):.5f}"
    )
    d_std = abs(float(ra.std() - rb.std()))
    assert d_std <= Z * math.hypot(se_std(ra), se_std(rb)), (
        f"std {float(ra.std()):.5f} vs aihwkit {float(rb.std()):.5f}"
    )
    d = _ks(ra, rb)
    assert d <= KS_C * math.sqrt(2.0 / N), f"KS distance {d:.4f}"


@pytest.fixture(scope="module")
def pcm_pair():
    from aihwkit.inference.noise.pcm import PCMLikeNoiseModel

    ref = PCMLikeNoiseModel()
    dev = load_device("pcm")
    assert ref.g_max == dev.g_max
    return dev, ref


@pytest.fixture(scope="module")
def hermes_pair():
    from aihwkit.inference.noise.hermes import HermesNoiseModel

    ref = HermesNoiseModel(num_devices=2)
    dev = load_device("pcm_hermes")
    assert ref.g_max == pytest.approx(dev.g_max)
    assert ref.t_0 == dev.drift.t0_s == dev.read_noise.t0_s
    assert 2 * ref.t_read == pytest.approx(dev.read_noise.t_scale_s)
    return dev, ref


@pytest.mark.parametrize("t", TIMES)
@pytest.mark.parametrize("g_rel", LEVELS)
def test_pcm_like_noise_model(pcm_pair, g_rel, t):
    dev, ref = pcm_pair
    g_t = g_rel * dev.g_max
    target = torch.full((N,), g_t)
    ours = dev.conductances(target, seed=100 + int(100 * g_rel), t_s=t)
    theirs = _aihwkit(ref, target, t, seed=200 + int(100 * g_rel))
    _compare(ours, theirs, g_t)


@pytest.mark.parametrize("t", TIMES)
@pytest.mark.parametrize("g_rel", LEVELS)
def test_hermes_noise_model(hermes_pair, g_rel, t):
    dev, ref = hermes_pair
    g_t = g_rel * dev.g_max
    target = torch.full((N,), g_t)
    ours = dev.conductances(target, seed=300 + int(100 * g_rel), t_s=t)
    theirs = _aihwkit(ref, target, t, seed=400 + int(100 * g_rel))
    _compare(ours, theirs, g_t)


def test_comparison_detects_a_small_change(pcm_pair):
    """The tolerances above are tight enough to see a 5 % change of the drift exponent."""
    dev, ref = pcm_pair
    target = torch.full((N,), dev.g_max)
    changed = dev.with_overrides({"drift.scale": 1.05}).conductances(target, 1, 86400.0)
    theirs = _aihwkit(ref, target, 86400.0, seed=2)
    with pytest.raises(AssertionError):
        _compare(changed, theirs, dev.g_max)
