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
  ``digital_precision`` (see :func:`~analogsim.cost.attention.attention_macs_per_token`), and optionally
  ``kv_cache_bytes_per_token`` bytes of cached keys and values read from
  ``weight_memory`` (see :func:`~analogsim.cost.attention.kv_cache_bytes_per_token`).

Energies are in joules per token, areas in mm^2, times in seconds. Everything is a pure,
deterministic function of the plan and the cost table.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from analogsim.cost.table import (
    IDEAL_CONVERTER_BITS,
    CostTable,
    bytes_per_weight,
    check_weight_memory,
    load_costs,
    parse_precision,
)
from analogsim.errors import ConfigError
from analogsim.mapping.rules import LayerPlan, PlacementPlan
from analogsim.tiles.config import TileConfig

__all__ = [
    "BREAKDOWN_KEYS",
    "CostReport",
    "LayerCost",
    "estimate_cost",
]

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
        costs: per-operation costs; default :func:`~analogsim.cost.table.load_costs` ``()`` (the shipped table).
        digital_precision: arithmetic of digital layers without a quantizer, of the analog
            layers' output scaling and bias, and of attention: ``fp32``, ``fp16`` or
            ``int<b>``.
        weight_memory: where digital weights are read from every token: ``sram``, ``dram``
            or ``none`` (weight traffic not priced). Analog layers read no weights.
        attention_macs_per_token: activation x activation MACs per token that no weight
            layer does (see :func:`~analogsim.cost.attention.attention_macs_per_token`), at ``digital_precision``.
        kv_cache_bytes_per_token: bytes of cached keys and values read per token (see
            :func:`~analogsim.cost.attention.kv_cache_bytes_per_token`), priced as reads from ``weight_memory``
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
    check_weight_memory(weight_memory)
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
