"""Energy, area and latency per token of a placement plan, from per-operation costs.

The estimate counts operations per token from the plan's layer shapes and prices each
with a cost from a data file (``devices/costs/default.toml``; every value there has a
source or is marked an assumption with its derivation). See ``docs/cost.md``.

Per layer, per token (for ``conv2d`` layers "per token" means per *output pixel* of that
layer, the unit of ``LayerPlan.macs_per_token``), with K = ``in_features``,
N = ``out_features`` and tiles of R rows x C columns:

* analog layer: ``K N`` analog MACs (array energy each); ``K ceil(N/C)`` DAC conversions
  (every tile has its own row drivers); ``N ceil(K/R)`` ADC conversions (every tile
  digitises its partial sums); ``N (ceil(K/R) - 1)`` int32 partial-sum adds; ``N``
  multiplies for the output scale (input scale x weight scale x drift compensation) and
  one bias add per output (if the layer has a bias) at ``digital_precision``. No weight traffic: the weights stay in the
  array. Converters with 0 bits (ideal in the simulation) are costed at 8 bits.
* digital layer: ``K N`` MACs and the bias adds at the layer's quantizer precision
  (``int<bits>``) or else at ``digital_precision``; every weight (``params`` values,
  bias included) is read from ``weight_memory`` once per token (batch-1 decoding).
* embedding: a lookup reads one row of ``d`` values, no MACs. Digital: ``d`` x
  bytes-per-weight from ``weight_memory``. Analog: ``d`` device reads (array energy each)
  and ``d`` ADC conversions.
* attention: ``attention_macs_per_token`` activation x activation MACs at
  ``digital_precision`` (see :func:`attention_macs_per_token`), and optionally
  ``kv_cache_bytes_per_token`` bytes of cached keys and values read from
  ``weight_memory`` (see :func:`kv_cache_bytes_per_token`).

Energies are in joules per token, areas in mm^2, times in seconds. Everything is a pure,
deterministic function of the plan and the cost table.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from analogsim.errors import ConfigError
from analogsim.mapping.rules import LayerPlan, PlacementPlan
from analogsim.paths import data_dir
from analogsim.tiles.config import TileConfig

__all__ = [
    "BREAKDOWN_KEYS",
    "ENTRIES",
    "WEIGHT_MEMORIES",
    "CostReport",
    "CostTable",
    "LayerCost",
    "attention_macs_per_token",
    "cost_paths",
    "costs_from_dict",
    "estimate_cost",
    "kv_cache_bytes_per_token",
    "load_costs",
]

# ---------------------------------------------------------------------------- cost table format
_UNITS: dict[str, dict[str, float]] = {
    "energy": {"fJ": 1e-15, "pJ": 1e-12, "nJ": 1e-9, "uJ": 1e-6, "J": 1.0},
    "time": {"ps": 1e-12, "ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0},
    "area": {"um2": 1e-6, "mm2": 1.0},
    "rate": {"MAC/s": 1.0, "GMAC/s": 1e9, "TMAC/s": 1e12},
    "bandwidth": {"B/s": 1.0, "GB/s": 1e9, "TB/s": 1e12},
}
"""Allowed units per dimension and their factor to the stored unit (J, s, mm^2, MAC/s, B/s)."""

_SUFFIX = {"energy": "_J", "time": "_s", "area": "_mm2", "rate": "_per_s", "bandwidth": "_B_per_s"}

ENTRIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "adc_conversion": ("energy", ("bits",)),
    "dac_conversion": ("energy", ("bits",)),
    "array_mac": ("energy", ()),
    "int8_mul": ("energy", ()),
    "int8_add": ("energy", ()),
    "int32_mul": ("energy", ()),
    "int32_add": ("energy", ()),
    "fp16_mul": ("energy", ()),
    "fp16_add": ("energy", ()),
    "fp32_mul": ("energy", ()),
    "fp32_add": ("energy", ()),
    "sram_read_64b": ("energy", ()),
    "dram_read_64b": ("energy", ()),
    "tile_area": ("area", ("rows", "cols")),
    "analog_mvm_time": ("time", ()),
    "digital_mac_rate": ("rate", ()),
    "sram_bandwidth": ("bandwidth", ()),
    "dram_bandwidth": ("bandwidth", ()),
}
"""Every table a cost file must have: ``name -> (dimension, extra reference keys)``."""

_ENTRY_KEYS = ("value", "unit", "source", "assumption", "reason", "note")
_TOP_KEYS = ("name", "description")
_POSITIVE = ("tile_area", "digital_mac_rate", "sram_bandwidth", "dram_bandwidth")
_EXTRA_RANGE = {"bits": (2, 24), "rows": (1, 1 << 20), "cols": (1, 1 << 20)}

WEIGHT_MEMORIES = ("sram", "dram", "none")
"""Where digital weights come from every token: ``none`` prices no weight traffic."""

BREAKDOWN_KEYS = (
    "analog_array",
    "dac",
    "adc",
    "partial_sums",
    "output_scaling",
    "digital_mac",
    "bias",
    "weight_memory",
    "attention_matmul",
    "kv_cache",
)
"""Energy categories of a report, in the order they are listed."""

IDEAL_CONVERTER_BITS = 8
"""Resolution at which converters that are ideal in the simulation (0 bits) are costed."""


@dataclass(frozen=True)
class CostTable:
    """Per-operation costs, validated, in SI units (area in mm^2).

    Build with :func:`load_costs`; change values with :meth:`replace`. Scaling laws used
    by the helper methods (documented in ``docs/cost.md``):

    * ADC: ``E(b) = adc_conversion_J * 2^(b - adc_ref_bits)`` (Walden figure of merit:
      constant energy per conversion step; holds roughly for 4 to 10 bits).
    * DAC: ``E(b) = dac_conversion_J * b / dac_ref_bits`` (energy per input bit).
    * Integer multiply / add at ``b`` bits: the power law through the 8- and 32-bit points,
      ``E(b) = E8 (b/8)^p`` with ``p = ln(E32/E8) / ln 4`` (Horowitz: p = 1.98 for the
      multiply, close to the b^2 of an array multiplier; 0.87 for the add).
    * Tile area: ``tile_area_mm2 * rows * cols / (tile_area_rows * tile_area_cols)``.
    """

    adc_conversion_J: float
    adc_ref_bits: int
    dac_conversion_J: float
    dac_ref_bits: int
    array_mac_J: float
    int8_mul_J: float
    int8_add_J: float
    int32_mul_J: float
    int32_add_J: float
    fp16_mul_J: float
    fp16_add_J: float
    fp32_mul_J: float
    fp32_add_J: float
    sram_read_64b_J: float
    dram_read_64b_J: float
    tile_area_mm2: float
    tile_area_rows: int
    tile_area_cols: int
    analog_mvm_time_s: float
    digital_mac_rate_per_s: float
    sram_bandwidth_B_per_s: float
    dram_bandwidth_B_per_s: float
    name: str = "custom"
    description: str = ""
    path: Path | None = None
    provenance: tuple[tuple[str, str], ...] = ()
    """``(entry, text)`` pairs: ``"source: ..."`` and/or ``"assumption: <reason>"``."""

    def __post_init__(self) -> None:
        where = self.path or self.name
        for f in fields(self):
            if f.name in ("name", "description", "path", "provenance"):
                continue
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ConfigError("must be a finite number", file=where, key=f.name, value=v)
            positive = f.name.endswith(("_bits", "_rows", "_cols", "_per_s", "_mm2"))
            if v < 0 or (positive and v <= 0):
                raise ConfigError(
                    "costs cannot be negative" if v < 0 else "must be positive",
                    file=where,
                    key=f.name,
                    value=v,
                    allowed="a number > 0" if positive else "a number >= 0",
                )

    # ------------------------------------------------------------------ scaling laws
    def adc_energy_J(self, bits: int) -> float:
        """Energy of one ADC conversion at ``bits`` (0 = ideal: costed at 8 bits), J."""
        b = bits or IDEAL_CONVERTER_BITS
        return self.adc_conversion_J * 2.0 ** (b - self.adc_ref_bits)

    def dac_energy_J(self, bits: int) -> float:
        """Energy of one DAC conversion at ``bits`` (0 = ideal: costed at 8 bits), J."""
        b = bits or IDEAL_CONVERTER_BITS
        return self.dac_conversion_J * b / self.dac_ref_bits

    @staticmethod
    def _power_law(e8: float, e32: float, bits: int) -> float:
        if e8 <= 0 or e32 <= 0:
            return e8 if bits <= 8 else e32
        p = math.log(e32 / e8) / math.log(4.0)
        return e8 * (bits / 8.0) ** p

    def int_mul_J(self, bits: int) -> float:
        """Integer multiply at ``bits``: power law through the 8- and 32-bit costs, J."""
        return self._power_law(self.int8_mul_J, self.int32_mul_J, bits)

    def int_add_J(self, bits: int) -> float:
        """Integer add at ``bits``: power law through the 8- and 32-bit costs, J."""
        return self._power_law(self.int8_add_J, self.int32_add_J, bits)

    def mul_J(self, precision: str) -> float:
        """One multiply at ``precision`` (``fp32``, ``fp16`` or ``int<b>``), J."""
        kind, bits = parse_precision(precision)
        if kind == "fp":
            return self.fp32_mul_J if bits == 32 else self.fp16_mul_J
        return self.int_mul_J(bits)

    def add_J(self, precision: str) -> float:
        """One accumulate at ``precision``, J: same-format add for floats, int32 for integers
        (integer products are summed in a 32-bit accumulator)."""
        kind, bits = parse_precision(precision)
        if kind == "fp":
            return self.fp32_add_J if bits == 32 else self.fp16_add_J
        return self.int32_add_J

    def mac_J(self, precision: str) -> float:
        """One multiply-accumulate at ``precision``: ``mul_J + add_J``, J."""
        return self.mul_J(precision) + self.add_J(precision)

    def read_J_per_byte(self, memory: str) -> float:
        """Energy to read one byte of weights from ``memory`` (64-bit read / 8), J/B."""
        _check_memory(memory)
        if memory == "none":
            return 0.0
        return (self.sram_read_64b_J if memory == "sram" else self.dram_read_64b_J) / 8.0

    def bandwidth_B_per_s(self, memory: str) -> float:
        """Read bandwidth of ``memory``, B/s (``inf`` for ``none``)."""
        _check_memory(memory)
        if memory == "none":
            return math.inf
        return self.sram_bandwidth_B_per_s if memory == "sram" else self.dram_bandwidth_B_per_s

    def tile_area(self, rows: int, cols: int) -> float:
        """Area of one tile of ``rows`` x ``cols``: the reference area scaled by cell count, mm^2."""
        return self.tile_area_mm2 * rows * cols / (self.tile_area_rows * self.tile_area_cols)

    # ------------------------------------------------------------------ views
    def replace(self, **changes: Any) -> CostTable:
        """A copy with some fields changed (SI units), validated; ``name`` becomes ``custom``
        unless given."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = set(changes) - set(data)
        if unknown:
            raise ConfigError(
                f"unknown cost field '{sorted(unknown)[0]}'",
                key=sorted(unknown)[0],
                allowed=", ".join(f.name for f in fields(self)),
            )
        data.update({"name": f"{self.name} (modified)", "path": None})
        data.update(changes)
        return CostTable(**data)

    def sources(self) -> dict[str, str]:
        """Entry -> source, for entries with a published source."""
        return {k: t[len("source: ") :] for k, t in self.provenance if t.startswith("source: ")}

    def assumptions(self) -> dict[str, str]:
        """Entry -> reason, for entries marked ``assumption = true``."""
        return {
            k: t[len("assumption: ") :] for k, t in self.provenance if t.startswith("assumption: ")
        }

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = None if self.path is None else str(self.path)
        d["provenance"] = [list(p) for p in self.provenance]
        return d


