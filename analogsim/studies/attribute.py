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
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from analogsim.devices import DeviceModel
from analogsim.errors import ConfigError
from analogsim.mapping.analog_model import AnalogModel, inner_layer
from analogsim.mapping.convert import DigitalQuantized, convert
from analogsim.mapping.rules import Mapping, block_of, cards_of, load_mapping
from analogsim.models import LoadedModel, load_model
from analogsim.models.quality import Quality, quality_metric
from analogsim.progress import progress_bar
from analogsim.report.attribution_plots import plot_attribution_bars, plot_attribution_heatmap
from analogsim.report.rundir import RunDir, write_csv
from analogsim.tiles.config import TileConfig
from analogsim.tiles.layer import AnalogLayer
from analogsim.units import check_temperature_K, check_time_s

__all__ = [
    "ATTRIBUTE_COLUMNS",
    "ATTRIBUTE_KEYS",
    "BY",
    "EFFECTS",
    "RANKING_COLUMNS",
    "attribution_summary",
    "draw_attribution",
    "places_of",
    "quality_cost",
    "run_attribute",
]

DEVICE_EFFECTS = ("programming", "drift", "temperature", "accumulated_noise", "faults")
TILE_EFFECTS = ("dac", "adc", "output_noise", "mvm_read_noise")
EFFECTS: tuple[str, ...] = (*DEVICE_EFFECTS, *TILE_EFFECTS, "digital_quant")
"""Every effect, in the order tables list them (see the module docstring)."""

STOCHASTIC = frozenset(
    {"programming", "drift", "accumulated_noise", "faults", "output_noise", "mvm_read_noise"}
)
"""Effects that draw random numbers: a point without any of them is scored for seed 0 only."""

BY = ("layer", "role", "block", "module")
"""How analog layers are grouped into places: each layer, each role, each numbered block
(``model.layers.3``), or each module position across blocks (``model.layers.*.mlp.up_proj``)."""

DESCRIPTIONS = {
    "programming": "programming (write-verify) error",
    "drift": "conductance drift over the age",
    "temperature": "read and held at the temperature, not at the programming temperature",
    "accumulated_noise": "1/f read noise accumulated over the age",
    "faults": "stuck devices, outliers and fault onsets",
    "dac": "input DAC: quantisation and a static range",
    "adc": "output ADC: quantisation and clipping at adc_bound",
    "output_noise": "additive output noise per tile",
    "mvm_read_noise": "per-MVM read noise",
    "digital_quant": "quantizers of the digital layers",
}

_HWA = "hwa training (analogsim train MODEL --mapping M --device D --method hwa)"
KNOBS = {
    "programming": f"per-column weight scales; {_HWA}",
    "drift": f"per-column drift compensation; {_HWA}",
    "temperature": "per-column drift compensation (recalibration at the read temperature)",
    "accumulated_noise": f"per-column drift compensation; {_HWA}",
    "faults": f"a digital layer; {_HWA}",
    "dac": "more DAC bits or a wider DAC range",
    "adc": "more ADC bits or a wider ADC range (adc_bound)",
    "output_noise": f"per-column weight scales; {_HWA}",
    "mvm_read_noise": f"per-column weight scales; {_HWA}",
    "digital_quant": "more bits for the digital layers (the 'without' row is float)",
}
"""What addresses each effect, in words (the evaluated fixes are in :func:`_fixes_for`)."""

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

_EA_OFF = {
    "temperature.conduction_ea_gmax_eV": 0.0,
    "temperature.conduction_ea_slope_eV": 0.0,
    "temperature.drift_ea_fraction": 0.0,
}
_FAULT_KEYS = (
    "stuck_at_gmin_rate",
    "stuck_at_gmax_rate",
    "outlier_rate",
    "onset_gmin_per_s",
    "onset_gmax_per_s",
    "onset_outlier_per_s",
)
_TILE_OFF: dict[str, dict[str, Any]] = {
    "dac": {"dac_bits": 0, "dac_range": "dynamic"},
    "adc": {"adc_bits": 0, "adc_bound": 0.0},
    "output_noise": {"out_noise": 0.0},
    "mvm_read_noise": {"read_noise": 0.0},
}


