"""The per-operation cost table of the energy/area/latency estimate: format, loading,
validation, and the scaling laws of its entries.

A cost file (``devices/costs/default.toml``) gives every entry of :data:`ENTRIES` with a
value, a unit and a source (or an assumption with its reason); :func:`load_costs` reads
and validates it into a :class:`CostTable` in SI units (area in mm^2). See
``docs/cost.md``.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from analogsim.errors import ConfigError
from analogsim.paths import data_dir

__all__ = [
    "ENTRIES",
    "IDEAL_CONVERTER_BITS",
    "WEIGHT_MEMORIES",
    "CostTable",
    "bytes_per_weight",
    "check_weight_memory",
    "cost_paths",
    "costs_from_dict",
    "load_costs",
    "parse_precision",
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
        check_weight_memory(memory)
        if memory == "none":
            return 0.0
        return (self.sram_read_64b_J if memory == "sram" else self.dram_read_64b_J) / 8.0

    def bandwidth_B_per_s(self, memory: str) -> float:
        """Read bandwidth of ``memory``, B/s (``inf`` for ``none``)."""
        check_weight_memory(memory)
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


def check_weight_memory(memory: str) -> None:
    if memory not in WEIGHT_MEMORIES:
        raise ConfigError(
            "invalid weight memory",
            key="weight_memory",
            value=memory,
            allowed=", ".join(WEIGHT_MEMORIES),
        )
