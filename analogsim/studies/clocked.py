"""The shared setup of the clocked studies (``generate`` and ``stream``).

Both run a model on a chip whose state follows a :class:`~analogsim.clock.core.Clock`:
the same chip and clock settings (:class:`ChipOptions`), checked the same way before any
work (:func:`resolve_chip`), the same conversion and programming (:func:`build_model`),
clock (:func:`build_clock`) and clean-up (:func:`running_chip`), and the same tidy
``results.csv`` columns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from analogsim.clock.core import DEFAULT_TOLERANCE, Clock
from analogsim.clock.profile_spec import parse_profile
from analogsim.clock.profiles import Profile
from analogsim.clock.schedules import Schedule, parse_schedule
from analogsim.devices.noise import get_noise
from analogsim.errors import ConfigError
from analogsim.mapping.convert import convert
from analogsim.mapping.perturb import WeightNoise
from analogsim.mapping.rules import Mapping, cards_of, load_mapping
from analogsim.units import parse_float, parse_time

__all__ = [
    "RESULT_COLUMNS",
    "RESULT_KEYS",
    "ChipOptions",
    "ChipSetup",
    "build_clock",
    "build_model",
    "chip_config",
    "chip_mapping",
    "parse_fault_rates",
    "parse_noise_schedule",
    "profile_spec",
    "resolve_chip",
    "running_chip",
    "with_settings",
]

RESULT_COLUMNS = ["model", "mapping", "device", "seed", "metric", "value"]
RESULT_KEYS = ["model", "mapping", "device", "seed", "metric"]
_FAULT_KEYS = {
    "gmin": "faults.onset_gmin_per_s",
    "gmax": "faults.onset_gmax_per_s",
    "outlier": "faults.onset_outlier_per_s",
}

_Options = TypeVar("_Options", bound="ChipOptions")


@dataclass(frozen=True)
class ChipOptions:
    """The chip and clock settings of a clocked study, as the user gives them.

    Attributes:
        start_age: deployment age at the first step, s or ``"1d"``.
        temperature: temperature profile over deployment time (``"sine:300K:360K:1d"``).
        mapping, device: placement (``all_analog`` when only ``device`` is given); neither
            gives the digital model.
        fault_rate: onset hazards ``gmin=..,gmax=..,outlier=..`` per device per second.
        device_overrides: further card overrides (``{"drift.scale": 2}``).
        seed: programs the chip, seeds sampling, shuffles and the noise draws.
        tolerance: skip tolerance, fraction of g_max (:data:`DEFAULT_TOLERANCE`).
        recalibrate_every: drift-compensation recalibration period (None: every update).
        time_cache: keep the layers' per-device draws of the current noise interval while
            the clock runs (updates become a few elementwise passes; up to 20x the analog
            weight bytes of extra memory). Off: every update regenerates from the seeds.
            The numbers are identical either way.
        noise, schedule, relative, noise_roles: statistical weight noise on a sigma
            schedule over the steps (``noise="gaussian", schedule="linear:0:0.02"``).
    """

    start_age: float | str = 0.0
    temperature: str | Profile = "300K"
    mapping: Any = None
    device: str | None = None
    fault_rate: str | dict[str, Any] | None = None
    device_overrides: dict[str, Any] | None = None
    seed: int = 0
    tolerance: float = DEFAULT_TOLERANCE
    recalibrate_every: float | str | None = None
    time_cache: bool = True
    noise: str | None = None
    schedule: str | Schedule | None = None
    relative: bool = False
    noise_roles: Sequence[str] | None = None


@dataclass(frozen=True)
class ChipSetup:
    """The resolved chip and clock settings: times in s, the profile, device overrides."""

    step_s: float
    start_age_s: float
    profile: Profile
    recalibrate_every_s: float | None
    overrides: dict[str, Any]


def with_settings(options: _Options, settings: dict[str, Any]) -> _Options:
    """``options`` with the keyword ``settings`` replaced; an unknown name is a
    ``TypeError`` that lists the valid ones."""
    valid = [f.name for f in dataclasses.fields(options)]
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise TypeError(
            f"unknown setting(s) {', '.join(unknown)} for {type(options).__name__}; "
            f"valid: {', '.join(valid)}"
        )
    return dataclasses.replace(options, **settings)


def resolve_chip(
    opts: ChipOptions,
    step: float | str,
    step_key: str,
    *,
    schedule_steps: int | None = None,
) -> tuple[ChipSetup, Schedule | None]:
    """Check and resolve the chip and clock settings before any work.

    ``step`` is the simulated time per step (``token_time``, ``input_time``; > 0) and
    ``step_key`` its name in errors. The sigma schedule is parsed here when its length
    ``schedule_steps`` is known (else None is returned for it and the caller parses it
    with :func:`parse_noise_schedule` once the length is known).
    """
    step_s = parse_time(step, key=step_key)
    if step_s <= 0:
        raise ConfigError("must be > 0", key=step_key, value=step)
    age = parse_time(opts.start_age, key="start_age")
    temp = opts.temperature
    profile = parse_profile(temp) if isinstance(temp, str) else temp
    recal = (
        None
        if opts.recalibrate_every is None
        else parse_time(opts.recalibrate_every, key="recalibrate_every")
    )
    if (opts.noise is None) != (opts.schedule is None):
        raise ConfigError(
            "statistical noise needs both a distribution and a schedule",
            key="noise" if opts.noise is None else "schedule",
            allowed="--noise gaussian --schedule linear:0:0.02 (or neither)",
        )
    sched = None
    if schedule_steps is not None:
        sched = parse_noise_schedule(opts.noise, opts.schedule, schedule_steps)
    overrides = {**parse_fault_rates(opts.fault_rate), **(opts.device_overrides or {})}
    if recal is not None and opts.mapping is None and opts.device is None:
        raise ConfigError(
            "recalibration needs an analog mapping",
            key="recalibrate_every",
            allowed="add --mapping (or --device), or drop --recalibrate-every",
        )
    return ChipSetup(step_s, age, profile, recal, overrides), sched


def parse_noise_schedule(
    noise: str | None, schedule: str | Schedule | None, steps: int
) -> Schedule | None:
    """The sigma schedule over ``steps`` steps (None without one); the noise name is
    checked too."""
    if schedule is None:
        return None
    sched = parse_schedule(schedule, steps) if isinstance(schedule, str) else schedule
    get_noise(noise)
    return sched


def parse_fault_rates(text: str | dict[str, Any] | None) -> dict[str, float]:
    """``gmin=1e-9,gmax=2e-9,outlier=1e-10`` (per device per second of equivalent time) to
    device overrides ``{"faults.onset_gmin_per_s": 1e-9, ...}``."""
    if text is None or text == "":
        return {}
    if isinstance(text, dict):
        items = list(text.items())
    else:
        items = []
        for part in str(text).split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise ConfigError(
                    "fault rates are KIND=RATE pairs",
                    key="fault_rate",
                    value=part.strip(),
                    allowed="gmin=RATE,gmax=RATE,outlier=RATE (per device per second)",
                )
            k, _, v = part.partition("=")
            items.append((k.strip(), v.strip()))
    out = {}
    for k, v in items:
        if k not in _FAULT_KEYS:
            raise ConfigError(
                "unknown fault kind", key="fault_rate", value=k, allowed=", ".join(_FAULT_KEYS)
            )
        rate = parse_float(v, key=f"fault_rate {k}")
        if not math.isfinite(rate) or rate < 0:
            raise ConfigError(
                "rate must be finite and >= 0", key=f"fault_rate {k}", value=v, allowed=">= 0 /s"
            )
        out[_FAULT_KEYS[k]] = rate
    return out


def chip_config(
    opts: ChipOptions,
    model: str,
    mapping_name: str,
    setup: ChipSetup,
    sched: Schedule | None,
    step_key: str,
    *,
    inputs: dict[str, Any] | None = None,
    study: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The resolved configuration of a clocked run, written to (and checked against on
    resume) the manifest: what the chip and clock settings resolve to, with the study's own
    settings in their places (``inputs`` before the step time ``step_key``, ``study`` after
    the seed, ``extra`` at the end; the key order is the manifest's)."""
    return {
        "model": model,
        "mapping": mapping_name,
        "device": opts.device,
        "device_overrides": setup.overrides,
        **(inputs or {}),
        step_key: setup.step_s,
        "start_age_s": setup.start_age_s,
        "temperature": profile_spec(setup.profile),
        "seed": opts.seed,
        **(study or {}),
        "tolerance": opts.tolerance,
        "recalibrate_every_s": setup.recalibrate_every_s,
        "noise": opts.noise,
        "schedule": sched.spec() if sched is not None else None,
        "relative": opts.relative,
        "noise_roles": list(opts.noise_roles) if opts.noise_roles else None,
        **(extra or {}),
    }


