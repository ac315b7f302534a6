"""The ``analogsim`` command line: thin commands over the Python API.

Every command has ``--help``. Commands that measure write a run directory
(``--out DIR``, default ``runs/<timestamp>-<command>/``) with ``results.csv``,
``manifest.json`` and plots; re-running with the same ``--out`` resumes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from analogsim import __version__
from analogsim.errors import AnalogsimError
from analogsim.units import (
    format_time,
    parse_float,
    parse_temperatures,
    parse_times,
)

app = typer.Typer(
    name="analogsim",
    help="Simulate neural networks on analog in-memory-computing hardware: "
    "device physics over time and temperature, crossbar tiles, and what it costs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
device_app = typer.Typer(help="Inspect one device card.", no_args_is_help=True)
app.add_typer(device_app, name="device")

console = Console()
err_console = Console(stderr=True)

OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out", help="Run directory (default runs/<timestamp>-<command>); reuse it to resume."
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")
]


def _finite_json(x: object) -> object:
    """Strict JSON: non-finite floats become the strings "inf", "-inf", "nan"."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {str(k): _finite_json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite_json(v) for v in x]
    if isinstance(x, str | int | float | bool) or x is None:
        return x
    return str(x)


def print_json(obj: object) -> None:
    """Print ``obj`` as strict JSON (valid for jq and other strict parsers)."""
    print(json.dumps(_finite_json(obj), indent=2, allow_nan=False))


