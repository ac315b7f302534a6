"""Where the quality goes: a partition's loss, attributed to non-idealities and to places.

``analogsim attribute MODEL --mapping M --device D --age T`` answers *why* a partition
loses quality. It switches the chip's non-idealities (the *effects*) and its analog
layers (the *places*) on and off and scores the model each time:

* **grid** ``(place, effect)``: only ``place`` analog (the rest digital, in float), only
  ``effect`` on (every other effect ideal). ``place = "all"`` is the whole partition;
  ``effect = "all"`` is the full device and tiles; ``("all", "none")`` turns everything off
  and must equal the digital model (a check printed with every run).
* **without** ``effect``: the whole partition with every effect on except ``effect``: the
  quality a user gains by removing it. Effects are ranked by this gain.
* **fix**: the whole partition with the knob that addresses a top cause changed (more ADC
  bits, a wider ADC or DAC range, more DAC bits, per-column drift compensation, per-column
  weight scales, the worst place made digital, and these combined), re-evaluated.

Effects (each a switch of an existing knob; an effect the chip does not have is left out):

========================  =====================================================================
``programming``           device ``programming.scale`` (write-verify error)
``drift``                 device ``drift.scale`` (conductance drift over the age)
``temperature``           reading and holding at ``--temperature`` instead of the programming
                          temperature (conduction activation energies, accelerated drift age)
``accumulated_noise``     device ``read_noise.scale`` (1/f noise accumulated over time)
``faults``                device ``faults.*`` rates (stuck devices, outliers, onsets)
``dac``                   tile ``dac_bits`` and a static ``dac_range`` (input quantisation, clipping)
``adc``                   tile ``adc_bits`` and ``adc_bound`` (output quantisation, clipping)
``output_noise``          tile ``out_noise``
``mvm_read_noise``        tile ``read_noise`` (per-MVM read noise)
``digital_quant``         the quantizers of the partition's digital layers (e.g. int8 attention)
========================  =====================================================================

Cost: for a metric where lower is better (perplexity) ``value / digital - 1`` (0: as good as
digital; 1: twice the perplexity); where higher is better (accuracy, embedding cosine)
``digital - value``. A non-finite value costs ``inf``.

Efficiency: the model is converted once; every point changes the analog layers' device
card (``DeviceModel.with_overrides``) and tile settings in place, swaps layers between their
analog wrapper and their digital original, re-programs only when a layer's device or
weight scaling changed, and reads the chip at the age. The digital baseline is scored once.
Points without a random effect (ADC, DAC, temperature alone, everything off) are scored
for seed 0 only. Points are ordered so that each device configuration is programmed once.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from analogsim.errors import ConfigError
from analogsim.mapping.convert import convert
from analogsim.mapping.rules import Mapping, cards_of, load_mapping
from analogsim.models import LoadedModel, load_model
from analogsim.models.quality import Quality, quality_metric
from analogsim.progress import progress_bar
from analogsim.report.attribution_plots import plot_attribution_bars, plot_attribution_heatmap
from analogsim.report.rundir import RunDir, write_csv
from analogsim.studies.attribute_effects import (
    BY,
    DEVICE_EFFECTS,
    STOCHASTIC,
    Fix,
    _Chip,
    _Setting,
    places_of,
)
from analogsim.studies.attribute_fixes import (
    _combine,
    _fix_rows,
    _plan_fixes,
    attribution_summary,
    base_note,
    format_cost,
    quality_cost,
    ranking_rows,
    verdict_text,
)
from analogsim.units import check_temperature_K, check_time_s

__all__ = [
    "ATTRIBUTE_COLUMNS",
    "ATTRIBUTE_KEYS",
    "RANKING_COLUMNS",
    "draw_attribution",
    "run_attribute",
]

ATTRIBUTE_COLUMNS = [
    "model",
    "mapping",
    "device",
    "time_s",
    "temperature_K",
    "view",
    "place",
    "effect",
    "seed",
    "metric",
    "value",
    "cost",
]
ATTRIBUTE_KEYS = ["view", "place", "effect", "seed"]
RANKING_COLUMNS = ["kind", "rank", "name", "value", "cost", "alone_cost", "gain", "note"]


# ---------------------------------------------------------------------------- the study
@dataclass(frozen=True)
class _Point:
    view: str
    place: str
    effect: str
    setting: _Setting

    def seeds(self, seeds: Sequence[int]) -> list[int]:
        return list(seeds) if self.setting.on & STOCHASTIC else [0]


def run_attribute(
    model: str | LoadedModel,
    mapping: str | Mapping = "all_analog",
    *,
    device: str | None = None,
    age_s: float = 3600.0,
    temperature_K: float | None = None,
    by: str = "role",
    seeds: int = 1,
    max_tokens: int = 4096,
    run: RunDir | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Attribute the quality a partition loses to effects and places (module docstring).

    Args:
        model: a model name or a loaded model.
        mapping: the partition (a shipped name, a TOML path or a :class:`Mapping`).
        device: device card for every analog placement (overrides the mapping's).
        age_s: time since programming, s.
        temperature_K: read (and hold) temperature; ``None``: the programming temperature
            (300 K), and no ``temperature`` effect.
        by: places: ``layer``, ``role``, ``block`` or ``module`` (:func:`places_of`).
        seeds: programmed chips (seeds ``0..seeds-1``) for points with a random effect.
        max_tokens: held-out tokens a language model is scored on.
        run: a run directory: rows are written as they are measured, points already there
            are skipped (resume).
        progress: a progress bar and one line per finished point on stderr.

    Returns:
        :func:`attribution_summary` of the rows, plus ``rows``.
    """
    age_s = check_time_s(age_s, "age_s")
    temperature_K = check_temperature_K(temperature_K, "temperature_K", allow_none=True)
    if by not in BY:
        raise ConfigError("unknown grouping of layers", key="by", value=by, allowed=", ".join(BY))
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError("must be an integer >= 1", key="seeds", value=seeds)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 2:
        raise ConfigError("must be an integer >= 2", key="max_tokens", value=max_tokens)
    loaded = load_model(model, progress=progress) if isinstance(model, str) else model
    m = load_mapping(mapping).with_device(device)
    am = convert(loaded.model, m)
    by_name = am.plan.by_name()
    analog_names = [n for n, _ in am.analog_layers()]
    if not analog_names:
        raise ConfigError(
            f"mapping '{m.name}' places no layer analog: nothing to attribute",
            key="mapping",
            value=m.name,
            allowed="a partition with analog layers (see `analogsim map MODEL --mapping M`)",
        )
    places = places_of(
        [(n, by_name[n].role if n in by_name else "other") for n in analog_names], by
    )
    t_prog = am.programming_temperature_K
    temp_effect = temperature_K is not None and temperature_K != t_prog
    chip = _Chip(am, temperature_K, temp_effect, age_s)
    effects = chip.effects()
    quality = quality_metric(loaded, max_tokens=max_tokens)
    seed_list = list(range(seeds))
    meta = {
        "model": loaded.name,
        "mapping": m.name,
        "device": device or ",".join(sorted(cards_of(m))),
        "time_s": age_s,
        "temperature_K": temperature_K if temperature_K is not None else t_prog,
    }
    emit_rows: list[dict[str, Any]] = []
    done: dict[tuple[str, str, str, int], float] = {}
    if run is not None:
        for r in run.rows:
            done[(r["view"], r["place"], r["effect"], int(r["seed"]))] = float(r["value"])

    def write(point: tuple[str, str, str], seed: int, value: float, digital: float) -> None:
        cost = (
            0.0 if point[0] == "digital" else quality_cost(value, digital, quality.higher_is_better)
        )
        row = {
            **meta,
            "view": point[0],
            "place": point[1],
            "effect": point[2],
            "seed": seed,
            "metric": quality.name,
            "value": value,
            "cost": cost,
        }
        emit_rows.append(row)
        done[(point[0], point[1], point[2], seed)] = value
        if run is not None:
            run.write([row])

    # the digital baseline, once
    key = ("digital", "", "", -1)
    if key not in done:
        write(key[:3], -1, _score(quality, loaded.model), math.nan)
    digital = done[key]

    everything = frozenset(analog_names)
    on_all = frozenset(effects)
    points: list[_Point] = [
        _Point("grid", "all", "none", _Setting(everything, frozenset())),
        _Point("grid", "all", "all", _Setting(everything, on_all)),
    ]
    points += [_Point("grid", "all", e, _Setting(everything, frozenset({e}))) for e in effects]
    points += [_Point("without", "all", e, _Setting(everything, on_all - {e})) for e in effects]
    if len(places) > 1 or next(iter(places.values())) != analog_names:
        on_place = on_all - {"digital_quant"}  # the rest of the model digital, in float
        for p, layers in places.items():
            layer_set = frozenset(layers)
            points.append(_Point("grid", p, "all", _Setting(layer_set, on_place)))
            points += [
                _Point("grid", p, e, _Setting(layer_set, frozenset({e})))
                for e in effects
                if e != "digital_quant"
            ]
    # one device configuration after the other, the whole partition first in each
    points.sort(
        key=lambda pt: (sorted(pt.setting.on & set(DEVICE_EFFECTS)), -len(pt.setting.analog))
    )

    def measure(pts: Sequence[_Point], label: str) -> None:
        total = sum(len(p.seeds(seed_list)) for p in pts)
        with progress_bar(label, total, progress) as advance:
            for pt in pts:
                for s in pt.seeds(seed_list):
                    k = (pt.view, pt.place, pt.effect, s)
                    if k not in done:
                        chip.apply(pt.setting, s)
                        value = _score(quality, am)
                        write(k[:3], s, value, digital)
                        _say(progress, k, value, digital, quality)
                    advance(1, status=f"{pt.view} {pt.place} {pt.effect}")

    def fix_point(fix: Fix) -> _Point:
        return _Point("fix", "all", fix.name, _Setting(everything, on_all, fix))

    if run is not None:  # the fixes come on top, decided from these points
        run.expect(1 + sum(len(p.seeds(seed_list)) for p in points))
    try:
        measure(points, f"attribute {loaded.name} on {m.name}")
        summary = attribution_summary(_rows(run, emit_rows), quality.higher_is_better)
        fixes = _plan_fixes(summary, chip, places)
        measure([fix_point(f) for f in fixes], f"fixes for {loaded.name}")
        combined = _combine(
            attribution_summary(_rows(run, emit_rows), quality.higher_is_better), fixes
        )
        if combined is not None:
            measure([fix_point(combined)], f"fixes for {loaded.name}")
            fixes.append(combined)
    finally:
        chip.reset()
    rows = _rows(run, emit_rows)
    summary = attribution_summary(rows, quality.higher_is_better)
    summary["fixes"] = _fix_rows(summary, fixes)
    note = base_note(loaded)
    summary.update(
        verdict=verdict_text(summary, note),
        base_note=note,
        by=by,
        places_layers={p: list(v) for p, v in places.items()},
        rows=rows,
    )
    if run is not None:
        write_csv(run.path / "ranking.csv", ranking_rows(summary), RANKING_COLUMNS)
        (run.path / "verdict.txt").write_text(summary["verdict"] + "\n")
        draw_attribution(summary, run.path, title=f"{loaded.name} on {m.name}")
        run.note(verdict=summary["verdict"], digital=summary["digital"], effects=effects)
    return summary


