"""``analogsim eval``, ``sweep``, ``compare``, ``demo`` and ``plot``: the studies that write a
run directory (results.csv, manifest.json, plots), and redrawing their plots.

Imports of the API (torch and above) sit inside the command bodies so that
``analogsim --help`` stays fast: the documented exception to imports at module top.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from analogsim.cli.options import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    DEFAULT_TIMES,
    DeviceOpt,
    JsonOpt,
    MappingOpt,
    MaxTokensOpt,
    ModelArg,
    NoiseOpt,
    NoProgressOpt,
    RelativeOpt,
    ResumableOutOpt,
    SeedsOpt,
    TemperaturesOpt,
    TextOpt,
    TimesOpt,
    console,
    parse_floats,
    parse_roles,
    print_json,
)
from analogsim.errors import ConfigError
from analogsim.units import format_time, parse_range, parse_temperatures, parse_times


def eval_cmd(
    model: ModelArg,
    mapping: MappingOpt = "all_analog",
    device: DeviceOpt = None,
    times: TimesOpt = DEFAULT_TIMES,
    temperature: TemperaturesOpt = DEFAULT_TEMPERATURE,
    seeds: SeedsOpt = 3,
    text: TextOpt = None,
    max_tokens: MaxTokensOpt = DEFAULT_MAX_TOKENS,
    out: ResumableOutOpt = None,
    json_out: JsonOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Quality of a model on a simulated chip over deployment time and temperature.

    A language model is scored by perplexity on the first 4,096 tokens (--max-tokens) of
    the held-out part of Python's help text (pydoc_data.topics), or of --text FILE.
    Prints mean and std over seeds and one line per point as it ends (stderr); writes
    results.csv, manifest.json and a plot.
    """
    from analogsim.mapping.rules import cards_of, load_mapping  # lazy: start-up time
    from analogsim.models import load_model
    from analogsim.report.plots import plot_metric_vs_time
    from analogsim.report.rundir import RunDir
    from analogsim.studies.evaluate import EVAL_COLUMNS, EVAL_KEYS, evaluate, summarize

    tlist = parse_times(times, key="--times")
    temps = parse_temperatures(temperature, key="--temperature")
    m = load_mapping(mapping)
    _check_text(text)  # a bad file: no model loaded, no run directory
    loaded = load_model(model, progress=not no_progress)  # a bad name: no run directory
    _check_text(text, loaded, max_tokens)
    config = {
        "model": model,
        "mapping": m.name,
        "mapping_path": str(m.path or ""),
        "device": device,
        "times_s": tlist,
        "temperatures_K": temps,
        "seeds": list(range(seeds)),
        "text": str(text) if text else None,
        "max_tokens": max_tokens,
    }
    with RunDir(out, "eval", config, EVAL_COLUMNS, EVAL_KEYS, cards=cards_of(m, device)) as run:
        evaluate(
            loaded,
            m,
            device,
            tlist,
            temps,
            seeds,
            run=run,
            progress=not no_progress,
            text=text,
            max_tokens=max_tokens,
        )
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


