"""The sections of a device card as frozen dataclasses (one per card table).

Each section holds the validated values of one table of a card (``devices/*.toml``) and
the small closed forms that belong to it (the noise clock ``v(t)``, the Arrhenius
acceleration of drift, fault-onset probabilities). Validation and the TOML form are in
:mod:`analogsim.devices.card`; the device physics that combines them is
:class:`analogsim.devices.model.DeviceModel`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from analogsim.devices import physics
from analogsim.devices.functions import Piecewise

__all__ = [
    "AccumulatedNoise",
    "Conductance",
    "Drift",
    "Faults",
    "Programming",
    "Temperature",
]


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
    ``clock = "wall"``: ``t`` is the time the chip was held since programming (1/f read
    noise accumulates with the measurement bandwidth, not with structural ageing);
    ``clock = "drift"``: ``t`` is the drift-equivalent age (relaxation that is structural,
    e.g. RRAM conductance relaxation).
    """

    kind: str
    amplitude: Piecewise
    t_offset_s: float
    t_scale_s: float
    t0_s: float = 0.0
    scale: float = 1.0
    dv: float = 1.0
    clock: str = "wall"
    source: str = ""
    assumptions: tuple[str, ...] = ()

    def v(self, t_s: float) -> float:
        """Variance clock at equivalent time ``t_s`` since programming."""
        return physics.log_time_variance(t_s + self.t0_s, self.t_offset_s, self.t_scale_s)


