"""Studies: the measurements behind ``analogsim device show`` and ``analogsim eval``.

Every function here is plain Python over the API (devices, convert, metrics); the CLI
only parses arguments, calls these and prints. Results are tidy rows (one per
measurement) so they go straight into ``results.csv`` and plots.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from analogsim.devices import DeviceModel, load_device
from analogsim.devices.age import DeploymentAge
from analogsim.errors import ConfigError
from analogsim.mapping.convert import convert
from analogsim.mapping.rules import Mapping, cards_of, load_mapping, resolve_plan
from analogsim.models import LoadedModel, load_model
from analogsim.models.quality import DEFAULT_MAX_TOKENS, quality_metric
from analogsim.progress import progress_bar
from analogsim.report.rundir import RunDir
from analogsim.units import format_time

EVAL_COLUMNS = ["model", "mapping", "device", "seed", "time_s", "temperature_K", "metric", "value"]
EVAL_KEYS = ["model", "mapping", "device", "seed", "time_s", "temperature_K"]


# ---------------------------------------------------------------------------- datasheet
def device_datasheet(
    device: str | DeviceModel,
    g_levels: Sequence[float] = (0.1, 0.5, 1.0),
    times: Sequence[float] = (1.0, 3600.0, 86400.0, 365.25 * 86400.0),
    temperatures: Sequence[float] | None = None,
    *,
    samples: int = 100_000,
    seed: int = 0,
    programming_temperature_K: float | None = None,
) -> list[dict[str, Any]]:
    """Statistics of ``G(t, T) / G_target`` for single devices programmed to ``g_levels``.

    ``g_levels`` are relative targets ``g_rel`` in [0, 1]: ``G_target = g_min + g_rel
    (g_max - g_min)``, verified at ``programming_temperature_K`` (``None``: the card's
    ``t_ref_K``). A device held at ``T`` for ``t`` seconds has the ages of
    :meth:`DeploymentAge.held <analogsim.devices.age.DeploymentAge.held>` (drift age by
    the demarcation-energy law, held time for 1/f noise) and is read at ``T``.

    Returns rows with ``g_rel``, ``time_s``, ``temperature_K``, ``mean``, ``std`` (and
    ``p01``/``p99`` percentiles, ``samples``).
    """
    dev = load_device(device)
    temps = list(temperatures) if temperatures else [dev.temperature.t_ref_K]
    rows = []
    for g_rel in g_levels:
        if not 0.0 <= g_rel <= 1.0:
            raise ConfigError("relative level must be in [0, 1]", key="g", value=g_rel)
        target = dev.g_min + g_rel * (dev.g_max - dev.g_min)
        g_t = torch.full((samples,), target, dtype=torch.float64)
        key = dev.temperature.age_key
        for temp in temps:
            for t in times:
                age = DeploymentAge.held(t, temp, (key,)).device_time(key)
                g = dev.conductances(g_t, seed, age, temp, t_prog_K=programming_temperature_K)
                if target > 0:
                    ratio = g / target
                else:
                    ratio = g - target  # zero target: absolute conductance in uS
                q = torch.quantile(ratio.float(), torch.tensor([0.01, 0.99]))
                rows.append(
                    {
                        "g_rel": g_rel,
                        "time_s": t,
                        "temperature_K": temp,
                        "mean": float(ratio.mean()),
                        "std": float(ratio.std()),
                        "p01": float(q[0]),
                        "p99": float(q[1]),
                        "samples": samples,
                    }
                )
    return rows


# ---------------------------------------------------------------------------- eval
def evaluate(
    model: str | LoadedModel,
    mapping: str | Mapping = "all_analog",
    device: str | None = None,
    times: Sequence[float] = (1.0, 3600.0, 86400.0, 365.25 * 86400.0),
    temperatures: Sequence[float] = (300.0,),
    seeds: int | Sequence[int] = 3,
    *,
    run: RunDir | None = None,
    progress: bool = True,
    label: str | None = None,
    extra: dict[str, Any] | None = None,
    text: str | Path | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    digital: float | None = None,
) -> list[dict[str, Any]]:
    """Quality of ``model`` on ``mapping`` over time and temperature, several seeds.

    Language models are scored on the first ``max_tokens`` tokens of ``text`` (a file
    path or the text itself; default: the built-in held-out part of Python's help text,
    see :func:`analogsim.models.quality.quality_metric`). ``digital``: the digital
    model's score when already known (it is reused, not measured again). A mapping with
    no analog layer is scored once: its rows at every seed, time and temperature copy
    that score. With ``progress``, one line per point is printed on stderr as it ends.

    Each seed programs the chip once; the same programmed state is then read at every
    (time, temperature): state sampled once, time recomputed. Rows (also appended to
    ``run``'s results.csv as they are measured; points already there are skipped):
    ``model, mapping, device, seed, time_s, temperature_K, metric, value``. The digital
    model's score is added once as ``mapping = "digital"``, ``seed = -1``. ``extra``
    fields (e.g. the varied parameter of a comparison) are added to every point and row.
    """
    loaded = load_model(model, progress=progress) if isinstance(model, str) else model
    m = load_mapping(mapping).with_device(device)
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    quality = quality_metric(loaded, max_tokens=max_tokens, text=text)
    analog = any(p.device is not None for p in resolve_plan(loaded.model, m).layers)
    mname = label or m.name
    dname = device or ",".join(sorted(cards_of(m)))
    rows: list[dict[str, Any]] = []

    def emit(row: dict[str, Any]) -> None:
        rows.append(row)
        if run is not None:
            run.write([row])

    extra = dict(extra or {})
    base_point = dict(
        model=loaded.name,
        mapping="digital",
        device="",
        seed=-1,
        time_s=0.0,
        temperature_K=0.0,
        **{k: "" for k in extra},
    )
    if run is not None:
        run.expect(1 + len(seed_list) * len(temperatures) * len(times))
    if run is None or not run.done(**base_point):
        value = digital if digital is not None else _safe(quality.score, loaded.model)
        emit({**base_point, "metric": quality.name, "value": value})
        say(progress, f"{loaded.name} digital: {quality.name} {value:.4g}")
    constant: float | None = None  # the score of a mapping without analog layers
    total = len(seed_list) * len(temperatures) * len(times)
    with progress_bar(f"eval {loaded.name} on {mname}", total, progress) as advance:
        for seed in seed_list:
            points = [
                dict(
                    model=loaded.name,
                    mapping=mname,
                    device=dname,
                    seed=seed,
                    time_s=t,
                    temperature_K=temp,
                    **extra,
                )
                for temp in temperatures
                for t in times
            ]
            todo = [p for p in points if run is None or not run.done(**p)]
            advance(len(points) - len(todo))
            if not todo:
                continue
            am = None
            if analog or constant is None:
                am = convert(loaded.model, m).program(seed)
            for p in todo:
                if am is not None and analog:
                    am.at(p["time_s"], p["temperature_K"])
                    value = _safe(quality.score, am)
                else:
                    if constant is None:  # no analog layer: seed, time, temperature moot
                        am.at(p["time_s"], p["temperature_K"])
                        constant = _safe(quality.score, am)
                    value = constant
                emit({**p, "metric": quality.name, "value": value})
                say(
                    progress,
                    f"{mname}{' ' + str(extra.get('vary')) if extra.get('vary') else ''} "
                    f"seed {seed} t={format_time(p['time_s'])} T={p['temperature_K']:g}K: "
                    f"{quality.name} {value:.4g}" + ("" if analog else " (no analog layer)"),
                )
                advance(
                    1, status=f"seed {seed} t={format_time(p['time_s'])} T={p['temperature_K']:g}K"
                )
    return rows


def say(enabled: bool, line: str) -> None:
    """Print one result line on stderr (above a live progress bar) when ``enabled``."""
    if enabled:
        print(line, file=sys.stderr, flush=True)


def _safe(score: Callable[[nn.Module], float], model: nn.Module) -> float:
    with torch.no_grad():
        v = float(score(model))
    return v if not math.isnan(v) else float("nan")


NUMERIC_COLUMNS = frozenset({"time_s", "temperature_K"})
"""Columns of the evaluation rows that hold numbers (floats in every summary)."""


def summarize(
    rows: Iterable[dict[str, Any]],
    by: Sequence[str] = ("mapping", "device", "time_s", "temperature_K", "metric"),
) -> list[dict[str, Any]]:
    """Mean and standard deviation (over seeds) of ``value`` per group of ``by``.

    ``rows`` may come from results.csv (every cell text): the group columns that are
    numbers (:data:`NUMERIC_COLUMNS`: ``time_s``, ``temperature_K``) are floats in the
    summary, whatever the rows held.
    """
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        key = tuple(float(r[k]) if k in NUMERIC_COLUMNS else r[k] for k in by)
        groups[key].append(float(r["value"]))
    out = []
    for key, vals in groups.items():
        finite = [v for v in vals if math.isfinite(v)]
        mean = (
            statistics.fmean(vals)
            if len(finite) == len(vals)
            else (float("inf") if any(math.isinf(v) for v in vals) else float("nan"))
        )
        if len(finite) != len(vals):
            std = float("nan")  # a spread of non-finite values is undefined
        else:
            std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        out.append({**dict(zip(by, key, strict=True)), "mean": mean, "std": std, "n": len(vals)})
    return out


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


__all__ = [
    "EVAL_COLUMNS",
    "EVAL_KEYS",
    "device_datasheet",
    "evaluate",
    "summarize",
]
