r"""The event clock: simulated time, temperature, drift, faults and noise while a model runs.

One :class:`Clock` owns a simpy environment whose ``env.now`` is the *deployment time*:
seconds since the chip was programmed. A workload (token generation, a stream of
classifier inputs) is a sequence of *steps*; step ``k`` happens at

.. math:: t_k = t_{start} + k\,\Delta t

(``start_age_s`` and ``step_time_s``), and the forward pass of step ``k`` sees the chip
exactly as it is at :math:`t_k`. Processes (plain generators, ``yield env.timeout(dt)``;
no wall clock anywhere):

* **steps**: wakes at every :math:`t_k` (after every other event at the same time), brings
  the device state to :math:`t_k` when it has moved by more than the tolerance, applies
  the sigma schedule, and hands the step to the workload;
* **temperature**: wakes at every kink or jump of the profile and logs it (the
  temperature at any time is a pure function of the profile; the equivalent age is its
  exact integral, see below);
* **fault onsets** (one per device population with onset hazards): wakes whenever the
  expected number of devices that newly failed since the last state refresh reaches 1,
  and forces a refresh at the next step;
* **recalibration** (optional): every ``recalibrate_every_s`` of deployment time the
  drift-compensation factors are recomputed at that instant and frozen until the next one.

Device state is never stepped: at every real update the clock calls
:meth:`~analogsim.mapping.convert.AnalogModel.set_time` with the deployment time, the
read temperature and, per age key of the model's devices (``Temperature.age_key``), the
drift-equivalent age (the demarcation-energy law
:math:`dt_{eq}/dt = (T/T_{ref})((t_{eq}+t_0)/\tau_0)^{1 - T_{ref}/T}`, carried piece by
piece with :meth:`Profile.drift_age`, exact for constant stretches and to ~1e-11 for
others) and the fault age (the Arrhenius integral with the card's ``fault_ea_eV``,
:meth:`Profile.equivalent_time`, additive to ~1e-12); 1/f read noise runs on the
deployment time itself. So the state at a time does not depend on how often the clock
ticked.

Skipping. A step re-computes the state only when
:meth:`DeviceModel.change_bound` (drift, one std of the accumulated read noise, read
temperature; a bound on the change of any conductance as a fraction of g_max) since the
last real update exceeds ``tolerance`` (default :data:`DEFAULT_TOLERANCE` = 0.005: half
the smallest PCM programming-noise std, 0.26 uS of 25 uS, and below the per-MVM read noise
0.0175 sqrt(|w|) of every weight above 8 % of full scale; docs/clock.md). It always
updates at the first step, after a fault checkpoint and at a recalibration.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import simpy
import torch
from torch import nn

from analogsim.clock.populations import Population, populations
from analogsim.clock.profile_spec import parse_profile
from analogsim.clock.profiles import Constant, Profile
from analogsim.clock.records import ClockEvent, StepState
from analogsim.devices.age import AgeKey, DeploymentAge
from analogsim.errors import ConfigError
from analogsim.mapping.analog_model import AnalogModel, count_faults
from analogsim.mapping.perturb import WeightNoise
from analogsim.units import parse_time

__all__ = ["DEFAULT_TOLERANCE", "TIME_CACHE_MAX_BYTES", "Clock"]

TIME_CACHE_MAX_BYTES = 4 << 30
"""Largest estimated time cache the clock turns on by itself (bytes). The layers' time cache
holds nothing now (every update is one regenerating pass per layer,
:mod:`analogsim.devices.state`), so it is always within this bound."""

DEFAULT_TOLERANCE = 0.005
"""Default skip tolerance: a state update is skipped while no conductance can have moved
by more than this fraction of g_max since the last real update (docs/clock.md)."""

LATE = 2
"""simpy priority of the step tick: after every URGENT (0) and NORMAL (1) event at the
same simulated time, so a recalibration or fault checkpoint at ``t_k`` is seen by step k."""


# --------------------------------------------------------------------------------------
# the clock


class _LateTimeout(simpy.events.Event):
    """A timeout processed after every other event scheduled for the same time."""

    def __init__(self, env: simpy.Environment, delay: float) -> None:
        if delay < 0:
            raise ValueError(f"Negative delay {delay}")
        super().__init__(env)
        self._ok = True
        self._value = None
        env.schedule(self, LATE, delay)


class Clock:
    """Simulated deployment time, temperature and device state for a model that runs steps.

    Args:
        model: an ``AnalogModel`` (device state is driven), or any ``nn.Module`` / None
            (time, temperature and the noise schedule only).
        step_time_s: simulated seconds per step (a generated token, a classified input), > 0.
        start_age_s: deployment age at step 0, s since programming (>= 0).
        profile: temperature over deployment time since programming: a
            :class:`~analogsim.clock.profiles.Profile` or its command-line form
            (``"300K"``, ``"sine:300K:360K:1d"``, ``"csv:oven.csv"``); default 300 K.
        tolerance: skip state updates while :meth:`DeviceModel.change_bound` since the last
            real update is at most this fraction of g_max (>= 0; 0 updates at every step).
        recalibrate_every_s: recompute drift compensation every so many seconds of
            deployment time (at 0, every, 2 every, ...) and freeze it in between; None
            recalibrates at every state update (the converted model's default).
        noise: statistical weight noise on a sigma schedule (:class:`WeightNoise`).
        weight_error: compute the relative weight error per role at every update.
        count_faults: count failed devices with ``fault_masks`` at every update (when a
            device has faults).
        on_step: called with each :class:`StepState` once it is prepared.
        time_cache: accepted for earlier callers: sets the layers' time-cache flag while the
            clock runs and clears it in :meth:`close`. The flag changes nothing now: every
            state update is one pass per analog layer that regenerates its devices from the
            seeds (no per-device memory); the summary says whether it was set.
    """

    def __init__(
        self,
        model: nn.Module | None,
        step_time_s: float,
        start_age_s: float = 0.0,
        profile: Profile | str | None = None,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        recalibrate_every_s: float | None = None,
        noise: WeightNoise | None = None,
        weight_error: bool = True,
        count_faults: bool = True,
        on_step: Callable[[StepState], None] | None = None,
        time_cache: bool = True,
    ) -> None:
        self.step_time_s = _positive_time(step_time_s, "token_time")
        self.start_age_s = _time(start_age_s, "start_age")
        if profile is None:
            profile = Constant(300.0)
        self.profile = parse_profile(profile) if isinstance(profile, str) else profile
        if not isinstance(self.profile, Profile):
            raise ConfigError("not a temperature profile", key="temperature", value=profile)
        self._const_T = self.profile.T if isinstance(self.profile, Constant) else None
        if not (isinstance(tolerance, int | float) and math.isfinite(tolerance) and tolerance >= 0):
            raise ConfigError(
                "tolerance must be a finite fraction of g_max >= 0",
                key="tolerance",
                value=tolerance,
                allowed="e.g. 0.005 (0 updates the state at every step)",
            )
        self.tolerance = float(tolerance)
        if recalibrate_every_s is not None:
            recalibrate_every_s = _positive_time(recalibrate_every_s, "recalibrate_every")
        self.recalibrate_every_s = recalibrate_every_s
        self.model = model
        self.am = model if isinstance(model, AnalogModel) else None
        if self.am is not None and self.am.seed is None:
            raise ConfigError(
                "the converted model is not programmed",
                key="model",
                allowed="call AnalogModel.program(seed) first",
            )
        if recalibrate_every_s is not None and self.am is None:
            raise ConfigError(
                "recalibration needs a converted (analog) model",
                key="recalibrate_every",
                allowed="give a mapping, or drop --recalibrate-every",
            )
        self.noise = noise
        self.do_weight_error = weight_error
        self.do_count_faults = count_faults
        self.on_step = on_step
        self.time_cache = time_cache
        self.time_cache_on = False

        self.groups = populations(self.am) if self.am is not None else []
        self._keys = sorted({g.key for g in self.groups})
        self._role_w_sq = self._role_norms()

        self.env = simpy.Environment(initial_time=self.start_age_s)
        self.events: list[ClockEvent] = []
        self.steps: list[StepState] = []
        self.n_updates = 0
        # passes over the analog weights besides set_time: weight error, fault counts
        self.extra_passes = 0
        # wall time of the last integration and the equivalent age of every key there
        self.age = DeploymentAge(0.0, {k: 0.0 for k in self._keys}, {k: 0.0 for k in self._keys})
        self._faults_due = False
        self._weight_error: dict[str, float] = {}
        self._started = False
        self._pending: StepState | None = None
        self._ready: simpy.Event | None = None
        self._go: simpy.Event | None = None
        self._updated: simpy.Event = self.env.event()
        self._first = True
        self._in_prepare = False
        self._between: list[str] = []  # reasons of updates made between two steps

    # ------------------------------------------------------------------ setup
    def _role_norms(self) -> dict[str, float]:
        return {} if self.am is None else self.am.squared_norms_by_role()

    @property
    def roles(self) -> list[str]:
        """Roles that get a weight-error column (analog layers, or the noise targets)."""
        names = set(self._role_w_sq)
        if self.noise is not None:
            names |= set(self.noise._roles)
        return sorted(names)

    @property
    def has_faults(self) -> bool:
        """True when some device population has stuck-at or onset faults."""
        return any(g.has_faults for g in self.groups)

    def step_time(self, k: int) -> float:
        """Deployment time of step ``k``: ``start_age + k * step_time``, s."""
        return self.start_age_s + k * self.step_time_s

    # ------------------------------------------------------------------ time bookkeeping
    def _advance_eq(self, t: float) -> None:
        """Integrate the equivalent age of every key from the last mark to ``t`` (exact,
        additive pieces of the profile's Arrhenius integral)."""
        mark = self.age.time_s
        if t < mark:
            raise RuntimeError(f"clock cannot go back from {mark} s to {t} s")
        if t == mark:
            return
        self.age.add_integrated(
            t,
            {
                key: self.profile.drift_age(mark, t, self.age.equivalent_s[key], key)
                for key in self._keys
            },
            {key: self.profile.equivalent_time(mark, t, key[4], key[0]) for key in self._keys},
        )

    def equivalent_age(self, key: AgeKey | None = None) -> float:
        """Equivalent age (s at ``t_ref``) at the last time the clock integrated to; the
        first device population's key by default."""
        if key is None:
            if not self._keys:
                raise ValueError("no analog devices: no equivalent age")
            key = self.groups[0].key
        return self.age.equivalent_s[key]

    def _temperature(self, t: float) -> float:
        if self._const_T is not None:
            return self._const_T
        return float(self.profile.temperature(t))

    def _wall_time_for(self, key: AgeKey, te_target: float) -> float:
        """Deployment time at which the fault age of ``key`` reaches ``te_target``.

        Safeguarded Newton on ``te(t) = te(mark) + equivalent_time(mark, t)`` with
        ``dte/dt = A(T(t))`` (the Arrhenius factor of ``fault_ea_eV``), bracketed by
        bisection.
        """
        t0, te0 = self.age.time_s, self.age.fault_s[key]
        need = te_target - te0
        if need <= 0:
            return t0
        t_ref, ea = key[0], key[4]
        if ea == 0.0:
            return t0 + need

        def te(t: float) -> float:
            return self.profile.equivalent_time(t0, t, ea, t_ref)

        def rate(t: float) -> float:
            return DeploymentAge.fault_acceleration(key, self._temperature(t))

        lo, hi = t0, t0 + need / rate(t0)
        f_hi = te(hi)
        n = 0
        while f_hi < need:
            lo = hi
            hi = t0 + 2.0 * (hi - t0)
            f_hi = te(hi)
            n += 1
            if n > 200:
                return math.inf
        t = hi
        f = f_hi
        for _ in range(100):
            if abs(f - need) <= 1e-12 * need or hi - lo <= 1e-12 * max(1.0, hi):
                break
            step = t - (f - need) / rate(t)
            t = step if lo < step < hi else 0.5 * (lo + hi)
            f = te(t)
            if f < need:
                lo = t
            else:
                hi = t
        return t if f >= need else hi

    # ------------------------------------------------------------------ state updates
    @torch.no_grad()
    def _update(self, t: float, T: float, reasons: Sequence[str], *, recalibrate: bool) -> None:
        """Recompute the device state at deployment time ``t`` (the clock is there)."""
        am = self.am
        eq = dict(self.age.equivalent_s)
        fault = dict(self.age.fault_s)
        if recalibrate:
            # one pass: compensation recomputed at this state, then frozen
            am.freeze_compensation(False)
            am.set_time(t, T, equivalent=eq, fault=fault)
            am.freeze_compensation(True)
        else:
            am.set_time(t, T, equivalent=eq, fault=fault)
        self.n_updates += 1
        for g in self.groups:
            g.time_upd = self.age.device_time(g.key)
            g.te_upd = g.time_upd.drift_s
            g.T_upd = T
            g.onsets_upd = g.expected_onsets(g.time_upd.fault_s)
            g.set_limit(self.tolerance)
            recount = g.device.faults.dynamic or g.faults is None
            if self.do_count_faults and g.has_faults and recount:
                g.faults = sum(count_faults(layer, g.time_upd.fault_s) for _, layer in g.layers)
                self.extra_passes += 1
        if self.noise is not None:
            self.noise.refresh()
        if self.do_weight_error and not (self.noise is not None and self.noise.analog):
            self._weight_error = self._measure_weight_error()
            self.extra_passes += 1
        self._faults_due = False
        if not self._in_prepare:
            self._between.extend(r for r in reasons if r not in self._between)
        self.events.append(ClockEvent(t, "update", ",".join(reasons)))
        done, self._updated = self._updated, self.env.event()
        done.succeed()

    def _measure_weight_error(self) -> dict[str, float]:
        err = self.am.squared_errors_by_role()
        return {r: math.sqrt(e / self._role_w_sq[r]) for r, e in err.items()}

    # ------------------------------------------------------------------ processes
    def _steps_process(self) -> Iterator[simpy.Event]:
        k = 0
        while True:
            state = self._prepare(k)
            self._go = self.env.event()
            self._ready.succeed(state)
            yield self._go
            k += 1
            yield _LateTimeout(self.env, self.step_time(k) - self.env.now)

    def _recalibration_process(self) -> Iterator[simpy.Event]:
        every = self.recalibrate_every_s
        n = math.floor(self.start_age_s / every) + 1
        while True:
            yield self.env.timeout(n * every - self.env.now)
            t = self.env.now
            self._advance_eq(t)
            self._update(t, self._temperature(t), ("recalibration",), recalibrate=True)
            self.events.append(ClockEvent(t, "recalibration", f"every {every:g} s"))
            n += 1

    def _fault_process(self, g: Population) -> Iterator[simpy.Event]:
        healthy = g.n_devices * (1.0 - g.static_fraction)
        lam = g.device.faults.onset_hazard
        while True:
            target = g.onsets_upd + 1.0
            if target >= healthy:
                return  # every device that can fail will have failed: nothing more to do
            te_target = -math.log1p(-target / healthy) / lam
            self._advance_eq(self.env.now)
            t_wake = self._wall_time_for(g.key, te_target)
            if not math.isfinite(t_wake):
                return
            waiting_for = self._updated
            yield self.env.timeout(max(0.0, t_wake - self.env.now)) | waiting_for
            if waiting_for.triggered:
                continue  # a state update refreshed the faults first: new target
            self._faults_due = True
            self.events.append(
                ClockEvent(
                    self.env.now,
                    "fault_checkpoint",
                    f"{g.device.name}: expected onsets reach {target:.8g}",
                )
            )
            yield self._updated

    def _temperature_process(self) -> Iterator[simpy.Event]:
        horizon = 1e6 * self.step_time_s
        t = self.env.now
        while True:
            pts = self.profile.breakpoints(t, t + horizon)
            if pts.size == 0:
                if not math.isfinite(t + horizon) or t + horizon > 1e300:
                    return
                yield self.env.timeout(horizon)
                t = self.env.now
                continue
            for p in pts:
                yield self.env.timeout(float(p) - self.env.now)
                self.events.append(
                    ClockEvent(
                        self.env.now,
                        "temperature_breakpoint",
                        f"{self._temperature(self.env.now):.6g} K",
                    )
                )
            t = self.env.now

    # ------------------------------------------------------------------ steps
    @torch.no_grad()
    def _prepare(self, k: int) -> StepState:
        t = self.env.now
        self._advance_eq(t)
        T = self._temperature(t)
        reasons: list[str] = []
        if self.am is not None:
            if self._first:
                reasons.append("first")
            if self._faults_due:
                reasons.append("faults")
            if not reasons and any(
                g.needs_update(self.age.device_time(g.key), T, self.tolerance) for g in self.groups
            ):
                reasons.append("bound")
            if reasons:
                self._in_prepare = True
                try:
                    self._update(t, T, reasons, recalibrate=False)
                finally:
                    self._in_prepare = False
        self._first = False
        # updates made since the previous step (a recalibration) changed what this step sees
        reasons = list(self._between) + [r for r in reasons if r not in self._between]
        self._between = []
        sigma = None
        werr = dict(self._weight_error)
        if self.noise is not None:
            sigma, changed = self.noise.apply(k, force=bool(reasons))
            if self.noise.analog:
                if changed and self.do_weight_error:
                    self._weight_error = self._measure_weight_error()
                    self.extra_passes += 1
                werr = dict(self._weight_error)
            else:
                werr.update(self.noise.weight_error(sigma))
        faults = None
        expected = None
        if self.has_faults:
            faults = sum(g.faults for g in self.groups if g.faults is not None)
            if not self.do_count_faults:
                faults = None
            expected = sum(g.expected_faults(self.age.fault_s[g.key]) for g in self.groups)
        state = StepState(
            index=k,
            time_s=t,
            temperature_K=T,
            equivalent_s=dict(self.age.equivalent_s),
            updated=bool(reasons),
            reasons=tuple(reasons),
            sigma=sigma,
            weight_error=werr,
            faults=faults,
            faults_expected=expected,
            updates_so_far=self.n_updates,
        )
        if self.on_step is not None:
            self.on_step(state)
        return state

    def start(self) -> StepState:
        """Start the processes and prepare step 0 (state at ``start_age``); idempotent.

        With ``recalibrate_every_s``, the chip is first put at the last calibration time
        at or before ``start_age`` (``floor(start_age / every) * every``), its drift
        compensation computed there and frozen.
        """
        if self._started:
            return self.steps[0] if self.steps else self._pending
        self._started = True
        if self.time_cache and self.am is not None:
            self.time_cache_on = self.am.enable_time_cache(True, max_bytes=TIME_CACHE_MAX_BYTES)
        if self.recalibrate_every_s is not None:
            every = self.recalibrate_every_s
            t_cal = math.floor(self.start_age_s / every) * every
            self._advance_eq(t_cal)
            if t_cal < self.start_age_s:
                self._update(t_cal, self._temperature(t_cal), ("recalibration",), recalibrate=True)
            else:
                self.am.freeze_compensation(False)
            self.events.append(ClockEvent(t_cal, "recalibration", "last before start"))
            self.env.process(self._recalibration_process())
        for g in self.groups:
            if g.device.faults.dynamic:
                self.env.process(self._fault_process(g))
        self.env.process(self._temperature_process())
        self._ready = self.env.event()
        self.env.process(self._steps_process())
        self.env.run(until=self._ready)
        if self.recalibrate_every_s is not None:
            self.am.freeze_compensation(True)
        self._pending = self._ready.value
        return self._pending

    def next_step(self) -> StepState:
        """Advance to the next step and return the chip as it sees it.

        The first call returns step 0 (starting the clock if needed); each further call
        runs the simulation to ``start_age + k * step_time``.
        """
        if not self._started:
            self.start()
        if self._pending is not None:
            state, self._pending = self._pending, None
        else:
            self._ready = self.env.event()
            self._go.succeed()
            self.env.run(until=self._ready)
            state = self._ready.value
        self.steps.append(state)
        return state

    @torch.no_grad()
    def sync(self) -> None:
        """Force an exact state update at the current simulated time (e.g. to compare
        with a one-jump state at the end of a run)."""
        if self.am is None:
            return
        t = self.env.now
        self._advance_eq(t)
        self._update(t, self._temperature(t), ("sync",), recalibrate=False)
        if self.noise is not None and self.noise.sigma is not None and self.steps:
            self.noise.apply(self.steps[-1].index, force=True)

    def close(self) -> None:
        """Undo the clock's weight noise (digital weights bit for bit) and drop the layers'
        time caches."""
        if self.noise is not None:
            self.noise.restore()
        if self.time_cache and self.am is not None:
            self.am.enable_time_cache(False)

    @contextlib.contextmanager
    def attach(self, module: nn.Module) -> Iterator[Clock]:
        """Advance the clock by one step before every forward of ``module``.

        A forward pre-hook: forward ``j`` (the prefill of ``generate`` is ``j = 0``) runs
        with the chip at step ``j``'s time. The hook is removed on exit.
        """

        def hook(mod: nn.Module, args: Any) -> None:
            self.next_step()

        handle = module.register_forward_pre_hook(hook)
        try:
            yield self
        finally:
            handle.remove()

    def summary(self) -> dict[str, Any]:
        """Counts for the manifest: steps, updates, passes over the weights, events."""
        kinds: dict[str, int] = {}
        for e in self.events:
            kinds[e.kind] = kinds.get(e.kind, 0) + 1
        return {
            "steps": len(self.steps),
            "state_updates": self.n_updates,
            "extra_weight_passes": self.extra_passes,
            "events": kinds,
            "tolerance": self.tolerance,
            "step_time_s": self.step_time_s,
            "start_age_s": self.start_age_s,
            "profile": _spec(self.profile),
            "recalibrate_every_s": self.recalibrate_every_s,
            "time_cache": self.time_cache_on,
        }


def _spec(p: Profile) -> str:
    try:
        return p.spec()
    except ValueError:
        return repr(p)


def _time(value: Any, key: str) -> float:
    return parse_time(value, key=key) if isinstance(value, str) else _checked(value, key, False)


def _positive_time(value: Any, key: str) -> float:
    out = _time(value, key)
    if out <= 0:
        raise ConfigError("must be > 0 s", key=key, value=value, allowed="e.g. 1s, 1h, 1d")
    return out


def _checked(value: Any, key: str, positive: bool) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError("not a time", key=key, value=value, allowed="seconds") from None
    if not math.isfinite(out) or out < 0:
        raise ConfigError("time must be finite and >= 0", key=key, value=value)
    return out
