"""Redraw a run directory's plots from its results.csv and manifest.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

from analogsim.errors import ConfigError
from analogsim.report.plots import plot_metric_vs_time, plot_quality_vs_energy, plot_sweep
from analogsim.report.rundir import read_results
from analogsim.studies.evaluate import summarize
from analogsim.studies.sweep import summarize_sweep


def redraw(run_dir: str | Path) -> list[Path]:
    """Draw the plots of an ``eval``, ``compare`` or ``sweep`` run again; returns the paths."""
    root = Path(run_dir)
    manifest = json.loads((root / "manifest.json").read_text())
    command = manifest.get("command")
    rows = read_results(root)
    if not rows:
        raise ConfigError("results.csv has no rows", file=root / "results.csv")
    out: list[Path] = []
    if command in ("eval", "compare"):
        by = (
            ("mapping", "vary", "time_s", "temperature_K", "metric")
            if command == "compare"
            else ("mapping", "device", "time_s", "temperature_K", "metric")
        )
        analog = [r for r in rows if r["mapping"] != "digital"]
        summary = summarize(analog, by=by)
        digital = next((float(r["value"]) for r in rows if r["mapping"] == "digital"), None)
        metric = rows[0]["metric"]
        log_y = metric == "perplexity"
        series = ("mapping", "vary") if command == "compare" else ("mapping", "device")
        out.append(
            plot_metric_vs_time(
                summary,
                root / f"{metric}_vs_time.png",
                metric=metric,
                series=series,
                baseline=digital,
                log_y=log_y,
            )
        )
        if command == "compare":
            energy = {
                (s["mapping"], s.get("vary", "")): s.get("energy_per_token_J")
                for s in manifest.get("summary", [])
            }
            for s in summary:
                s["energy_per_token_J"] = energy.get((s["mapping"], s.get("vary", "")))
            out.append(
                plot_quality_vs_energy(
                    summary,
                    root / f"{metric}_vs_energy.png",
                    metric=metric,
                    baseline=digital,
                    log_y=log_y,
                )
            )
    elif command == "sweep":
        summary = summarize_sweep(rows)
        baseline = manifest.get("baseline", {})
        crossings = manifest.get("crossings", [])
        for metric in sorted({r["metric"] for r in summary}):
            b = baseline.get(metric)
            b = (
                float(b)
                if b is not None and not (isinstance(b, str) and b in ("inf", "nan"))
                else None
            )
            out.append(
                plot_sweep(
                    summary,
                    root / f"{metric}_vs_sigma.png",
                    metric=metric,
                    baseline=b,
                    crossings=[
                        c
                        for c in crossings
                        if c.get("sigma") is not None
                        and not (isinstance(c["sigma"], float) and math.isnan(c["sigma"]))
                    ]
                    if metric == manifest.get("quality")
                    else [],
                    log_y=metric == "perplexity",
                )
            )
    else:
        raise ConfigError(
            f"cannot redraw a '{command}' run",
            file=root / "manifest.json",
            key="command",
            value=command,
            allowed="eval, compare, sweep",
        )
    return out
