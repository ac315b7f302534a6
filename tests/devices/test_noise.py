"""Statistical weight noise: what sigma means for each built-in, relative scaling, the registry.

Scale meanings (REFERENCES.md, the public noisy-LLM study): gaussian sigma is the std;
uniform values (2U - 1) a lie in [-a, a] (std a/sqrt(3)); laplace scale b has std sqrt(2) b and
E|x| = b; cauchy gamma tan(pi (U - 1/2)) has median |x| = gamma; student-t scale s has std
s sqrt(df/(df - 2)). Tolerances: Z = 5 standard errors of the statistic (tests/devices/_stats.py);
for a sample median, SE = 1/(2 f(m) sqrt(n)) with f the density at the median.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats as sps

from analogsim.devices import noise as noise_mod
from analogsim.devices.noise import get_noise, list_noises, register_noise, weight_noise
from analogsim.errors import ConfigError
from tests.devices._stats import Z, assert_close_mean, assert_close_std

N = 200_000
SIGMA = 0.03


def _draw(name: str, sigma: float = SIGMA, seed: int = 0, **params) -> torch.Tensor:
    w = torch.zeros(N)
    return weight_noise(w, name, sigma, generator=torch.Generator().manual_seed(seed), **params)


def test_builtins_are_registered():
    assert {"gaussian", "uniform", "cauchy", "laplace", "student-t"} <= set(list_noises())


def test_gaussian_sigma_is_the_std():
    x = _draw("gaussian").double()
    assert_close_mean(x, 0.0)
    assert_close_std(x, SIGMA)


def test_uniform_sigma_is_the_half_width():
    x = _draw("uniform").double()
    assert float(x.abs().max()) <= SIGMA
    # the extremes approach +-a: P(max < a (1 - eps)) = (1 - eps/2)^N, negligible at eps = 1e-3
    assert float(x.max()) > SIGMA * (1 - 1e-3) and float(x.min()) < -SIGMA * (1 - 1e-3)
    assert_close_std(x, SIGMA / math.sqrt(3))


def test_laplace_scale_b():
    x = _draw("laplace").double()
    assert_close_mean(x.abs(), SIGMA)  # |x| ~ Exponential(b): E|x| = b
    assert_close_std(x, math.sqrt(2) * SIGMA)


def _assert_median_abs(x: torch.Tensor, median: float, density_at_median: float) -> None:
    se = 1.0 / (2.0 * density_at_median * math.sqrt(x.numel()))
    got = float(x.abs().median())
    assert abs(got - median) <= Z * se, f"median |x| {got:.5g} vs {median:.5g}"


def test_cauchy_median_abs_is_gamma():
    # |x| has density 2/(pi gamma (1 + (x/gamma)^2)): 1/(pi gamma) at x = gamma
    x = _draw("cauchy").double()
    _assert_median_abs(x, SIGMA, 1.0 / (math.pi * SIGMA))
    assert float(x.abs().max()) > 1000 * SIGMA  # heavy tail: P(|x| > 1000 gamma) ~ 6.4e-4


def test_student_t_std_with_df():
    # df = 10: std = s sqrt(10/8); excess kurtosis 6/(df - 4) = 1 (finite 4th moment for SE)
    x = _draw("student-t", df=10.0).double()
    assert_close_std(x, SIGMA * math.sqrt(10.0 / 8.0))


def test_student_t_df_changes_the_shape():
    """df = 2: median |t| = sqrt(2/3) (from F(t) = 1/2 + t/(2 sqrt(2 + t^2))); default df = 3."""
    m2 = math.sqrt(2.0 / 3.0)
    x = _draw("student-t", df=2.0).double()
    _assert_median_abs(x, SIGMA * m2, 2 * sps.t.pdf(m2, 2) / SIGMA)
    m3 = sps.t.ppf(0.75, 3)
    x3 = _draw("student-t").double()
    _assert_median_abs(x3, SIGMA * m3, 2 * sps.t.pdf(m3, 3) / SIGMA)
    assert get_noise("student-t").defaults == {"df": 3.0}


def test_relative_scales_by_weight_std(gen):
    w = torch.randn(N, generator=gen) * 2.5 + 1.0
    x = weight_noise(w, "gaussian", 0.1, generator=gen, relative=True).double()
    assert_close_std(x, 0.1 * float(w.std()))
    y = weight_noise(w, "uniform", 0.1, generator=gen, relative=True)
    assert float(y.abs().max()) <= 0.1 * float(w.std()) * (1 + 1e-6)


def test_noise_is_not_added_and_has_the_weight_shape_dtype():
    w = torch.ones(7, 5, dtype=torch.float64)
    x = weight_noise(w, "gaussian", 0.1, generator=torch.Generator().manual_seed(0))
    assert x.shape == w.shape and x.dtype == torch.float64
    assert torch.equal(w, torch.ones(7, 5, dtype=torch.float64))


@pytest.mark.parametrize("name", ["gaussian", "uniform", "cauchy", "laplace", "student-t"])
def test_same_seed_same_noise(name):
    assert torch.equal(_draw(name, seed=5), _draw(name, seed=5))
    assert not torch.equal(_draw(name, seed=5), _draw(name, seed=6))


def test_zero_sigma_gives_zero():
    assert torch.equal(_draw("cauchy", sigma=0.0), torch.zeros(N))


def test_user_registered_distribution(monkeypatch):
    """A user extends the registry from outside analogsim, then uses it by name."""
    monkeypatch.setattr(noise_mod, "_REGISTRY", dict(noise_mod._REGISTRY))

    @register_noise("rademacher", scale_meaning="magnitude a: values are +a or -a", p=0.5)
    def _rademacher(shape, generator, device, dtype, p):
        u = torch.rand(shape, generator=generator, device=device)
        return torch.where(u < p, 1.0, -1.0).to(dtype)

    assert "rademacher" in list_noises()
    x = _draw("rademacher", sigma=0.2)
    assert x.unique().tolist() == pytest.approx([-0.2, 0.2])
    frac = float((x > 0).double().mean())
    assert abs(frac - 0.5) <= Z * math.sqrt(0.25 / N)
    y = _draw("rademacher", sigma=0.2, p=0.9)
    assert abs(float((y > 0).double().mean()) - 0.9) <= Z * math.sqrt(0.09 / N)


def test_unknown_distribution_lists_known_ones():
    with pytest.raises(ConfigError, match=r"unknown noise distribution.*'pink'.*cauchy, gaussian"):
        _draw("pink")


def test_unknown_parameter_and_bad_sigma():
    with pytest.raises(ConfigError, match=r"key 'nu'.*unknown parameter.*allowed: df"):
        _draw("student-t", nu=3)
    with pytest.raises(ConfigError, match=r"key 'df'.*student-t needs df > 0"):
        _draw("student-t", df=0.0)
    with pytest.raises(ConfigError, match="sigma must be finite and >= 0"):
        _draw("gaussian", sigma=-0.1)
    with pytest.raises(ConfigError, match="sigma must be finite and >= 0"):
        _draw("gaussian", sigma=float("nan"))
