"""The device model: a validated card plus the computation of conductances at (t, T).

``DeviceModel.conductances`` is the whole device physics in one place:

1. programming: ``g_p = max(0, g_T + sigma_prog(g_T) xi_p)``
2. drift: ``g_d = g_p ((t + t0)/t0)^(-nu)``, ``nu = |mu(g_T) + sigma(g_T) xi_nu|``
3. accumulated noise: ``g = max(0, g_d + A B(v(t)))`` with ``A = |g_d| Q_s(g_p)`` (relative,
   PCM 1/f read noise) or ``A = sigma(g_T)`` uS (absolute, RRAM relaxation), and ``B`` a
   Brownian motion in the variance clock ``v(t) = ln((t + a)/b)`` (see below)
4. read temperature: ``g *= exp(-Ea(g_T)/k (1/T - 1/T_ref))``
5. faults: stuck at g_min / g_max from programming on, heavy-tailed stuck-on outliers,
   and fault onsets over time (Poisson hazards)

``t`` is the *equivalent* time at the reference temperature (the caller integrates the
Arrhenius factor over the temperature history) and ``T`` the temperature at read.

Accumulated noise as a process
------------------------------
The published fits give only the *marginal* spread at each time,
``Var = Q_s^2 v(t)``. To make a device's trajectory consistent over time we draw a
Brownian motion ``B`` in ``v`` on a fixed grid ``v_k = v_0 + k dv`` (``v_0 = v(0)``):
``B(v_0) = sqrt(v_0) xi_0``, ``B(v_k) = B(v_{k-1}) + sqrt(dv) xi_k`` (independent
increments in log-time), and between grid points a Brownian bridge with one more draw
``z_k`` per interval:
``B(v) = B(v_k) + (v - v_k)/dv (B(v_{k+1}) - B(v_k)) + sqrt((v - v_k)(v_{k+1} - v)/dv) z_k``.
Its variance is exactly ``v`` at every ``v`` (the published marginal), it is continuous,
and it is a pure function of the seed and ``v`` - so one jump to ``t`` equals many small
steps. Within one grid interval the correlation is that of a bridge with a fixed draw, an
approximation documented in docs/physics.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from analogsim.devices import physics
from analogsim.devices.functions import Piecewise
from analogsim.devices.rng import chunk_generator, derive_seed

# Stream identifiers (part of every derived seed; never renumber).
S_PROG = 1
S_NU = 2
S_READ = 3
S_BRIDGE = 4
S_FAULT = 5
S_OUTLIER = 6
S_ONSET = 7


@dataclass(frozen=True)
class Conductance:
    """Conductance window of one device, uS, and devices per weight (for area and cost)."""

    g_min_uS: float = 0.0
    g_max_uS: float = 25.0
    devices_per_weight: int = 2
    source: str = ""
    assumptions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Programming:
    """Programming error: polynomial sigma(g_T/g_max) in uS, scaled by g_max/g_max_ref."""

    coeffs_uS: tuple[float, ...]
    g_max_ref_uS: float
    scale: float = 1.0
    source: str = ""
    assumptions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Drift:
    """Power-law drift with a per-device exponent drawn at programming."""

    t0_s: float
    nu_mean: Piecewise
    nu_std: Piecewise
    scale: float = 1.0
    source: str = ""
    assumptions: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccumulatedNoise:
    """Noise that accumulates over (log) time: PCM 1/f read noise or RRAM relaxation.

    ``kind = "relative"``: amplitude ``|g_drift| * amplitude(g_prog/g_max)``.
    ``kind = "absolute"``: amplitude ``amplitude(g_T/g_max)`` in uS.
    Variance clock ``v(t) = ln((t + t0 + t_offset)/t_scale)``, grid step ``dv``.
    """

    kind: str
    amplitude: Piecewise
    t_offset_s: float
    t_scale_s: float
    t0_s: float = 0.0
    scale: float = 1.0
    dv: float = 1.0
    source: str = ""
    assumptions: tuple[str, ...] = ()

    def v(self, t_s: float) -> float:
        """Variance clock at equivalent time ``t_s`` since programming."""
        return physics.log_time_variance(t_s + self.t0_s, self.t_offset_s, self.t_scale_s)


@dataclass(frozen=True)
class Temperature:
    """Temperature model: drift acceleration and conduction at read, Arrhenius.

    ``drift_ea_eV`` turns time at T into equivalent time at ``t_ref_K``.
    Conduction activation energy is interpolated linearly in ``g_T/g_max`` between
    ``conduction_ea_gmin_eV`` (amorphous-like, low conductance) and
    ``conduction_ea_gmax_eV`` (crystalline-like, high conductance).
    """

    t_ref_K: float = 300.0
    drift_ea_eV: float = 0.0
    conduction_ea_gmin_eV: float = 0.0
    conduction_ea_gmax_eV: float = 0.0
    source: str = ""
    assumptions: tuple[str, ...] = ()

    def acceleration(self, temperature_K: float) -> float:
        """Equivalent seconds at ``t_ref_K`` per second at ``temperature_K``."""
        return physics.arrhenius_factor(temperature_K, self.t_ref_K, self.drift_ea_eV)

    @property
    def affects_conduction(self) -> bool:
        return self.conduction_ea_gmin_eV != 0.0 or self.conduction_ea_gmax_eV != 0.0


@dataclass(frozen=True)
class Faults:
    """Stuck-at faults (by conductance level), heavy-tailed outliers and fault onsets.

    Rates are per device. ``outlier`` devices are stuck on at ``g_max * X`` with
    ``X ~ Pareto(outlier_min_factor, outlier_alpha)`` capped at ``outlier_max_factor``.
    ``onset_*_per_s`` are Poisson hazards per device per second of equivalent time
    (stuck at g_min, stuck at g_max, stuck-on outlier): a device's onset time is
    ``-ln(U)/lambda``, ``lambda`` the sum; from then on it is stuck, at the level chosen
    by a second draw in proportion to the three hazards.
    """

    stuck_at_gmin_rate: float = 0.0
    stuck_at_gmax_rate: float = 0.0
    outlier_rate: float = 0.0
    outlier_min_factor: float = 2.0
    outlier_alpha: float = 2.0
    outlier_max_factor: float = 50.0
    onset_gmin_per_s: float = 0.0
    onset_gmax_per_s: float = 0.0
    onset_outlier_per_s: float = 0.0
    source: str = ""
    assumptions: tuple[str, ...] = ()

    @property
    def static(self) -> bool:
        return self.stuck_at_gmin_rate > 0 or self.stuck_at_gmax_rate > 0 or self.outlier_rate > 0

    @property
    def dynamic(self) -> bool:
        return self.onset_hazard > 0

    @property
    def onset_hazard(self) -> float:
        """Total onset hazard per device per second (stuck at g_min, at g_max, outlier)."""
        return self.onset_gmin_per_s + self.onset_gmax_per_s + self.onset_outlier_per_s

    def onset_probability(self, t_s: float) -> float:
        """Probability that a healthy device has failed by equivalent time ``t_s``."""
        lam = self.onset_hazard
        return -math.expm1(-lam * t_s) if lam > 0 else 0.0


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
        t1_s: float,
        t2_s: float,
        temperature1_K: float | None = None,
        temperature2_K: float | None = None,
    ) -> float:
        r"""Bound on how much any conductance moves between two states, as a fraction of g_max.

        Used to skip state updates whose effect is below a tolerance. For equivalent
        times ``t1 <= t2`` and read temperatures ``T1, T2``:

        * drift: :math:`\nu_{max} |\ln((t_2+t_0)/(t_1+t_0))|` (exact bound for
          :math:`g \le g_{max}`; ``nu_max = max_g (mu + 4 sigma)``);
        * accumulated noise, one standard deviation of the change:
          :math:`\max_g(g\,Q_s(g))\sqrt{v(t_2) - v(t_1)}` (relative noise) or
          ``amplitude/g_max * sqrt(dv)`` (absolute);
        * read temperature: :math:`|\exp(E_{a,max}/k_B\,|1/T_1 - 1/T_2|) - 1|`.

        Fault onsets are jumps, not small changes: callers must check
        :meth:`Faults.onset_probability` separately.
        """
        lo, hi = min(t1_s, t2_s), max(t1_s, t2_s)
        bound = 0.0
        grid = torch.logspace(-7, 0, 200, dtype=torch.float64)
        d = self.drift
        if d is not None and d.scale != 0.0 and hi > 0:
            nu_max = float((d.nu_mean(grid) + 4 * d.nu_std(grid)).max()) * d.scale
            bound += nu_max * math.log((hi + d.t0_s) / (lo + d.t0_s))
        r = self.read_noise
        if r is not None and r.scale != 0.0:
            dv = max(0.0, r.v(hi) - r.v(lo))
            if r.kind == "relative":
                amp = float((grid * r.amplitude(grid)).max())
            else:
                amp = float(r.amplitude(grid).max()) / self.g_max
            bound += amp * r.scale * math.sqrt(dv)
        tm = self.temperature
        if tm.affects_conduction and temperature1_K != temperature2_K:
            ta = tm.t_ref_K if temperature1_K is None else temperature1_K
            tb = tm.t_ref_K if temperature2_K is None else temperature2_K
            ea = max(abs(tm.conduction_ea_gmin_eV), abs(tm.conduction_ea_gmax_eV))
            bound += math.expm1(ea / physics.BOLTZMANN_EV_PER_K * abs(1 / ta - 1 / tb))
        return bound

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
        from analogsim.devices.card import card_dict, device_from_dict

        data = card_dict(self)
        for dotted, value in overrides.items():
            section, key = _split_override(dotted, data)
            data.setdefault(section, {})[key] = value
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
        t_s: float,
        temperature_K: float | None = None,
        *,
        chunk: int = 0,
    ) -> Tensor:
        """Conductances (uS) at equivalent time ``t_s`` read at ``temperature_K``.

        Args:
            g_target: target conductances, any shape; ``chunk`` numbers this block of a
                larger tensor so that its draws are its own.
            seed: the layer's device seed.
            t_s: equivalent time since programming at the reference temperature, s.
            temperature_K: temperature at read; ``None`` means the reference.
            chunk: index of this block (see :mod:`analogsim.devices.rng`).
        Returns:
            Tensor of the shape of ``g_target``.
        """
        dev = g_target.device
        shape = g_target.shape
        g_rel_t = physics.relative_conductance(g_target, self.g_max)

        def normal(stream: int, k: int = 0) -> Tensor:
            gen = chunk_generator(derive_seed(seed, stream, k), chunk, dev)
            return torch.randn(shape, generator=gen, device=dev, dtype=g_target.dtype)

        def uniform(stream: int, k: int = 0) -> Tensor:
            gen = chunk_generator(derive_seed(seed, stream, k), chunk, dev)
            return torch.rand(shape, generator=gen, device=dev, dtype=g_target.dtype)

        # 1. programming
        p = self.programming
        if p is not None and p.scale != 0.0:
            sigma = physics.programming_sigma(g_target, self.g_max, p.coeffs_uS, p.g_max_ref_uS)
            if p.scale != 1.0:
                sigma.mul_(p.scale)
            g = physics.program(g_target, sigma, normal(S_PROG))
        else:
            g = g_target.clone()
        g_prog = g

        # 2. drift
        d = self.drift
        if d is not None and d.scale != 0.0 and t_s > 0.0:
            nu = physics.drift_exponent(
                d.nu_mean(g_rel_t), d.nu_std(g_rel_t), normal(S_NU), d.scale
            )
            g = g * physics.drift_factor(nu, t_s, d.t0_s)

        # 3. accumulated noise (read noise / relaxation) as a process in v(t)
        r = self.read_noise
        if r is not None and r.scale != 0.0:
            b = self._brownian(r, t_s, normal)
            if r.kind == "relative":
                amp = r.amplitude(physics.relative_conductance(g_prog, self.g_max))
                amp.mul_(g.abs())
            else:
                amp = r.amplitude(g_rel_t)
            if r.scale != 1.0:
                amp.mul_(r.scale)
            g = torch.addcmul(g, amp, b).clamp_(min=0.0)

        # 4. conductance read at temperature T
        tm = self.temperature
        if temperature_K is not None and temperature_K != tm.t_ref_K and tm.affects_conduction:
            ea = g_rel_t.clamp(max=1.0).mul(tm.conduction_ea_gmax_eV - tm.conduction_ea_gmin_eV)
            ea.add_(tm.conduction_ea_gmin_eV)
            g = g * physics.arrhenius_factor(temperature_K, tm.t_ref_K, ea).to(g.dtype)

        # 5. faults
        f = self.faults
        if f.static or f.dynamic:
            g = self._apply_faults(g, f, t_s, uniform)
        return g

    @staticmethod
    def _brownian(r: AccumulatedNoise, t_s: float, normal) -> Tensor:
        """B(v(t)) on the fixed grid with a Brownian bridge inside an interval."""
        v0 = r.v(0.0)
        v = max(r.v(t_s), v0)
        b = normal(S_READ, 0).mul_(math.sqrt(v0))
        k_float = (v - v0) / r.dv
        k = math.floor(k_float + 1e-12)
        for i in range(1, k + 1):
            b.add_(normal(S_READ, i), alpha=math.sqrt(r.dv))
        frac = (v - (v0 + k * r.dv)) / r.dv
        if frac > 1e-12:
            # linear part of the next increment plus the bridge deviation
            b.add_(normal(S_READ, k + 1), alpha=frac * math.sqrt(r.dv))
            b.add_(normal(S_BRIDGE, k), alpha=math.sqrt(r.dv * frac * (1.0 - frac)))
        return b

    def _apply_faults(self, g: Tensor, f: Faults, t_s: float, uniform) -> Tensor:
        u = uniform(S_FAULT)
        lo = f.stuck_at_gmin_rate
        hi = lo + f.stuck_at_gmax_rate
        out_hi = hi + f.outlier_rate
        g = torch.where(u < lo, torch.full_like(g, self.g_min), g)
        g = torch.where((u >= lo) & (u < hi), torch.full_like(g, self.g_max), g)
        if f.outlier_rate > 0:
            # Pareto(x_m, alpha) by inversion: x_m * U^(-1/alpha), capped.
            factor = uniform(S_OUTLIER).clamp_(min=1e-12).pow_(-1.0 / f.outlier_alpha)
            factor.mul_(f.outlier_min_factor).clamp_(max=f.outlier_max_factor)
            g = torch.where((u >= hi) & (u < out_hi), factor.mul_(self.g_max), g)
        if f.dynamic and t_s > 0:
            lam = f.onset_hazard
            v = uniform(S_ONSET)
            # P(onset <= t) = 1 - exp(-lam t). The type is a second draw fixed at
            # programming, so a failed device keeps its level as t grows (competing
            # Poisson hazards).
            w = uniform(S_ONSET, 1)
            failed = (u >= out_hi) & (v < f.onset_probability(t_s))
            c_min = f.onset_gmin_per_s / lam
            c_max = c_min + f.onset_gmax_per_s / lam
            g = torch.where(failed & (w < c_min), torch.full_like(g, self.g_min), g)
            g = torch.where(failed & (w >= c_min) & (w < c_max), torch.full_like(g, self.g_max), g)
            if f.onset_outlier_per_s > 0:
                factor = uniform(S_OUTLIER).clamp_(min=1e-12).pow_(-1.0 / f.outlier_alpha)
                factor.mul_(f.outlier_min_factor).clamp_(max=f.outlier_max_factor)
                g = torch.where(failed & (w >= c_max), factor.mul_(self.g_max), g)
        return g

    def fault_masks(
        self, shape: tuple[int, ...], seed: int, t_s: float, *, chunk: int = 0
    ) -> dict[str, Tensor]:
        """Boolean masks of faulty devices (for reports and tests), same draws as above."""
        f = self.faults
        gen = chunk_generator(derive_seed(seed, S_FAULT, 0), chunk)
        u = torch.rand(shape, generator=gen)
        lo = f.stuck_at_gmin_rate
        hi = lo + f.stuck_at_gmax_rate
        out_hi = hi + f.outlier_rate
        masks = {
            "stuck_at_gmin": u < lo,
            "stuck_at_gmax": (u >= lo) & (u < hi),
            "outlier": (u >= hi) & (u < out_hi),
        }
        if f.dynamic and t_s > 0:
            gen = chunk_generator(derive_seed(seed, S_ONSET, 0), chunk)
            v = torch.rand(shape, generator=gen)
            gen = chunk_generator(derive_seed(seed, S_ONSET, 1), chunk)
            w = torch.rand(shape, generator=gen)
            lam = f.onset_hazard
            failed = (u >= out_hi) & (v < f.onset_probability(t_s))
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
        if t.drift_ea_eV or t.affects_conduction:
            temp = (
                f"Tref={t.t_ref_K:g}K, drift Ea={t.drift_ea_eV:g}eV, "
                f"conduction Ea={t.conduction_ea_gmin_eV:g}..{t.conduction_ea_gmax_eV:g}eV"
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


def _split_override(dotted: str, data: dict[str, Any]) -> tuple[str, str]:
    from analogsim.devices.card import SECTIONS
    from analogsim.errors import ConfigError

    if "." in dotted:
        section, key = dotted.split(".", 1)
        if section not in SECTIONS:
            raise ConfigError(
                "unknown card section in override", key=dotted, allowed=", ".join(SECTIONS)
            )
        return section, key
    for section in SECTIONS:
        prefix = section + "_"
        if dotted.startswith(prefix):
            return section, dotted[len(prefix) :]
    raise ConfigError(
        "override must be 'section.key' or 'section_key'",
        key=dotted,
        allowed="sections " + ", ".join(SECTIONS),
    )


def dataclass_to_dict(obj: Any) -> dict[str, Any]:
    """Fields of a section dataclass as a card table (piecewise functions in card form)."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, Piecewise):
            v = v.to_toml()
        elif isinstance(v, tuple):
            v = list(v)
        if f.name in ("source",) and not v:
            continue
        if f.name == "assumptions" and not v:
            continue
        out[f.name] = v
    return out


__all__ = [
    "AccumulatedNoise",
    "Conductance",
    "DeviceModel",
    "Drift",
    "Faults",
    "Programming",
    "Temperature",
    "dataclass_to_dict",
    "replace",
]