# ---------------------------------------------------------------------------- loading
def cost_paths() -> dict[str, Path]:
    """Shipped cost tables by name (``devices/costs/*.toml``)."""
    return {p.stem: p for p in sorted((data_dir("devices") / "costs").glob("*.toml"))}


def load_costs(path: str | Path | None = None) -> CostTable:
    """A cost table: the shipped default (``None``), a shipped name or a path to a TOML file.

    The file is validated on load; a problem raises one :class:`ConfigError` naming the
    file, the key, the bad value and what is allowed.
    """
    shipped = cost_paths()
    if path is None:
        file = shipped["default"]
    elif str(path) in shipped:
        file = shipped[str(path)]
    else:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(
                "cost file not found",
                file=file,
                allowed="a shipped cost table ("
                + ", ".join(shipped)
                + ") or a path to a .toml file",
            )
    try:
        with file.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=file) from None
    return costs_from_dict(data, file=file, path=file.resolve())


def costs_from_dict(
    data: dict[str, Any], *, file: Any = "<dict>", path: Path | None = None
) -> CostTable:
    """Validate a parsed cost file (see ``devices/costs/default.toml`` for the format)."""
    allowed_top = ", ".join((*_TOP_KEYS, *ENTRIES))
    for key in data:
        if key not in _TOP_KEYS and key not in ENTRIES:
            raise ConfigError(f"unknown key '{key}'", file=file, key=key, allowed=allowed_top)
    for key in _TOP_KEYS:
        if key in data and not isinstance(data[key], str):
            raise ConfigError("must be a string", file=file, key=key, value=data[key])
    values: dict[str, Any] = {}
    provenance: list[tuple[str, str]] = []
    for entry, (dim, extras) in ENTRIES.items():
        if entry not in data:
            raise ConfigError(
                "missing cost entry",
                file=file,
                key=entry,
                allowed=f"a table [{entry}] with value, unit ({', '.join(_UNITS[dim])}) "
                "and source or assumption = true + reason",
            )
        t = data[entry]
        if not isinstance(t, dict):
            raise ConfigError(
                "must be a table with value, unit and source (or assumption = true + reason)",
                file=file,
                key=entry,
                value=t,
            )
        keys = (*_ENTRY_KEYS, *extras)
        for k in t:
            if k not in keys:
                raise ConfigError(
                    f"unknown key '{k}'", file=file, key=f"{entry}.{k}", allowed=", ".join(keys)
                )
        for k in ("value", "unit", *extras):
            if k not in t:
                raise ConfigError("missing value", file=file, key=f"{entry}.{k}")
        v = t["value"]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ConfigError("must be a finite number", file=file, key=f"{entry}.value", value=v)
        if v < 0:
            raise ConfigError(
                "costs cannot be negative",
                file=file,
                key=f"{entry}.value",
                value=v,
                allowed="a number >= 0",
            )
        if entry in _POSITIVE and v == 0:
            raise ConfigError(
                "must be positive", file=file, key=f"{entry}.value", value=v, allowed="a number > 0"
            )
        unit = t["unit"]
        if unit not in _UNITS[dim]:
            raise ConfigError(
                f"invalid unit for a {dim}",
                file=file,
                key=f"{entry}.unit",
                value=unit,
                allowed=", ".join(_UNITS[dim]),
            )
        for k in extras:
            x = t[k]
            lo, hi = _EXTRA_RANGE[k]
            if isinstance(x, bool) or not isinstance(x, int) or not lo <= x <= hi:
                raise ConfigError(
                    "must be an integer in range",
                    file=file,
                    key=f"{entry}.{k}",
                    value=x,
                    allowed=f"{lo}..{hi}",
                )
        assumption = t.get("assumption", False)
        if not isinstance(assumption, bool):
            raise ConfigError(
                "must be true or false", file=file, key=f"{entry}.assumption", value=assumption
            )
        for k in ("source", "reason", "note"):
            if k in t and (not isinstance(t[k], str) or not t[k].strip()):
                raise ConfigError("must be a non-empty string", file=file, key=f"{entry}.{k}")
        if assumption and "reason" not in t:
            raise ConfigError(
                "an assumption needs a one-line reason (how the value was derived)",
                file=file,
                key=f"{entry}.reason",
            )
        if "reason" in t and not assumption:
            raise ConfigError(
                "'reason' goes with assumption = true",
                file=file,
                key=f"{entry}.assumption",
                allowed="assumption = true, or a 'source' instead of 'reason'",
            )
        if "source" not in t and not assumption:
            raise ConfigError(
                "every cost needs a source, or assumption = true with a reason",
                file=file,
                key=f"{entry}.source",
            )
        if "source" in t:
            provenance.append((entry, "source: " + t["source"]))
        if assumption:
            provenance.append((entry, "assumption: " + t["reason"]))
        values[entry + _SUFFIX[dim]] = float(v) * _UNITS[dim][unit]
        if entry in ("adc_conversion", "dac_conversion"):
            values[entry.split("_")[0] + "_ref_bits"] = t["bits"]
        if entry == "tile_area":
            values["tile_area_rows"] = t["rows"]
            values["tile_area_cols"] = t["cols"]
    return CostTable(
        **values,
        name=data.get("name", Path(str(file)).stem),
        description=data.get("description", ""),
        path=path,
        provenance=tuple(provenance),
    )


