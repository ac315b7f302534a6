"""analogsim.clock: simulated deployment time, temperature, drift, faults and noise while a
model runs (docs/clock.md, docs/clock_profiles.md).

>>> from analogsim.clock import Clock, generate_with_clock, run_generate, run_stream
>>> run_generate("tiny-gpt2", mapping="all_analog", device="pcm", tokens=100,
...              token_time="1d", temperature="sine:300K:360K:7d")          # doctest: +SKIP

* :class:`Clock`: a simpy environment owning deployment time (s since programming) and
  temperature; steps (tokens, inputs) at ``start_age + k * step_time``; fault-onset,
  recalibration and temperature processes; skips state updates below a tolerance.
* :class:`WeightNoise`: statistical weight noise on a sigma schedule, exactly sigma(k).
* :func:`generate_with_clock` / :func:`run_generate`: Hugging Face ``generate`` with the
  clock hooked in (forward pre-hook + logits processor), trace, plots, run directory.
* :func:`run_stream`: a classifier over a stream of inputs, accuracy over deployment time.
* :func:`detect_cliff`: the CUSUM degradation detector of the traces.
"""

from analogsim.clock.core import (
    DEFAULT_TOLERANCE,
    Clock,
    ClockEvent,
    StepState,
    WeightNoise,
    effective_matrix,
)
from analogsim.clock.generate import (
    GenerationResult,
    TokenRecorder,
    digital_scores,
    generate_with_clock,
    parse_fault_rates,
    run_generate,
)
from analogsim.clock.profiles import Profile, parse_profile
from analogsim.clock.schedules import Schedule, parse_schedule
from analogsim.clock.stream import run_stream
from analogsim.clock.trace import detect_cliff, plot_stream_trace, plot_trace

__all__ = [
    "DEFAULT_TOLERANCE",
    "Clock",
    "ClockEvent",
    "GenerationResult",
    "Profile",
    "Schedule",
    "StepState",
    "TokenRecorder",
    "WeightNoise",
    "detect_cliff",
    "digital_scores",
    "effective_matrix",
    "generate_with_clock",
    "parse_fault_rates",
    "parse_profile",
    "parse_schedule",
    "plot_stream_trace",
    "plot_trace",
    "run_generate",
    "run_stream",
]