def profile_spec(p: Profile) -> str:
    """The profile's spec string (``"sine:300K:360K:1d"``), else its ``repr``."""
    try:
        return p.spec()
    except ValueError:
        return repr(p)


def chip_mapping(mapping: Any, device: str | None) -> tuple[Mapping | None, str, dict[str, Any]]:
    """``(mapping, name, device cards)`` of a run: ``(None, "digital", {})`` when neither
    a mapping nor a device is given, else the loaded mapping (``all_analog`` by default)."""
    if mapping is None and device is None:
        return None, "digital", {}
    m = load_mapping(mapping if mapping is not None else "all_analog")
    return m, m.name, cards_of(m, device)


def _device_names(mapping: Any) -> list[str]:
    names = []
    for s in [mapping.default.settings, *[r.settings for r in mapping.rules]]:
        d = s.get("device")
        if d is not None and d not in names:
            names.append(d)
    return names


def build_model(
    model: nn.Module,
    mapping: Any = None,
    device: str | None = None,
    overrides: dict[str, Any] | None = None,
    seed: int = 0,
) -> nn.Module:
    """Convert ``model`` in place with ``mapping`` (``all_analog`` when only ``device`` is
    given) and program it from ``seed``; the model itself when neither is given.

    ``overrides`` (``{"faults.onset_gmin_per_s": 1e-9}``) apply to every device card of the
    mapping and are validated like a card.
    """
    if mapping is None and device is None:
        if overrides:
            raise ConfigError(
                "device settings need an analog mapping",
                key="fault_rate",
                allowed="add --mapping (or --device) to simulate devices",
            )
        return model
    m = load_mapping(mapping if mapping is not None else "all_analog").with_device(device)
    for name in _device_names(m) if overrides else []:
        m = m.with_device_overrides(name, dict(overrides))
    return convert(model, m, inplace=True).program(seed)