def _version(value: bool) -> None:
    if value:
        console.print(f"analogsim {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """analogsim: what happens to this model, on that analog chip, after this much time at that temperature."""


# ---------------------------------------------------------------------------- devices
@app.command("devices")
def devices_cmd(json_out: JsonOpt = False) -> None:
    """List the shipped device cards, one line each."""
    from analogsim.devices import list_devices, load_device

    rows = [load_device(n).summary() for n in list_devices()]
    if json_out:
        print_json(rows)
        return
    table = Table(title="device cards (devices/*.toml)")
    for col in ("name", "technology", "G range (uS)", "drift", "temperature", "faults"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["name"],
            r["technology"],
            f"{r['g_min_uS']:g}..{r['g_max_uS']:g}",
            r["drift"],
            r["temperature"],
            r["faults"],
        )
    console.print(table)


@device_app.command("show")
def device_show(
    card: Annotated[
        str, typer.Argument(help="A shipped card name (pcm, rram, ...) or a path to a .toml card.")
    ],
    g: Annotated[
        str, typer.Option("--g", help="Relative target levels g_rel = (G - g_min)/(g_max - g_min).")
    ] = "0.1,0.5,1.0",
    times: Annotated[
        str, typer.Option("--times", help="Times since programming (s, m, h, d, y suffixes).")
    ] = "1s,1h,1d,1y",
    temperature: Annotated[
        str | None,
        typer.Option(
            "--temperature", help="Temperatures (K or C suffix); default the card's reference."
        ),
    ] = None,
    samples: Annotated[
        int, typer.Option("--samples", min=100, help="Devices sampled per level.")
    ] = 100_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sampled devices.")] = 0,
    json_out: JsonOpt = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG plot of the datasheet here.")
    ] = None,
) -> None:
    """The datasheet of a card: statistics of G(t, T) / G_target at relative target levels.

    A device held at T for t seconds ages like t * A(T) at the reference temperature
    (Arrhenius, the card's drift activation energy) and is read at T.
    """
    from analogsim.devices import load_device
    from analogsim.studies.evaluate import device_datasheet

    dev = load_device(card)
    levels = [parse_float(x, key="g") for x in g.split(",") if x.strip()]
    temps = parse_temperatures(temperature) if temperature else None
    rows = device_datasheet(dev, levels, parse_times(times), temps, samples=samples, seed=seed)
    if json_out:
        keys = ("g_rel", "time_s", "temperature_K", "mean", "std")
        print_json([{k: r[k] for k in keys} for r in rows])
    else:
        table = Table(
            title=f"{dev.name}: G(t, T) / G_target ({samples} devices per level, seed {seed})"
        )
        for col in ("g_rel", "time", "T (K)", "mean", "std", "1%", "99%"):
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(
                f"{r['g_rel']:g}",
                format_time(r["time_s"]),
                f"{r['temperature_K']:g}",
                f"{r['mean']:.4f}",
                f"{r['std']:.4f}",
                f"{r['p01']:.4f}",
                f"{r['p99']:.4f}",
            )
        console.print(table)
        assumptions = dev.assumptions()
        if assumptions:
            console.print(
                "[dim]assumptions (no published source): "
                + "; ".join(f"{s}: {', '.join(k)}" for s, k in assumptions.items())
                + "[/dim]"
            )
    if plot is not None:
        from analogsim.report.plots import plot_datasheet

        plot.parent.mkdir(parents=True, exist_ok=True)
        plot_datasheet(rows, plot, title=f"{dev.name} datasheet")
        if not json_out:
            console.print(f"plot: {plot}")


# ---------------------------------------------------------------------------- roles / map
ModelArg = Annotated[
    str, typer.Argument(help="digits-mlp, tiny-gpt2, minilm, or a Hugging Face name / local path.")
]


@app.command("roles")
def roles_cmd(model: ModelArg, json_out: JsonOpt = False) -> None:
    """Every weight layer of a model with its role (attention, mlp, embedding, head, conv, other)."""
    from analogsim.mapping.roles import model_roles
    from analogsim.models import load_model

    lm = load_model(model)
    roles = model_roles(lm.model)
    if json_out:
        print_json(
            {
                "family": roles.family,
                "layers": [dataclasses.asdict(layer) for layer in roles.layers],
                "unclassified": roles.unclassified,
            }
        )
        return
    table = Table(title=f"{model}: roles (family {roles.family})")
    for col in ("layer", "kind", "role", "in", "out", "params", "tied to", "why"):
        table.add_column(col, overflow="fold")
    for layer in roles.layers:
        table.add_row(
            layer.name,
            layer.kind,
            layer.role,
            str(layer.in_features),
            str(layer.out_features),
            f"{layer.params:,}",
            layer.tied_to or "",
            layer.reason,
        )
    console.print(table)
    if roles.unclassified:
        console.print(
            f"[yellow]could not classify (role 'other'):[/yellow] {', '.join(roles.unclassified)}"
        )


@app.command("map")
def map_cmd(
    model: ModelArg,
    mapping: Annotated[
        str, typer.Option("--mapping", help="Shipped mapping name or path to a mapping TOML.")
    ] = "all_analog",
    device: Annotated[
        str | None,
        typer.Option("--device", help="Device card for analog layers (overrides the mapping)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Where each layer goes (analog / digital), on which device and tiles, and which rule decided it."""
    from analogsim.mapping.rules import load_mapping, resolve_plan
    from analogsim.models import load_model

    lm = load_model(model)
    plan = resolve_plan(lm.model, load_mapping(mapping).with_device(device))
    totals = plan.totals()
    if json_out:
        print_json(
            {
                "mapping": plan.mapping.name,
                "family": plan.family,
                "layers": [p.as_dict() for p in plan.layers],
                "totals": totals,
            }
        )
        return
    table = Table(title=f"{model} on {plan.mapping.name}")
    for col in ("layer", "role", "placement", "device", "tiles", "params", "MACs/token", "rule"):
        table.add_column(col, overflow="fold")
    for p in plan.layers:
        place = p.placement + (f" int{p.quantizer.bits}" if p.quantizer else "")
        table.add_row(
            p.name,
            p.role,
            place,
            p.device.name if p.device else "",
            str(p.tiles()) if p.tiles() else "",
            f"{p.params:,}",
            f"{p.macs_per_token:,}",
            p.rule,
        )
    console.print(table)
    console.print(
        f"analog: {totals['analog_layers']}/{totals['layers']} layers, "
        f"{totals['analog_param_share']:.1%} of parameters, {totals['analog_mac_share']:.1%} of MACs, "
        f"{totals['tiles']} tiles"
    )


# ---------------------------------------------------------------------------- eval
@app.command("eval")
def eval_cmd(
    model: Annotated[
        str,
        typer.Argument(help="digits-mlp, tiny-gpt2, minilm, or a Hugging Face name / local path."),
    ],
    mapping: Annotated[
        str, typer.Option("--mapping", help="Shipped mapping name or path to a mapping TOML.")
    ] = "all_analog",
    device: Annotated[
        str | None,
        typer.Option("--device", help="Device card for analog layers (overrides the mapping)."),
    ] = None,
    times: Annotated[str, typer.Option("--times", help="Times since programming.")] = "1s,1h,1d,1y",
    temperature: Annotated[
        str, typer.Option("--temperature", help="Temperatures, e.g. 300K,85C.")
    ] = "300K",
    seeds: Annotated[
        int, typer.Option("--seeds", min=1, help="Number of programmed chips (seeds 0..N-1).")
    ] = 3,
    out: OutOpt = None,
    json_out: JsonOpt = False,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="Hide the progress bar.")
    ] = False,
) -> None:
    """Quality of a model on a simulated chip over deployment time and temperature.

    Prints mean and std over seeds; writes results.csv, manifest.json and a plot.
    """
    from analogsim.mapping.rules import load_mapping
    from analogsim.report.plots import plot_metric_vs_time
    from analogsim.report.rundir import RunDir
    from analogsim.studies.evaluate import EVAL_COLUMNS, EVAL_KEYS, cards_of, evaluate, summarize

    tlist, temps = parse_times(times), parse_temperatures(temperature)
    m = load_mapping(mapping)
    config = {
        "model": model,
        "mapping": m.name,
        "mapping_path": str(m.path or ""),
        "device": device,
        "times_s": tlist,
        "temperatures_K": temps,
        "seeds": list(range(seeds)),
    }
    with RunDir(out, "eval", config, EVAL_COLUMNS, EVAL_KEYS, cards=cards_of(m, device)) as run:
        evaluate(model, m, device, tlist, temps, seeds, run=run, progress=not no_progress)
        rows = run.rows
        analog = [r for r in rows if r["mapping"] != "digital"]
        summary = summarize(analog)
        base = [float(r["value"]) for r in rows if r["mapping"] == "digital"]
        metric = rows[0]["metric"] if rows else "metric"
        plot_metric_vs_time(
            summary,
            run.path / f"{metric}_vs_time.png",
            metric=metric,
            baseline=base[0] if base else None,
            title=f"{model}: {metric} on {m.name}",
            log_y=metric == "perplexity",
        )
        run.note(summary=summary, digital=base[0] if base else None)
    if json_out:
        print_json(
            {
                "digital": base[0] if base else None,
                "summary": summary,
                "run_dir": str(run.path),
            }
        )
        return
    table = Table(title=f"{model} on {m.name} ({device or 'mapping devices'}), {seeds} seeds")
    for col in ("time", "T (K)", metric + " mean", "std", "n"):
        table.add_column(col, justify="right")
    for r in sorted(summary, key=lambda r: (float(r["temperature_K"]), float(r["time_s"]))):
        table.add_row(
            format_time(float(r["time_s"])),
            f"{float(r['temperature_K']):g}",
            f"{r['mean']:.4f}",
            f"{r['std']:.4f}",
            str(r["n"]),
        )
    console.print(table)
    if base:
        console.print(f"digital {metric}: {base[0]:.4f}")
    console.print(f"run directory: {run.path}")


