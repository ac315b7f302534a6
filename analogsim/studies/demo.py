"""The offline demo study that ``make demo`` runs.

1. Partitions of two transformers (``tiny-gpt2``: perplexity; ``minilm``: embedding
   cosine to the digital model) on PCM: all digital, digital attention / analog MLP,
   analog attention / digital MLP, all analog; from 1 second to 1 year after
   programming, at room temperature and at 85 C; with the estimated energy per token.
2. Devices: the digits MLP fully analog on PCM, HERMES-fitted PCM and RRAM at the
   same two temperatures.

Each study is its own (resumable) run directory inside the demo directory; the demo
directory holds the combined ``results.csv``, ``manifest.json``, the plots and
``report.md``.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path
from typing import Any

from rich.markdown import Markdown

from analogsim.mapping.rules import cards_of, load_mapping
from analogsim.models import load_model, pending_build
from analogsim.report.plots import plot_metric_vs_time, plot_quality_vs_energy
from analogsim.report.rundir import RunDir, default_out
from analogsim.studies.compare import COMPARE_COLUMNS, COMPARE_KEYS, run_compare
from analogsim.studies.evaluate import EVAL_COLUMNS, EVAL_KEYS, evaluate, summarize
from analogsim.units import format_time

PARTITIONS = (
    "all_digital",
    "digital_attention_analog_mlp",
    "analog_attention_digital_mlp",
    "all_analog",
)
DEMO_MODELS = ("tiny-gpt2", "minilm")
DEMO_DEVICES = ("pcm", "pcm_hermes", "rram")
DEMO_TEMPERATURES = (300.0, 358.15)
DEMO_TIMES = (1.0, 3600.0, 86400.0, 30 * 86400.0, 365.25 * 86400.0)


def run_demo(
    out: str | Path | None = None,
    *,
    seeds: int = 2,
    progress: bool = True,
    console: Any = None,
    models: tuple[str, ...] = DEMO_MODELS,
    times: tuple[float, ...] = DEMO_TIMES,
) -> Path:
    """Run the demo study; returns the demo directory."""
    root = Path(out) if out is not None else default_out("demo")
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "models": list(models),
        "partitions": list(PARTITIONS),
        "devices": list(DEMO_DEVICES),
        "times_s": list(times),
        "temperatures_K": list(DEMO_TEMPERATURES),
        "seeds": list(range(seeds)),
    }
    maps = [load_mapping(m) for m in PARTITIONS]
    cards: dict[str, Any] = {}
    for m in maps:
        cards.update(cards_of(m, "pcm"))
    for d in DEMO_DEVICES:
        cards.update(cards_of(load_mapping("all_analog"), d))
    if progress:
        for model in models:
            notice = pending_build(model)
            if notice is not None:  # first run: say what the silent-looking minutes are
                print(f"{notice}\n(first run only; later demos reuse it)", file=sys.stderr)
    sections: list[dict[str, Any]] = []
    combined: list[dict[str, Any]] = []
    with RunDir(
        root, "demo", config, ["study", *COMPARE_COLUMNS], ["study", *COMPARE_KEYS], cards=cards
    ) as top:
        # 1. partitions of transformers
        for model in models:
            sub_cfg = {k: config[k] for k in ("times_s", "temperatures_K", "seeds")}
            sub_cfg.update(model=model, mappings=list(PARTITIONS), device="pcm")
            with RunDir(root / model, "compare", sub_cfg, COMPARE_COLUMNS, COMPARE_KEYS) as run:
                res = run_compare(
                    model,
                    maps,
                    device="pcm",
                    times=times,
                    temperatures=DEMO_TEMPERATURES,
                    seeds=seeds,
                    run=run,
                    progress=progress,
                )
                metric = res["metric"]
                log_y = metric == "perplexity"
                p1 = plot_metric_vs_time(
                    res["summary"],
                    run.path / f"{metric}_vs_time.png",
                    metric=metric,
                    baseline=res["digital"],
                    title=f"{model}: {metric} per partition (PCM)",
                    log_y=log_y,
                )
                p2 = plot_quality_vs_energy(
                    res["summary"],
                    run.path / f"{metric}_vs_energy.png",
                    metric=metric,
                    baseline=res["digital"],
                    title=f"{model}: {metric} against energy per token",
                    log_y=log_y,
                )
                run.note(summary=res["summary"], costs=res["costs"], digital=res["digital"])
            combined += [{"study": model, **r} for r in res["rows"]]
            sections.append(
                {
                    "kind": "partitions",
                    "model": model,
                    "metric": metric,
                    "res": res,
                    "plots": [p1.relative_to(root), p2.relative_to(root)],
                }
            )
        # 2. devices on the digits MLP
        sub_cfg = {k: config[k] for k in ("devices", "times_s", "temperatures_K", "seeds")}
        with RunDir(root / "digits-devices", "eval", sub_cfg, EVAL_COLUMNS, EVAL_KEYS) as run:
            loaded = load_model("digits-mlp", progress=progress)
            for dev in DEMO_DEVICES:
                evaluate(
                    loaded,
                    "all_analog",
                    dev,
                    times,
                    DEMO_TEMPERATURES,
                    seeds,
                    run=run,
                    progress=progress,
                )
            rows = run.rows
            digital = next(float(r["value"]) for r in rows if r["mapping"] == "digital")
            summary = summarize([r for r in rows if r["mapping"] != "digital"])
            p3 = plot_metric_vs_time(
                summary,
                run.path / "accuracy_vs_time.png",
                metric="accuracy",
                series=("device",),
                baseline=digital,
                title="digits-mlp, all layers analog: accuracy by device",
            )
            run.note(summary=summary, digital=digital)
        combined += [{"study": "digits-devices", "vary": "", **r} for r in rows]
        sections.append(
            {
                "kind": "devices",
                "summary": summary,
                "digital": digital,
                "plots": [p3.relative_to(root)],
            }
        )
        _write_combined(root / "results.csv", combined, ["study", *COMPARE_COLUMNS])
        report = _report(sections, seeds, times)
        (root / "report.md").write_text(report)
        top.note(
            report="report.md", studies=[str(s.get("model", "digits-devices")) for s in sections]
        )
    if console is not None:
        console.print(Markdown(report))
    return root


def _write_combined(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in columns})
    tmp.replace(path)


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.4g}"


def _report(sections: list[dict[str, Any]], seeds: int, times: tuple[float, ...]) -> str:
    lines = [
        "# analogsim demo",
        "",
        "What happens to these models on analog PCM chips after this much time at this",
        f"temperature, and what does it cost? Mean ± std over {seeds} programmed chips per",
        "setting; every number comes from `results.csv` in this directory (redraw or",
        "re-analyse from there). Analog layers use the Rasch 2023 IO preset: 8-bit DAC/ADC",
        "per 512-row tile, output noise 0.04, per-MVM read noise 0.0175, global drift",
        "compensation. Energy per token is an estimate from per-operation costs",
        "(`devices/costs/default.toml`, see docs/cost.md) for batch-1 decoding with digital",
        "weights read from SRAM: compare partitions with it, do not read it as a chip",
        "measurement.",
        "",
    ]
    for sec in sections:
        if sec["kind"] == "partitions":
            res, metric, model = sec["res"], sec["metric"], sec["model"]
            better = "lower" if metric == "perplexity" else "higher"
            lines += [
                f"## {model}: partitions ({metric}, {better} is better; digital {_fmt(res['digital'])})",
                "",
            ]
            lines += [f"![{p.stem}]({p})" for p in sec["plots"]]
            lines += [""]
            temps = sorted({float(r["temperature_K"]) for r in res["summary"]})
            header = (
                "| partition | energy/token | tiles | T (K) | "
                + " | ".join(format_time(t) for t in times)
                + " |"
            )
            lines += [header, "|" + "---|" * (len(times) + 4)]
            idx = {
                (r["mapping"], float(r["temperature_K"]), float(r["time_s"])): r
                for r in res["summary"]
            }
            for m in PARTITIONS:
                cost = res["costs"].get((m, ""), {})
                e = cost.get("energy_per_token_J")
                for temp in temps:
                    cells = []
                    for t in times:
                        r = idx.get((m, temp, float(t)))
                        cells.append("" if r is None else f"{_fmt(r['mean'])} ± {_fmt(r['std'])}")
                    lines.append(
                        f"| {m} | {'' if e is None else f'{e * 1e6:.3g} uJ'} | {cost.get('tiles', '')} | {temp:g} | "
                        + " | ".join(cells)
                        + " |"
                    )
            lines += [""]
        else:
            lines += [
                f"## digits MLP on three devices (accuracy; digital {sec['digital']:.4f})",
                "",
            ]
            lines += [f"![{p.stem}]({p})" for p in sec["plots"]]
            lines += [""]
            summary = sec["summary"]
            temps = sorted({float(r["temperature_K"]) for r in summary})
            devices = sorted({r["device"] for r in summary})
            lines += [
                "| device | T (K) | " + " | ".join(format_time(t) for t in times) + " |",
                "|" + "---|" * (len(times) + 2),
            ]
            idx = {(r["device"], float(r["temperature_K"]), float(r["time_s"])): r for r in summary}
            for d in devices:
                for temp in temps:
                    cells = []
                    for t in times:
                        r = idx.get((d, temp, float(t)))
                        cells.append("" if r is None else f"{r['mean']:.3f} ± {r['std']:.3f}")
                    lines.append(f"| {d} | {temp:g} | " + " | ".join(cells) + " |")
            lines += [""]
    lines += [
        "## Reading the results",
        "",
        "- Hotter chips age faster: drift is Arrhenius-accelerated (activation energy 0.6 eV, an",
        "  assumption stated in `devices/pcm.toml`) and conductance is read with a state-dependent",
        "  activation energy (0.33 eV amorphous, Muneer 2018), which global drift compensation",
        "  removes only on average.",
        "- RRAM carries the published stuck-at rates (1.75 % at Gmax, 9.04 % at Gmin) with no",
        "  fault-aware mapping or training.",
        "- Next steps: `analogsim compare MODEL --vary adc_bits=4,6,8` for what-if sweeps,",
        "  `analogsim generate` to let the chip age while the model writes, `analogsim train",
        "  --method hwa` to make a model robust to all this.",
        "",
        "Run configuration, versions, device cards and git revision: `manifest.json` (and one",
        f"per study folder); {seeds} programmed chip{'s' if seeds != 1 else ''} per setting.",
        "",
    ]
    return "\n".join(lines)