def build_clock(
    am: nn.Module,
    digital: nn.Module,
    step_s: float,
    start_age_s: float,
    profile: Profile,
    *,
    schedule: Schedule | None,
    noise: str | None,
    seed: int,
    relative: bool,
    roles: Sequence[str] | None,
    include_embeddings: bool = False,
    tolerance: float,
    recalibrate_every_s: float | None,
    time_cache: bool,
) -> Clock:
    """The clock of a ``generate`` or ``stream`` run on ``am`` (the model from
    :func:`build_model`; ``am is digital`` when nothing is analog), with statistical weight
    noise on ``schedule`` when one is given (then ``clock.noise``)."""
    analog = am is not digital
    wn = None
    if schedule is not None:
        wn = WeightNoise(
            am,
            schedule,
            noise,
            seed,
            relative=relative,
            roles=roles,
            include_embeddings=include_embeddings,
            analog=analog,
        )
    return Clock(
        am if analog else None,
        step_s,
        start_age_s,
        profile,
        tolerance=tolerance,
        recalibrate_every_s=recalibrate_every_s,
        time_cache=time_cache,
        noise=wn,
    )


@contextlib.contextmanager
def running_chip(
    digital: nn.Module,
    opts: ChipOptions,
    setup: ChipSetup,
    mapping: Mapping | None,
    schedule: Schedule | None,
    *,
    include_embeddings: bool = False,
) -> Iterator[tuple[nn.Module, Clock]]:
    """Convert and program ``digital`` (:func:`build_model`), build its clock and yield
    ``(model, clock)``; afterwards the clock is closed and the model restored to digital
    (weights bit for bit), and on a normal exit the statistical noise is checked undone."""
    am = build_model(digital, mapping, opts.device, setup.overrides, opts.seed)
    clock = None
    try:
        clock = build_clock(
            am,
            digital,
            setup.step_s,
            setup.start_age_s,
            setup.profile,
            schedule=schedule,
            noise=opts.noise,
            seed=opts.seed,
            relative=opts.relative,
            roles=opts.noise_roles,
            include_embeddings=include_embeddings,
            tolerance=opts.tolerance,
            recalibrate_every_s=setup.recalibrate_every_s,
            time_cache=opts.time_cache,
        )
        yield am, clock
    finally:
        if clock is not None:
            clock.close()
        if am is not digital:
            am.restore()
    if clock.noise is not None:
        clock.noise.check_restored()
