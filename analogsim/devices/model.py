"""The device model: a validated card plus the computation of conductances at (t, T).

``DeviceModel.conductances`` is the whole device physics in one place:

1. programming: ``g_p = max(0, g_T + sigma_prog(g_T) xi_p)``
2. drift: ``g_d = g_p ((t + t0)/t0)^(-nu)``, ``nu = |mu(g_T) + sigma(g_T) xi_nu|``
3. accumulated noise: ``g = max(0, g_d + A B(v(t)))`` with ``A = |g_d| Q_s(g_p)`` (relative,
   PCM 1/f read noise) or ``A = sigma(g_T)`` uS (absolute, RRAM relaxation), and ``B`` a
   Brownian motion in the variance clock ``v(t) = ln((t + a)/b)`` (see below)
4. read temperature: ``g *= exp(-Ea(g_T)/k (1/T - 1/T_prog))`` with ``Ea`` linear in
   ``ln g_T`` (capped), and the drift exponent read at ``T`` scaled by
   ``1 - c + c T_ref/T`` (drift as a growth of the activation energy)
5. faults: stuck at g_min / g_max from programming on, heavy-tailed stuck-on outliers,
   and fault onsets over time (Poisson hazards)

Time is a :class:`~analogsim.devices.age.DeviceTime` (drift age, held time for 1/f
noise, fault age; a float sets all three), ``T`` the temperature at read and ``T_prog``
the temperature the targets were verified at (``None``: the card's ``t_ref_K``).

Accumulated noise as a process
------------------------------
The published fits give only the *marginal* spread at each time,
``Var = Q_s^2 v(t)``. To make a device's trajectory consistent over time we draw a
Brownian motion ``B`` in ``v`` on a fixed grid ``v_k = v_0 + k dv`` (``v_0 = v(0)``):
``B(v_0) = sqrt(v_0) xi_0`` and independent Gaussian increments of variance ``dv`` from
grid point to grid point (drawn by the dyadic midpoint construction, so that any grid
value takes a fixed number of draws: :mod:`analogsim.devices.state`), and between grid
points a Brownian bridge with one more draw ``z_k`` per interval:
``B(v) = B(v_k) + (v - v_k)/dv (B(v_{k+1}) - B(v_k)) + sqrt((v - v_k)(v_{k+1} - v)/dv) z_k``.
Its variance is exactly ``v`` at every ``v`` (the published marginal), it is continuous,
and it is a pure function of the seed and ``v`` - so one jump to ``t`` equals many small
steps. Within one grid interval the correlation is that of a bridge with a fixed draw, an
approximation documented in docs/physics.md.

Computation
-----------
Nothing per device is stored: :mod:`analogsim.devices.state` evaluates all of the above
for every device of a layer in one elementwise pass, drawing each random quantity inside
the pass from counter-based streams keyed by the layer seed (programming, moving to an
age or a temperature, and a clock update all cost that one pass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from analogsim.devices import state
from analogsim.devices.age import DeviceTime, as_device_time
from analogsim.devices.card import card_dict, card_fields, read_card, with_card_overrides
from analogsim.devices.rng import CHUNK
from analogsim.devices.sections import (
    AccumulatedNoise,
    Conductance,
    Drift,
    Faults,
    Programming,
    Temperature,
)

# Stream identifiers: analogsim.devices.state (part of every derived seed; never renumber).
S_PROG, S_NU, S_READ, S_BRIDGE = state.S_PROG, state.S_NU, state.S_READ, state.S_BRIDGE
S_FAULT, S_OUTLIER, S_ONSET, S_WALK = state.S_FAULT, state.S_OUTLIER, state.S_ONSET, state.S_WALK


@dataclass(frozen=True)
class DeviceModel:
    """A device card, validated: the physics of one memory technology.

    Build from a card with :func:`analogsim.devices.load_device`. Frozen; change values
    with :meth:`with_overrides` (``{"drift.scale": 2.0}``).
    """

    name: str
    technology: str
    description: str
    source: str
    conductance: Conductance
    programming: Programming | None = None
    drift: Drift | None = None
    read_noise: AccumulatedNoise | None = None
    temperature: Temperature = field(default_factory=Temperature)
    faults: Faults = field(default_factory=Faults)
    path: Path | None = None

    # ------------------------------------------------------------------ helpers
    @property
    def g_min(self) -> float:
        return self.conductance.g_min_uS

    @property
    def g_max(self) -> float:
        return self.conductance.g_max_uS

    @property
    def is_ideal(self) -> bool:
        """True when the device reproduces its targets exactly at every (t, T)."""
        return (
            (self.programming is None or self.programming.scale == 0.0)
            and (self.drift is None or self.drift.scale == 0.0)
            and (self.read_noise is None or self.read_noise.scale == 0.0)
            and not self.temperature.affects_conduction
            and not self.faults.static
            and not self.faults.dynamic
        )

    def time_dependent(self) -> bool:
        """True when conductances change with time (drift, accumulated noise, fault onsets)."""
        return (
            (self.drift is not None and self.drift.scale != 0.0)
            or (self.read_noise is not None and self.read_noise.scale != 0.0)
            or self.faults.dynamic
        )

    def change_bound(
        self,
        t1_s: float | DeviceTime,
        t2_s: float | DeviceTime,
        temperature1_K: float | None = None,
        temperature2_K: float | None = None,
    ) -> float:
        r"""Bound on how much any conductance moves between two states, as a fraction of g_max.

        Used to skip state updates whose effect is below a tolerance. For equivalent
        times ``t1 <= t2`` and read temperatures ``T1, T2``:

        * drift: :math:`1.2\,\max_g g(\mu + 4\sigma)(g)\; |\ln((t_2+t_0)/(t_1+t_0))|`
          (the relative change of a device is at most ``nu dln t``; ``nu`` at four standard
          deviations, 20 % headroom for programmed values above the target);
        * accumulated noise, one standard deviation of the change:
          :math:`\max_g(g\,Q_s(g))\sqrt{v(t_2) - v(t_1)}` (relative noise) or
          ``amplitude/g_max * sqrt(dv)`` (absolute);
        * read temperature: :math:`|\exp(E_a/k_B\,|1/T_1 - 1/T_2|) - 1|` with ``E_a`` the
          largest activation energy a state reaches (its cap plus the drift-grown part).

        The drift term is multiplied by the larger drift multiplier ``1 - c + c T_ref/T``
        of the two temperatures. Fault onsets are jumps, not small changes: callers must
        check :meth:`Faults.onset_probability` separately.
        """
        a, b = as_device_time(t1_s), as_device_time(t2_s)
        lo, hi = min(a.drift_s, b.drift_s), max(a.drift_s, b.drift_s)
        bound = 0.0
        grid = torch.logspace(-7, 0, 200, dtype=torch.float64)
        d = self.drift
        tm = self.temperature
        nu_max = 0.0
        if d is not None and d.scale != 0.0 and hi > 0:
            # |dG|/g_max <= (G/g_max) nu dln t; nu is drawn from the target level, so bound
            # g nu by max_g g (mu + 4 sigma)(g), with 20 % headroom for programming overshoot
            g_nu = float((grid * (d.nu_mean(grid) + 4 * d.nu_std(grid))).max()) * 1.2
            mult = 1.0
            for temp in (temperature1_K, temperature2_K):
                if temp is not None:
                    mult = max(mult, tm.drift_multiplier(temp))
            bound += g_nu * d.scale * math.log((hi + d.t0_s) / (lo + d.t0_s)) * mult
            nu_max = float((d.nu_mean(grid) + 4 * d.nu_std(grid)).max()) * d.scale
        r = self.read_noise
        if r is not None and r.scale != 0.0:
            ta, tb = self._noise_time(a), self._noise_time(b)
            dv = abs(r.v(max(ta, tb)) - r.v(min(ta, tb)))
            if r.kind == "relative":
                amp = float((grid * r.amplitude(grid)).max())
            else:
                amp = float(r.amplitude(grid).max()) / self.g_max
            bound += amp * r.scale * math.sqrt(dv)
        if tm.affects_conduction and temperature1_K != temperature2_K:
            log_ratio = math.log((hi + d.t0_s) / d.t0_s) if nu_max > 0 else 0.0
            bound += tm.conduction_change_bound(temperature1_K, temperature2_K, log_ratio, nu_max)
        return bound

    def _noise_time(self, t: DeviceTime) -> float:
        """The age the accumulated-noise clock runs on (``read_noise.clock``)."""
        r = self.read_noise
        return t.drift_s if r is not None and r.clock == "drift" else t.noise_s

    def assumptions(self) -> dict[str, tuple[str, ...]]:
        """Keys whose values are assumptions (no published source), by card section."""
        out = {}
        for sec in ("conductance", "programming", "drift", "read_noise", "temperature", "faults"):
            part = getattr(self, sec)
            if part is not None and part.assumptions:
                out[sec] = part.assumptions
        return out

    def with_overrides(self, overrides: dict[str, Any]) -> DeviceModel:
        """A copy with ``section.key`` values replaced, validated like a card.

        ``{"drift.scale": 2.0, "faults.stuck_at_gmax_rate": 0.01}``. Also accepts
        ``section_key`` (``drift_scale``) for command-line convenience.
        """
        data = with_card_overrides(card_dict(self), overrides)
        return device_from_dict(data, file=f"{self.name} (with overrides {overrides})")

    # ------------------------------------------------------------------ physics
    def targets(self, w_norm: Tensor) -> Tensor:
        """Target conductances of a differential pair, uS, shape ``(2, *w.shape)``.

        ``G+ = g_min + (g_max - g_min) max(w, 0)``, ``G- = g_min + (g_max - g_min) max(-w, 0)``
        for normalised weights ``w`` in ``[-1, 1]`` (REFERENCES.md mapping, per-tensor or
        per-column scale chosen by the tile).
        """
        span = self.g_max - self.g_min
        pos = w_norm.clamp(min=0.0).mul_(span).add_(self.g_min)
        neg = w_norm.neg().clamp_(min=0.0).mul_(span).add_(self.g_min)
        return torch.stack((pos, neg))

    def conductances(
        self,
        g_target: Tensor,
        seed: int,
        t_s: float | DeviceTime,
        temperature_K: float | None = None,
        *,
        chunk: int = 0,
        t_prog_K: float | None = None,
    ) -> Tensor:
        """Conductances (uS) at age ``t_s`` read at ``temperature_K``, in one pass.

        Every random quantity is drawn inside the pass from counter-based streams keyed by
        ``seed`` (:mod:`analogsim.devices.state`): same seed and counters, same numbers.

        Args:
            g_target: target conductances (verified at ``t_prog_K``), any shape. Device ``i``
                of the flattened tensor has counter ``chunk * 2 * CHUNK + i``: the pair
                ``targets(w)`` of a layer's flat weights (``chunk = 0``) is exactly the layer's
                devices.
            seed: the layer's device seed.
            t_s: the device's ages (:class:`~analogsim.devices.age.DeviceTime`), or one
                float for all three (a chip held at the reference temperature), s.
            temperature_K: temperature at read; ``None`` means the programming temperature.
            chunk: index of this block of a larger tensor (``CHUNK`` weights, ``2 * CHUNK``
                devices per block), so that its draws are its own.
            t_prog_K: temperature the targets were verified at; ``None`` means the card's
                ``t_ref_K``.
        Returns:
            Tensor of the shape of ``g_target``.
        """
        return state.conductances(
            self,
            g_target,
            seed,
            t_s,
            temperature_K,
            counter_base=chunk * 2 * CHUNK,
            t_prog_K=t_prog_K,
        )

    def pair_state(
        self,
        w_norm: Tensor,
        seed: int,
        t_s: float | DeviceTime,
        temperature_K: float | None = None,
        *,
        t_prog_K: float | None = None,
    ) -> Tensor:
        """Normalised effective weights ``(G+ - G-)/(g_max - g_min)`` of normalised targets
        ``w_norm`` (a layer's weights; any shape) at ``(t_s, temperature_K)``: one fused
        pass over the weights (:func:`analogsim.devices.state.pair_state`), equal to
        ``conductances(targets(w_norm.reshape(-1)))`` of the same seed."""
        return state.pair_state(self, w_norm, seed, t_s, temperature_K, t_prog_K=t_prog_K)

    def noise_interval(self, t_s: float | DeviceTime) -> int:
        """Index k of the grid interval ``[v_k, v_k+1)`` of the accumulated-noise clock at ``t_s``."""
        r = self.read_noise
        if r is None or r.scale == 0.0:
            return 0
        v0 = r.v(0.0)
        t_n = self._noise_time(as_device_time(t_s))
        return math.floor((max(r.v(t_n), v0) - v0) / r.dv + 1e-12)

    def fault_masks(
        self,
        shape: tuple[int, ...],
        seed: int,
        t_s: float | DeviceTime,
        *,
        chunk: int = 0,
        counter_base: int | None = None,
    ) -> dict[str, Tensor]:
        """Boolean masks of faulty devices (for reports and tests), the draws of
        :meth:`conductances` (same counters: ``chunk * 2 * CHUNK + i``, or
        ``counter_base + i`` when given); ``t_s`` a fault age or a
        :class:`~analogsim.devices.age.DeviceTime`."""
        if isinstance(t_s, DeviceTime):
            t_s = t_s.fault_s
        f = self.faults
        base = chunk * 2 * CHUNK if counter_base is None else counter_base
        d = state.fault_draws(tuple(shape), seed, counter_base=base)
        u = d["u"]
        lo = f.stuck_at_gmin_rate
        hi = lo + f.stuck_at_gmax_rate
        out_hi = hi + f.outlier_rate
        masks = {
            "stuck_at_gmin": u < lo,
            "stuck_at_gmax": (u >= lo) & (u < hi),
            "outlier": (u >= hi) & (u < out_hi),
        }
        if f.dynamic and t_s > 0:
            lam = f.onset_hazard
            # the pass compares with the probability rounded to float32 (its scalar dtype)
            p_on = float(torch.tensor(f.onset_probability(t_s), dtype=torch.float32))
            failed = (u >= out_hi) & (d["v"] < p_on)
            w = d["w"]
            c_min = f.onset_gmin_per_s / lam
            c_max = c_min + f.onset_gmax_per_s / lam
            masks["onset_gmin"] = failed & (w < c_min)
            masks["onset_gmax"] = failed & (w >= c_min) & (w < c_max)
            masks["onset_outlier"] = failed & (w >= c_max)
        return masks

    def summary(self) -> dict[str, Any]:
        """One-line facts for ``analogsim devices``."""
        drift = "none"
        if self.drift is not None and self.drift.scale != 0:
            nu = self.drift.nu_mean.scalar(1.0) * self.drift.scale
            drift = f"power law t0={self.drift.t0_s:g}s, nu(gmax)={nu:.3g}"
        temp = "none"
        t = self.temperature
        if t.drift_ea_eV or t.demarcation or t.affects_conduction:
            clock = (
                f"relaxation tau0={t.relaxation_tau0_s:g}s"
                if t.demarcation
                else f"drift Ea={t.drift_ea_eV:g}eV"
            )
            temp = (
                f"Tref={t.t_ref_K:g}K, {clock}, conduction Ea={t.conduction_ea_gmax_eV:g}"
                f"+{t.conduction_ea_slope_eV:g}ln(1/g)<={t.ea_cap_eV:g}eV, "
                f"drift-in-Ea fraction {t.drift_ea_fraction:g}"
            )
        f = self.faults
        faults = "none"
        if f.static or f.dynamic:
            faults = (
                f"stuck@gmin {f.stuck_at_gmin_rate:.3%}, stuck@gmax {f.stuck_at_gmax_rate:.3%}, "
                f"outliers {f.outlier_rate:.3%}"
            )
            if f.dynamic:
                faults += f", onset {f.onset_hazard:.3g}/s"
        return {
            "name": self.name,
            "technology": self.technology,
            "g_min_uS": self.g_min,
            "g_max_uS": self.g_max,
            "drift": drift,
            "read_noise": "none"
            if self.read_noise is None
            else f"{self.read_noise.kind} accumulated",
            "temperature": temp,
            "faults": faults,
            "path": str(self.path) if self.path else "",
        }


def device_from_dict(
    data: dict[str, Any], *, file: Any = "<dict>", path: Path | None = None
) -> DeviceModel:
    """Validate a parsed card (:func:`~analogsim.devices.card.card_fields`) and build the
    :class:`DeviceModel`."""
    return DeviceModel(**card_fields(data, file=file), path=path)


def load_card(path: str | Path) -> DeviceModel:
    """Read and validate one card file."""
    path = Path(path)
    return device_from_dict(read_card(path), file=path, path=path.resolve())


__all__ = [
    "AccumulatedNoise",
    "Conductance",
    "DeviceModel",
    "Drift",
    "Faults",
    "Programming",
    "Temperature",
    "device_from_dict",
    "load_card",
]