# ---------------------------------------------------------------------------- cost
def quality_cost(value: float, digital: float, higher_is_better: bool) -> float:
    """The quality lost against the digital model: 0 when ``value == digital``.

    Lower is better (perplexity): ``value / digital - 1``; higher is better (accuracy):
    ``digital - value``. A non-finite ``value`` costs ``inf``.
    """
    if not math.isfinite(value):
        return math.inf
    if higher_is_better:
        return digital - value
    return value / digital - 1.0 if digital else math.inf


# ---------------------------------------------------------------------------- effects
def _device_has(dev: DeviceModel, effect: str) -> bool:
    if effect == "programming":
        return dev.programming is not None and dev.programming.scale != 0.0
    if effect == "drift":
        return dev.drift is not None and dev.drift.scale != 0.0
    if effect == "accumulated_noise":
        return dev.read_noise is not None and dev.read_noise.scale != 0.0
    if effect == "faults":
        return dev.faults.static or dev.faults.dynamic
    return False


def _tile_has(tile: TileConfig, effect: str) -> bool:
    if effect == "dac":
        return bool(tile.dac_bits) or tile.dac_range != "dynamic"
    if effect == "adc":
        return bool(tile.adc_bits) or (tile.adc_bound > 0 and tile.io_enabled)
    if effect == "output_noise":
        return tile.out_noise > 0
    return tile.read_noise > 0  # mvm_read_noise


def _device_off(dev: DeviceModel, effect: str) -> dict[str, float]:
    """Card overrides that turn ``effect`` off on ``dev`` (none when it has no such section)."""
    if effect == "programming" and dev.programming is not None:
        return {"programming.scale": 0.0}
    if effect == "drift" and dev.drift is not None:
        return {"drift.scale": 0.0}
    if effect == "accumulated_noise" and dev.read_noise is not None:
        return {"read_noise.scale": 0.0}
    if effect == "faults":
        return {f"faults.{k}": 0.0 for k in _FAULT_KEYS}
    return {}


# ---------------------------------------------------------------------------- places
def places_of(layers: Sequence[tuple[str, str]], by: str = "role") -> dict[str, list[str]]:
    """Group analog layers ``(name, role)`` into places, in module order.

    ``layer``: one place per layer; ``role``: per role; ``block``: per numbered block
    (``transformer.h.3``; a layer outside any block is its own place); ``module``: per
    position across blocks (``transformer.h.*.mlp.c_fc``).
    """
    if by not in BY:
        raise ConfigError("unknown grouping of layers", key="by", value=by, allowed=", ".join(BY))
    out: dict[str, list[str]] = {}
    for name, role in layers:
        if by == "layer":
            key = name
        elif by == "role":
            key = role
        else:
            blk = block_of(name)
            if blk is None:
                key = name
            elif by == "block":
                key = f"{blk[0]}.{blk[1]}"
            else:
                rest = name[len(f"{blk[0]}.{blk[1]}") :]
                key = f"{blk[0]}.*{rest}"
        out.setdefault(key, []).append(name)
    return out


# ---------------------------------------------------------------------------- fixes
@dataclass(frozen=True)
class Fix:
    """A change of the partition that addresses a cause, re-evaluated as a whole.

    ``tile`` maps a layer's tile settings to the changed ones (``{}``: unchanged);
    ``digital`` names analog layers made digital.
    """

    name: str
    knob: str
    causes: tuple[str, ...]
    tile: Callable[[TileConfig], dict[str, Any]] | None = None
    digital: frozenset[str] = field(default_factory=frozenset)

    def tile_changes(self, tile: TileConfig) -> dict[str, Any]:
        return self.tile(tile) if self.tile is not None else {}