# ---------------------------------------------------------------------------- precision
_PRECISION_TEXT = "fp32, fp16 or int<b> with b in 2..32 (e.g. int8)"


def parse_precision(precision: str, key: str = "digital_precision") -> tuple[str, int]:
    """``"fp16" -> ("fp", 16)``, ``"int8" -> ("int", 8)``; anything else is a ConfigError."""
    if precision in ("fp32", "fp16"):
        return "fp", int(precision[2:])
    m = re.fullmatch(r"int(\d+)", precision) if isinstance(precision, str) else None
    if m and 2 <= int(m.group(1)) <= 32:
        return "int", int(m.group(1))
    raise ConfigError("invalid precision", key=key, value=precision, allowed=_PRECISION_TEXT)


def bytes_per_weight(precision: str) -> float:
    """Storage of one weight at ``precision``, bytes (packed: int4 is 0.5 B)."""
    return parse_precision(precision)[1] / 8.0


def _check_memory(memory: str) -> None:
    if memory not in WEIGHT_MEMORIES:
        raise ConfigError(
            "invalid weight memory",
            key="weight_memory",
            value=memory,
            allowed=", ".join(WEIGHT_MEMORIES),
        )


# ---------------------------------------------------------------------------- report
@dataclass(frozen=True)
class LayerCost:
    """Operation counts and energy of one layer, per token (conv2d: per output pixel).

    ``digital_adds`` counts partial-sum adds (analog) and bias adds; ``digital_muls`` the
    analog output scaling. ``precision`` is the digital arithmetic of the layer (``None`` for
    a layer computed in the array). ``breakdown_J`` has every key of :data:`BREAKDOWN_KEYS`.
    """

    name: str
    role: str
    kind: str
    placement: str
    device: str | None
    precision: str | None
    tiles: int
    devices: int
    area_mm2: float
    analog_macs: int
    dac_conversions: int
    adc_conversions: int
    digital_macs: int
    digital_muls: int
    digital_adds: int
    weight_bytes_read: float
    energy_J: float
    breakdown_J: dict[str, float]
    latency_s: float

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["breakdown_J"] = dict(self.breakdown_J)
        return d


