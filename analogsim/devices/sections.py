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

    @property
    def age_key(self) -> tuple[float, float]:
        """``(t_ref_K, drift_ea_eV)``: devices with the same key age alike under any
        temperature history; the key of :class:`~analogsim.devices.age.DeploymentAge`."""
        return (float(self.t_ref_K), float(self.drift_ea_eV))

    def acceleration(self, temperature_K: float) -> float:
        """Equivalent seconds at ``t_ref_K`` per second at ``temperature_K``."""
        return physics.arrhenius_factor(temperature_K, self.t_ref_K, self.drift_ea_eV)

    @property
    def affects_conduction(self) -> bool:
        return self.conduction_ea_gmin_eV != 0.0 or self.conduction_ea_gmax_eV != 0.0

    def conduction_exponent_per_eV(self, temperature_K: float) -> float:
        r""":math:`(1/T - 1/T_{ref})/k_B`, 1/eV: conduction read at ``temperature_K`` is
        multiplied by ``exp(-ea * this)`` for a device of activation energy ``ea``."""
        return physics.arrhenius_exponent_per_eV(temperature_K, self.t_ref_K)

    def conduction_change_bound(
        self, temperature1_K: float | None, temperature2_K: float | None
    ) -> float:
        r"""Largest relative change of a conductance read at ``T1`` instead of ``T2``:
        :math:`|\exp(E_{a,max}/k_B\,|1/T_1 - 1/T_2|) - 1|` (``None`` is ``t_ref_K``)."""
        ta = self.t_ref_K if temperature1_K is None else temperature1_K
        tb = self.t_ref_K if temperature2_K is None else temperature2_K
        ea = max(abs(self.conduction_ea_gmin_eV), abs(self.conduction_ea_gmax_eV))
        return math.expm1(abs(physics.arrhenius_exponent(ta, tb, ea)))


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
