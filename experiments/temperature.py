"""The temperature study of docs/temperature.md: rerun with

    .venv/bin/python experiments/temperature.py [--out docs/img] [--seeds 2]

Writes ``temperature_data.json`` (every number plotted) and four PNGs into ``--out``:

* ``temperature_g_of_T.png``: G(T)/G_target per programmed state (t = 1 s, programmed at 300 K);
* ``temperature_drift.png``: mean G/G_target over time at 27, 55 and 85 C (held there);
* ``temperature_quality.png``: tiny-gpt2 perplexity (all analog, PCM) vs read temperature,
  with and without global drift compensation, at 1 s, 1 d and 1 y;
* ``temperature_compensation.png``: per-column vs global compensation at 1 y.

The model runs go through ``analogsim compare`` (its run directory is kept under
``--out/temperature_compare``), so the numbers are those a user gets from the CLI.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from analogsim.report.figure import new_figure, save_figure
from analogsim.studies.evaluate import device_datasheet

LEVELS = (0.05, 0.1, 0.2, 0.5, 1.0)
TEMPS_K = tuple(float(t) for t in np.linspace(233.0, 398.0, 12))
DRIFT_TEMPS_K = (300.15, 328.15, 358.15)
TIMES = tuple(float(t) for t in np.logspace(0, np.log10(3.15576e7), 15))
MODEL_TEMPS = ("273K", "300K", "330K", "358K", "398K")
MODEL_TIMES = "1s,1d,1y"


def device_rows() -> dict:
    g_of_t = device_datasheet("pcm", LEVELS, (1.0,), TEMPS_K, samples=20_000, seed=0)
    drift = device_datasheet("pcm", (0.1, 1.0), TIMES, DRIFT_TEMPS_K, samples=20_000, seed=0)
    return {"g_of_T": g_of_t, "drift": drift}


def model_rows(out: Path, seeds: int, reuse: bool = False) -> list[dict]:
    run = out / "temperature_compare"  # the compare run directory (manifest, results.csv)
    if reuse and (run / "results.csv").exists():
        with open(run / "results.csv", newline="") as fh:
            return list(csv.DictReader(fh))
    cmd = [
        str(Path(sys.executable).with_name("analogsim")), "compare", "tiny-gpt2",
        "--mappings", "all_analog", "--device", "pcm",
        "--times", MODEL_TIMES, "--temperature", ",".join(MODEL_TEMPS),
        "--seeds", str(seeds), "--vary", "drift_compensation=none,global,column",
        "--out", str(run),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(run / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def mean_by(rows: list[dict], *keys: str) -> dict[tuple, tuple[float, float]]:
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        if r["mapping"] != "all_analog":
            continue
        groups[tuple(r[k] for k in keys)].append(float(r["value"]))
    return {k: (float(np.mean(v)), float(np.std(v))) for k, v in groups.items()}


def plot(data: dict, out: Path) -> None:
    fig, ax = new_figure()
    for g in LEVELS:
        rows = [r for r in data["g_of_T"] if r["g_rel"] == g]
        ax.plot(
            [r["temperature_K"] for r in rows], [r["mean"] for r in rows], "o-", label=f"g = {g:g}"
        )
    ax.axvline(300.0, color="grey", lw=0.8)
    ax.set(xlabel="read temperature (K)", ylabel="mean G / G_target (t = 1 s)", yscale="log",
           title="PCM: conduction vs temperature per state (programmed at 300 K)")  # fmt: skip
    ax.legend()
    save_figure(fig, out / "temperature_g_of_T.png")

    fig, ax = new_figure()
    for T in DRIFT_TEMPS_K:
        for g, style in ((1.0, "-"), (0.1, "--")):
            rows = [r for r in data["drift"] if r["g_rel"] == g and r["temperature_K"] == T]
            ax.plot([r["time_s"] for r in rows], [r["mean"] for r in rows], style,
                    label=f"{T - 273.15:.0f} C, g = {g:g}")  # fmt: skip
    ax.set(xscale="log", yscale="log", xlabel="time held since programming (s)",
           ylabel="mean G / G_target", title="PCM drift held at 27 / 55 / 85 C")  # fmt: skip
    ax.legend(fontsize=7)
    save_figure(fig, out / "temperature_drift.png")

    q = data["quality"]
    temps = [float(t.rstrip("K")) for t in MODEL_TEMPS]
    fig, ax = new_figure()
    for mode, style in (("none", "--"), ("global", "-")):
        for t_s in sorted({float(k.split("|")[1]) for k in q}):
            ys = [q.get(f"drift_compensation={mode}|{t_s!r}|{T!r}", [np.nan])[0] for T in temps]
            ax.plot(temps, ys, style + "o", label=f"{mode}, t = {t_s:.3g} s")
    ax.axhline(data["digital"], color="black", lw=0.8, label="digital")
    ax.set(xlabel="read temperature (K)", ylabel="perplexity", yscale="log",
           title="tiny-gpt2 all analog on PCM, programmed at 300 K")  # fmt: skip
    ax.legend(fontsize=7)
    save_figure(fig, out / "temperature_quality.png")

    fig, ax = new_figure()
    t_year = max(float(k.split("|")[1]) for k in q)
    for mode in ("global", "column"):
        pts = [
            (T, *q[f"drift_compensation={mode}|{t_year!r}|{T!r}"])
            for T in temps
            if f"drift_compensation={mode}|{t_year!r}|{T!r}" in q
        ]
        if pts:
            xs, ys, es = zip(*pts, strict=True)
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=f"{mode} compensation")
    ax.set(xlabel="read temperature (K)", ylabel="perplexity after 1 y",
           title="per-column vs global drift compensation")  # fmt: skip
    ax.legend()
    save_figure(fig, out / "temperature_compensation.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument(
        "--reuse", action="store_true", help="redraw from the compare run already in --out"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = device_rows()
    rows = model_rows(args.out, args.seeds, args.reuse)
    stats = mean_by(rows, "vary", "time_s", "temperature_K")
    data["quality"] = {
        "|".join((k[0], repr(float(k[1])), repr(float(k[2])))): v for k, v in stats.items()
    }
    data["digital"] = next(float(r["value"]) for r in rows if r["mapping"] == "digital")
    # the done-when comparison: 358 K vs 300 K, global compensation, at each age
    data["global_358_vs_300"] = {
        t: (
            data["quality"][f"drift_compensation=global|{t}|358.0"],
            data["quality"][f"drift_compensation=global|{t}|300.0"],
        )
        for t in sorted({k.split("|")[1] for k in data["quality"]}, key=float)
    }
    (args.out / "temperature_data.json").write_text(json.dumps(data, indent=1))
    plot(data, args.out)
    print(json.dumps(data["global_358_vs_300"], indent=1))


if __name__ == "__main__":
    main()