@dataclass(frozen=True)
class Temperature:
    r"""Temperature model: conduction read at T, drift coupled to it, thermally accelerated
    relaxation and fault onsets (equations and sources: docs/physics.md section 4).

    * Conduction: a state verified at the programming temperature ``T_prog`` reads
      :math:`G(T) = G(T_{prog}) \exp(-E_a(g)/k_B\,(1/T - 1/T_{prog}))` with
      :math:`E_a(g) = \mathrm{clip}(E_{a,g_{max}} + s\ln(1/g), E_{a,g_{max}}, E_{a,max})`
      (``conduction_ea_gmax_eV``, ``conduction_ea_slope_eV``, ``conduction_ea_max_eV``).
    * Drift coupled to conduction: a fraction ``drift_ea_fraction`` (c) of the drift is an
      increase of the activation energy at constant prefactor,
      :math:`\Delta E_a = c\,k_B T_{ref}\,\nu \ln((t_{eq}+t_0)/t_0)`, so a drifted state
      read at ``T`` drifts by :math:`\exp(-\nu L\,(1 - c + c\,T_{ref}/T))`.
    * Relaxation (drift) clock: the demarcation-energy law (``relaxation_tau0_s > 0``,
      :func:`~analogsim.devices.physics.relaxed_age`) or, when it is 0, a constant
      Arrhenius factor with ``drift_ea_eV``.
    * Fault onsets: Arrhenius with ``fault_ea_eV`` on held time.
    """

    t_ref_K: float = 300.0
    relaxation_tau0_s: float = 0.0
    relaxation_t0_s: float = 20.0
    drift_ea_eV: float = 0.0
    drift_ea_fraction: float = 0.0
    conduction_ea_gmax_eV: float = 0.0
    conduction_ea_slope_eV: float = 0.0
    conduction_ea_max_eV: float = 0.0
    fault_ea_eV: float = 0.0
    source: str = ""
    assumptions: tuple[str, ...] = ()

    @property
    def age_key(self) -> tuple[float, float, float, float, float]:
        """``(t_ref_K, relaxation_tau0_s, relaxation_t0_s, drift_ea_eV, fault_ea_eV)``:
        devices with the same key age alike under any temperature history; the key of
        :class:`~analogsim.devices.age.DeploymentAge`."""
        return (
            float(self.t_ref_K),
            float(self.relaxation_tau0_s),
            float(self.relaxation_t0_s),
            float(self.drift_ea_eV),
            float(self.fault_ea_eV),
        )

    @property
    def affects_conduction(self) -> bool:
        return (
            self.conduction_ea_gmax_eV != 0.0
            or self.conduction_ea_slope_eV != 0.0
            or self.drift_ea_fraction != 0.0
        )

    def conduction_ea(self, g_rel: Any) -> Any:
        """Activation energy of conduction of target states ``g_rel`` (tensor), eV."""
        return physics.conduction_ea(
            g_rel, self.conduction_ea_gmax_eV, self.conduction_ea_slope_eV, self.ea_cap_eV
        )

    @property
    def ea_cap_eV(self) -> float:
        """Largest activation energy of a state (the amorphous phase's)."""
        return max(self.conduction_ea_max_eV, self.conduction_ea_gmax_eV)

    def conduction_exponent_per_eV(self, temperature_K: float, t_prog_K: float) -> float:
        r""":math:`(1/T - 1/T_{prog})/k_B`, 1/eV: a state verified at ``t_prog_K`` and read at
        ``temperature_K`` is multiplied by ``exp(-ea * this)``."""
        return physics.arrhenius_exponent_per_eV(temperature_K, t_prog_K)

    def drift_multiplier(self, temperature_K: float) -> float:
        r""":math:`1 - c + c\,T_{ref}/T`: the drift exponent read at ``T`` relative to the
        fit's (exactly 1 at ``T_ref``)."""
        if temperature_K == self.t_ref_K or self.drift_ea_fraction == 0.0:
            return 1.0
        c = self.drift_ea_fraction
        return (1.0 - c) + c * self.t_ref_K / temperature_K

    def conduction_change_bound(
        self,
        temperature1_K: float | None,
        temperature2_K: float | None,
        drift_log_ratio: float = 0.0,
        nu_max: float = 0.0,
    ) -> float:
        r"""Largest relative change of a conductance read at ``T1`` instead of ``T2``:
        :math:`|\exp((E_{a,cap} + c k_B T_{ref} \nu_{max} L)/k_B\,|1/T_1 - 1/T_2|) - 1|`
        (``None`` is ``t_ref_K``; ``L`` the drift log-time ratio at the later state)."""
        ta = self.t_ref_K if temperature1_K is None else temperature1_K
        tb = self.t_ref_K if temperature2_K is None else temperature2_K
        ea = abs(self.ea_cap_eV) + abs(
            self.drift_ea_fraction * physics.BOLTZMANN_EV_PER_K * self.t_ref_K * nu_max
        ) * max(drift_log_ratio, 0.0)
        return math.expm1(abs(physics.arrhenius_exponent(ta, tb, ea)))

    # -- clocks --------------------------------------------------------------------------
    @property
    def demarcation(self) -> bool:
        """True when the drift clock follows the demarcation-energy law."""
        return self.relaxation_tau0_s > 0.0

    def drift_age_after(self, t_eq_s: float, dt_s: float, temperature_K: float | None) -> float:
        """Drift-equivalent age after ``dt_s`` more seconds at ``temperature_K`` (constant;
        ``None`` is ``t_ref_K``)."""
        if temperature_K is None or temperature_K == self.t_ref_K:
            return t_eq_s + dt_s
        if self.demarcation:
            return physics.relaxed_age(
                t_eq_s,
                dt_s,
                temperature_K,
                self.t_ref_K,
                self.relaxation_tau0_s,
                self.relaxation_t0_s,
            )
        return t_eq_s + dt_s * physics.arrhenius_factor(
            temperature_K, self.t_ref_K, self.drift_ea_eV
        )

    def drift_rate(self, t_eq_s: float, temperature_K: float | None) -> float:
        """Drift-equivalent seconds per second at ``temperature_K`` and age ``t_eq_s``."""
        if temperature_K is None or temperature_K == self.t_ref_K:
            return 1.0
        if self.demarcation:
            return physics.relaxation_rate(
                t_eq_s, temperature_K, self.t_ref_K, self.relaxation_tau0_s, self.relaxation_t0_s
            )
        return physics.arrhenius_factor(temperature_K, self.t_ref_K, self.drift_ea_eV)

    def fault_acceleration(self, temperature_K: float | None) -> float:
        """Fault-onset equivalent seconds per second at ``temperature_K`` (Arrhenius)."""
        if temperature_K is None:
            return 1.0
        return physics.arrhenius_factor(temperature_K, self.t_ref_K, self.fault_ea_eV)


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
