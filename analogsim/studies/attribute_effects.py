"""The switches of an attribution (:mod:`analogsim.studies.attribute`): the effects, the places.

Each effect switches an existing knob of the analog layers' device card or tile settings
(the table in :mod:`analogsim.studies.attribute`); places group the analog layers by layer,
role, block or module position. :class:`_Chip` holds the converted partition and switches
it between settings in place; :class:`Fix` is a change of the partition that addresses a
cause (evaluated by :mod:`analogsim.studies.attribute_fixes`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from analogsim.devices import DeviceModel
from analogsim.errors import ConfigError
from analogsim.mapping.analog_model import AnalogModel, inner_layer
from analogsim.mapping.convert import DigitalQuantized
from analogsim.mapping.rules import block_of
from analogsim.tiles.config import TileConfig
from analogsim.tiles.layer import AnalogLayer

__all__ = ["BY", "DESCRIPTIONS", "EFFECTS", "KNOBS", "STOCHASTIC", "Fix", "places_of"]

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
