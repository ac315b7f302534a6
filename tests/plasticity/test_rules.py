"""Each rule of ``analogsim/plasticity/rules.py`` equals its formula, written per sample
(an independent loop, not the batched matrix form); Oja finds the top principal
component; BCM's threshold tracks E[h^2]; user rules register without editing analogsim."""

from __future__ import annotations

import math

import pytest
import torch

from analogsim.errors import ConfigError
from analogsim.plasticity import RULES, Signals, plasticity_config, register_rule
from analogsim.plasticity.rules import bcm, energy, hebbian, oja, predictive

N, D_IN, R, D_OUT, S = 5, 7, 3, 6, 2.0


def _signals(seed: int = 0) -> Signals:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, D_IN, generator=g, dtype=torch.float64)
    a = torch.randn(D_IN, R, generator=g, dtype=torch.float64) * 0.3
    b = torch.randn(R, D_OUT, generator=g, dtype=torch.float64) * 0.3
    y0 = torch.randn(N, D_OUT, generator=g, dtype=torch.float64)
    h = x @ a
    return Signals(x, h, y0, y0 + S * h @ b, a, b, S)


def _outer_mean(pre, post):
    return sum(torch.outer(pre[n], post[n]) for n in range(pre.shape[0])) / pre.shape[0]


def test_hebbian_is_mean_outer_product():
    s = _signals()
    d_a, d_b = hebbian(s, {}, {})
    assert d_a.shape == (D_IN, R) and d_b.shape == (R, D_OUT)
    torch.testing.assert_close(d_a, _outer_mean(s.x, s.h))
    torch.testing.assert_close(d_b, _outer_mean(s.h, s.y))


def test_oja_is_the_subspace_rule():
    s = _signals(1)
    d_a, d_b = oja(s, {}, {})
    exp_a = (
        sum(torch.outer(s.x[n], s.h[n]) - s.A @ torch.outer(s.h[n], s.h[n]) for n in range(N)) / N
    )
    exp_b = (
        sum(torch.outer(s.h[n], s.y[n]) - s.B @ torch.outer(s.y[n], s.y[n]) for n in range(N)) / N
    )
    torch.testing.assert_close(d_a, exp_a)
    torch.testing.assert_close(d_b, exp_b)


def test_oja_rank_one_is_the_designs_formula():
    """For r = 1: dA = x^T h / N - E||h||^2 A (the design's form)."""
    s = _signals(2)
    a = s.A[:, :1].clone()
    h = s.x @ a
    one = Signals(s.x, h, s.y0, s.y, a, s.B[:1], S)
    d_a, _ = oja(one, {}, {})
    torch.testing.assert_close(d_a, s.x.T @ h / N - (h * h).sum(dim=1).mean() * a)


def test_bcm_uses_the_previous_threshold_then_moves_it():
    s = _signals(3)
    th_h = torch.rand(R, dtype=torch.float64)
    th_y = torch.rand(D_OUT, dtype=torch.float64)
    state = {"theta_h": th_h.clone(), "theta_y": th_y.clone()}
    d_a, d_b = bcm(s, state, {"tau": 0.1})
    exp_a = sum(torch.outer(s.x[n], s.h[n] * (s.h[n] - th_h)) for n in range(N)) / N
    exp_b = sum(torch.outer(s.h[n], s.y[n] * (s.y[n] - th_y)) for n in range(N)) / N
    torch.testing.assert_close(d_a, exp_a)
    torch.testing.assert_close(d_b, exp_b)
    torch.testing.assert_close(state["theta_h"], th_h + 0.1 * ((s.h**2).mean(0) - th_h))
    torch.testing.assert_close(state["theta_y"], th_y + 0.1 * ((s.y**2).mean(0) - th_y))


def test_predictive_coding_shapes_and_formula():
    s = _signals(4)
    d_a, d_b = predictive(s, {}, {})
    assert d_a.shape == s.A.shape and d_b.shape == s.B.shape
    exp_a = torch.zeros_like(s.A)
    exp_b = torch.zeros_like(s.B)
    for n in range(N):
        e_x = s.x[n] - s.A @ s.h[n]  # (d_in,)
        e_y = s.y0[n] - s.B.T @ s.h[n]  # (d_out,)
        exp_a += torch.outer(e_x, s.h[n]) + torch.outer(s.x[n], s.B @ e_y)
        exp_b += torch.outer(s.h[n], e_y)
    torch.testing.assert_close(d_a, exp_a / N)
    torch.testing.assert_close(d_b, exp_b / N)