def draw_attribution(summary: dict[str, Any], folder: str | Path, title: str = "") -> list[Path]:
    """The heat map (``attribution_heatmap.png``) and ranked bars (``attribution_ranked.png``)
    of a summary, in ``folder``."""
    folder = Path(folder)
    hib = summary["higher_is_better"]
    grid = summary["grid"]
    return [
        plot_attribution_heatmap(
            grid["places"],
            grid["effects"],
            grid["cost"],
            folder / "attribution_heatmap.png",
            higher_is_better=hib,
            metric=summary["metric"],
            title=title,
        ),
        plot_attribution_bars(
            summary["effects"],
            summary["places"],
            folder / "attribution_ranked.png",
            higher_is_better=hib,
            metric=summary["metric"],
            title=title,
        ),
    ]


def _rows(run: RunDir | None, emitted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(run.rows) if run is not None else list(emitted)


def _score(quality: Quality, model: nn.Module) -> float:
    with torch.no_grad():
        v = float(quality.score(model))
    return v


def _say(
    enabled: bool, key: tuple[str, str, str, int], value: float, digital: float, quality: Quality
) -> None:
    if not enabled:
        return
    view, place, effect, seed = key
    cost = quality_cost(value, digital, quality.higher_is_better)
    print(
        f"{view:>7} {place} x {effect} (seed {seed}): {quality.name} {value:.4g}, "
        f"{format_cost(cost, quality.higher_is_better)}",
        file=sys.stderr,
        flush=True,
    )
