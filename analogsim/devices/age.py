r"""Deployment age: wall time since programming and the ages of each device kind.

A device has three clocks (docs/physics.md section 4):

* the **drift** clock: the relaxation-equivalent age at the fits' reference temperature.
  By the demarcation-energy law of distributed activation energies (Ielmini, Lavizzari,
  Sharma, Lacaita, APL 92, 193511, 2008) it obeys
  :math:`dt_{eq}/dt = (T/T_{ref})\,((t_{eq} + t_0)/\tau_0)^{1 - T_{ref}/T}`, not a constant
  factor (:func:`~analogsim.devices.physics.relaxed_age`); cards without an attempt time
  use a constant Arrhenius factor instead;
* the **noise** clock: wall (held) time, for 1/f read noise, whose accumulation is a
  measurement-bandwidth effect, not structural ageing;
* the **fault** clock: Arrhenius-equivalent time with the card's ``fault_ea_eV``.

One :class:`DeploymentAge` holds the wall time and, per
:attr:`Temperature.age_key <analogsim.devices.sections.Temperature.age_key>`, the drift
and fault ages. :meth:`DeploymentAge.device_time` gives a device its
:class:`DeviceTime`. Constant-temperature intervals are added here in closed form; under
a temperature profile the caller (the clock) integrates and hands the new ages over.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from analogsim.devices.physics import TEMPERATURE_RANGE_K, arrhenius_factor
from analogsim.devices.sections import Temperature

__all__ = ["AgeKey", "DeploymentAge", "DeviceTime", "as_device_time", "check_temperature"]

AgeKey = tuple[float, float, float, float, float]
"""``(t_ref_K, relaxation_tau0_s, relaxation_t0_s, drift_ea_eV, fault_ea_eV)`` of a device
population (``Temperature.age_key``)."""


@dataclass(frozen=True)
class DeviceTime:
    """The three ages of a device, seconds.

    Attributes:
        drift_s: drift-equivalent age at the reference temperature (drift, structural
            relaxation, the growth of the conduction activation energy).
        noise_s: wall time held since programming (1/f read-noise accumulation).
        fault_s: fault-onset equivalent age (Arrhenius with ``fault_ea_eV``).
    """

    drift_s: float
    noise_s: float
    fault_s: float

    @classmethod
    def same(cls, t_s: float) -> DeviceTime:
        """All three ages equal (a chip at its reference temperature)."""
        t = float(t_s)
        return cls(t, t, t)


def as_device_time(t: float | DeviceTime) -> DeviceTime:
    """A :class:`DeviceTime` from a float (all three ages equal) or as is."""
    return t if isinstance(t, DeviceTime) else DeviceTime.same(t)


def check_temperature(value: Any, name: str, *, allow_none: bool = True) -> float | None:
    """``value`` as kelvin in :data:`~analogsim.units.TEMPERATURE_RANGE_K`
    (``None`` passes when allowed); a ``ValueError`` naming ``name`` otherwise."""
    lo, hi = TEMPERATURE_RANGE_K
    if value is None and allow_none:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be kelvin in [{lo:g}, {hi:g}] K, got {value!r}") from None
    if not math.isfinite(out) or not lo <= out <= hi:
        raise ValueError(
            f"{name} must be kelvin in [{lo:g}, {hi:g}] K (-40 C to 125 C, the range the "
            f"device physics is valid in), got {value!r}"
        )
    return out


def _temperature_of(key: AgeKey) -> Temperature:
    """The clock part of a temperature section, rebuilt from its key."""
    t_ref, tau0, t0, ea, fault_ea = key
    return Temperature(
        t_ref_K=t_ref,
        relaxation_tau0_s=tau0,
        relaxation_t0_s=t0,
        drift_ea_eV=ea,
        fault_ea_eV=fault_ea,
    )


@dataclass
class DeploymentAge:
    """Wall time since programming and the drift and fault ages per :data:`AgeKey`.

    Attributes:
        time_s: wall (deployment) time since programming, s.
        equivalent_s: drift-equivalent age per key, s at the key's ``t_ref_K``; a missing
            key has aged like wall time (:meth:`equivalent`).
        fault_s: fault-equivalent age per key, s.
    """

    time_s: float = 0.0
    equivalent_s: dict[AgeKey, float] = field(default_factory=dict)
    fault_s: dict[AgeKey, float] = field(default_factory=dict)

    @staticmethod
    def drift_after(key: AgeKey, t_eq_s: float, dt_s: float, temperature_K: float | None) -> float:
        """Drift age of ``key`` after ``dt_s`` more seconds at a constant temperature."""
        return _temperature_of(key).drift_age_after(t_eq_s, dt_s, temperature_K)

    @staticmethod
    def drift_rate(key: AgeKey, t_eq_s: float, temperature_K: float | None) -> float:
        """Drift-equivalent seconds per second at ``temperature_K`` and drift age ``t_eq_s``."""
        return _temperature_of(key).drift_rate(t_eq_s, temperature_K)

    @staticmethod
    def fault_acceleration(key: AgeKey, temperature_K: float | None) -> float:
        """Fault-equivalent seconds per second at ``temperature_K`` (``None``: 1)."""
        if temperature_K is None:
            return 1.0
        return arrhenius_factor(temperature_K, key[0], key[4])

    @classmethod
    def held(
        cls, time_s: float, temperature_K: float | None, keys: Iterable[AgeKey]
    ) -> DeploymentAge:
        """The age of a chip held at ``temperature_K`` since programming."""
        out = cls(float(time_s))
        out.hold_missing(keys, temperature_K)
        return out

    def equivalent(self, key: AgeKey) -> float:
        """Drift-equivalent age of ``key``, s at its reference temperature."""
        return self.equivalent_s.get(key, self.time_s)

    def fault_equivalent(self, key: AgeKey) -> float:
        """Fault-equivalent age of ``key``, s."""
        return self.fault_s.get(key, self.time_s)

    def device_time(self, key: AgeKey) -> DeviceTime:
        """The :class:`DeviceTime` of a device of ``key``."""
        return DeviceTime(self.equivalent(key), self.time_s, self.fault_equivalent(key))

    def hold_missing(self, keys: Iterable[AgeKey], temperature_K: float | None) -> None:
        """Give every key not yet present the ages of a chip held at ``temperature_K`` since
        programming."""
        for key in keys:
            if key not in self.equivalent_s:
                self.equivalent_s[key] = self.drift_after(key, 0.0, self.time_s, temperature_K)
            if key not in self.fault_s:
                self.fault_s[key] = self.time_s * self.fault_acceleration(key, temperature_K)

    def add_constant(self, dt_s: float, temperature_K: float | None) -> None:
        """Add ``dt_s`` seconds at a constant ``temperature_K`` to every key held and to
        the wall time (closed forms)."""
        if not math.isfinite(dt_s) or dt_s < 0:
            raise ValueError(f"dt must be finite and >= 0, got {dt_s}")
        for key in list(self.equivalent_s):
            self.equivalent_s[key] = self.drift_after(
                key, self.equivalent(key), dt_s, temperature_K
            )
        for key in list(self.fault_s):
            self.fault_s[key] = self.fault_equivalent(key) + dt_s * self.fault_acceleration(
                key, temperature_K
            )
        self.time_s = self.time_s + dt_s

    def add_integrated(
        self,
        time_s: float,
        drift: dict[AgeKey, float],
        fault_increments: dict[AgeKey, float] | None = None,
    ) -> None:
        """Move the wall time to ``time_s``, set each key's new drift age (integrated over a
        temperature profile by the caller) and add its fault-age increment."""
        if time_s < self.time_s:
            raise RuntimeError(f"the age cannot go back from {self.time_s} s to {time_s} s")
        for key, value in drift.items():
            self.equivalent_s[key] = value
        for key, inc in (fault_increments or {}).items():
            self.fault_s[key] = self.fault_equivalent(key) + inc
        self.time_s = time_s

    def copy(self, keys: Iterable[AgeKey] | None = None) -> DeploymentAge:
        """An independent copy (only ``keys``, each at its ages, if given)."""
        if keys is None:
            return DeploymentAge(self.time_s, dict(self.equivalent_s), dict(self.fault_s))
        keys = list(keys)
        return DeploymentAge(
            self.time_s,
            {key: self.equivalent(key) for key in keys},
            {key: self.fault_equivalent(key) for key in keys},
        )