@dataclass(frozen=True)
class CostReport:
    """Energy per token, area and latency of one placement plan.

    ``breakdown_J`` sums the layers' breakdowns plus ``attention_matmul`` and ``kv_cache``;
    ``tiles`` counts
    physical tiles (embedding tables placed analog included, partly used tiles whole);
    ``devices`` is analog weights x devices per weight of each layer's device; ``notes``
    lists what the estimate assumed for this plan (ideal converters costed at 8 bits, ...).
    """

    mapping: str
    layers: list[LayerCost]
    energy_per_token_J: float
    breakdown_J: dict[str, float]
    tiles: int
    devices: int
    area_mm2: float
    latency_per_token_s: float = 0.0
    macs_per_token: int = 0
    attention_macs: int = 0
    kv_cache_bytes: float = 0.0
    digital_precision: str = "fp16"
    weight_memory: str = "sram"
    costs: str = "default"
    notes: tuple[str, ...] = field(default_factory=tuple)

    def energy_by_placement_J(self) -> dict[str, float]:
        """Energy per token of the analog layers, the digital layers and attention, J."""
        b = self.breakdown_J
        out = {"analog": 0.0, "digital": 0.0, "attention": b["attention_matmul"] + b["kv_cache"]}
        for lc in self.layers:
            out[lc.placement] += lc.energy_J
        return out

    @property
    def tops_per_W(self) -> float:
        """Effective efficiency ``2 macs_per_token / energy_per_token_J / 1e12`` (2 ops per MAC)."""
        if self.energy_per_token_J <= 0:
            return math.inf
        return 2.0 * self.macs_per_token / self.energy_per_token_J / 1e12

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per layer (breakdown keys prefixed ``energy_``), for a tidy CSV."""
        out = []
        for lc in self.layers:
            d = lc.as_dict()
            bd = d.pop("breakdown_J")
            d.update({f"energy_{k}_J": v for k, v in bd.items()})
            d["mapping"] = self.mapping
            out.append(d)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "mapping": self.mapping,
            "costs": self.costs,
            "digital_precision": self.digital_precision,
            "weight_memory": self.weight_memory,
            "energy_per_token_J": self.energy_per_token_J,
            "breakdown_J": dict(self.breakdown_J),
            "energy_by_placement_J": self.energy_by_placement_J(),
            "latency_per_token_s": self.latency_per_token_s,
            "macs_per_token": self.macs_per_token,
            "attention_macs": self.attention_macs,
            "kv_cache_bytes": self.kv_cache_bytes,
            "tops_per_W": self.tops_per_W,
            "tiles": self.tiles,
            "devices": self.devices,
            "area_mm2": self.area_mm2,
            "notes": list(self.notes),
            "layers": [lc.as_dict() for lc in self.layers],
        }


def _zero() -> dict[str, float]:
    return dict.fromkeys(BREAKDOWN_KEYS, 0.0)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _layer_cost(
    lp: LayerPlan,
    c: CostTable,
    digital_precision: str,
    weight_memory: str,
    shares_array: bool,
) -> LayerCost:
    """Counts and energy of one layer; see the module docstring for the formulas."""
    K, N = lp.in_features, lp.out_features
    bd = _zero()
    tiles = devices = analog_macs = dac = adc = digital_macs = digital_muls = digital_adds = 0
    area = weight_bytes = latency = 0.0
    precision: str | None = None
    bias = max(lp.params - K * N, 0)  # bias values (0 without a bias); weights are K * N
    analog = lp.placement == "analog"
    device = lp.device.name if analog and lp.device is not None else None
    tile = lp.tile if lp.tile is not None else TileConfig()
    if analog and not shares_array:
        dpw = lp.device.conductance.devices_per_weight if lp.device is not None else 2
        tiles = _ceil(K, tile.rows) * _ceil(N, tile.cols)
        devices = K * N * dpw
        area = tiles * c.tile_area(tile.rows, tile.cols)
    if not analog:
        precision = f"int{lp.quantizer.bits}" if lp.quantizer is not None else digital_precision

    if lp.kind == "embedding" and analog:
        # a lookup senses one row of d = embedding_dim (= in_features) stored values
        adc = K
        bd["analog_array"] = K * c.array_mac_J
        bd["adc"] = adc * c.adc_energy_J(tile.adc_bits)
        latency = c.analog_mvm_time_s
    elif lp.kind == "embedding":
        weight_bytes = K * bytes_per_weight(precision or digital_precision)
        bd["weight_memory"] = weight_bytes * c.read_J_per_byte(weight_memory)
        latency = weight_bytes / c.bandwidth_B_per_s(weight_memory)
    elif analog:
        k_tiles, n_tiles = _ceil(K, tile.rows), _ceil(N, tile.cols)
        analog_macs = K * N
        dac = K * n_tiles  # every column of tiles has its own row drivers
        adc = N * k_tiles  # every row of tiles digitises its partial sums
        partial = N * (k_tiles - 1)
        digital_muls = N
        digital_adds = partial + bias
        bd["analog_array"] = analog_macs * c.array_mac_J
        bd["dac"] = dac * c.dac_energy_J(tile.dac_bits)
        bd["adc"] = adc * c.adc_energy_J(tile.adc_bits)
        bd["partial_sums"] = partial * c.int32_add_J
        bd["output_scaling"] = N * c.mul_J(digital_precision)
        bd["bias"] = bias * c.add_J(digital_precision)
        latency = c.analog_mvm_time_s
    else:
        p = precision or digital_precision
        digital_macs = lp.macs_per_token
        digital_adds = bias
        bd["digital_mac"] = digital_macs * c.mac_J(p)
        bd["bias"] = bias * c.add_J(p)
        if lp.kind != "conv2d":  # conv weights are reused across the output pixels of an image
            weight_bytes = lp.params * bytes_per_weight(p)
        bd["weight_memory"] = weight_bytes * c.read_J_per_byte(weight_memory)
        latency = max(
            digital_macs / c.digital_mac_rate_per_s,
            weight_bytes / c.bandwidth_B_per_s(weight_memory),
        )
    return LayerCost(
        name=lp.name,
        role=lp.role,
        kind=lp.kind,
        placement=lp.placement,
        device=device,
        precision=precision,
        tiles=tiles,
        devices=devices,
        area_mm2=area,
        analog_macs=analog_macs,
        dac_conversions=dac,
        adc_conversions=adc,
        digital_macs=digital_macs,
        digital_muls=digital_muls,
        digital_adds=digital_adds,
        weight_bytes_read=weight_bytes,
        energy_J=sum(bd.values()),
        breakdown_J=bd,
        latency_s=latency,
    )


def estimate_cost(
    plan: PlacementPlan,
    *,
    costs: CostTable | None = None,
    digital_precision: str = "fp16",
    weight_memory: str = "sram",
    attention_macs_per_token: int = 0,
    kv_cache_bytes_per_token: float = 0.0,
) -> CostReport:
    """Energy per token, area and latency of ``plan`` (formulas in the module docstring).

    Args:
        plan: a resolved placement (:func:`analogsim.mapping.rules.resolve_plan`).
        costs: per-operation costs; default :func:`load_costs` ``()`` (the shipped table).
        digital_precision: arithmetic of digital layers without a quantizer, of the analog
            layers' output scaling and bias, and of attention: ``fp32``, ``fp16`` or
            ``int<b>``.
        weight_memory: where digital weights are read from every token: ``sram``, ``dram``
            or ``none`` (weight traffic not priced). Analog layers read no weights.
        attention_macs_per_token: activation x activation MACs per token that no weight
            layer does (see :func:`attention_macs_per_token`), at ``digital_precision``.
        kv_cache_bytes_per_token: bytes of cached keys and values read per token (see
            :func:`kv_cache_bytes_per_token`), priced as reads from ``weight_memory``
            (``none``: not priced). Default 0: KV-cache traffic not counted.

    Returns:
        A :class:`CostReport`, energies in J per token (conv2d layers: per output pixel).

    Latency (a simple model, every number in the cost table): layers run in sequence;
    an analog layer takes ``analog_mvm_time`` (its tiles work in parallel, partial sums
    are not timed); a digital layer takes ``max(MACs / digital_mac_rate,
    weight bytes / memory bandwidth)``; attention ``MACs / digital_mac_rate`` plus
    ``KV bytes / memory bandwidth``.
    """
    if not isinstance(plan, PlacementPlan):
        raise ConfigError(
            "estimate_cost needs a PlacementPlan",
            key="plan",
            value=type(plan).__name__,
            allowed="analogsim.mapping.rules.resolve_plan(model, mapping)",
        )
    c = costs if costs is not None else load_costs()
    parse_precision(digital_precision)
    _check_memory(weight_memory)
    att = attention_macs_per_token
    if isinstance(att, bool) or not isinstance(att, int) or att < 0:
        raise ConfigError(
            "must be a non-negative integer",
            key="attention_macs_per_token",
            value=att,
            allowed="0, or attention_macs_per_token(config, context_tokens)",
        )
    kv = kv_cache_bytes_per_token
    if isinstance(kv, bool) or not isinstance(kv, int | float) or not math.isfinite(kv) or kv < 0:
        raise ConfigError(
            "must be a finite number >= 0",
            key="kv_cache_bytes_per_token",
            value=kv,
            allowed="0, or kv_cache_bytes_per_token(config, context_tokens)",
        )

    by_name = plan.by_name()
    tied_policy = getattr(plan.mapping, "tied_weights", "independent")
    layers: list[LayerCost] = []
    notes: list[str] = []
    ideal, convs, analog_emb, shared = [], [], [], []
    for lp in plan.layers:
        other = by_name.get(lp.tied_to) if lp.tied_to else None
        shares = (
            lp.kind == "embedding"
            and lp.placement == "analog"
            and other is not None
            and other.placement == "analog"
            and tied_policy != "independent"
        )
        layers.append(_layer_cost(lp, c, digital_precision, weight_memory, shares))
        used_bits = (
            ()
            if lp.placement != "analog" or lp.tile is None
            else (lp.tile.adc_bits,)
            if lp.kind == "embedding"
            else (lp.tile.adc_bits, lp.tile.dac_bits)
        )
        if 0 in used_bits:
            ideal.append(lp.name)
        if lp.kind == "conv2d":
            convs.append(lp.name)
        if lp.kind == "embedding" and lp.placement == "analog":
            analog_emb.append(lp.name)
            if shares:
                shared.append(lp.name)
    if ideal:
        notes.append(
            f"{len(ideal)} analog layer(s) have ideal converters (0 bits) in the simulation; "
            f"costed at {IDEAL_CONVERTER_BITS} bits: " + ", ".join(ideal)
        )
    if convs:
        notes.append(
            "conv2d layers are counted per output pixel (not per image), and their weight "
            "reads are not counted (weights reused across the pixels): " + ", ".join(convs)
        )
    if analog_emb:
        notes.append(
            "analog embedding lookups cost one device read and one ADC conversion per value: "
            + ", ".join(analog_emb)
        )
    if shared:
        notes.append(
            "embedding tables that share the tied analog head's arrays add no tiles: "
            + ", ".join(shared)
        )

    breakdown = _zero()
    for lc in layers:
        for k, v in lc.breakdown_J.items():
            breakdown[k] += v
    breakdown["attention_matmul"] = att * c.mac_J(digital_precision)
    breakdown["kv_cache"] = kv * c.read_J_per_byte(weight_memory)
    latency = (
        sum(lc.latency_s for lc in layers)
        + att / c.digital_mac_rate_per_s
        + kv / c.bandwidth_B_per_s(weight_memory)
    )
    macs = sum(lc.analog_macs + lc.digital_macs for lc in layers) + att
    return CostReport(
        mapping=plan.mapping.name,
        layers=layers,
        energy_per_token_J=sum(breakdown.values()),
        breakdown_J=breakdown,
        tiles=sum(lc.tiles for lc in layers),
        devices=sum(lc.devices for lc in layers),
        area_mm2=sum(lc.area_mm2 for lc in layers),
        latency_per_token_s=latency,
        macs_per_token=macs,
        attention_macs=att,
        kv_cache_bytes=float(kv),
        digital_precision=digital_precision,
        weight_memory=weight_memory,
        costs=c.name,
        notes=tuple(notes),
    )


# ---------------------------------------------------------------------------- attention
_LAYER_KEYS = ("n_layer", "num_hidden_layers", "num_layers")
_HIDDEN_KEYS = ("n_embd", "hidden_size", "d_model")
_HEAD_KEYS = ("n_head", "num_attention_heads")


def _config_of(obj: Any) -> Any:
    """The config itself, or a model's ``.config`` (a config has a ``model_type``)."""
    if obj is not None and not hasattr(obj, "model_type") and hasattr(obj, "config"):
        return obj.config
    return obj


