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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from analogsim.devices import physics
from analogsim.devices.age import DeviceTime, as_device_time
from analogsim.devices.card import card_dict, card_fields, read_card, with_card_overrides
from analogsim.devices.rng import chunk_generator, derive_seed
from analogsim.devices.sections import (
    AccumulatedNoise,
    Conductance,
    Drift,
    Faults,
    Programming,
    Temperature,
)

# Stream identifiers (part of every derived seed; never renumber).
S_PROG = 1
S_NU = 2
S_READ = 3
S_BRIDGE = 4
S_FAULT = 5
S_OUTLIER = 6
S_ONSET = 7


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
        """Conductances (uS) at age ``t_s`` read at ``temperature_K``.

        Equivalent to ``assemble(components(g_target, seed, t_s, chunk=chunk), t_s, T)``.

        Args:
            g_target: target conductances (verified at ``t_prog_K``), any shape; ``chunk``
                numbers this block of a larger tensor so that its draws are its own.
            seed: the layer's device seed.
            t_s: the device's ages (:class:`~analogsim.devices.age.DeviceTime`), or one
                float for all three (a chip held at the reference temperature), s.
            temperature_K: temperature at read; ``None`` means the programming temperature.
            chunk: index of this block (see :mod:`analogsim.devices.rng`).
            t_prog_K: temperature the targets were verified at; ``None`` means the card's
                ``t_ref_K``.
        Returns:
            Tensor of the shape of ``g_target``.
        """
        comp = self.components(g_target, seed, t_s, chunk=chunk, lean=True)
        return self.assemble(comp, t_s, temperature_K, t_prog_K=t_prog_K)

    def noise_interval(self, t_s: float | DeviceTime) -> int:
        """Index k of the grid interval ``[v_k, v_k+1)`` of the accumulated-noise clock at ``t_s``."""
        r = self.read_noise
        if r is None or r.scale == 0.0:
            return 0
        v0 = r.v(0.0)
        t_n = self._noise_time(as_device_time(t_s))
        return math.floor((max(r.v(t_n), v0) - v0) / r.dv + 1e-12)

    def components(
        self,
        g_target: Tensor,
        seed: int,
        t_s: float | DeviceTime,
        *,
        chunk: int = 0,
        lean: bool = False,
        advanceable: bool = False,
    ) -> dict[str, Any]:
        """Per-device quantities that stay fixed while the noise clock is in one grid interval.

        Sampled from the seed (same seed, same numbers): programmed conductance ``P``
        (static faults applied: stuck and outlier devices hold their level), drift
        exponent ``nu``, the accumulated-noise parts ``c0 + f c1 + r c2`` of the interval
        containing ``v(t_s)`` (``c0 = A B(v_k)``, ``c1 = A sqrt(dv) xi_k+1``,
        ``c2 = A sqrt(dv) z_k``, with ``A`` the amplitude), the conduction activation energy
        ``ea``, and for fault onsets each device's onset time and level. Faulty devices have
        ``nu = c = ea = 0``. :meth:`assemble` turns them into conductances at any time in
        the interval with a few elementwise operations. ``lean=True`` skips the draws that
        cannot matter at exactly ``t_s`` (``nu`` at ``t = 0``; ``c1``, ``c2`` on a grid
        point): the conductances at ``t_s`` are bit-identical, the result is valid only there.
        ``advanceable=True`` also keeps what :meth:`advance_read_noise` needs to move the
        components to a later interval without regenerating them: the unscaled Brownian
        value ``b = B(v_k)``, the amplitude ``amp`` and the static-fault mask ``stuck``.
        """
        dev = g_target.device
        shape = g_target.shape
        dtype = g_target.dtype
        g_rel_t = physics.relative_conductance(g_target, self.g_max)
        tt = as_device_time(t_s)

        def normal(stream: int, k: int = 0) -> Tensor:
            gen = chunk_generator(derive_seed(seed, stream, k), chunk, dev)
            return torch.randn(shape, generator=gen, device=dev, dtype=dtype)

        def uniform(stream: int, k: int = 0) -> Tensor:
            gen = chunk_generator(derive_seed(seed, stream, k), chunk, dev)
            return torch.rand(shape, generator=gen, device=dev, dtype=dtype)

        comp: dict[str, Any] = {"k": self.noise_interval(t_s)}
        # 1. programming
        p = self.programming
        if p is not None and p.scale != 0.0:
            sigma = physics.programming_sigma(g_target, self.g_max, p.coeffs_uS, p.g_max_ref_uS)
            if p.scale != 1.0:
                sigma.mul_(p.scale)
            g_prog = physics.program(g_target, sigma, normal(S_PROG))
        else:
            g_prog = g_target.clone()
        # 2. drift exponent
        d = self.drift
        nu = None
        if d is not None and d.scale != 0.0 and (tt.drift_s > 0.0 or not lean):
            nu = physics.drift_exponent(
                d.nu_mean(g_rel_t), d.nu_std(g_rel_t), normal(S_NU), d.scale
            )
        # 3. accumulated noise parts for interval k
        r = self.read_noise
        c = None
        if r is not None and r.scale != 0.0:
            k = comp["k"]
            b = normal(S_READ, 0).mul_(math.sqrt(r.v(0.0)))
            for i in range(1, k + 1):
                b.add_(normal(S_READ, i), alpha=math.sqrt(r.dv))
            if r.kind == "relative":
                amp = r.amplitude(physics.relative_conductance(g_prog, self.g_max))
            else:
                amp = r.amplitude(g_rel_t)
            if r.scale != 1.0:
                amp.mul_(r.scale)
            v0 = r.v(0.0)
            on_grid = (max(r.v(self._noise_time(tt)), v0) - (v0 + k * r.dv)) / r.dv <= 1e-12
            if advanceable:
                comp["b"] = b.clone()
                comp["amp"] = amp
            c = [b.mul_(amp), None, None]
            if not (lean and on_grid):
                c[1] = normal(S_READ, k + 1).mul_(amp).mul_(math.sqrt(r.dv))
                c[2] = normal(S_BRIDGE, k).mul_(amp).mul_(math.sqrt(r.dv))
        # 4. conduction activation energy per device
        tm = self.temperature
        ea = None
        if tm.affects_conduction:
            ea = tm.conduction_ea(g_rel_t.clamp(max=1.0))
        # 5. faults: static ones fold into the components; onsets keep a time and a level
        f = self.faults
        if f.static or f.dynamic:
            u = uniform(S_FAULT)
            lo = f.stuck_at_gmin_rate
            hi = lo + f.stuck_at_gmax_rate
            out_hi = hi + f.outlier_rate
            level = None
            if f.outlier_rate > 0 or f.onset_outlier_per_s > 0:
                # Pareto(x_m, alpha) by inversion: x_m U^(-1/alpha), capped
                level = uniform(S_OUTLIER).clamp_(min=1e-12).pow_(-1.0 / f.outlier_alpha)
                level.mul_(f.outlier_min_factor).clamp_(max=f.outlier_max_factor).mul_(self.g_max)
            if f.static:
                stuck = torch.zeros(shape, dtype=torch.bool, device=dev)
                fixed = torch.zeros(shape, dtype=dtype, device=dev)
                m_min = u < lo
                m_max = (u >= lo) & (u < hi)
                fixed = torch.where(m_min, self.g_min, fixed)
                fixed = torch.where(m_max, self.g_max, fixed)
                stuck |= m_min | m_max
                if f.outlier_rate > 0:
                    m_out = (u >= hi) & (u < out_hi)
                    fixed = torch.where(m_out, level, fixed)
                    stuck |= m_out
                g_prog = torch.where(stuck, fixed, g_prog)
                if advanceable:
                    comp["stuck"] = stuck
                zero = torch.zeros((), dtype=dtype, device=dev)
                if nu is not None:
                    nu = torch.where(stuck, zero, nu)
                if c is not None:
                    c = [None if ci is None else torch.where(stuck, zero, ci) for ci in c]
                if ea is not None:
                    ea = torch.where(stuck, zero, ea)
            if f.dynamic:
                lam = f.onset_hazard
                v = uniform(S_ONSET)
                w = uniform(S_ONSET, 1)
                # onset time from P(onset <= t) = 1 - exp(-lam t); type fixed by a second draw
                onset = torch.log1p(-v).neg_().div_(lam)
                onset = torch.where(u >= out_hi, onset, torch.full_like(onset, math.inf))
                c_min = f.onset_gmin_per_s / lam
                c_max = c_min + f.onset_gmax_per_s / lam
                lev = torch.where(w < c_min, self.g_min, self.g_max).to(dtype)
                if f.onset_outlier_per_s > 0:
                    lev = torch.where(w >= c_max, level, lev)
                comp["onset_s"] = onset
                comp["onset_level"] = lev
        comp["P"] = g_prog
        comp["nu"] = nu
        comp["c"] = c
        comp["ea"] = ea
        return comp

    def assemble(
        self,
        comp: dict[str, Any],
        t_s: float | DeviceTime,
        temperature_K: float | None = None,
        *,
        t_prog_K: float | None = None,
        out: Tensor | None = None,
    ) -> Tensor:
        """Conductances at age ``t_s`` (in the components' noise interval) and read
        temperature ``temperature_K`` from :meth:`components`:

        ``G = P ((t+t0)/t0)^(-nu m) max(0, 1 + c0 + f c1 + r c2)`` (relative noise) or
        ``G = max(0, P ((t+t0)/t0)^(-nu m) + c0 + f c1 + r c2)`` (absolute), times
        ``exp(-ea/k_B (1/T - 1/T_prog))``, with ``t`` the drift age and
        ``m = 1 - c + c T_ref/T`` (:meth:`Temperature.drift_multiplier`); devices past
        their fault onset hold their level. ``f = (v - v_k)/dv`` and ``r = sqrt(f (1 - f))``
        place ``v(t)`` of the noise clock in the interval. ``temperature_K = None`` reads
        at ``t_prog_K``, ``t_prog_K = None`` is the card's ``t_ref_K``.
        """
        P = comp["P"]
        g = out if out is not None else torch.empty_like(P)
        tt = as_device_time(t_s)
        # drift and read temperature share one exponential:
        # P exp(-nu m ln((t+t0)/t0) - ea (1/T - 1/T_prog)/k_B)
        d = self.drift
        tm = self.temperature
        t_prog = tm.t_ref_K if t_prog_K is None else t_prog_K
        t_read = t_prog if temperature_K is None else temperature_K
        log_ratio = (
            math.log((tt.drift_s + d.t0_s) / d.t0_s)
            if comp["nu"] is not None and tt.drift_s > 0.0
            else 0.0
        )
        if log_ratio and comp["ea"] is not None:
            log_ratio = log_ratio * tm.drift_multiplier(t_read)
        hot = comp["ea"] is not None and t_read != t_prog
        t_scale = tm.conduction_exponent_per_eV(t_read, t_prog) if hot else 0.0
        c = comp["c"]
        absolute = c is not None and self.read_noise.kind == "absolute"
        fold_t = hot and not absolute  # an additive noise comes before the temperature factor
        if log_ratio or fold_t:
            if log_ratio:
                torch.mul(comp["nu"], -log_ratio, out=g)
                if fold_t:
                    g.add_(comp["ea"], alpha=-t_scale)
            else:
                torch.mul(comp["ea"], -t_scale, out=g)
            g.exp_().mul_(P)
        else:
            g.copy_(P)
        if c is not None:
            r = self.read_noise
            v0 = r.v(0.0)
            k = comp["k"]
            t_n = self._noise_time(tt)
            frac = (max(r.v(t_n), v0) - (v0 + k * r.dv)) / r.dv
            if frac < -1e-9 or frac > 1.0 + 1e-9:
                raise ValueError(
                    f"components were built for noise interval {k}; t = {t_n:g} s is in interval "
                    f"{self.noise_interval(tt)}"
                )
            frac = min(max(frac, 0.0), 1.0)
            if r.kind == "relative":
                # g_drift + |g_drift| A B, clipped at 0  ==  g_drift max(0, 1 + A B)
                noise = torch.add(c[0], 1.0)
            else:
                noise = c[0].clone()
            if frac > 1e-12:
                noise.add_(c[1], alpha=frac).add_(c[2], alpha=math.sqrt(frac * (1.0 - frac)))
            if r.kind == "relative":
                g.mul_(noise.clamp_(min=0.0))
            else:
                g.add_(noise).clamp_(min=0.0)
        if hot and absolute:
            g.mul_(torch.mul(comp["ea"], -t_scale).exp_())
        if "onset_s" in comp and tt.fault_s > 0.0:
            g = torch.where(comp["onset_s"] <= tt.fault_s, comp["onset_level"], g)
        return g

    def advance_read_noise(
        self, comp: dict[str, Any], seed: int, k_to: int, *, chunk: int = 0
    ) -> list[Tensor]:
        """The accumulated-noise parts ``[c0, c1, c2]`` of interval ``k_to`` from components
        built with ``advanceable=True`` at an earlier interval ``comp["k"]``.

        Adds the increments ``sqrt(dv) xi_i`` for ``i = k + 1 .. k_to`` to the stored
        ``comp["b"]`` (in place, in the order :meth:`components` sums them) and draws the two
        parts of the new interval: the result is bit-identical to ``components`` at ``k_to``,
        for ``k_to - k + 2`` Gaussian draws per device instead of ``k_to + 4`` plus every
        time-independent draw. ``comp["k"]`` is set to ``k_to``.
        """
        r = self.read_noise
        k_from = int(comp["k"])
        if r is None or "b" not in comp or k_to < k_from:
            raise ValueError(
                f"cannot advance read noise from interval {k_from} to {k_to} "
                "(needs advanceable components of an earlier interval)"
            )
        b, amp = comp["b"], comp["amp"]
        shape, dev, dtype = b.shape, b.device, b.dtype

        def normal(stream: int, k: int) -> Tensor:
            gen = chunk_generator(derive_seed(seed, stream, k), chunk, dev)
            return torch.randn(shape, generator=gen, device=dev, dtype=dtype)

        for i in range(k_from + 1, k_to + 1):
            b.add_(normal(S_READ, i), alpha=math.sqrt(r.dv))
        c = [
            torch.mul(b, amp),
            normal(S_READ, k_to + 1).mul_(amp).mul_(math.sqrt(r.dv)),
            normal(S_BRIDGE, k_to).mul_(amp).mul_(math.sqrt(r.dv)),
        ]
        stuck = comp.get("stuck")
        if stuck is not None:
            zero = torch.zeros((), dtype=dtype, device=dev)
            c = [torch.where(stuck, zero, ci) for ci in c]
        comp["k"] = k_to
        return c

    def fault_masks(
        self, shape: tuple[int, ...], seed: int, t_s: float | DeviceTime, *, chunk: int = 0
    ) -> dict[str, Tensor]:
        """Boolean masks of faulty devices (for reports and tests), same draws as above;
        ``t_s`` a fault age or a :class:`~analogsim.devices.age.DeviceTime`."""
        if isinstance(t_s, DeviceTime):
            t_s = t_s.fault_s
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
