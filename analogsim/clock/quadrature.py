"""Adaptive Gauss-Legendre quadrature of a smooth positive function over given intervals,
and an adaptive integrator of an age ODE whose constant-temperature flow is known.

Used by :mod:`analogsim.clock.profiles` for the Arrhenius integral of a temperature
profile between its breakpoints, to a relative accuracy of about 1e-13 (:func:`integrate`),
and for the demarcation-energy relaxation age, to about 1e-11 (:func:`evolve`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

__all__ = ["edges", "evolve", "integrate"]

_GL_ORDER = 16
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(_GL_ORDER)
_QUAD_RTOL = 1e-13
_QUAD_MAX_ROUNDS = 60
_QUAD_CHUNK = 16384  # intervals per vectorised batch (memory: 3 * 16 * chunk floats)


def _gauss_legendre(
    f: Callable[[np.ndarray], np.ndarray], a: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """16-point Gauss-Legendre estimate of the integral of ``f`` on each ``[a_i, b_i]``."""
    half = 0.5 * (b - a)  # (M,)
    mid = 0.5 * (a + b)  # (M,)
    nodes = mid[:, None] + half[:, None] * _GL_NODES[None, :]  # (M, 16)
    values = f(nodes.reshape(-1)).reshape(nodes.shape)  # (M, 16)
    return half * (values @ _GL_WEIGHTS)  # (M,)


def integrate(f: Callable[[np.ndarray], np.ndarray], edges: np.ndarray) -> float:
    """Adaptive Gauss-Legendre integral of a positive, vectorised ``f`` over ``edges``.

    ``f`` must be smooth (analytic) inside each ``[edges[i], edges[i+1]]``. Each interval
    is accepted when the 16-point rule on it and on its two halves agree to
    ``_QUAD_RTOL`` relative (the two-halves value is kept); otherwise it is bisected.
    The pieces are summed with ``math.fsum``.
    """
    a_all = np.asarray(edges[:-1], dtype=float)
    b_all = np.asarray(edges[1:], dtype=float)
    keep = b_all > a_all
    a_all, b_all = a_all[keep], b_all[keep]
    accepted: list[np.ndarray] = []
    for lo in range(0, a_all.size, _QUAD_CHUNK):
        a, b = a_all[lo : lo + _QUAD_CHUNK], b_all[lo : lo + _QUAD_CHUNK]
        for round_ in range(_QUAD_MAX_ROUNDS):
            if a.size == 0:
                break
            m = 0.5 * (a + b)
            both = _gauss_legendre(f, np.concatenate([a, a, m]), np.concatenate([b, m, b]))
            whole, left, right = np.split(both, 3)
            halves = left + right
            ok = np.abs(whole - halves) <= _QUAD_RTOL * np.abs(halves)
            # intervals that floating point can no longer split, or the last round: accept
            ok |= (m <= a) | (m >= b)
            if round_ == _QUAD_MAX_ROUNDS - 1:
                ok[:] = True
            accepted.append(halves[ok])
            bad = ~ok
            a, b = np.concatenate([a[bad], m[bad]]), np.concatenate([m[bad], b[bad]])
    if not accepted:
        return 0.0
    return math.fsum(np.concatenate(accepted).tolist())


def edges(a: float, b: float, inner: np.ndarray, max_step: float) -> np.ndarray:
    """``[a, *inner, b]``, each gap cut into equal parts no longer than ``max_step``."""
    coarse = np.concatenate([[a], inner, [b]])
    if not math.isfinite(max_step):
        return coarse
    parts = [coarse[:1]]
    for lo, hi in itertools.pairwise(coarse):
        n = max(1, math.ceil((hi - lo) / max_step))
        parts.append(np.linspace(lo, hi, n + 1)[1:])
    return np.concatenate(parts)


_ODE_RTOL = 1e-11
_ODE_MAX_STEPS = 2_000_000


def evolve(
    temperature: Callable[[np.ndarray], np.ndarray],
    a: float,
    b: float,
    y0: float,
    flow: Callable[[float, float, float], float],
    rtol: float = _ODE_RTOL,
    max_step: float = math.inf,
) -> float:
    """Solve ``dy/dt = f(y, T(t))`` from ``a`` to ``b`` given its exact flow at constant T.

    ``flow(y, dt, T)`` is the exact solution after ``dt`` at a constant temperature ``T``
    (the demarcation-energy map, :func:`analogsim.devices.physics.relaxed_age`). A step of
    length ``h`` freezes ``T`` at the step's midpoint (second order, symmetric); each step
    is compared with two half steps, the difference is the error estimate (accepted when
    below ``rtol`` of ``|y|``), and the two half steps plus a Richardson correction
    (a third of the difference) are kept. ``T(t)`` must be smooth on ``[a, b]`` (the caller
    cuts at breakpoints); ``max_step`` caps the step (a quarter period for oscillations,
    so the three temperature samples of a step cannot alias the cycle).
    """
    if b <= a:
        return y0

    t, y, h = a, y0, min(b - a, max_step)
    quarter = np.array([0.5, 0.25, 0.75])
    for _ in range(_ODE_MAX_STEPS):
        if t >= b:
            break
        h = min(h, b - t)
        T_mid, T_1, T_2 = temperature(t + h * quarter).tolist()  # (3,)
        coarse = flow(y, h, T_mid)
        fine = flow(flow(y, 0.5 * h, T_1), 0.5 * h, T_2)
        err = abs(fine - coarse)
        tol = rtol * max(abs(fine), 1e-300)
        if err <= tol or h <= 1e-12 * max(1.0, abs(t)):
            y = fine + (fine - coarse) / 3.0
            t = b if t + h >= b else t + h
            grow = 4.0 if err == 0.0 else min(4.0, 0.9 * (tol / err) ** (1.0 / 3.0))
            h = min(h * max(grow, 1.0), max_step)
        else:
            h *= max(0.1, 0.9 * (tol / err) ** (1.0 / 3.0))
    return y