def test_energy_descends_its_energy():
    """The energy rule is minus the gradient of E = -mean <y0, s h B> + lam/2 ||A,B||^2."""
    s = _signals(5)
    lam = 0.05
    a = s.A.clone().requires_grad_(True)
    b = s.B.clone().requires_grad_(True)
    e = -(s.y0 * (S * (s.x @ a) @ b)).sum(dim=1).mean() + lam / 2 * (
        a.pow(2).sum() + b.pow(2).sum()
    )
    e.backward()
    d_a, d_b = energy(s, {}, {"lam": lam})
    torch.testing.assert_close(d_a, -a.grad)
    torch.testing.assert_close(d_b, -b.grad)


def test_oja_converges_to_the_top_principal_component():
    """r = 1 on data with covariance eigenvalues (4, 1, 0.5, ...): |cos| to PC1 -> 1."""
    g = torch.Generator().manual_seed(7)
    d = 8
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    scales = torch.tensor([2.0, 1.0, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
    a = torch.randn(d, 1, generator=g, dtype=torch.float64) * 0.1
    b = torch.zeros(1, 1, dtype=torch.float64)
    eta = 0.005
    for _ in range(4000):
        x = (torch.randn(4, d, generator=g, dtype=torch.float64) * scales) @ q.T  # (4, d)
        h = x @ a
        d_a, _ = oja(Signals(x, h, h, h, a, b, 1.0), {}, {})
        a = a + eta * d_a
    pc1 = q[:, 0]
    cos = float((a[:, 0] @ pc1).abs() / a.norm())
    # stationary angle error of Oja at rate eta is O(sqrt(eta)) ~ 0.07 rad here
    assert cos > 0.99
    assert float(a.norm()) == pytest.approx(1.0, abs=0.1)  # Oja normalises the weights


def test_bcm_threshold_tracks_mean_h_squared():
    """theta_h, an EMA of h^2, ends within 4 standard errors of E[h^2] = diag(A^T C A)."""
    g = torch.Generator().manual_seed(11)
    a = torch.randn(D_IN, R, generator=g, dtype=torch.float64) * 0.5
    b = torch.zeros(R, 2, dtype=torch.float64)
    state: dict = {}
    tau = 0.01
    for _ in range(3000):
        x = torch.randn(1, D_IN, generator=g, dtype=torch.float64)
        h = x @ a
        bcm(Signals(x, h, h[:, :2] * 0, h[:, :2] * 0, a, b, 1.0), state, {"tau": tau})
    expect = (a * a).sum(dim=0)  # E[h_j^2] for x ~ N(0, I)
    # h_j ~ N(0, v): Var(h^2) = 2 v^2; the EMA's variance is Var * tau / (2 - tau)
    sd = expect * math.sqrt(2.0) * math.sqrt(tau / (2 - tau))
    assert torch.all((state["theta_h"] - expect).abs() < 4 * sd)


def test_user_rule_registers_without_editing_analogsim():
    @register_rule("test_anti_hebbian", defaults={"k": 2.0})
    def anti(sig, state, params):
        n = sig.x.shape[0]
        return -params["k"] * sig.x.T @ sig.h / n, -params["k"] * sig.h.T @ sig.y / n

    try:
        cfg = plasticity_config("test_anti_hebbian")
        assert cfg.rules == {"test_anti_hebbian": 1.0}
        assert cfg.rule_params["test_anti_hebbian"] == {"k": 2.0}
        s = _signals()
        d_a, _ = RULES["test_anti_hebbian"].fn(s, {}, {"k": 2.0})
        torch.testing.assert_close(d_a, -2.0 * hebbian(s, {}, {})[0])
    finally:
        RULES.pop("test_anti_hebbian")
    with pytest.raises(ConfigError, match="unknown plasticity rule"):
        plasticity_config("test_anti_hebbian")


def test_placebo_writes_hebbians_amount_in_a_random_direction() -> None:
    from analogsim.plasticity.rules import placebo

    s = _signals()
    ha, hb = hebbian(s, {}, {})
    first = placebo(s, {"_seed": 3}, {})
    again = placebo(s, {"_seed": 3}, {})
    other = placebo(s, {"_seed": 4}, {})
    for d, h in zip(first, (ha, hb), strict=True):
        assert d.shape == h.shape
        torch.testing.assert_close(d.norm(), h.norm())
        # unrelated to the Hebbian direction: |cos| of two random directions in D
        # dimensions is about 1/sqrt(D); 6/sqrt(D) is never reached by chance here
        cos = float((d * h).sum() / (d.norm() * h.norm()))
        assert abs(cos) < 6.0 / h.numel() ** 0.5
    for a, b in zip(first, again, strict=True):
        torch.testing.assert_close(a, b)  # same seed, same draws
    assert not torch.allclose(first[0], other[0])
    state: dict = {"_seed": 3}
    one, two = placebo(s, state, {})[0], placebo(s, state, {})[0]
    assert not torch.allclose(one, two)  # a fresh draw per update
