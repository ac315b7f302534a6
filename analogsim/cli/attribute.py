"""``analogsim attribute``: where a partition's quality goes, effect by effect and place by
place, and which knob brings it back (:mod:`analogsim.studies.attribute`).

Imports of the API (torch and above) sit inside the command body so that
``analogsim --help`` stays fast: the documented exception to imports at module top.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from analogsim.cli.options import (
    DeviceOpt,
    JsonOpt,
    MappingOpt,
    ModelArg,
    NoProgressOpt,
    ResumableOutOpt,
    SeedsOpt,
    console,
    print_json,
)
from analogsim.errors import ConfigError
from analogsim.units import parse_temperature, parse_time

#: = the default ``age_s`` of ``analogsim.studies.attribute.run_attribute`` (3600 s).
DEFAULT_AGE = "1h"
#: = its default ``max_tokens``.
DEFAULT_MAX_TOKENS = 4096

AgeOpt = Annotated[
    str, typer.Option("--age", help="Time since programming (s, m, h, d, y suffixes).")
]
TemperatureOpt = Annotated[
    str | None,
    typer.Option(
        "--temperature",
        help="Read and hold temperature (K or C suffix); default: the programming "
        "temperature, 300 K (then there is no temperature effect).",
    ),
]
ByOpt = Annotated[
    str,
    typer.Option(
        "--by",
        help="Places: layer, role, block (model.layers.3) or module (model.layers.*.mlp.up_proj).",
    ),
]
MaxTokensOpt = Annotated[
    int,
    typer.Option("--max-tokens", min=2, help="Held-out tokens a language model is scored on."),
]


def attribute_cmd(
    model: ModelArg,
    mapping: MappingOpt = "all_analog",
    device: DeviceOpt = None,
    age: AgeOpt = DEFAULT_AGE,
    temperature: TemperatureOpt = None,
    by: ByOpt = "role",
    seeds: SeedsOpt = 1,
    max_tokens: MaxTokensOpt = DEFAULT_MAX_TOKENS,
    out: ResumableOutOpt = None,
    json_out: JsonOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Where a partition loses quality: each non-ideality and each place in turn, ranked.

    One effect on at a time, one place (--by) at a time analog, one effect off at a time.
    The knob of each top cause is re-evaluated on the whole partition (docs/attribution.md).
    Writes results.csv, ranking.csv, verdict.txt, a heat map and ranked bars; --out resumes.
    """
    from analogsim.mapping.rules import cards_of, load_mapping  # lazy: start-up time
    from analogsim.models import load_model
    from analogsim.report.rundir import RunDir
    from analogsim.studies.attribute import ATTRIBUTE_COLUMNS, ATTRIBUTE_KEYS, run_attribute
    from analogsim.studies.attribute_effects import BY

    age_s = parse_time(age, key="--age")
    temp_K = None if temperature is None else parse_temperature(temperature, key="--temperature")
    if by not in BY:
        raise ConfigError("unknown grouping of layers", key="--by", value=by, allowed=", ".join(BY))
    m = load_mapping(mapping)
    loaded = load_model(model, progress=not no_progress)  # a bad name: no run directory
    config = {
        "model": model,
        "mapping": m.name,
        "mapping_path": str(m.path or ""),
        "device": device,
        "age_s": age_s,
        "temperature_K": temp_K,
        "by": by,
        "seeds": list(range(seeds)),
        "max_tokens": max_tokens,
    }
    cards = cards_of(m, device)
    with RunDir(out, "attribute", config, ATTRIBUTE_COLUMNS, ATTRIBUTE_KEYS, cards=cards) as run:
        result = run_attribute(
            loaded,
            m,
            device=device,
            age_s=age_s,
            temperature_K=temp_K,
            by=by,
            seeds=seeds,
            max_tokens=max_tokens,
            run=run,
            progress=not no_progress,
        )
    if json_out:
        print_json(_json(result, str(run.path)))
        return
    _print_tables(result, model, m.name)
    console.print(result["verdict"], highlight=False, markup=False, soft_wrap=True)
    console.print(f"run directory: {run.path}")


def _json(result: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """The documented JSON (docs/attribution.md)."""
    keys = ("metric", "higher_is_better", "digital", "base_note", "full", "none", "by")
    out: dict[str, Any] = {k: result[k] for k in keys}
    out["effects"] = [
        {k: r[k] for k in ("rank", "effect", "alone_cost", "without_value", "without_cost", "gain")}
        for r in result["effects"]
    ]
    out["places"] = [
        {"rank": r["rank"], "place": r["place"], "value": r.get("value"), "cost": r.get("cost")}
        for r in result["places"]
    ]
    out["fixes"] = result["fixes"]
    out["grid"] = result["grid"]
    out["verdict"] = result["verdict"]
    out["run_dir"] = run_dir
    return out


def _print_tables(result: dict[str, Any], model: str, mapping: str) -> None:
    from analogsim.studies.attribute_fixes import format_cost  # lazy: start-up time

    hib = result["higher_is_better"]
    metric = result["metric"]

    def fmt(c: Any) -> str:
        return "" if c is None else format_cost(float(c), hib, short=True)

    table = Table(title=f"{model} on {mapping}: effects ranked by the quality gained without them")
    for col in ("rank", "effect", "alone", f"without: {metric}", "without", "gain"):
        table.add_column(col, justify="left" if col == "effect" else "right")
    for r in result["effects"]:
        table.add_row(
            str(r["rank"]),
            r["effect"],
            fmt(r["alone_cost"]),
            f"{r['without_value']:.4g}",
            fmt(r["without_cost"]),
            f"{r['gain']:.3g}",
        )
    console.print(table)
    if result["places"]:
        table = Table(title=f"places analog alone (by {result['by']}), ranked")
        for col in ("rank", "place", metric, "cost"):
            table.add_column(col, justify="left" if col == "place" else "right")
        for r in result["places"]:
            table.add_row(
                str(r["rank"]),
                r["place"],
                f"{r.get('value', float('nan')):.4g}",
                fmt(r.get("cost")),
            )
        console.print(table)
    if result["fixes"]:
        table = Table(title="fixes, re-evaluated on the whole partition")
        for col in ("fix", "knob", metric, "cost", "recovered"):
            table.add_column(col, justify="left" if col in ("fix", "knob") else "right")
        for r in result["fixes"]:
            table.add_row(
                r["fix"],
                r["knob"],
                f"{r['value']:.4g}",
                fmt(r["cost"]),
                f"{100 * r['recovered']:.0f} %" if r["recovered"] == r["recovered"] else "",
            )
        console.print(table)