_FIXES: tuple[
    tuple[
        tuple[str, ...],
        Callable[[TileConfig], bool],
        str,
        str,
        Callable[[TileConfig], dict[str, Any]],
    ],
    ...,
] = (
    (
        ("adc",),
        lambda t: bool(t.adc_bits),
        "adc_bits+2",
        "more ADC bits (+2)",
        lambda t: {"adc_bits": min(24, t.adc_bits + 2)},
    ),
    (
        ("adc",),
        lambda t: t.adc_bound > 0,
        "adc_bound*2",
        "a wider ADC range (2x adc_bound)",
        lambda t: {"adc_bound": 2 * t.adc_bound},
    ),
    (
        ("dac",),
        lambda t: t.dac_range != "dynamic",
        "dac_range=dynamic",
        "a wider DAC range (each input vector scaled by its max |x|)",
        lambda t: {"dac_range": "dynamic"},
    ),
    (
        ("dac",),
        lambda t: bool(t.dac_bits),
        "dac_bits+2",
        "more DAC bits (+2)",
        lambda t: {"dac_bits": min(24, t.dac_bits + 2)},
    ),
    (
        ("drift", "temperature", "accumulated_noise"),
        lambda t: t.drift_compensation != "column",
        "drift_compensation=column",
        "per-column drift compensation",
        lambda t: {"drift_compensation": "column"},
    ),
    (
        ("programming", "output_noise", "mvm_read_noise"),
        lambda t: t.weight_scale != "column",
        "weight_scale=column",
        "per-column weight scales",
        lambda t: {"weight_scale": "column"},
    ),
)
"""Evaluated fixes: (causes, applies to a tile, name, knob in words, tile change)."""


def _fixes_for(effect: str, tiles: Sequence[TileConfig]) -> list[Fix]:
    """The evaluated fixes of one effect, for the partition's analog tiles (a fix changes
    only the tiles it applies to)."""
    out = []
    for causes, applies, name, knob, change in _FIXES:
        if effect in causes and any(applies(t) for t in tiles):
            out.append(
                Fix(name, knob, (effect,), lambda t, a=applies, c=change: c(t) if a(t) else {})
            )
    return out


# ---------------------------------------------------------------------------- the chip
@dataclass(frozen=True)
class _Setting:
    """What one point switches: the analog layers kept analog, the effects on, a fix."""

    analog: frozenset[str]
    on: frozenset[str]
    fix: Fix | None = None


class _Chip:
    """The converted partition, switched between settings in place (module docstring)."""

    def __init__(
        self,
        am: AnalogModel,
        temperature_K: float | None,
        temperature_effect: bool,
        age_s: float,
    ) -> None:
        self.am = am
        self.age_s = age_s
        self.temperature_K = temperature_K
        self.temperature_effect = temperature_effect
        self.wrappers: dict[str, nn.Module] = dict(am.analog_layers())
        self.quantized: dict[str, DigitalQuantized] = {
            n: m for n, m in am.model.named_modules() if isinstance(m, DigitalQuantized)
        }
        self.base_device = {n: inner_layer(w).device_model for n, w in self.wrappers.items()}
        self.base_tile = {n: w.tile for n, w in self.wrappers.items() if isinstance(w, AnalogLayer)}
        self._devices: dict[tuple[int, frozenset[str]], DeviceModel] = {}
        self._programmed: dict[str, tuple] = {}

    def effects(self) -> list[str]:
        """The effects this partition has, in :data:`EFFECTS` order."""
        out = []
        for e in EFFECTS:
            if e == "temperature":
                has = self.temperature_effect
            elif e in DEVICE_EFFECTS:
                has = any(_device_has(d, e) for d in self.base_device.values())
            elif e in TILE_EFFECTS:
                has = any(_tile_has(t, e) for t in self.base_tile.values())
            else:
                has = bool(self.quantized)
            if has:
                out.append(e)
        return out

    def device(self, name: str, on: frozenset[str]) -> DeviceModel:
        base = self.base_device[name]
        off = frozenset(e for e in DEVICE_EFFECTS if e not in on)
        key = (id(base), off)
        dev = self._devices.get(key)
        if dev is None:
            overrides: dict[str, float] = {}
            for e in off:
                overrides.update(_device_off(base, e))
            if "temperature" in off and (self.temperature_effect or off >= set(DEVICE_EFFECTS)):
                overrides.update(_EA_OFF)  # every device effect off: an ideal device
            dev = base.with_overrides(overrides) if overrides else base
            self._devices[key] = dev
        return dev

    def tile(self, name: str, on: frozenset[str], fix: Fix | None) -> TileConfig:
        base = self.base_tile[name]
        changes: dict[str, Any] = {}
        for e in TILE_EFFECTS:
            if e not in on:
                changes.update(_TILE_OFF[e])
        if fix is not None:
            changes.update(fix.tile_changes(base))
        return base.replace(**changes) if changes else base

    def apply(self, setting: _Setting, seed: int) -> None:
        """Put the model in ``setting`` at the age, programmed from ``seed``."""
        model = self.am.model
        analog = setting.analog - (setting.fix.digital if setting.fix else frozenset())
        for name, wrapper in self.wrappers.items():
            if name in analog:
                inner = inner_layer(wrapper)
                inner.device_model = self.device(name, setting.on)
                if isinstance(wrapper, AnalogLayer):
                    wrapper.tile = self.tile(name, setting.on, setting.fix)
                _set(model, name, wrapper)
            else:
                _set(model, name, wrapper.digital)
        quant = "digital_quant" in setting.on
        for name, q in self.quantized.items():
            _set(model, name, q if quant else q.digital)
        if not analog:
            return
        wanted = {n: self._signature(n, seed) for n in analog}
        if any(self._programmed.get(n) != s for n, s in wanted.items()):
            self.am.program(seed)
            self._programmed.update(wanted)
        temp = self.temperature_K if "temperature" in setting.on else None
        self.am.at(self.age_s, temp)

    def _signature(self, name: str, seed: int) -> tuple:
        inner = inner_layer(self.wrappers[name])
        return (
            seed,
            id(inner.device_model),
            inner.tile.weight_scale,
            inner.tile.drift_compensation,
        )

    def reset(self) -> None:
        """Every wrapper back in place (the converted partition as it was built)."""
        for name, wrapper in self.wrappers.items():
            _set(self.am.model, name, wrapper)
            inner = inner_layer(wrapper)
            inner.device_model = self.base_device[name]
            if isinstance(wrapper, AnalogLayer):
                wrapper.tile = self.base_tile[name]
        for name, q in self.quantized.items():
            _set(self.am.model, name, q)


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if getattr(parent, child) is not module:
        setattr(parent, child, module)


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


