"""Costs, ranked tables, fixes and the verdict of an attribution
(:mod:`analogsim.studies.attribute`).

:func:`attribution_summary` ranks the measured rows; the fixes of the top causes are
planned (:func:`_plan_fixes`), combined when several helped (:func:`_combine`) and
re-evaluated by :func:`analogsim.studies.attribute.run_attribute`; :func:`verdict_text`
and :func:`ranking_rows` say what was found.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from analogsim.models import LoadedModel
from analogsim.studies.attribute_effects import (
    DESCRIPTIONS,
    EFFECTS,
    KNOBS,
    Fix,
    _Chip,
    _fixes_for,
)
from analogsim.tiles.config import TileConfig

__all__ = [
    "attribution_summary",
    "base_note",
    "format_cost",
    "quality_cost",
    "ranking_rows",
    "verdict_text",
]


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
