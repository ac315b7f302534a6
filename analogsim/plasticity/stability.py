r"""Stability mechanisms of the plastic adapters: EWC, spectral-norm cap, update clipping,
adaptive rate, decay toward the origin. Pure functions of tensors (the session keeps the
state they need).

* **EWC with activation-based importance** (Kirkpatrick et al. 2017 with the Fisher
  information replaced by activity, as in memory-aware synapses, Aljundi et al. 2018):
  importance ``Omega_A = E[x^2] E[h^2]^T`` ``(d_in, r)`` and ``Omega_B = E[h^2] E[y^2]^T``
  ``(r, d_out)`` (EMAs, normalised to a maximum of 1); the pull
  ``-lam Omega (W - W*)`` toward the anchor ``W*`` (the weights after ``anchor_after``
  updates).
* **Spectral cap**: the largest singular value of the adapter ``s A B`` ``(d_in, d_out)``,
  by power iteration on ``(s A B)^T (s A B)`` with a persistent vector (never forming
  the product: each step is ``s^2 B^T (A^T A) (B v)``); above ``cap`` both factors are
  scaled by ``sqrt(cap / sigma)``.
* **Clip**: an update ``dW`` whose Frobenius norm exceeds ``c`` is scaled to norm ``c``.
* **Adaptive rate**: ``eta_t = eta min(1, ref / sqrt(v_t))``, ``v_t`` an EMA (``beta``) of
  the squared norm of the rule's direction: the step size stays near ``eta ref`` however
  large the activity.
* **Decay**: ``dW -= decay W`` per update (toward the origin).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "activation_importance",
    "adaptive_rate",
    "clip_update",
    "ewc_pull",
    "spectral_norm",
]


def clip_update(d: Tensor, c: float) -> tuple[Tensor, bool]:
    """``(d scaled to Frobenius norm <= c, whether it was scaled)``."""
    n = float(torch.linalg.vector_norm(d))
    if n > c:
        return d * (c / n), True
    return d, False


def spectral_norm(
    a: Tensor, b: Tensor, scale: float, v: Tensor, iterations: int = 3
) -> tuple[float, Tensor]:
    """``(sigma_max(scale a b), v)``: power iteration from ``v`` ``(d_out,)``.

    ``a (d_in, r)``, ``b (r, d_out)``; each iteration computes
    ``v <- B^T (A^T A) (B v)`` normalised (cost ``O((d_in + d_out) r)``).
    """
    gram = a.T @ a  # (r, r)
    for _ in range(iterations):
        w = b.T @ (gram @ (b @ v))  # (d_out,)
        nrm = float(torch.linalg.vector_norm(w))
        if nrm == 0.0 or not math.isfinite(nrm):
            return 0.0 if nrm == 0.0 else math.inf, v
        v = w / nrm
    bv = b @ v  # (r,)
    sigma = abs(scale) * math.sqrt(max(float(bv @ (gram @ bv)), 0.0))
    return sigma, v


def adaptive_rate(
    rate: float, v: float, sq_norm: float, ref: float, beta: float
) -> tuple[float, float]:
    """``(eta_t, v_t)``: ``v_t = beta v + (1 - beta) |d|^2`` (``v = 0`` at the start is
    replaced by ``|d|^2``), ``eta_t = rate min(1, ref / sqrt(v_t))``."""
    v_t = sq_norm if v == 0.0 else beta * v + (1.0 - beta) * sq_norm
    if v_t <= 0.0 or not math.isfinite(v_t):
        return rate, v_t
    return rate * min(1.0, ref / math.sqrt(v_t)), v_t


def activation_importance(pre2: Tensor, post2: Tensor) -> Tensor:
    """``E[pre^2] E[post^2]^T`` normalised to a maximum of 1 (zeros stay zeros)."""
    omega = torch.outer(pre2, post2)
    m = float(omega.max()) if omega.numel() else 0.0
    return omega / m if m > 0 else omega


def ewc_pull(w: Tensor, anchor: Tensor, omega: Tensor, lam: float) -> Tensor:
    """``-lam Omega (W - W*)``: the EWC penalty's descent direction."""
    return -lam * omega * (w - anchor)