# ---------------------------------------------------------------------------- sweep
@app.command("sweep")
def sweep_cmd(
    model: ModelArg,
    noise: Annotated[
        str,
        typer.Option(
            "--noise", help="gaussian, uniform, cauchy, laplace, student-t or a registered name."
        ),
    ] = "gaussian",
    sigma: Annotated[
        str, typer.Option("--sigma", help="Levels: start:stop:count or a comma list.")
    ] = "0:0.05:6",
    relative: Annotated[
        bool, typer.Option("--relative", help="Sigma relative to each layer's weight std.")
    ] = False,
    roles: Annotated[
        str | None,
        typer.Option(
            "--roles", help="Comma list of roles to perturb (default: all but embeddings)."
        ),
    ] = None,
    include_embeddings: Annotated[
        bool,
        typer.Option(
            "--include-embeddings", help="Also perturb embeddings (and a head tied to them)."
        ),
    ] = False,
    no_bias: Annotated[bool, typer.Option("--no-bias", help="Leave biases unperturbed.")] = False,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Noise draws per level.")] = 3,
    threshold: Annotated[
        str,
        typer.Option("--threshold", help="Absolute metric levels to locate (e.g. perplexity 100)."),
    ] = "100",
    multiple: Annotated[
        str,
        typer.Option(
            "--multiple", help="Multiples of the baseline to locate (e.g. 2x perplexity)."
        ),
    ] = "2",
    out: OutOpt = None,
    json_out: JsonOpt = False,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="Hide the progress bar.")
    ] = False,
) -> None:
    """Statistical weight-noise sweep: quality against sigma, seeded, weights restored between levels.

    Reports mean and spread over seeds and the sigma where the metric first crosses each
    threshold, interpolated between grid points (log scale for perplexity).
    """
    from analogsim.report.plots import plot_sweep
    from analogsim.report.rundir import RunDir
    from analogsim.studies.sweep import SWEEP_COLUMNS, SWEEP_KEYS, run_sweep, thresholds
    from analogsim.units import parse_range

    sigmas = parse_range(sigma, key="sigma")
    role_list = [r.strip() for r in roles.split(",") if r.strip()] if roles else None
    levels = [parse_float(x, key="threshold") for x in threshold.split(",") if x.strip()]
    mults = [parse_float(x, key="multiple") for x in multiple.split(",") if x.strip()]
    config = {
        "model": model,
        "noise": noise,
        "sigmas": sigmas,
        "relative": relative,
        "roles": role_list,
        "include_embeddings": include_embeddings,
        "include_bias": not no_bias,
        "seeds": list(range(seeds)),
    }
    with RunDir(out, "sweep", config, SWEEP_COLUMNS, SWEEP_KEYS) as run:
        res = run_sweep(
            model,
            noise,
            sigmas,
            relative=relative,
            roles=role_list,
            include_embeddings=include_embeddings,
            include_bias=not no_bias,
            seeds=seeds,
            run=run,
            progress=not no_progress,
        )
        q = res["quality"]
        hib = res["higher_is_better"]
        abs_levels = levels if q == "perplexity" else []
        mult_levels = mults if q == "perplexity" else [0.9]
        cross = thresholds(
            res["summary"],
            q,
            res["baseline"][q],
            higher_is_better=hib,
            absolute=abs_levels,
            multiples=mult_levels,
        )
        for metric in {r["metric"] for r in res["summary"]}:
            plot_sweep(
                res["summary"],
                run.path / f"{metric}_vs_sigma.png",
                metric=metric,
                baseline=res["baseline"].get(metric),
                crossings=cross if metric == q else [],
                title=f"{model}: {metric} under {noise} weight noise",
                log_y=metric == "perplexity",
            )
        run.note(
            summary=res["summary"],
            baseline=res["baseline"],
            crossings=cross,
            perturbed=res["targets"],
            quality=q,
        )
    if json_out:
        print_json(
            {
                "baseline": res["baseline"],
                "summary": res["summary"],
                "crossings": cross,
                "run_dir": str(run.path),
            }
        )
        return
    table = Table(
        title=f"{model}: {noise} weight noise ({'relative' if relative else 'absolute'} sigma), {seeds} seeds"
    )
    metrics = sorted({r["metric"] for r in res["summary"]})
    table.add_column("sigma", justify="right")
    for m in metrics:
        table.add_column(f"{m} mean", justify="right")
        table.add_column("min..max", justify="right")
    by = {(r["sigma"], r["metric"]): r for r in res["summary"]}
    for sg in sorted({r["sigma"] for r in res["summary"]}):
        cells = []
        for m in metrics:
            r = by[(sg, m)]
            cells += [f"{r['mean']:.4g}", f"{r['min']:.4g}..{r['max']:.4g}"]
        table.add_row(f"{sg:g}", *cells)
    console.print(table)
    console.print("baseline: " + ", ".join(f"{k} {v:.4g}" for k, v in res["baseline"].items()))
    for c in cross:
        where = "not reached in the sweep" if c["sigma"] is None else f"sigma = {c['sigma']:.4g}"
        console.print(f"{c['threshold']} (level {c['level']:.4g}): {where}")
    for smp in res["samples"]:
        console.print(
            f"[dim]sigma {smp['sigma']:g}:[/dim] {smp['prompt']}[bold]{smp['text']}[/bold]"
        )
    console.print(f"run directory: {run.path}")


