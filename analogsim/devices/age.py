r"""Deployment age: wall time since programming and the equivalent age of each device kind.

Drift, accumulated noise and fault onsets run on the *equivalent* age at a device's
reference temperature,

.. math:: t_{eq}(t) = \int_0^{t} \exp\!\Big(-\frac{E_a}{k_B}
          \Big(\frac{1}{T(s)} - \frac{1}{T_{ref}}\Big)\Big)\,ds

(Arrhenius acceleration of structural relaxation; Ielmini et al., APL 92, 193511, 2008),
one value per :attr:`Temperature.age_key <analogsim.devices.sections.Temperature.age_key>`
``(t_ref_K, drift_ea_eV)``. :class:`DeploymentAge` is the one place that adds it up:
a constant-temperature interval adds ``dt * A(T)``; an interval under a temperature
profile adds the profile's integral, which the caller computes
(:meth:`analogsim.clock.profiles.Profile.equivalent_time`) and hands over.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from analogsim.devices.physics import arrhenius_factor

__all__ = ["AgeKey", "DeploymentAge"]

AgeKey = tuple[float, float]
"""``(t_ref_K, drift_ea_eV)`` of a device population (``Temperature.age_key``)."""


@dataclass
class DeploymentAge:
    """Wall time since programming and the equivalent age per :data:`AgeKey`.

    Attributes:
        time_s: wall (deployment) time since programming, s.
        equivalent_s: equivalent age per key, s at the key's ``t_ref_K``; a key that is
            missing has aged like wall time (:meth:`equivalent`).
    """

    time_s: float = 0.0
    equivalent_s: dict[AgeKey, float] = field(default_factory=dict)

    @staticmethod
    def acceleration(key: AgeKey, temperature_K: float | None) -> float:
        """Equivalent seconds per second at ``temperature_K`` (``None``: the reference, 1)."""
        if temperature_K is None:
            return 1.0
        t_ref, ea = key
        return arrhenius_factor(temperature_K, t_ref, ea)

    @classmethod
    def held(
        cls, time_s: float, temperature_K: float | None, keys: Iterable[AgeKey]
    ) -> DeploymentAge:
        """The age of a chip held at ``temperature_K`` since programming:
        ``t_eq = time_s * A(T)`` for every key."""
        return cls(time_s, {key: time_s * cls.acceleration(key, temperature_K) for key in keys})

    def equivalent(self, key: AgeKey) -> float:
        """Equivalent age of ``key``, s at its reference temperature."""
        return self.equivalent_s.get(key, self.time_s)

    def hold_missing(self, keys: Iterable[AgeKey], temperature_K: float | None) -> None:
        """Give every key not yet present the age of a chip held at ``temperature_K`` since
        programming (``time_s * A(T)``)."""
        for key in keys:
            if key not in self.equivalent_s:
                self.equivalent_s[key] = self.time_s * self.acceleration(key, temperature_K)

    def add_constant(self, dt_s: float, temperature_K: float | None) -> None:
        """Add ``dt_s`` seconds at a constant ``temperature_K`` to every key held and to
        the wall time: ``t_eq += dt * A(T)``."""
        if not math.isfinite(dt_s) or dt_s < 0:
            raise ValueError(f"dt must be finite and >= 0, got {dt_s}")
        for key in self.equivalent_s:
            self.equivalent_s[key] = self.equivalent(key) + dt_s * self.acceleration(
                key, temperature_K
            )
        self.time_s = self.time_s + dt_s

    def add_integrated(self, time_s: float, increments: dict[AgeKey, float]) -> None:
        """Move the wall time to ``time_s`` and add each key's equivalent age over the
        interval (the Arrhenius integral of a temperature profile, computed by the
        caller)."""
        if time_s < self.time_s:
            raise RuntimeError(f"the age cannot go back from {self.time_s} s to {time_s} s")
        for key, inc in increments.items():
            self.equivalent_s[key] = self.equivalent(key) + inc
        self.time_s = time_s

    def copy(self, keys: Iterable[AgeKey] | None = None) -> DeploymentAge:
        """An independent copy (only ``keys``, each at its :meth:`equivalent` age, if given)."""
        if keys is None:
            return DeploymentAge(self.time_s, dict(self.equivalent_s))
        return DeploymentAge(self.time_s, {key: self.equivalent(key) for key in keys})
