"""Experiment configs: one TOML file per study, validated before any work.

Layout (``experiments/README.md`` has every key)::

    [experiment]   name, study (noise | drift | chip | plasticity), report, description, seed
    [grid]         the axes of the study: lists of values (seed: a count or a list)
    [metrics]      what each point measures and on what (noise and drift studies)
    [generation]   prompts and lengths of generated text
    [chip]         chip settings (chip, drift and plasticity studies)
    [report]       thresholds and the published numbers to compare with
    [quick]        the same tables again, with the values of the ``--quick`` smoke run

Validation follows the device cards (:mod:`analogsim.devices.card`): an unknown table or
key, a value of the wrong type or out of range, or an empty grid axis raises one
:class:`~analogsim.errors.ConfigError` naming the file, the key (``grid.sigma``), the
value and what is allowed. ``[quick]`` is checked whether or not ``--quick`` is given.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analogsim.config import check_number, load_toml
from analogsim.errors import ConfigError
from analogsim.runner.points import Point, expand_grid

__all__ = ["AXES", "REPORTS", "SHARED_DRAW", "STUDIES", "Experiment", "load_experiment"]

STUDIES = ("noise", "drift", "chip", "plasticity")
REPORTS = (
    "noise_sweep",
    "layer_sensitivity",
    "goldilocks",
    "scaling",
    "temporal_drift",
    "partitions",
    "table",
)
TABLES = ("experiment", "grid", "metrics", "generation", "chip", "report", "quick")


# --------------------------------------------------------------------------- checkers
Check = Callable[[Any, str, Path], Any]


def _str(choices: Callable[[], Sequence[str]] | None = None) -> Check:
    def check(v: Any, key: str, file: Path) -> str:
        if not isinstance(v, str) or not v.strip():
            raise ConfigError("must be a non-empty string", file=file, key=key, value=v)
        if choices is not None and v not in choices():
            raise ConfigError(
                "unknown value", file=file, key=key, value=v, allowed=", ".join(choices())
            )
        return v

    return check


def _num(lo: float, hi: float, *, integer: bool = False, lo_inclusive: bool = True) -> Check:
    def check(v: Any, key: str, file: Path) -> float | int:
        return check_number(
            v, key=key, lo=lo, hi=hi, integer=integer, lo_inclusive=lo_inclusive, file=file
        )

    return check


def _bool(v: Any, key: str, file: Path) -> bool:
    if not isinstance(v, bool):
        raise ConfigError("must be true or false", file=file, key=key, value=v)
    return v


def _list(item: Check, *, allow_empty: bool = False) -> Check:
    def check(v: Any, key: str, file: Path) -> list[Any]:
        if not isinstance(v, list):
            raise ConfigError("must be a list", file=file, key=key, value=v, allowed="[a, b, ...]")
        if not v and not allow_empty:
            raise ConfigError(
                "must not be empty", file=file, key=key, value=v, allowed="at least one value"
            )
        out = [item(x, f"{key}[{i}]", file) for i, x in enumerate(v)]
        dup = [x for i, x in enumerate(out) if x in out[:i]]
        if dup:
            raise ConfigError(
                "repeated value", file=file, key=key, value=dup[0], allowed="distinct values"
            )
        return out

    return check


def _seeds(v: Any, key: str, file: Path) -> list[int]:
    """``seed = 3`` -> [0, 1, 2]; ``seed = [0, 5]`` -> [0, 5]."""
    if isinstance(v, int) and not isinstance(v, bool):
        n = check_number(v, key=key, lo=1, hi=10_000, integer=True, file=file)
        return list(range(int(n)))
    if isinstance(v, list):
        return _list(_num(0, 2**31 - 1, integer=True))(v, key, file)
    raise ConfigError(
        "must be a count or a list of seeds", file=file, key=key, value=v, allowed="3, or [0, 1, 2]"
    )


def _noises() -> list[str]:
    from analogsim.devices.noise import list_noises

    return list_noises()


def _roles_label(v: Any, key: str, file: Path) -> str:
    from analogsim.mapping.roles import ROLES

    _str()(v, key, file)
    if v == "all":
        return v
    bad = [r for r in v.split("+") if r not in ROLES]
    if bad:
        raise ConfigError(
            "unknown role",
            file=file,
            key=key,
            value=v,
            allowed="'all' or roles joined by '+': " + ", ".join(ROLES),
        )
    return v


def _model(v: Any, key: str, file: Path) -> str:
    from analogsim.runner.models import parse_spec

    _str()(v, key, file)
    parse_spec(v, file=file, key=key)
    return v


def _process(v: Any, key: str, file: Path) -> str:
    """A drift process: a sigma schedule (``linear:0:0.02``), ``published:`` + a schedule
    (the public study's per-token increments), or ``device:pcm`` (physical drift)."""
    from analogsim.clock.schedules import parse_schedule

    _str()(v, key, file)
    if v.startswith("device:"):
        return _device(v.removeprefix("device:"), key, file) and v
    spec = v.removeprefix("published:")
    try:
        parse_schedule(spec, 8)
    except ConfigError as exc:
        raise ConfigError(
            f"not a sigma schedule ({exc})",
            file=file,
            key=key,
            value=v,
            allowed="a schedule (linear:0:0.02, exp:..., step:...), published:<schedule>, "
            "or device:<card> (device:pcm)",
        ) from None
    return v


def _device(v: Any, key: str, file: Path) -> str:
    from analogsim.devices import list_devices

    return _str(list_devices)(v, key, file)


def _mapping(v: Any, key: str, file: Path) -> str:
    from analogsim.mapping.rules import load_mapping

    _str()(v, key, file)
    try:
        load_mapping(v)
    except ConfigError as exc:
        raise ConfigError(f"unknown mapping ({exc})", file=file, key=key, value=v) from None
    return v


def _time(v: Any, key: str, file: Path) -> str | float:
    from analogsim.units import parse_time

    if isinstance(v, bool) or not isinstance(v, str | int | float):
        raise ConfigError("must be a time", file=file, key=key, value=v, allowed="'1h', '1d', 3600")
    try:
        s = parse_time(v, key=key)
    except ConfigError as exc:
        raise ConfigError(str(exc), file=file, key=key, value=v) from None
    if s < 0:
        raise ConfigError("must be >= 0", file=file, key=key, value=v)
    return v


def _temperature(v: Any, key: str, file: Path) -> str:
    from analogsim.units import parse_temperature

    _str()(v, key, file)
    try:
        parse_temperature(v, key=key)
    except ConfigError as exc:
        raise ConfigError(str(exc), file=file, key=key, value=v) from None
    return v


_SIGMA = _list(_num(0.0, 10.0))

# per study: the grid axes in order -> (checker of the whole list, default or None if required)
AXES: dict[str, dict[str, tuple[Check, list[Any] | None]]] = {
    "noise": {
        "model": (_list(_model), None),
        "noise": (_list(_str(_noises)), ["gaussian"]),
        "roles": (_list(_roles_label), ["all"]),
        "relative": (_list(_bool), [False]),
        "sigma": (_SIGMA, None),
        "seed": (_seeds, [0]),
    },
    "drift": {
        "model": (_list(_model), None),
        "process": (_list(_process), None),
        "temperature": (_list(_temperature), ["27C"]),
        "seed": (_seeds, [0]),
    },
    "chip": {
        "model": (_list(_model), None),
        "mapping": (_list(_mapping), None),
        "device": (_list(_device), None),
        "seed": (_seeds, [0]),
        "age": (_list(_time), None),
        "temperature": (_list(_temperature), ["27C"]),
    },
    # the plasticity study's point function is analogsim.studies.generate.plasticity_point
    # (docs/plasticity.md): local rules on LoRA adapters while an all-analog chip ages
    "plasticity": {
        "model": (_list(_model), None),
        "plasticity": (_list(_str()), None),
        "update": (_list(_str(lambda: ("ideal", "device"))), ["ideal"]),
        "temperature": (_list(_temperature), ["27C"]),
        "seed": (_seeds, [0]),
    },
}

# axes left out of a point's seed: the points that differ only there share one draw
# (noise: one direction scaled by sigma; drift: the processes compared on one draw;
# chip: one programmed chip read at every age and temperature)
SHARED_DRAW: dict[str, tuple[str, ...]] = {
    "noise": ("sigma",),
    "drift": ("process", "temperature"),
    "chip": ("age", "temperature"),
    "plasticity": ("plasticity", "update"),
}

# section -> key -> (checker, default)
_PROMPTS = [
    "The return statement",
    "A class definition",
    "Exceptions are raised",
    "The for loop",
]
SECTIONS: dict[str, dict[str, tuple[Check, Any]]] = {
    "experiment": {
        "name": (_str(), None),
        "study": (_str(lambda: STUDIES), None),
        "report": (_str(lambda: REPORTS), "table"),
        "description": (_str(), ""),
        "seed": (_num(0, 2**31 - 1, integer=True), 0),
    },
    "metrics": {
        "names": (_list(_str(lambda: METRICS)), ["perplexity"]),
        "max_tokens": (_num(2, 10**7, integer=True), 1024),
        "text": (_str(), None),
        "entropy_steps": (_num(1, 1000, integer=True), 10),
        "include_embeddings": (_bool, False),
    },
    "generation": {
        "prompts": (_list(_str()), _PROMPTS),
        "tokens": (_num(1, 4096, integer=True), 32),
        "token_time": (_time, "1h"),
        "noise": (_str(_noises), "gaussian"),
    },
    "chip": {
        "start_age": (_time, 0),
        "mapping": (_mapping, "all_analog"),
        "device": (_device, "pcm"),
    },
    "report": {
        "multiples": (_list(_num(0.0, 1e9, lo_inclusive=False), allow_empty=True), [2.0]),
        "absolute": (_list(_num(0.0, 1e30, lo_inclusive=False), allow_empty=True), []),
        "title": (_str(), None),
    },
}
METRICS = (
    "perplexity",
    "entropy_bits",
    "distinct_1",
    "distinct_2",
    "sample",
    "weight_std",
    "params",
)


@dataclass
class Experiment:
    """A validated experiment config.

    Attributes:
        path: the file. name, study, report, description, seed: from ``[experiment]``.
        axes: the grid axes in the study's order, each with its checked values.
        settings: ``[metrics]``, ``[generation]`` and ``[chip]`` flattened into one dict
            (the point functions' ``settings``; keys do not collide).
        report_settings: ``[report]``.
        quick: whether the ``[quick]`` values were applied.
        resolved: the whole resolved config (written to the run's manifest; a resume
            with another config is refused).
    """

    path: Path
    name: str
    study: str
    report: str
    description: str
    seed: int
    axes: list[tuple[str, list[Any]]]
    settings: dict[str, Any]
    report_settings: dict[str, Any]
    quick: bool
    resolved: dict[str, Any] = field(default_factory=dict)

    def points(self, models: Sequence[str] | None = None) -> list[Point]:
        """The grid's points in order; ``models`` (a subset of the model axis) keeps only
        those models' points (the others are skipped, e.g. no hub)."""
        axes = self.axes
        if models is not None:
            axes = [
                (a, [v for v in vals if v in models] if a == "model" else vals) for a, vals in axes
            ]
        return expand_grid(
            axes,
            base_seed=self.seed,
            shared_draw=SHARED_DRAW[self.study],
            keep=_keep(self.study, self.axes),
        )

    def axis(self, name: str) -> list[Any]:
        return dict(self.axes)[name]


def _keep(study: str, axes: list[tuple[str, list[Any]]]) -> Callable[[dict[str, Any]], bool]:
    """Points that carry information: at sigma 0 nothing is drawn and no role is
    perturbed, so one point per model runs (at the first value of the other axes); a
    drift schedule does not depend on the temperature, so it runs at the first
    temperature only; without plasticity the update model is moot (first one only)."""
    first = {a: vals[0] for a, vals in axes}

    def keep(c: dict[str, Any]) -> bool:
        if study == "noise" and float(c["sigma"]) == 0.0:
            return all(c[a] == first[a] for a in ("noise", "roles", "relative", "seed"))
        if study == "drift" and not str(c["process"]).startswith("device:"):
            return c["temperature"] == first["temperature"]
        if study == "plasticity" and c["plasticity"] == "none":
            return c["update"] == first["update"]  # no adapter: nothing is written
        return True

    return keep


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _check_tables(data: dict[str, Any], file: Path, prefix: str = "") -> None:
    allowed = TABLES if not prefix else tuple(t for t in TABLES if t != "quick")
    for name, table in data.items():
        key = f"{prefix}{name}"
        if name not in allowed:
            raise ConfigError("unknown table", file=file, key=key, allowed=", ".join(allowed))
        if not isinstance(table, dict):
            raise ConfigError("must be a table", file=file, key=key, value=table)


def _check_section(
    name: str, table: dict[str, Any], file: Path, prefix: str, fill: bool
) -> dict[str, Any]:
    spec = SECTIONS[name]
    out: dict[str, Any] = {}
    for k, v in table.items():
        if k not in spec:
            raise ConfigError(
                f"unknown key in [{prefix}{name}]",
                file=file,
                key=f"{prefix}{name}.{k}",
                value=v,
                allowed=", ".join(spec),
            )
        out[k] = spec[k][0](v, f"{prefix}{name}.{k}", file)
    if fill:
        for k, (_, default) in spec.items():
            if k not in out:
                if default is None and name == "experiment" and k in ("name", "study"):
                    raise ConfigError(
                        "missing key",
                        file=file,
                        key=f"{name}.{k}",
                        allowed=", ".join(STUDIES) if k == "study" else "a name",
                    )
                out[k] = copy.deepcopy(default)
    return out


def _check_grid(
    study: str, table: dict[str, Any], file: Path, prefix: str, fill: bool
) -> list[tuple[str, list[Any]]]:
    spec = AXES[study]
    for k, v in table.items():
        if k not in spec:
            raise ConfigError(
                f"unknown grid axis for the {study} study",
                file=file,
                key=f"{prefix}grid.{k}",
                value=v,
                allowed=", ".join(spec),
            )
    axes = []
    for k, (check, default) in spec.items():
        if k in table:
            axes.append((k, check(table[k], f"{prefix}grid.{k}", file)))
        elif fill:
            if default is None:
                raise ConfigError(
                    f"missing grid axis of the {study} study",
                    file=file,
                    key=f"grid.{k}",
                    allowed="a list of values",
                )
            axes.append((k, list(default)))
    return axes


def _validate(
    data: dict[str, Any], file: Path, study: str, prefix: str, fill: bool
) -> tuple[dict, list]:
    sections = {}
    for name in SECTIONS:
        if name in data or fill:
            sections[name] = _check_section(name, data.get(name, {}), file, prefix, fill)
    axes = (
        _check_grid(study, data.get("grid", {}), file, prefix, fill)
        if ("grid" in data or fill)
        else []
    )
    return sections, axes


def load_experiment(
    path: str | Path, *, quick: bool = False, models: Sequence[str] | None = None
) -> Experiment:
    """Read and check an experiment config; with ``quick`` its ``[quick]`` tables replace
    the matching keys. ``models`` replaces the grid's model axis (``--model``).

    Raises:
        ConfigError: the first problem, naming file, key, value and what is allowed.
    """
    file = Path(path)
    data = load_toml(file, missing="experiment config not found")
    _check_tables(data, file)
    exp = data.get("experiment", {})
    if not isinstance(exp, dict) or "study" not in exp:
        raise ConfigError(
            "missing key", file=file, key="experiment.study", allowed=", ".join(STUDIES)
        )
    study = _str(lambda: STUDIES)(exp["study"], "experiment.study", file)
    q = data.get("quick", {})
    _check_tables(q, file, prefix="quick.")
    if "experiment" in q and set(q["experiment"]) - {"description"}:
        raise ConfigError(
            "[quick.experiment] may only change the description",
            file=file,
            key="quick.experiment",
            value=sorted(q["experiment"]),
            allowed="description",
        )
    _validate(q, file, study, "quick.", fill=False)  # checked even without --quick
    merged = _merge({k: v for k, v in data.items() if k != "quick"}, q) if quick else data
    merged = {k: v for k, v in merged.items() if k != "quick"}
    if models is not None:
        merged = _merge(merged, {"grid": {"model": list(models)}})
    sections, axes = _validate(merged, file, study, "", fill=True)
    settings = {
        **{k: v for k, v in sections["metrics"].items()},
        **sections["generation"],
        **sections["chip"],
        "metrics": sections["metrics"]["names"],
    }
    settings.pop("names")
    e = sections["experiment"]
    resolved = {
        "experiment": e,
        "grid": dict(axes),
        **{k: sections[k] for k in ("metrics", "generation", "chip", "report")},
    }
    if any(math.isnan(float(s)) for s in dict(axes).get("sigma", [])):
        raise ConfigError("sigma must be a number", file=file, key="grid.sigma")
    return Experiment(
        path=file,
        name=e["name"],
        study=study,
        report=e["report"],
        description=e["description"],
        seed=int(e["seed"]),
        axes=axes,
        settings=settings,
        report_settings=sections["report"],
        quick=quick,
        resolved=resolved,
    )