def format_cost(cost: float, higher_is_better: bool, *, short: bool = False) -> str:
    """``x1.43 digital`` (perplexity ratio) or ``-0.021 vs digital`` (accuracy change);
    ``short``: ``x1.43`` / ``-0.021``."""
    if not math.isfinite(cost):
        return "lost (inf)"
    if higher_is_better:
        text = f"{0.0 - cost + 0.0:+.3g}"  # + 0.0: no "-0"
        return text if short else f"{text} vs digital"
    text = f"x{cost + 1:.4g}"
    return text if short else f"{text} digital"


# ---------------------------------------------------------------------------- summary
def _mean(values: list[float]) -> float:
    if any(not math.isfinite(v) for v in values):
        return math.inf
    return statistics.fmean(values)


def attribution_summary(rows: Sequence[dict[str, Any]], higher_is_better: bool) -> dict[str, Any]:
    """The ranked tables of attribution rows (text cells from results.csv or numbers).

    Returns ``digital``, ``metric``, ``full`` / ``none`` (value, cost), ``effects`` ranked
    by the gain of removing each (``alone_cost``, ``without_value``, ``without_cost``,
    ``gain``), ``places`` ranked by their cost alone (with ``by_effect`` costs), and
    ``grid`` (``places`` x ``effects`` matrix of costs for the heat map).
    """
    values: dict[tuple[str, str, str], list[float]] = {}
    digital = math.nan
    metric = "metric"
    for r in rows:
        metric = r["metric"]
        if r["view"] == "digital":
            digital = float(r["value"])
            continue
        values.setdefault((r["view"], r["place"], r["effect"]), []).append(float(r["value"]))

    def point(view: str, place: str, effect: str) -> dict[str, float] | None:
        vals = values.get((view, place, effect))
        if not vals:
            return None
        v = _mean(vals)
        return {"value": v, "cost": quality_cost(v, digital, higher_is_better), "n": len(vals)}

    effects = [e for e in EFFECTS if ("grid", "all", e) in values]
    full = point("grid", "all", "all")
    eff_rows = []
    for e in effects:
        alone = point("grid", "all", e)
        without = point("without", "all", e)
        gain = math.nan
        if full is not None and without is not None:
            gain = _gain(full["cost"], without["cost"])
        eff_rows.append(
            {
                "effect": e,
                "description": DESCRIPTIONS[e],
                "knob": KNOBS[e],
                "alone_value": alone["value"] if alone else math.nan,
                "alone_cost": alone["cost"] if alone else math.nan,
                "without_value": without["value"] if without else math.nan,
                "without_cost": without["cost"] if without else math.nan,
                "gain": gain,
            }
        )
    # the largest removal gain first: the smallest cost left without the effect
    eff_rows.sort(key=lambda r: (_order(r["without_cost"]), -_order(r["alone_cost"])))
    for i, r in enumerate(eff_rows, 1):
        r["rank"] = i
    place_names = []
    for view, place, effect in values:
        if view == "grid" and effect == "all" and place != "all" and place not in place_names:
            place_names.append(place)
    place_rows = []
    for p in place_names:
        pt = point("grid", p, "all")
        by_effect = {}
        for e in effects:
            c = point("grid", p, e)
            if c is not None:
                by_effect[e] = c["cost"]
        place_rows.append({"place": p, **(pt or {}), "by_effect": by_effect})
    place_rows.sort(key=lambda r: -_order(r.get("cost", math.nan)))
    for i, r in enumerate(place_rows, 1):
        r["rank"] = i
    grid_places = ["all", *place_names]
    grid_effects = [*effects, "all"]
    matrix = []
    for p in grid_places:
        line = []
        for e in grid_effects:
            c = point("grid", p, e)
            line.append(c["cost"] if c is not None else math.nan)
        matrix.append(line)
    fix_values = {eff: point("fix", "all", eff) for (view, _, eff) in values if view == "fix"}
    return {
        "metric": metric,
        "higher_is_better": higher_is_better,
        "digital": digital,
        "full": full,
        "none": point("grid", "all", "none"),
        "effects": eff_rows,
        "places": place_rows,
        "grid": {"places": grid_places, "effects": grid_effects, "cost": matrix},
        "fix_values": fix_values,
    }


