"""Partition comparison: quality over time and temperature, plus a cost estimate, per mapping.

``analogsim compare MODEL --mappings A B C --times ... --temperature ...`` evaluates each
partition with :func:`analogsim.studies.evaluate.evaluate` and prices it with
:func:`analogsim.cost.estimate.estimate_cost`. What-if sweeps of a chip or device
parameter use the same machinery: ``--vary adc_bits=4,6,8`` (any tile setting;
``tile_rows`` / ``tile_cols`` are aliases of ``rows`` / ``cols``) or
``--vary pcm.drift_scale=0.5,1,2`` (``<card>.<section>_<key>`` or
``<card>.<section>.<key>``: a device-card value for every layer on that card) give one
row per value and partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analogsim.cost.attention import attention_macs_per_token
from analogsim.cost.estimate import estimate_cost
from analogsim.cost.table import load_costs
from analogsim.devices import list_devices, load_device
from analogsim.errors import ConfigError
from analogsim.mapping.rules import Mapping, load_mapping, resolve_plan
from analogsim.metrics._util import context_length
from analogsim.models import LoadedModel, load_model
from analogsim.models.quality import DEFAULT_MAX_TOKENS
from analogsim.report.rundir import RunDir
from analogsim.studies.evaluate import evaluate, summarize
from analogsim.tiles.config import TILE_KEYS, TileConfig
from analogsim.units import parse_float

COMPARE_COLUMNS = [
    "model",
    "mapping",
    "vary",
    "device",
    "seed",
    "time_s",
    "temperature_K",
    "metric",
    "value",
]
COMPARE_KEYS = ["model", "mapping", "vary", "device", "seed", "time_s", "temperature_K"]
_TILE_ALIASES = {"tile_rows": "rows", "tile_cols": "cols"}


@dataclass(frozen=True)
class Vary:
    """A parameter to vary: a tile setting or a device-card value."""

    key: str
    values: tuple[Any, ...]

    @property
    def card(self) -> str | None:
        """The device card this parameter belongs to, or None for a tile setting."""
        if _TILE_ALIASES.get(self.key, self.key) in TILE_KEYS:
            return None
        return self.key.partition(".")[0]

    def label(self, value: Any) -> str:
        if isinstance(value, float):
            text = f"{value:g}"
            if float(text) != value:  # keep every digit a short form would lose
                text = repr(value)
            return f"{self.key}={text}"
        return f"{self.key}={value}"

    def apply(self, mapping: Mapping, value: Any) -> Mapping:
        """The mapping with this parameter set to ``value``."""
        tile_key = _TILE_ALIASES.get(self.key, self.key)
        if tile_key in TILE_KEYS:
            return mapping.with_tile(**{tile_key: value})
        card, _, field = self.key.partition(".")
        return mapping.with_device_overrides(card, {field: value})


def parse_vary(text: str) -> Vary:
    """``adc_bits=4,6,8`` / ``tile_rows=128,256`` / ``pcm.drift_scale=0.5,1,2``."""
    if "=" not in text:
        raise ConfigError(
            "--vary takes KEY=V1,V2,...",
            key="vary",
            value=text,
            allowed="a tile setting ("
            + ", ".join((*TILE_KEYS, *_TILE_ALIASES))
            + ") or CARD.SECTION_KEY",
        )
    key, _, vals = text.partition("=")
    key = key.strip()
    raw = [v.strip() for v in vals.split(",") if v.strip()]
    if not raw:
        raise ConfigError("--vary needs at least one value", key="vary", value=text)
    tile_key = _TILE_ALIASES.get(key, key)
    if tile_key in TILE_KEYS:
        default = getattr(TileConfig(), tile_key)
        values: list[Any] = []
        for v in raw:
            if isinstance(default, bool):
                values.append(v.lower() in ("1", "true", "yes"))
            elif isinstance(default, int):
                try:
                    values.append(int(v))
                except ValueError:
                    raise ConfigError("must be an integer", key=f"vary {key}", value=v) from None
            elif isinstance(default, float):
                values.append(parse_float(v, key=f"vary {key}"))
            else:
                try:
                    values.append(parse_float(v, key=key))
                except ConfigError:
                    values.append(v)
        for v in values:  # validate each value as a tile setting now, before any work
            TileConfig().replace(**{tile_key: v})
        return Vary(key, tuple(values))
    card, dot, field = key.partition(".")
    if not dot or card not in list_devices():
        raise ConfigError(
            "unknown parameter to vary",
            key="vary",
            value=key,
            allowed="a tile setting ("
            + ", ".join((*TILE_KEYS, *_TILE_ALIASES))
            + ") or CARD.SECTION_KEY with CARD one of "
            + ", ".join(list_devices()),
        )
    values = [parse_float(v, key=f"vary {key}") for v in raw]
    dev = load_device(card)
    for v in values:  # validate against the card now
        dev.with_overrides({field: v})
    return Vary(key, tuple(values))


def variants(
    mappings: Sequence[str | Mapping], vary: Vary | None, device: str | None
) -> list[tuple[Mapping, str]]:
    """(mapping, vary label) for every partition and varied value."""
    out = []
    for name in mappings:
        m = load_mapping(name).with_device(device)
        if vary is None:
            out.append((m, ""))
        else:
            out += [(vary.apply(m, v), vary.label(v)) for v in vary.values]
    return out


def run_compare(
    model: str | LoadedModel,
    mappings: Sequence[str | Mapping],
    *,
    device: str | None = None,
    times: Sequence[float] = (1.0, 3600.0, 86400.0, 365.25 * 86400.0),
    temperatures: Sequence[float] = (300.0,),
    seeds: int = 3,
    vary: Vary | None = None,
    digital_precision: str = "fp16",
    weight_memory: str = "sram",
    costs: str | None = None,
    run: RunDir | None = None,
    progress: bool = True,
    text: str | Path | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> dict[str, Any]:
    """Quality and cost of each partition (and varied value). Returns rows, summary, costs.

    ``text`` / ``max_tokens``: the evaluation text (file path or text) and its length in
    tokens (see :func:`analogsim.studies.evaluate.evaluate`). The digital model is scored
    once and a partition without analog layers once (its rows copy the score).
    """
    loaded = load_model(model, progress=progress) if isinstance(model, str) else model
    table = load_costs(costs)
    context = _context_tokens(loaded)
    att = attention_macs_per_token(loaded.model, context)
    cost_by: dict[tuple[str, str], dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    pairs = variants(mappings, vary, device)
    plans = [resolve_plan(loaded.model, m) for m, _ in pairs]  # every error before any work
    if vary is not None and vary.card is not None:
        used = {p.device.name for plan in plans for p in plan.layers if p.device is not None}
        if vary.card not in used:
            raise ConfigError(
                f"--vary {vary.key}: no analog layer of these mappings uses the card '{vary.card}'",
                key="vary",
                value=vary.key,
                allowed="a card in use (" + (", ".join(sorted(used)) or "none: all digital") + ")",
            )
    if run is not None:
        run.expect(1 + len(pairs) * seeds * len(temperatures) * len(times))
    digital: float | None = None
    for (m, label), plan in zip(pairs, plans, strict=True):
        rep = estimate_cost(
            plan,
            costs=table,
            digital_precision=digital_precision,
            weight_memory=weight_memory,
            attention_macs_per_token=att,
        )
        totals = plan.totals()
        cost_by[(m.name, label)] = {
            "energy_per_token_J": rep.energy_per_token_J,
            "tiles": rep.tiles,
            "devices": rep.devices,
            "area_mm2": rep.area_mm2,
            "analog_param_share": totals["analog_param_share"],
            "analog_mac_share": totals["analog_mac_share"],
            "breakdown_J": rep.breakdown_J,
            "latency_per_token_s": getattr(rep, "latency_per_token_s", None),
        }
        new = evaluate(
            loaded,
            m,
            device,
            times,
            temperatures,
            seeds,
            run=run,
            progress=progress,
            extra={"vary": label},
            text=text,
            max_tokens=max_tokens,
            digital=digital,
        )
        if digital is None:
            digital = next((float(r["value"]) for r in new if r["mapping"] == "digital"), None)
        elif run is None:  # the digital row once, as in results.csv
            new = [r for r in new if r["mapping"] != "digital"]
        rows += new
    all_rows = run.rows if run is not None else rows
    summary = summarize(
        [r for r in all_rows if r["mapping"] != "digital"],
        by=("mapping", "vary", "time_s", "temperature_K", "metric"),
    )
    for s in summary:
        c = cost_by.get((s["mapping"], s["vary"]), {})
        s["energy_per_token_J"] = c.get("energy_per_token_J")
        s["tiles"] = c.get("tiles")
    digital = next((float(r["value"]) for r in all_rows if r["mapping"] == "digital"), None)
    metric = next((r["metric"] for r in all_rows), "metric")
    return {
        "rows": all_rows,
        "summary": summary,
        "costs": cost_by,
        "digital": digital,
        "metric": metric,
        "context_tokens": context,
        "attention_macs_per_token": att,
        "cost_table": table,
    }


def _context_tokens(loaded: LoadedModel) -> int:
    """Context length for the cost of attention products: the evaluation window."""
    if loaded.kind != "causal-lm":
        # an encoder's sequence length, capped at 128 (0 for a model without one)
        return min(context_length(loaded.model, default=0), 128)
    return min(context_length(loaded.model), 256)


def json_rows(result: dict[str, Any], vary: Vary | None) -> list[dict[str, Any]]:
    """The documented JSON: mapping, time_s, temperature_K, metric, mean, std, energy_per_token_J
    (plus the varied parameter and its value when --vary is used)."""
    out = []
    for s in result["summary"]:
        row = {
            "mapping": s["mapping"],
            "time_s": float(s["time_s"]),
            "temperature_K": float(s["temperature_K"]),
            "metric": s["metric"],
            "mean": s["mean"],
            "std": s["std"],
            "energy_per_token_J": s["energy_per_token_J"],
        }
        if vary is not None and s["vary"]:
            key, _, val = s["vary"].partition("=")
            exact = {vary.label(v): v for v in vary.values}
            if s["vary"] in exact:  # the value used, with its type
                row[key] = exact[s["vary"]]
            else:
                try:
                    row[key] = float(val) if "." in val or "e" in val else int(val)
                except ValueError:
                    row[key] = val
            row["vary"] = s["vary"]
        out.append(row)
    return out
