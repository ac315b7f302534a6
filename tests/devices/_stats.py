"""Standard errors for statistical tests (tolerances are a number of these, never guesses).

* mean of n samples: SE = s / sqrt(n)
* standard deviation of n samples: Var(s^2) = (m4 - s^4)/n, so by the delta method
  SE(s) = sqrt(m4 - s^4) / (2 s sqrt(n)); for a Gaussian m4 = 3 s^4 and SE(s) = s/sqrt(2n)
* a binomial count of n trials with probability p: SE = sqrt(n p (1 - p))
"""

from __future__ import annotations

import math

from torch import Tensor

Z = 5.0
"""Tolerance in standard errors: a correct implementation fails with probability < 1e-6."""


def se_mean(x: Tensor) -> float:
    """Standard error of the sample mean of ``x`` (flattened)."""
    x = x.double().flatten()
    return float(x.std()) / math.sqrt(x.numel())


def se_std(x: Tensor) -> float:
    """Standard error of the sample standard deviation of ``x``, from its fourth moment.

    Valid for any distribution with a finite fourth moment (delta method on s^2).
    """
    x = x.double().flatten()
    n = x.numel()
    d = x - x.mean()
    m2 = float(d.pow(2).mean())
    m4 = float(d.pow(4).mean())
    return math.sqrt(max(m4 - m2 * m2, 0.0) / n) / (2.0 * math.sqrt(m2))


def se_binomial_fraction(p: float, n: int) -> float:
    """Standard error of an observed fraction with true probability ``p`` over ``n`` trials."""
    return math.sqrt(p * (1.0 - p) / n)


def assert_close_mean(x: Tensor, expected: float, extra_se: float = 0.0, z: float = Z) -> None:
    """``mean(x)`` within ``z`` standard errors of ``expected`` (``extra_se``: SE of expected)."""
    se = math.hypot(se_mean(x), extra_se)
    got = float(x.double().mean())
    assert abs(got - expected) <= z * se, (
        f"mean {got:.6g} vs {expected:.6g}: {abs(got - expected) / se:.1f} SE"
    )


def assert_close_std(x: Tensor, expected: float, extra_se: float = 0.0, z: float = Z) -> None:
    """``std(x)`` within ``z`` standard errors of ``expected``."""
    se = math.hypot(se_std(x), extra_se)
    got = float(x.double().std())
    assert abs(got - expected) <= z * se, (
        f"std {got:.6g} vs {expected:.6g}: {abs(got - expected) / se:.1f} SE"
    )


def normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def folded_normal_mgf(a: float, mu: float, sigma: float) -> float:
    """``E[exp(-a |X|)]`` for ``X ~ N(mu, sigma^2)`` (exact).

    Split at 0: E[exp(-a X); X > 0] + E[exp(a X); X < 0], each a shifted Gaussian integral:
    exp(-a mu + a^2 s^2/2) Phi(mu/s - a s) + exp(a mu + a^2 s^2/2) Phi(-mu/s - a s).
    """
    s = sigma
    return math.exp(-a * mu + 0.5 * a * a * s * s) * normal_cdf(mu / s - a * s) + math.exp(
        a * mu + 0.5 * a * a * s * s
    ) * normal_cdf(-mu / s - a * s)


def rectified_normal_moments(mu: float, sigma: float) -> tuple[float, float]:
    """Mean and std of ``max(0, X)`` for ``X ~ N(mu, sigma^2)`` (exact).

    With a = mu/sigma, phi and Phi the standard normal pdf and cdf:
    E = mu Phi(a) + sigma phi(a); E[Y^2] = (mu^2 + sigma^2) Phi(a) + mu sigma phi(a).
    """
    a = mu / sigma
    phi = math.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)
    cdf = normal_cdf(a)
    m1 = mu * cdf + sigma * phi
    m2 = (mu * mu + sigma * sigma) * cdf + mu * sigma * phi
    return m1, math.sqrt(max(m2 - m1 * m1, 0.0))