def _gain(full: float, without: float) -> float:
    if math.isinf(full) and math.isinf(without):
        return 0.0
    return full - without


def _order(x: float) -> float:
    """A sort key: NaN (not measured) last when sorting ascending."""
    return math.inf if math.isnan(x) else x


# ---------------------------------------------------------------------------- fixes
_TOP = 3
"""Causes whose fixes are evaluated."""


def _top_causes(summary: dict[str, Any]) -> list[dict[str, Any]]:
    full = summary["full"]
    if full is None or not full["cost"] > 1e-6:
        return []
    return [r for r in summary["effects"] if r["gain"] > 0][:_TOP]


def _plan_fixes(summary: dict[str, Any], chip: _Chip, places: dict[str, list[str]]) -> list[Fix]:
    """The fixes to evaluate: those of the top causes, and the worst place made digital
    (when there are several places)."""
    causes = _top_causes(summary)
    if not causes:
        return []
    tiles = list(chip.base_tile.values())
    fixes: list[Fix] = []
    for c in causes:
        for f in _fixes_for(c["effect"], tiles):
            same = [i for i, x in enumerate(fixes) if x.name == f.name]
            if same:  # one knob for several causes: evaluated once
                old = fixes[same[0]]
                fixes[same[0]] = replace(old, causes=(*old.causes, c["effect"]))
            else:
                fixes.append(f)
    if len(places) > 1 and summary["places"]:
        worst = summary["places"][0]["place"]
        fixes.append(
            Fix(
                f"digital:{worst}",
                f"a digital layer: {worst} digital",
                tuple(c["effect"] for c in causes),
                digital=frozenset(places[worst]),
            )
        )
    return fixes


def _combine(summary: dict[str, Any], fixes: Sequence[Fix]) -> Fix | None:
    """The fixes that helped (lower cost than the partition), together; None when fewer
    than two helped."""
    full = summary["full"]
    if full is None:
        return None
    helped = []
    for f in fixes:
        got = summary["fix_values"].get(f.name)
        if got is not None and _order(got["cost"]) < full["cost"]:
            helped.append(f)
    if len(helped) < 2:
        return None
    parts = tuple(helped)

    def tile(t: TileConfig) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in parts:
            out.update(f.tile_changes(t))
        return out

    return Fix(
        "combined",
        "the fixes that helped, together (" + ", ".join(f.name for f in parts) + ")",
        tuple(dict.fromkeys(c for f in parts for c in f.causes)),
        tile,
        frozenset().union(*(f.digital for f in parts)),
    )