def _first_int(config: Any, keys: tuple[str, ...]) -> int | None:
    for k in keys:
        v = getattr(config, k, None)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None


def _check_context(context_tokens: Any) -> None:
    if (
        isinstance(context_tokens, bool)
        or not isinstance(context_tokens, int)
        or context_tokens < 0
    ):
        raise ConfigError(
            "must be a non-negative integer", key="context_tokens", value=context_tokens
        )


def attention_macs_per_token(config: Any, context_tokens: int) -> int:
    """Activation x activation MACs of self-attention for one token over ``context_tokens``.

    ``2 * n_layers * context_tokens * d_attn``: per layer, the token's query is dotted with
    ``context_tokens`` keys (``QK^T``, ``context * d_attn`` MACs summed over heads) and the
    attention weights combine as many values (``AV``, as many again). ``d_attn`` is
    ``num_heads * head_dim`` when the config sets ``head_dim``, else the hidden size
    (``n_embd`` / ``hidden_size`` / ``d_model``). Grouped-query attention shares keys and
    values but not this work, so it does not change the count. ``context_tokens`` is the
    number of positions attended to, the current one included (a KV cache of that length
    when generating). Full attention is assumed: for a sliding-window model pass
    ``min(context, window)``. Softmax, scaling and KV-cache reads are not counted.

    Args:
        config: a Hugging Face config, or a model with a ``.config``; anything without a
            layer count and hidden size (a plain torch model, ``None``) gives 0.
        context_tokens: positions attended to, >= 0.

    Returns:
        MACs per token (int).
    """
    _check_context(context_tokens)
    config = _config_of(config)
    if config is None:
        return 0
    n_layers = _first_int(config, _LAYER_KEYS)
    hidden = _first_int(config, _HIDDEN_KEYS)
    heads = _first_int(config, _HEAD_KEYS)
    head_dim = _first_int(config, ("head_dim",))
    if heads is not None and head_dim is not None:
        d_attn = heads * head_dim
    else:
        d_attn = hidden
    if n_layers is None or d_attn is None:
        return 0
    return 2 * n_layers * context_tokens * d_attn


