r"""Local learning rules for a LoRA adapter, each exactly its formula, and their registry.

The adapter on a layer with input ``x`` and base output ``y0`` adds ``s h B`` with
``h = x A`` and ``s = alpha / r``. One update sees the ``N`` positions of one forward
(the prompt at the first token, one position per later token):

==========  ===============  =====================================================
symbol      shape            meaning
==========  ===============  =====================================================
``x``       ``(N, d_in)``    the layer's input (pre-synaptic activity of ``A``)
``A``       ``(d_in, r)``    down projection (read values: drifted, written by pulses)
``h``       ``(N, r)``       ``x A``: the adapter's code (post of ``A``, pre of ``B``)
``B``       ``(r, d_out)``   up projection
``y0``      ``(N, d_out)``   the base layer's output (analog, as the chip computes it)
``y``       ``(N, d_out)``   ``y0 + s h B``: the layer's output with the adapter
==========  ===============  =====================================================

A rule returns the *direction* ``(dA, dB)`` (shapes of ``A`` and ``B``); the session
multiplies it by the rate, mixes rules, applies the stability mechanisms and writes it
through the device update model. ``mean_n`` is the mean over the ``N`` positions.

* **hebbian**: ``dA = x^T h / N``, ``dB = h^T y / N``.
* **oja** (Oja's subspace rule, Oja 1989; for ``r = 1`` it is Oja 1982 and the
  design's ``x^T h / N - E||h||^2 A``): ``dA = (x^T h - A h^T h) / N``,
  ``dB = (h^T y - B y^T y) / N``. The design's scalar decay ``E||h||^2 A`` for ``r > 1``
  makes every column converge to the same top component; the subspace form keeps them
  apart (it converges to an orthonormal basis of the top-``r`` principal subspace).
* **bcm** (Bienenstock, Cooper & Munro 1982; Intrator & Cooper 1992): sliding thresholds
  ``theta_h (r,)``, ``theta_y (d_out,)``; ``dA = x^T (h * (h - theta_h)) / N``,
  ``dB = h^T (y * (y - theta_y)) / N`` with the thresholds before this update, then
  ``theta <- theta + tau (mean_n h^2 - theta)`` (an EMA of ``h^2``, so ``theta -> E[h^2]``).
* **predictive** (predictive coding, two local error units; the design's version
  multiplied an ``(N, d_in)`` error by an ``(N, d_out)`` activity): the code predicts the
  input, ``e_x = x - h A^T (N, d_in)``, and the base output, ``e_y = y0 - h B (N, d_out)``;
  ``dA = e_x^T h / N + x^T (e_y B^T) / N`` (``(d_in, r)``), ``dB = h^T e_y / N``
  (``(r, d_out)``).
* **energy** (coherence: gradient descent on
  ``E = -mean_n <y0_n, s h_n B> + lam/2 (||A||^2 + ||B||^2)``, which rewards an adapter
  output aligned with what the layer computes): ``dA = s x^T (y0 B^T) / N - lam A``,
  ``dB = s h^T y0 / N - lam B``.
* **placebo** (a control, not a learning rule): random directions with the Frobenius norms
  of hebbian's ``dA`` and ``dB``: as much is written, with no signal in it.

Users add a rule without editing analogsim:

.. code-block:: python

    from analogsim.plasticity import register_rule

    @register_rule("anti_hebbian", defaults={"k": 1.0})
    def anti_hebbian(sig, state, params):
        n = sig.x.shape[0]
        return -params["k"] * sig.x.T @ sig.h / n, -params["k"] * sig.h.T @ sig.y / n
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from analogsim.errors import ConfigError

__all__ = [
    "RULES",
    "RuleSpec",
    "Signals",
    "bcm",
    "check_direction",
    "energy",
    "get_rule",
    "hebbian",
    "oja",
    "predictive",
    "register_rule",
]


@dataclass
class Signals:
    """What one forward showed one adapter (shapes in the module docstring)."""

    x: Tensor
    h: Tensor
    y0: Tensor
    y: Tensor
    A: Tensor
    B: Tensor
    scale: float


RuleFn = Callable[[Signals, dict[str, Any], dict[str, Any]], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class RuleSpec:
    """A registered rule: its function ``fn(signals, state, params) -> (dA, dB)``, its
    default parameters and a one-line description. ``state`` is a per-adapter dict the
    rule may keep things in (BCM's thresholds)."""

    name: str
    fn: RuleFn
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


RULES: dict[str, RuleSpec] = {}


def register_rule(
    name: str, *, defaults: dict[str, Any] | None = None, description: str = ""
) -> Callable[[RuleFn], RuleFn]:
    """Register a rule under ``name`` (a decorator); then ``--plasticity name`` and
    ``[rules] name = weight`` in a plasticity config use it."""

    def deco(fn: RuleFn) -> RuleFn:
        doc = description or (fn.__doc__ or "").strip().split("\n")[0]
        RULES[name] = RuleSpec(name, fn, dict(defaults or {}), doc)
        return fn

    return deco


def get_rule(name: str, *, file: Any = None, key: str = "plasticity") -> RuleSpec:
    """The registered rule ``name`` (a ConfigError listing them otherwise)."""
    if name not in RULES:
        raise ConfigError(
            "unknown plasticity rule",
            file=file,
            key=key,
            value=name,
            allowed=", ".join(RULES) + " (or one registered with register_rule)",
        )
    return RULES[name]


@register_rule("hebbian", description="dA = x^T h / N, dB = h^T y / N")
def hebbian(sig: Signals, state: dict[str, Any], params: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """Plain Hebbian: ``dA = x^T h / N`` ``(d_in, r)``, ``dB = h^T y / N`` ``(r, d_out)``."""
    n = sig.x.shape[0]
    return sig.x.T @ sig.h / n, sig.h.T @ sig.y / n


@register_rule("oja", description="Oja's subspace rule: dA = (x^T h - A h^T h)/N")
def oja(sig: Signals, state: dict[str, Any], params: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """Oja's subspace rule: ``dA = (x^T h - A (h^T h)) / N``, ``dB = (h^T y - B (y^T y)) / N``."""
    n = sig.x.shape[0]
    d_a = sig.x.T @ sig.h - sig.A @ (sig.h.T @ sig.h)  # (d_in, r)
    d_b = sig.h.T @ sig.y - (sig.B @ sig.y.T) @ sig.y  # (r, d_out)
    return d_a / n, d_b / n


@register_rule(
    "bcm", defaults={"tau": 0.01}, description="BCM with sliding threshold theta = EMA of h^2"
)
def bcm(sig: Signals, state: dict[str, Any], params: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """BCM: ``dA = x^T (h (h - theta_h)) / N``, ``dB = h^T (y (y - theta_y)) / N``; then
    ``theta <- theta + tau (mean_n h^2 - theta)`` (``state["theta_h"] (r,)``,
    ``state["theta_y"] (d_out,)``; start at the first update's ``mean_n h^2``)."""
    n = sig.x.shape[0]
    tau = float(params["tau"])
    h2 = (sig.h * sig.h).mean(dim=0)  # (r,)
    y2 = (sig.y * sig.y).mean(dim=0)  # (d_out,)
    th = state.get("theta_h")
    ty = state.get("theta_y")
    if th is None:
        th, ty = h2.clone(), y2.clone()
    d_a = sig.x.T @ (sig.h * (sig.h - th)) / n  # (d_in, r)
    d_b = sig.h.T @ (sig.y * (sig.y - ty)) / n  # (r, d_out)
    state["theta_h"] = th + tau * (h2 - th)
    state["theta_y"] = ty + tau * (y2 - ty)
    return d_a, d_b


@register_rule("predictive", description="predictive coding: the code predicts x and y0")
def predictive(
    sig: Signals, state: dict[str, Any], params: dict[str, Any]
) -> tuple[Tensor, Tensor]:
    """Predictive coding: ``e_x = x - h A^T``, ``e_y = y0 - h B``;
    ``dA = (e_x^T h + x^T (e_y B^T)) / N``, ``dB = h^T e_y / N``."""
    n = sig.x.shape[0]
    e_x = sig.x - sig.h @ sig.A.T  # (N, d_in)
    e_y = sig.y0 - sig.h @ sig.B  # (N, d_out)
    d_a = (e_x.T @ sig.h + sig.x.T @ (e_y @ sig.B.T)) / n  # (d_in, r)
    d_b = sig.h.T @ e_y / n  # (r, d_out)
    return d_a, d_b


@register_rule(
    "energy",
    defaults={"lam": 0.01},
    description="coherence energy: descend -<y0, s h B> + lam/2 ||A,B||^2",
)
def energy(sig: Signals, state: dict[str, Any], params: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """Coherence energy: ``dA = s x^T (y0 B^T) / N - lam A``, ``dB = s h^T y0 / N - lam B``."""
    n = sig.x.shape[0]
    lam = float(params["lam"])
    d_a = sig.scale * sig.x.T @ (sig.y0 @ sig.B.T) / n - lam * sig.A  # (d_in, r)
    d_b = sig.scale * sig.h.T @ sig.y0 / n - lam * sig.B  # (r, d_out)
    return d_a, d_b


@register_rule(
    "placebo", description="control: random directions with the Frobenius norms of hebbian's"
)
def placebo(sig: Signals, state: dict[str, Any], params: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """The study's control, no learning signal: ``dA (d_in, r)`` and ``dB (r, d_out)`` with
    independent standard-normal entries (a fresh draw per update from the adapter's own
    generator, seeded by the session through ``state["_seed"]``), each scaled to the
    Frobenius norm of hebbian's direction at this step, so the same amount is written as
    a Hebbian rule would write, in a random direction."""
    ha, hb = hebbian(sig, state, params)
    gen = state.get("gen")
    if gen is None:
        gen = torch.Generator().manual_seed(int(state.get("_seed", 0)))
        state["gen"] = gen
    ra = torch.randn(tuple(ha.shape), generator=gen, dtype=ha.dtype).to(ha.device)
    rb = torch.randn(tuple(hb.shape), generator=gen, dtype=hb.dtype).to(hb.device)
    return ra * (ha.norm() / ra.norm().clamp_min(1e-30)), rb * (
        hb.norm() / rb.norm().clamp_min(1e-30)
    )


def check_direction(t: Tensor, like: Tensor, rule: str, which: str) -> Tensor:
    """A rule's ``d<which>``: the right shape (else a ConfigError naming the rule), NaN and
    inf set to 0."""
    if t.shape != like.shape:
        raise ConfigError(
            f"rule '{rule}' returned d{which} of shape {tuple(t.shape)}",
            key="plasticity",
            value=rule,
            allowed=f"shape {tuple(like.shape)} (the shape of {which})",
        )
    return torch.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0)