def sweep_cmd(
    model: ModelArg,
    noise: NoiseOpt = "gaussian",
    sigma: Annotated[
        str, typer.Option("--sigma", help="Levels: start:stop:count or a comma list.")
    ] = "0:0.05:6",
    relative: RelativeOpt = False,
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
    text: TextOpt = None,
    max_tokens: MaxTokensOpt = DEFAULT_MAX_TOKENS,
    out: ResumableOutOpt = None,
    json_out: JsonOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Statistical weight-noise sweep: quality against sigma, seeded, weights restored between levels.

    Reports mean and spread over seeds and the sigma where the metric first crosses each
    threshold, interpolated between grid points (log scale for perplexity). A language
    model is scored on the first 4,096 tokens (--max-tokens) of the held-out part of
    Python's help text (pydoc_data.topics), or of --text FILE. The unperturbed model is
    scored once (sigma 0 reuses it); one line per point is printed as it ends (stderr).
    """
    from analogsim.models import load_model  # lazy: start-up time
    from analogsim.report.plots import plot_sweep
    from analogsim.report.rundir import RunDir
    from analogsim.studies.sweep import SWEEP_COLUMNS, SWEEP_KEYS, run_sweep, thresholds

    sigmas = parse_range(sigma, key="sigma")
    role_list = parse_roles(roles)
    levels = parse_floats(threshold, key="threshold")
    mults = parse_floats(multiple, key="multiple")
    _check_text(text)  # a bad file: no model loaded, no run directory
    loaded = load_model(model, progress=not no_progress)  # a bad name: no run directory
    _check_text(text, loaded, max_tokens)
    config = {
        "model": model,
        "noise": noise,
        "sigmas": sigmas,
        "relative": relative,
        "roles": role_list,
        "include_embeddings": include_embeddings,
        "include_bias": not no_bias,
        "seeds": list(range(seeds)),
        "text": str(text) if text else None,
        "max_tokens": max_tokens,
    }
    with RunDir(out, "sweep", config, SWEEP_COLUMNS, SWEEP_KEYS) as run:
        res = run_sweep(
            loaded,
            noise,
            sigmas,
            relative=relative,
            roles=role_list,
            include_embeddings=include_embeddings,
            include_bias=not no_bias,
            seeds=seeds,
            text=text,
            max_tokens=max_tokens,
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
    device: DeviceOpt = None,
    times: TimesOpt = DEFAULT_TIMES,
    temperature: TemperaturesOpt = DEFAULT_TEMPERATURE,
    seeds: SeedsOpt = 3,
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
    text: TextOpt = None,
    max_tokens: MaxTokensOpt = DEFAULT_MAX_TOKENS,
    out: ResumableOutOpt = None,
    json_out: JsonOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Compare chip partitions: quality over time and temperature, energy per token, tiles.

    A language model is scored on the first 4,096 tokens (--max-tokens) of the held-out
    part of Python's help text (pydoc_data.topics), or of --text FILE. The digital model
    and a partition without analog layers are scored once; one line per point is printed
    as it ends (stderr).
    """
    from analogsim.mapping.rules import cards_of, load_mapping  # lazy: start-up time
    from analogsim.models import builtin_models, load_model
    from analogsim.report.plots import plot_metric_vs_time, plot_quality_vs_energy
    from analogsim.report.rundir import RunDir
    from analogsim.studies.compare import (
        COMPARE_COLUMNS,
        COMPARE_KEYS,
        json_rows,
        parse_vary,
        run_compare,
    )

    # `--mappings A B C`: click takes A for the option and leaves B C as extra arguments
    names = [n for item in [*mappings, *ctx.args] for n in item.split(",") if n.strip()]
    for n in names:
        if n in builtin_models():
            raise ConfigError(
                f"'{n}' is a model, not a mapping: give MODEL before the options",
                key="mappings",
                value=n,
                allowed=f"analogsim compare {n} --mappings A B C",
            )
    maps = [load_mapping(n) for n in names]  # validate every file before any work
    tlist = parse_times(times, key="--times")
    temps = parse_temperatures(temperature, key="--temperature")
    v = parse_vary(vary) if vary else None
    _check_text(text)  # a bad file: no model loaded, no run directory
    loaded = load_model(model, progress=not no_progress)  # a bad name: no run directory
    _check_text(text, loaded, max_tokens)
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
        "text": str(text) if text else None,
        "max_tokens": max_tokens,
    }
    cards: dict = {}
    for m in maps:
        cards.update(cards_of(m, device))
    with RunDir(out, "compare", config, COMPARE_COLUMNS, COMPARE_KEYS, cards=cards) as run:
        res = run_compare(
            loaded,
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
            text=text,
            max_tokens=max_tokens,
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
    # the vary column only when --vary is given (it is empty otherwise)
    labels = ("mapping", "vary") if v else ("mapping",)
    for col in (*labels, "time", "T (K)", f"{metric}", "std", "energy/token", "tiles"):
        table.add_column(col, justify="left" if col in labels else "right", no_wrap=True)
    for r in sorted(
        res["summary"],
        key=lambda r: (r["mapping"], r["vary"], float(r["temperature_K"]), float(r["time_s"])),
    ):
        e = r.get("energy_per_token_J")
        table.add_row(
            *(r[k] for k in labels),
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


def _check_text(text: Path | None, loaded: Any = None, max_tokens: int = 2) -> None:
    """Refuse a missing, empty or binary --text file before any work (the model not yet
    loaded); with the ``loaded`` model, a text it cannot be scored on (not a language
    model, no tokenizer, under 2 tokens) before the run directory is made."""
    if text is None:
        return
    from analogsim.models.quality import evaluation_text, quality_metric  # lazy: start-up

    if loaded is None:
        evaluation_text(text, key="--text")
    else:
        quality_metric(loaded, max_tokens=max_tokens, text=text)


def demo_cmd(
    out: ResumableOutOpt = None,
    question: Annotated[
        list[str] | None,
        typer.Option(
            "--question",
            help="A question to ask instead of the built-in three (repeat for several).",
        ),
    ] = None,
    tokens: Annotated[
        int, typer.Option("--tokens", min=1, help="New tokens per answer at most (greedy).")
    ] = 16,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Every partition at 1h, 1d and 1y at 27 C and 85 C (about twice the time).",
        ),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the programmed chips.")] = 0,
    no_progress: NoProgressOpt = False,
) -> None:
    """The offline demo study (what `make demo` runs): SmolLM2-135M-Instruct (4-bit Q4_1
    weights, dequantised) answers questions on the all-digital chip and on PCM chips with
    digital attention + analog MLP and all analog, 1 hour to 1 year after programming at
    27 C and 85 C; perplexity and energy per token per chip. Prints the answers as they
    come; writes report.md (answers side by side), results.csv, manifest.json and plots
    (resumable with --out)."""
    from analogsim.studies.demo import QUESTIONS, run_demo  # lazy: start-up time

    path = run_demo(
        out,
        questions=tuple(question) if question else QUESTIONS,
        tokens=tokens,
        full=full,
        seed=seed,
        progress=not no_progress,
        console=console,
    )
    console.print(f"report: {path / 'report.md'}")
    console.print(f"run directory: {path}")


def plot_cmd(
    run_dir: Annotated[
        Path, typer.Argument(help="A run directory written by eval, compare, sweep or demo.")
    ],
) -> None:
    """Redraw the plots of a run directory from its results.csv (e.g. after editing the CSV)."""
    from analogsim.studies.redraw import redraw  # lazy: start-up time

    if not (run_dir / "manifest.json").is_file() or not (run_dir / "results.csv").is_file():
        raise ConfigError(
            "not a run directory",
            file=run_dir,
            allowed="a folder with manifest.json and results.csv",
        )
    for path in redraw(run_dir):
        console.print(f"plot: {path}")