def kv_cache_bytes_per_token(config: Any, context_tokens: int, precision: str = "fp16") -> float:
    """Bytes of cached keys and values one generated token reads: ``2 n_layers context d_kv b``.

    Each layer reads ``context_tokens`` keys and as many values of ``d_kv`` numbers, at
    ``b`` bytes each (``precision``: ``fp16`` = 2 B, ``int8`` = 1 B). ``d_kv`` is
    ``num_key_value_heads * head_dim`` (grouped-query attention stores fewer heads), with
    ``head_dim`` from the config or ``hidden / num_heads``; without head counts, the hidden
    size. A plain torch model or ``None`` gives 0. Full attention is assumed.
    """
    parse_precision(precision, key="precision")
    _check_context(context_tokens)
    config = _config_of(config)
    if config is None:
        return 0.0
    n_layers = _first_int(config, _LAYER_KEYS)
    hidden = _first_int(config, _HIDDEN_KEYS)
    heads = _first_int(config, _HEAD_KEYS)
    kv_heads = _first_int(config, ("num_key_value_heads", "n_head_kv", "num_kv_heads")) or heads
    head_dim = _first_int(config, ("head_dim",))
    if head_dim is None and heads is not None and hidden is not None:
        head_dim = hidden // heads
    d_kv = kv_heads * head_dim if kv_heads is not None and head_dim is not None else hidden
    if n_layers is None or d_kv is None:
        return 0.0
    return 2.0 * n_layers * context_tokens * d_kv * bytes_per_weight(precision)
