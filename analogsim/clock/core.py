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
read temperature and, per (reference temperature, drift activation energy) of the
model's devices, the equivalent age

.. math:: t_{eq}(t) = \int_0^{t} \exp\!\Big(-\frac{E_a}{k_B}
          \Big(\frac{1}{T(s)} - \frac{1}{T_{ref}}\Big)\Big)\,ds,

accumulated piece by piece with :meth:`Profile.equivalent_time`, which is additive to
~1e-12, so the state at a time does not depend on how often the clock ticked.

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
from dataclasses import dataclass
from typing import Any

import simpy
import torch
from torch import Tensor, nn

from analogsim.clock.profiles import Constant, Profile, parse_profile
from analogsim.clock.schedules import Schedule
from analogsim.devices.model import DeviceModel
from analogsim.devices.physics import arrhenius_factor
from analogsim.devices.rng import CHUNK, derive_seed
from analogsim.errors import ConfigError

__all__ = [
    "DEFAULT_TOLERANCE",
    "Clock",
    "ClockEvent",
    "StepState",
    "WeightNoise",
    "effective_matrix",
]

TIME_CACHE_MAX_BYTES = 4 << 30
"""Largest estimated time cache the clock turns on by itself (bytes): per analog layer up
to ten tensors twice the size of its weights, 20x the weight bytes."""

DEFAULT_TOLERANCE = 0.005
"""Default skip tolerance: a state update is skipped while no conductance can have moved
by more than this fraction of g_max since the last real update (docs/clock.md)."""

LATE = 2
"""simpy priority of the step tick: after every URGENT (0) and NORMAL (1) event at the
same simulated time, so a recalibration or fault checkpoint at ``t_k`` is seen by step k."""


# --------------------------------------------------------------------------------------
# small records


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
        equivalent_s: equivalent age per ``(t_ref_K, drift_ea_eV)`` key, s at ``t_ref_K``.
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


# --------------------------------------------------------------------------------------
# helpers over the analog layers (the only places that read layer internals)


def _inner(layer: nn.Module) -> nn.Module:
    """The AnalogLayer that holds the state (an AnalogEmbedding wraps one)."""
    return getattr(layer, "_layer", layer)


def effective_matrix(layer: nn.Module) -> Tensor:
    """Effective ``(out, in)`` weights an analog layer applies now, in weight units.

    ``W_eff = w_eff * out_mult[:, None]`` (normalised weights times the digital output
    scale, drift compensation included) for a tile with converters, ``w_eff`` itself when
    the scale is folded in. Uses ``layer.effective_weight()`` when the layer provides it.
    """
    inner = _inner(layer)
    if hasattr(inner, "effective_weight"):
        return inner.effective_weight()
    w = inner.w_eff
    mult = getattr(inner, "out_mult", None)
    if mult is not None:
        return w * mult[:, None]
    return w


def _target_matrix(layer: nn.Module) -> Tensor:
    return _inner(layer).matrix().detach()


_ERR_BLOCK = 1 << 16  # elements per block of the weight-error pass (stays in cache)