# ---------------------------------------------------------------------------- compare
@app.command("compare", context_settings={"allow_extra_args": True})
def compare_cmd(
    ctx: typer.Context,
    model: ModelArg,
    mappings: Annotated[
        list[str],
        typer.Option(
            "--mappings",
            help="Partitions to compare (names or paths); repeat or list after one flag.",
        ),
    ] = ["all_digital", "digital_attention_analog_mlp", "all_analog"],  # noqa: B006
    device: Annotated[
        str | None,
        typer.Option("--device", help="Device card for analog layers (overrides the mappings)."),
    ] = None,
    times: Annotated[str, typer.Option("--times", help="Times since programming.")] = "1s,1h,1d,1y",
    temperature: Annotated[
        str, typer.Option("--temperature", help="Temperatures, e.g. 300K,85C.")
    ] = "300K",
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Programmed chips per setting.")] = 3,
    vary: Annotated[
        str | None,
        typer.Option(
            "--vary",
            help="KEY=V1,V2: a tile setting (adc_bits, tile_rows, ...) or CARD.SECTION_KEY (pcm.drift_scale).",
        ),
    ] = None,
    precision: Annotated[
        str,
        typer.Option(
            "--precision", help="Precision of unquantized digital MACs: fp32, fp16, int8."
        ),
    ] = "fp16",
    weight_memory: Annotated[
        str,
        typer.Option(
            "--weight-memory",
            help="Where digital weights are read from each token: sram, dram, none.",
        ),
    ] = "sram",
    costs: Annotated[
        str | None,
        typer.Option(
            "--costs", help="Per-operation cost file (default devices/costs/default.toml)."
        ),
    ] = None,
    out: OutOpt = None,
    json_out: JsonOpt = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")] = False,
) -> None:
    """Compare chip partitions: quality over time and temperature, energy per token, tiles."""
    from analogsim.mapping.rules import load_mapping
    from analogsim.report.plots import plot_metric_vs_time, plot_quality_vs_energy
    from analogsim.report.rundir import RunDir
    from analogsim.studies.compare import (
        COMPARE_COLUMNS,
        COMPARE_KEYS,
        json_rows,
        parse_vary,
        run_compare,
    )
    from analogsim.studies.evaluate import cards_of

    # `--mappings A B C`: click takes A for the option and leaves B C as extra arguments
    names = [n for item in [*mappings, *ctx.args] for n in item.split(",") if n.strip()]
    from analogsim.errors import ConfigError
    from analogsim.models import builtin_models

    for n in names:
        if n in builtin_models():
            raise ConfigError(
                f"'{n}' is a model, not a mapping: give MODEL before the options",
                key="mappings",
                value=n,
                allowed=f"analogsim compare {n} --mappings A B C",
            )
    maps = [load_mapping(n) for n in names]  # validate every file before any work
    tlist, temps = parse_times(times), parse_temperatures(temperature)
    v = parse_vary(vary) if vary else None
    config = {
        "model": model,
        "mappings": [m.name for m in maps],
        "device": device,
        "times_s": tlist,
        "temperatures_K": temps,
        "seeds": list(range(seeds)),
        "vary": vary,
        "precision": precision,
        "weight_memory": weight_memory,
        "costs": costs,
    }
    cards: dict = {}
    for m in maps:
        cards.update(cards_of(m, device))
    with RunDir(out, "compare", config, COMPARE_COLUMNS, COMPARE_KEYS, cards=cards) as run:
        res = run_compare(
            model,
            maps,
            device=device,
            times=tlist,
            temperatures=temps,
            seeds=seeds,
            vary=v,
            digital_precision=precision,
            weight_memory=weight_memory,
            costs=costs,
            run=run,
            progress=not no_progress,
        )
        metric = res["metric"]
        series = ("mapping", "vary") if v else ("mapping",)
        plot_metric_vs_time(
            res["summary"],
            run.path / f"{metric}_vs_time.png",
            metric=metric,
            series=series,
            baseline=res["digital"],
            title=f"{model}: {metric} per partition",
            log_y=metric == "perplexity",
        )
        plot_quality_vs_energy(
            res["summary"],
            run.path / f"{metric}_vs_energy.png",
            metric=metric,
            baseline=res["digital"],
            title=f"{model}: {metric} against estimated energy per token",
            log_y=metric == "perplexity",
        )
        run.note(
            summary=res["summary"],
            costs=res["costs"],
            digital=res["digital"],
            context_tokens=res["context_tokens"],
            attention_macs_per_token=res["attention_macs_per_token"],
        )
    if json_out:
        print_json(json_rows(res, v))
        return
    table = Table(title=f"{model}: partitions ({metric}, {seeds} seeds)")
    for col in ("mapping", "vary", "time", "T (K)", f"{metric}", "std", "energy/token", "tiles"):
        table.add_column(col, justify="right" if col not in ("mapping", "vary") else "left")
    for r in sorted(
        res["summary"],
        key=lambda r: (r["mapping"], r["vary"], float(r["temperature_K"]), float(r["time_s"])),
    ):
        e = r.get("energy_per_token_J")
        table.add_row(
            r["mapping"],
            r["vary"],
            format_time(float(r["time_s"])),
            f"{float(r['temperature_K']):g}",
            f"{r['mean']:.4g}",
            f"{r['std']:.3g}",
            "" if e is None else f"{e * 1e6:.3g} uJ",
            str(r.get("tiles", "")),
        )
    console.print(table)
    if res["digital"] is not None:
        console.print(f"digital {metric}: {res['digital']:.4g}")
    console.print(f"run directory: {run.path}")


