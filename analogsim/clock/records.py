"""What the clock reports: the chip as a step sees it, and what the clock did."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ClockEvent", "StepState"]


@dataclass(frozen=True)
class ClockEvent:
    """Something the clock did between or at steps (for ``events.csv``).

    Attributes:
        time_s: deployment time of the event, s since programming.
        kind: ``update``, ``recalibration``, ``fault_checkpoint``, ``temperature_breakpoint``.
        detail: a short human-readable note.
    """

    time_s: float
    kind: str
    detail: str = ""


@dataclass(frozen=True)
class StepState:
    """The chip as step ``index`` sees it.

    Attributes:
        index: step (token / input) index, 0-based.
        time_s: deployment time, s since programming (``start_age + index * step_time``).
        temperature_K: temperature at ``time_s``, K.
        equivalent_s: drift age per ``Temperature.age_key``, s at the key's ``t_ref_K``.
        updated: True when the device state was recomputed for this step.
        reasons: why it was (``first``, ``bound``, ``faults``, ``recalibration``).
        sigma: statistical-noise sigma applied at this step (None without a schedule).
        weight_error: relative weight error ``||W_eff - W|| / ||W||`` per role, computed at
            the last real update (and at every sigma change) and carried in between.
        faults: failed devices (stuck at programming plus onsets) counted with
            ``DeviceModel.fault_masks`` at the last update; None when no device has faults.
        faults_expected: expected failed devices at ``time_s`` (static rates plus onset
            probability at the equivalent age); None when no device has faults.
        updates_so_far: real state updates since the clock started (this one included).
    """

    index: int
    time_s: float
    temperature_K: float
    equivalent_s: dict[tuple[float, float], float]
    updated: bool
    reasons: tuple[str, ...]
    sigma: float | None
    weight_error: dict[str, float]
    faults: int | None
    faults_expected: float | None
    updates_so_far: int

    def trace_fields(self, roles: Sequence[str]) -> dict[str, Any]:
        """The chip columns of a trace row (generate and stream share them): sigma, fault
        counts, whether and why the state was updated, and the weight error per role."""
        row: dict[str, Any] = {
            "sigma": self.sigma,
            "faults_so_far": self.faults,
            "faults_expected": self.faults_expected,
            "updated": self.updated,
            "update_reason": ";".join(self.reasons),
        }
        for r in roles:
            row[f"weight_error_{r}"] = self.weight_error.get(r, math.nan)
        return row