def _squared_error(layer: nn.Module) -> float:
    """``||W_eff - W||^2`` of one layer in one read of ``w_eff`` and ``W`` (float64 sums).

    Works in row blocks of about :data:`_ERR_BLOCK` elements through one small reused
    buffer, so no weight-sized temporary is made.
    """
    inner = _inner(layer)
    w = _target_matrix(layer)
    if hasattr(inner, "effective_weight"):
        eff, mult = inner.effective_weight(), None
    else:
        eff, mult = inner.w_eff, getattr(inner, "out_mult", None)
    rows = max(1, _ERR_BLOCK // max(1, w.shape[1]))
    buf = torch.empty(min(rows, w.shape[0]), w.shape[1], dtype=eff.dtype, device=eff.device)
    total = 0.0
    for r0 in range(0, w.shape[0], rows):
        r1 = min(r0 + rows, w.shape[0])
        b = buf[: r1 - r0]
        if mult is not None:
            torch.mul(eff[r0:r1], mult[r0:r1, None], out=b)
            b.sub_(w[r0:r1])
        else:
            torch.sub(eff[r0:r1], w[r0:r1], out=b)
        total += float(torch.linalg.vector_norm(b, dtype=torch.float64)) ** 2
    return total


def _count_faults(layer: nn.Module, t_eq: float) -> int:
    """Failed devices of a layer at equivalent age ``t_eq`` (same chunks and draws as the
    layer's state computation: ``CHUNK`` weights per chunk, a ``(2, n)`` pair per chunk)."""
    inner = _inner(layer)
    dev: DeviceModel = inner.device_model
    n = _target_matrix(layer).numel()
    count = 0
    for i, start in enumerate(range(0, n, CHUNK)):
        size = min(CHUNK, n - start)
        masks = dev.fault_masks((2, size), inner.seed, t_eq, chunk=i)
        count += int(sum(int(m.sum()) for m in masks.values()))
    return count


def _ea_key(dev: DeviceModel) -> tuple[float, float]:
    return (float(dev.temperature.t_ref_K), float(dev.temperature.drift_ea_eV))


# --------------------------------------------------------------------------------------
# statistical weight noise on a schedule


@dataclass
class _Target:
    name: str
    role: str
    xi: Tensor  # fixed draw times the scale, weight units, shape of the tensor it perturbs
    param: Tensor | None = None  # digital parameter (perturbed in place)
    original: Tensor | None = None
    layer: nn.Module | None = None  # analog layer (effective weights perturbed)
    clean: Tensor | None = None
    xi_n: Tensor | None = None
    xi_sq: float = 0.0
    w_sq: float = 0.0


class WeightNoise:
    r"""Statistical weight noise whose sigma follows a schedule over steps.

    At step ``k`` every selected weight is :math:`W + \sigma(k)\,\xi` with one fixed draw
    :math:`\xi` per weight (from the registered distribution ``noise``, seeded per layer
    from ``seed``; times ``std(W)`` of the layer with ``relative``), so the perturbation at
    step ``k`` is exactly ``schedule.noise_at(k, xi)``: its scale is sigma(k) at every
    step, it is continuous and goes down when the schedule goes down (not the
    accumulate-fresh-increments mistake of REFERENCES.md).

    Digital model (``analog=False``): the parameters of :func:`analogsim.studies.sweep.select_targets`
    (weights and biases of the chosen roles; tied embeddings only with
    ``include_embeddings``) are set to ``original + sigma xi`` in place, one pass per sigma
    change, and :meth:`restore` copies the originals back bit for bit.

    Converted model (``analog=True``): the noise is added to the *effective* weights of
    the analog layers with the chosen roles, on top of the device state (digital layers and
    biases stay exact). A clean copy of each such layer's effective weights is kept
    (1x their bytes) so the perturbation is exact after every state update.

    Args:
        model: the torch model, or an ``AnalogModel`` with ``analog=True``.
        schedule: sigma per step (:mod:`analogsim.clock.schedules`).
        noise: registered distribution name (``gaussian``, ``uniform``, ``cauchy``, ...).
        seed: run seed; each layer draws from ``derive_seed(seed, "schedule", name)``.
        relative: sigma relative to each layer's weight std.
        roles: roles to perturb (default all but embeddings).
        include_embeddings, include_bias: as in :func:`analogsim.studies.sweep.select_targets`.
        noise_params: extra parameters of the distribution (``df`` of student-t).
    """

    def __init__(
        self,
        model: nn.Module,
        schedule: Schedule,
        noise: str = "gaussian",
        seed: int = 0,
        *,
        relative: bool = False,
        roles: Sequence[str] | None = None,
        include_embeddings: bool = False,
        include_bias: bool = True,
        noise_params: dict[str, Any] | None = None,
        analog: bool = False,
    ) -> None:
        from analogsim.devices.noise import get_noise

        if not isinstance(schedule, Schedule):
            raise ConfigError(
                "not a sigma schedule", key="schedule", value=schedule, allowed="a Schedule"
            )
        self.schedule = schedule
        self.noise = noise
        self.seed = int(seed)
        self.relative = relative
        self.analog = analog
        dist = get_noise(noise)
        params = dict(noise_params or {})
        self.targets: list[_Target] = []
        if analog:
            self._init_analog(model, dist, params, roles)
        else:
            self._init_digital(model, dist, params, roles, include_embeddings, include_bias)
        if not self.targets:
            raise ConfigError(
                "the noise selection perturbs no weight",
                key="noise_roles",
                value=list(roles) if roles else None,
            )
        self.sigma: float | None = None
        by_role: dict[str, list[_Target]] = {}
        for t in self.targets:
            by_role.setdefault(t.role, []).append(t)
        self._roles = by_role

    def _draw(self, name: str, like: Tensor, dist: Any, params: dict[str, Any]) -> Tensor:
        gen = torch.Generator(device=like.device).manual_seed(
            derive_seed(self.seed, "schedule", name)
        )
        xi = dist.sample(tuple(like.shape), gen, device=like.device, dtype=like.dtype, **params)
        if self.relative:
            xi.mul_(float(like.detach().float().std()))
        return xi

    def _init_digital(self, model, dist, params, roles, include_embeddings, include_bias) -> None:
        from analogsim.mapping.roles import model_roles
        from analogsim.studies.sweep import select_targets

        info = model_roles(model).by_name()
        for t in select_targets(
            model, roles, include_embeddings=include_embeddings, include_bias=include_bias
        ):
            name = t.names[0]
            suffix = (
                ".bias" if t.param.dim() == 1 and t.param is not _weight_of(model, name) else ""
            )
            role = info[name].role if name in info else "other"
            xi = self._draw(name + suffix, t.original, dist, params)
            self.targets.append(
                _Target(
                    name + suffix,
                    role,
                    xi,
                    param=t.param,
                    original=t.original,
                    xi_sq=float(torch.linalg.vector_norm(xi, dtype=torch.float64) ** 2),
                    w_sq=float(torch.linalg.vector_norm(t.original, dtype=torch.float64) ** 2),
                )
            )

    def _init_analog(self, am, dist, params, roles) -> None:
        from analogsim.mapping.roles import ROLES
        from analogsim.tiles.layer import AnalogLayer

        wanted = set(roles) if roles else {r for r in ROLES if r != "embedding"}
        plan = am.plan.by_name()
        for name, layer in am.analog_layers():
            if not isinstance(layer, AnalogLayer):
                continue
            role = plan[name].role if name in plan else "other"
            if role not in wanted:
                continue
            w = layer.matrix().detach()
            xi = self._draw(name, w, dist, params)
            self.targets.append(
                _Target(
                    name,
                    role,
                    xi,
                    layer=layer,
                    w_sq=float(torch.linalg.vector_norm(w, dtype=torch.float64) ** 2),
                )
            )

    # ------------------------------------------------------------------ per step
    @torch.no_grad()
    def refresh(self) -> None:
        """After a device-state update: snapshot the clean effective weights (analog mode)."""
        if not self.analog:
            return
        for t in self.targets:
            inner = _inner(t.layer)
            t.clean = inner.w_eff.clone()
            mult = getattr(inner, "out_mult", None)
            t.xi_n = t.xi if mult is None else t.xi / mult[:, None]
        self.sigma = None  # force re-application

    @torch.no_grad()
    def apply(self, k: int, *, force: bool = False) -> tuple[float, bool]:
        """Set the perturbation of step ``k``; returns ``(sigma(k), changed)``."""
        sigma = float(self.schedule.sigma(k))
        if not force and self.sigma is not None and sigma == self.sigma:
            return sigma, False
        for t in self.targets:
            if t.layer is None:
                torch.add(t.original, t.xi, alpha=sigma, out=t.param.data)
            else:
                torch.add(t.clean, t.xi_n, alpha=sigma, out=_inner(t.layer).w_eff)
        self.sigma = sigma
        return sigma, True

    def weight_error(self, sigma: float) -> dict[str, float]:
        """Digital mode: ``sigma ||xi|| / ||W||`` per role (exact, no pass over the weights)."""
        out = {}
        for role, ts in self._roles.items():
            w = sum(t.w_sq for t in ts)
            x = sum(t.xi_sq for t in ts)
            out[role] = sigma * math.sqrt(x / w) if w > 0 else math.nan
        return out

    @torch.no_grad()
    def restore(self) -> None:
        """Digital parameters back to their originals bit for bit; analog effective weights
        back to the clean device state."""
        for t in self.targets:
            if t.layer is None:
                t.param.data.copy_(t.original)
            elif t.clean is not None:
                _inner(t.layer).w_eff.copy_(t.clean)
        self.sigma = None

    def check_restored(self) -> None:
        """Raise if a digital parameter differs from its original (never expected)."""
        for t in self.targets:
            if t.layer is None and not torch.equal(t.param.detach(), t.original):
                raise RuntimeError(f"weight restore failed for {t.name}")


def _weight_of(model: nn.Module, name: str) -> Tensor | None:
    try:
        return model.get_submodule(name).weight
    except AttributeError:
        return None


# --------------------------------------------------------------------------------------
# device populations


@dataclass
class _Group:
    """The analog layers on one device model (one population for faults and skipping)."""

    device: DeviceModel
    key: tuple[float, float]
    layers: list[tuple[str, nn.Module]]
    n_devices: int
    static_fraction: float
    te_upd: float = 0.0
    T_upd: float | None = None
    limit: float = 0.0
    onsets_upd: float = 0.0
    faults: int | None = None

    @property
    def has_faults(self) -> bool:
        f = self.device.faults
        return f.static or f.dynamic

    def expected_onsets(self, t_eq: float) -> float:
        """Expected devices failed by onset at equivalent age ``t_eq``."""
        healthy = self.n_devices * (1.0 - self.static_fraction)
        return healthy * self.device.faults.onset_probability(t_eq)

    def expected_faults(self, t_eq: float) -> float:
        return self.n_devices * self.static_fraction + self.expected_onsets(t_eq)


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
        time_cache: turn on the layers' cached state-update path while the clock runs
            (where the tiles provide ``enable_time_cache``; identical numbers, more memory),
            and off again in :meth:`close`. It is left off when its estimate (20x the
            analog weight bytes) exceeds :data:`TIME_CACHE_MAX_BYTES`; the summary says
            whether it was on.
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
        from analogsim.mapping.analog_model import AnalogModel

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

        self.groups = self._make_groups()
        self._keys = sorted({g.key for g in self.groups})
        self._role_w_sq = self._role_norms()

        self.env = simpy.Environment(initial_time=self.start_age_s)
        self.events: list[ClockEvent] = []
        self.steps: list[StepState] = []
        self.n_updates = 0
        # passes over the analog weights besides set_time: weight error, fault counts
        self.extra_passes = 0
        self._t_mark = 0.0
        self._te: dict[tuple[float, float], float] = {k: 0.0 for k in self._keys}
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
    def _make_groups(self) -> list[_Group]:
        if self.am is None:
            return []
        groups: dict[int, _Group] = {}
        for name, layer in self.am.analog_layers():
            dev = _inner(layer).device_model
            g = groups.get(id(dev))
            if g is None:
                f = dev.faults
                static = f.stuck_at_gmin_rate + f.stuck_at_gmax_rate + f.outlier_rate
                g = groups[id(dev)] = _Group(dev, _ea_key(dev), [], 0, min(1.0, static))
            g.layers.append((name, layer))
            g.n_devices += 2 * _target_matrix(layer).numel()
        return list(groups.values())

    def _role_norms(self) -> dict[str, float]:
        if self.am is None:
            return {}
        plan = self.am.plan.by_name()
        out: dict[str, float] = {}
        for name, layer in self.am.analog_layers():
            role = plan[name].role if name in plan else "other"
            w = _target_matrix(layer)
            out[role] = out.get(role, 0.0) + float(
                torch.linalg.vector_norm(w, dtype=torch.float64) ** 2
            )
        return out

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
        if t < self._t_mark:
            raise RuntimeError(f"clock cannot go back from {self._t_mark} s to {t} s")
        if t == self._t_mark:
            return
        for key in self._keys:
            t_ref, ea = key
            if ea == 0.0:
                self._te[key] += t - self._t_mark
            else:
                self._te[key] += self.profile.equivalent_time(self._t_mark, t, ea, t_ref)
        self._t_mark = t

    def equivalent_age(self, key: tuple[float, float] | None = None) -> float:
        """Equivalent age (s at ``t_ref``) at the last time the clock integrated to; the
        first device population's key by default."""
        if key is None:
            if not self._keys:
                raise ValueError("no analog devices: no equivalent age")
            key = self.groups[0].key
        return self._te[key]

    def _temperature(self, t: float) -> float:
        if self._const_T is not None:
            return self._const_T
        return float(self.profile.temperature(t))

    def _wall_time_for(self, key: tuple[float, float], te_target: float) -> float:
        """Deployment time at which the equivalent age of ``key`` reaches ``te_target``.

        Safeguarded Newton on ``te(t) = te(mark) + equivalent_time(mark, t)`` with
        ``dte/dt = A(T(t))`` (the Arrhenius factor), bracketed by bisection.
        """
        t0, te0 = self._t_mark, self._te[key]
        need = te_target - te0
        if need <= 0:
            return t0
        t_ref, ea = key
        if ea == 0.0:
            return t0 + need

        def te(t: float) -> float:
            return self.profile.equivalent_time(t0, t, ea, t_ref)

        def rate(t: float) -> float:
            return arrhenius_factor(self._temperature(t), t_ref, ea)

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
    def _set_limit(self, g: _Group) -> None:
        """Largest equivalent age reachable from the last update without exceeding the
        tolerance at the same read temperature (bisection on the monotone bound)."""
        dev = g.device
        t1 = g.te_upd
        if not dev.time_dependent():
            g.limit = math.inf
            return
        if self.tolerance == 0.0:
            g.limit = t1
            return

        def bound(t2: float) -> float:
            return dev.change_bound(t1, t2)

        step = max(t1, 1.0)
        hi = t1 + step
        for _ in range(200):
            if bound(hi) > self.tolerance:
                break
            step *= 2.0
            hi = t1 + step
        else:
            g.limit = math.inf
            return
        lo = t1
        for _ in range(60):
            if hi - lo <= 1e-4 * (hi - t1):  # the step to the limit, to 1e-4 relative
                break
            mid = 0.5 * (lo + hi)
            if bound(mid) > self.tolerance:
                hi = mid
            else:
                lo = mid
        g.limit = lo

    def _needs_update(self, g: _Group, T: float) -> bool:
        te = self._te[g.key]
        dev = g.device
        if g.T_upd != T and dev.temperature.affects_conduction:
            return dev.change_bound(g.te_upd, te, g.T_upd, T) > self.tolerance
        return te > g.limit

    @torch.no_grad()
    def _update(self, t: float, T: float, reasons: Sequence[str], *, recalibrate: bool) -> None:
        """Recompute the device state at deployment time ``t`` (the clock is there)."""
        am = self.am
        eq = dict(self._te)
        if recalibrate:
            # one pass: compensation recomputed at this state, then frozen
            am.freeze_compensation(False)
            am.set_time(t, T, equivalent=eq)
            am.freeze_compensation(True)
        else:
            am.set_time(t, T, equivalent=eq)
        self.n_updates += 1
        for g in self.groups:
            g.te_upd = eq[g.key]
            g.T_upd = T
            g.onsets_upd = g.expected_onsets(g.te_upd)
            self._set_limit(g)
            recount = g.device.faults.dynamic or g.faults is None
            if self.do_count_faults and g.has_faults and recount:
                g.faults = sum(_count_faults(layer, g.te_upd) for _, layer in g.layers)
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
        plan = self.am.plan.by_name()
        err: dict[str, float] = {}
        for name, layer in self.am.analog_layers():
            role = plan[name].role if name in plan else "other"
            err[role] = err.get(role, 0.0) + _squared_error(layer)
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

    def _fault_process(self, g: _Group) -> Iterator[simpy.Event]:
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
            if not reasons and any(self._needs_update(g, T) for g in self.groups):
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
            expected = sum(g.expected_faults(self._te[g.key]) for g in self.groups)
        state = StepState(
            index=k,
            time_s=t,
            temperature_K=T,
            equivalent_s=dict(self._te),
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
        if self.time_cache:
            self._set_time_cache(True)
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
        if self.time_cache:
            self._set_time_cache(False)

    def _set_time_cache(self, on: bool) -> None:
        layers = [_inner(layer) for g in self.groups for _, layer in g.layers]
        layers = [layer for layer in layers if hasattr(layer, "enable_time_cache")]
        if on:
            estimate = sum(
                20 * layer.w_eff.numel() * layer.w_eff.element_size()
                for layer in layers
                if getattr(layer, "w_eff", None) is not None
            )
            on = estimate <= TIME_CACHE_MAX_BYTES
            self.time_cache_on = on and bool(layers)
        for layer in layers:
            layer.enable_time_cache(on)

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
    from analogsim.units import parse_time

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