# ---------------------------------------------------------------------------- demo
@app.command("demo")
def demo_cmd(
    out: OutOpt = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Programmed chips per setting.")] = 2,
    quick: Annotated[
        bool, typer.Option("--quick", help="Smaller study: tiny-gpt2 only, three times.")
    ] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")] = False,
) -> None:
    """The offline demo study (what `make demo` runs): partitions of tiny-gpt2 and MiniLM over
    time and temperature with energy per token, and the digits MLP on three devices. Writes a
    run directory with results.csv, manifest.json, plots and report.md (resumable with --out)."""
    from analogsim.studies.demo import run_demo

    kw = {"models": ("tiny-gpt2",), "times": (1.0, 86400.0, 365.25 * 86400.0)} if quick else {}
    path = run_demo(out, seeds=seeds, progress=not no_progress, console=console, **kw)
    console.print(f"run directory: {path}")


@app.command("plot")
def plot_cmd(
    run_dir: Annotated[
        Path, typer.Argument(help="A run directory written by eval, compare, sweep or demo.")
    ],
) -> None:
    """Redraw the plots of a run directory from its results.csv (e.g. after editing the CSV)."""
    from analogsim.errors import ConfigError
    from analogsim.studies.redraw import redraw

    if not (run_dir / "manifest.json").is_file() or not (run_dir / "results.csv").is_file():
        raise ConfigError(
            "not a run directory",
            file=run_dir,
            allowed="a folder with manifest.json and results.csv",
        )
    for path in redraw(run_dir):
        console.print(f"plot: {path}")