def _fix_rows(summary: dict[str, Any], fixes: list[Fix]) -> list[dict[str, Any]]:
    full = summary["full"]
    out = []
    for f in fixes:
        got = summary["fix_values"].get(f.name)
        if got is None:
            continue
        recovered = math.nan
        if full is not None and full["cost"] > 0 and math.isfinite(full["cost"]):
            recovered = (full["cost"] - got["cost"]) / full["cost"]
        out.append(
            {
                "fix": f.name,
                "knob": f.knob,
                "causes": list(f.causes),
                "value": got["value"],
                "cost": got["cost"],
                "recovered": recovered,
            }
        )
    out.sort(key=lambda r: _order(r["cost"]))
    return out


def base_note(loaded: LoadedModel) -> str | None:
    """What the digital baseline already lost, when the loader says so (``smollm2``: its
    weights were 4-bit Q4_1 before dequantisation); None for a float model."""
    info = loaded.info or {}
    quant = info.get("quantised_before_dequantisation")
    if not quant:
        return None
    return str(info.get("weights") or f"weights were {quant} before dequantisation")


def verdict_text(summary: dict[str, Any], note: str | None = None) -> str:
    """A few lines: the partition's cost, the top causes with the knob and the measured
    fix of each, the worst place, and the change that brings it closest to digital."""
    hib = summary["higher_is_better"]
    metric = summary["metric"]
    lines = [f"digital {metric}: {summary['digital']:.4g}" + (f" ({note})" if note else "")]
    full = summary["full"]
    if full is None:
        return "\n".join(lines)
    lines.append(f"partition: {metric} {full['value']:.4g} ({format_cost(full['cost'], hib)})")
    none = summary["none"]
    if none is not None:
        lines.append(
            f"check, every effect off: {metric} {none['value']:.6g} "
            f"({format_cost(none['cost'], hib)})"
        )
    causes = _top_causes(summary)
    if not causes:
        lines.append("no effect costs quality here: the partition keeps digital quality")
        return "\n".join(lines)
    fixes = summary.get("fixes", [])
    lines.append("top causes (quality when the effect alone is removed):")
    for i, c in enumerate(causes, 1):
        lines.append(
            f"  {i}. {c['effect']} ({c['description']}): without it {metric} "
            f"{c['without_value']:.4g} ({format_cost(c['without_cost'], hib)}); "
            f"alone {format_cost(c['alone_cost'], hib)}"
        )
        lines.append(f"     knob: {c['knob']}")
        for f in fixes:
            if c["effect"] in f["causes"] and not _general(f["fix"]):
                lines.append(
                    f"     fix {f['fix']} ({f['knob']}): {metric} {f['value']:.4g} "
                    f"({format_cost(f['cost'], hib)})"
                )
    if summary["places"]:
        w = summary["places"][0]
        lines.append(
            f"worst place: {w['place']} alone analog costs "
            f"{format_cost(w.get('cost', math.nan), hib)}"
        )
    if fixes:
        lines.append("fixes, best first:")
        for f in fixes:
            lines.append(f"  {f['fix']}: {metric} {f['value']:.4g} ({format_cost(f['cost'], hib)})")
        best = fixes[0]
        lines.append(
            f"closest to digital: {best['fix']} ({best['knob']}): {metric} {best['value']:.4g} "
            f"({format_cost(best['cost'], hib)})"
        )
    return "\n".join(lines)


def _general(fix: str) -> bool:
    """A fix that addresses no single cause: a digital place, or fixes combined."""
    return fix == "combined" or fix.startswith("digital:")


def ranking_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The ranked tables as rows of ``ranking.csv`` (:data:`RANKING_COLUMNS`)."""
    out: list[dict[str, Any]] = []
    for r in summary["effects"]:
        out.append(
            {
                "kind": "effect",
                "rank": r["rank"],
                "name": r["effect"],
                "value": r["without_value"],
                "cost": r["without_cost"],
                "alone_cost": r["alone_cost"],
                "gain": r["gain"],
                "note": r["knob"],
            }
        )
    for r in summary["places"]:
        out.append(
            {
                "kind": "place",
                "rank": r["rank"],
                "name": r["place"],
                "value": r.get("value"),
                "cost": r.get("cost"),
                "alone_cost": r.get("cost"),
                "gain": "",
                "note": "",
            }
        )
    for i, r in enumerate(summary.get("fixes", []), 1):
        out.append(
            {
                "kind": "fix",
                "rank": i,
                "name": r["fix"],
                "value": r["value"],
                "cost": r["cost"],
                "alone_cost": "",
                "gain": r["recovered"],
                "note": r["knob"],
            }
        )
    return out
