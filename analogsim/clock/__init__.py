"""analogsim.clock: simulated deployment time, temperature, drift, faults and noise while a
model runs (docs/clock.md, docs/clock_profiles.md).

>>> from analogsim.clock import Clock, parse_profile
>>> profile = parse_profile("sine:300K:360K:7d")

* :class:`Clock`: a simpy environment owning deployment time (s since programming) and
  temperature; steps (tokens, inputs) at ``start_age + k * step_time``; fault-onset,
  recalibration and temperature processes; skips state updates below a tolerance.
* :class:`WeightNoise`: statistical weight noise on a sigma schedule, exactly sigma(k).

The studies that drive the clock (clocked generation, streams, traces and the cliff
detector) live in :mod:`analogsim.studies`.
"""

from analogsim.clock.core import (
    DEFAULT_TOLERANCE,
    Clock,
    ClockEvent,
    StepState,
    WeightNoise,
    effective_matrix,
)
from analogsim.clock.profiles import Profile, parse_profile
from analogsim.clock.schedules import Schedule, parse_schedule

__all__ = [
    "DEFAULT_TOLERANCE",
    "Clock",
    "ClockEvent",
    "Profile",
    "Schedule",
    "StepState",
    "WeightNoise",
    "effective_matrix",
    "parse_profile",
    "parse_schedule",
]