@app.command("bench")
def bench_cmd(
    out: OutOpt = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Small sizes and few rounds (a smoke run).")
    ] = False,
) -> None:
    """Speed and memory ratios (analog vs digital, analogsim vs aihwkit), measured in one run."""
    from analogsim.bench.run import run_benchmarks

    path = run_benchmarks(out, quick=quick, console=console)
    console.print(f"run directory: {path}")


from analogsim.cli.clock_cmds import register as _register_clock  # noqa: E402

_register_clock(app)
from analogsim.cli.train_cmds import register as _register_train  # noqa: E402

_register_train(app)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # type: ignore[no-untyped-def]
    """analogsim's own warnings as one line each, each text once per run; others in
    Python's usual form."""
    if Path(filename).resolve().is_relative_to(Path(__file__).resolve().parents[1]):
        key = (category, str(message))
        if key not in _shown:
            _shown.add(key)
            err_console.print(
                f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True
            )
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning
_shown: set[tuple[type, str]] = set()


def main() -> None:
    """Entry point: turn analogsim's own errors into one clear line and exit code 2."""
    warnings.showwarning = _show_warning
    try:
        app()
    except AnalogsimError as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print(
            "interrupted: finished points are in the run directory; run again with the same --out to resume"
        )
        sys.exit(130)


__all__ = ["app", "main"]
