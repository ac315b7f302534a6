"""analogsim.clock: simulated deployment time, temperature, drift, faults and noise while a
model runs (docs/clock.md, docs/clock_profiles.md).

>>> from analogsim.clock import Clock, parse_profile
>>> profile = parse_profile("sine:300K:360K:7d")

* :class:`Clock`: a simpy environment owning deployment time (s since programming) and
  temperature; steps (tokens, inputs) at ``start_age + k * step_time``; fault-onset,
  recalibration and temperature processes; skips state updates below a tolerance.
* Statistical weight noise on a sigma schedule (``WeightNoise``) lives with the rest of
  the statistical perturbation in :mod:`analogsim.mapping.perturb`; probes of the chip
  (effective weights, weight error, fault counts) in :mod:`analogsim.mapping.analog_model`.

The studies that drive the clock (clocked generation, streams, traces and the cliff
detector) live in :mod:`analogsim.studies`.
"""

from analogsim.clock.core import DEFAULT_TOLERANCE, Clock
from analogsim.clock.profile_spec import parse_profile
from analogsim.clock.profiles import Profile
from analogsim.clock.records import ClockEvent, StepState
from analogsim.clock.schedules import Schedule, parse_schedule

__all__ = [
    "DEFAULT_TOLERANCE",
    "Clock",
    "ClockEvent",
    "Profile",
    "Schedule",
    "StepState",
    "parse_profile",
    "parse_schedule",
]
