"""``analogsim train`` and ``analogsim robustness``: noise-aware training and its test.

Thin commands over :func:`analogsim.train.train` and
:func:`analogsim.studies.robustness.robustness`. Imports of the API (torch and above) sit
inside the command bodies so that ``analogsim --help`` stays fast: the documented
exception to imports at module top. The option defaults are the defaults of
``TrainConfig``, ``HWAConfig`` and ``LearnedNoiseConfig`` written out (those modules load
torch); ``tests/cli/test_options.py`` checks that they agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from analogsim.cli.options import (
    DEFAULT_TEMPERATURE,
    DEFAULT_TIMES,
    DeviceOpt,
    JsonOpt,
    MappingOpt,
    NoiseOpt,
    NoProgressOpt,
    OutOpt,
    RelativeOpt,
    SeedOpt,
    SeedsOpt,
    TemperaturesOpt,
    TimesOpt,
    console,
    print_json,
    print_values,
)
from analogsim.errors import ConfigError
from analogsim.units import (
    format_time,
    parse_range,
    parse_temperature,
    parse_temperatures,
    parse_time,
    parse_times,
)


def _span(text: str, parse: Callable[..., float], key: str) -> tuple[float, float]:
    """``"A:B"`` or ``"A"`` (a single value) parsed with ``parse``."""
    parts = text.split(":")
    if len(parts) == 1:
        v = parse(parts[0], key=key)
        return v, v
    if len(parts) != 2:
        raise ConfigError("a range is LOW:HIGH", key=key, value=text, allowed="e.g. 1s:1y")
    lo, hi = parse(parts[0], key=key), parse(parts[1], key=key)
    if hi < lo:
        raise ConfigError("range upper end below lower end", key=key, value=text)
    return lo, hi


def _value(v: object) -> str:
    """A training metric: floats to 4 significant digits."""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def train_cmd(
    model: Annotated[
        str,
        typer.Argument(
            help="digits-mlp, tiny-gpt2, a Hugging Face causal LM folder, or a checkpoint."
        ),
    ],
    mapping: MappingOpt = "all_analog",
    device: DeviceOpt = None,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help="plain, hwa (hardware-aware), learned-noise, or distill (LMs: the Analog "
            "Foundation Models recipe, docs/training.md).",
        ),
    ] = "hwa",
    epochs: Annotated[
        int | None,
        typer.Option("--epochs", min=1, help="Epochs (default 20 classifiers, 2 LMs)."),
    ] = None,
    steps: Annotated[
        int | None, typer.Option("--steps", min=1, help="LM training steps (over --epochs).")
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option("--lr", help="Weight learning rate (default 3e-4 classifiers, 1e-4 LMs)."),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Samples (or windows) per step.")
    ] = None,
    block_size: Annotated[
        int, typer.Option("--block-size", min=2, help="LM window length in tokens.")
    ] = 128,
    seed: SeedOpt = 0,
    data: Annotated[
        str | None,
        typer.Option("--data", help="Classifier data: digits, or an image-folder path."),
    ] = None,
    image_size: Annotated[
        int | None, typer.Option("--image-size", min=1, help="Resize image-folder images.")
    ] = None,
    text: Annotated[
        Path | None, typer.Option("--text", help="A UTF-8 text file to fine-tune an LM on.")
    ] = None,
    dropout: Annotated[
        float | None,
        typer.Option(
            "--dropout", help="Dropout probability during training (default: the model's)."
        ),
    ] = None,
    from_scratch: Annotated[
        bool,
        typer.Option("--from-scratch", help="Re-initialise an MLP instead of fine-tuning."),
    ] = False,
    train_times: Annotated[
        str,
        typer.Option("--train-times", help="hwa: deployment times drawn log-uniformly, LOW:HIGH."),
    ] = "1s:1y",
    train_temperature: Annotated[
        str,
        typer.Option(
            "--train-temperature", help="hwa: read temperatures drawn uniformly, LOW:HIGH."
        ),
    ] = "300K:360K",
    engine: Annotated[
        str,
        typer.Option("--engine", help="hwa: surrogate (fast Gaussian) or device (exact)."),
    ] = "surrogate",
    resample_every: Annotated[
        int | None,
        typer.Option("--resample-every", min=1, help="hwa: new device draw every k steps (4)."),
    ] = None,
    clip_sigma: Annotated[
        float | None,
        typer.Option(
            "--clip-sigma",
            help="hwa: clip weights at +-k std after each step; distill: per output "
            "channel (default off).",
        ),
    ] = None,
    train_noise_scale: Annotated[
        float,
        typer.Option(
            "--train-noise-scale", help="hwa: multiply the device perturbation in training."
        ),
    ] = 1.0,
    fresh_noise: Annotated[
        bool,
        typer.Option("--fresh-noise", help="hwa: fresh normals for every sample (slower)."),
    ] = False,
    stuck_at_gmin: Annotated[
        float | None, typer.Option("--stuck-at-gmin", help="hwa: stuck-at-g_min rate.")
    ] = None,
    stuck_at_gmax: Annotated[
        float | None, typer.Option("--stuck-at-gmax", help="hwa: stuck-at-g_max rate.")
    ] = None,
    noise_lr: Annotated[
        float, typer.Option("--noise-lr", help="learned-noise: log-variance learning rate.")
    ] = 1e-4,
    per_channel: Annotated[
        bool, typer.Option("--per-channel", help="learned-noise: one variance per channel.")
    ] = False,
    noise_scale: Annotated[
        str, typer.Option("--noise-scale", help="learned-noise: absolute or relative.")
    ] = "absolute",
    noise_reward: Annotated[
        str,
        typer.Option("--noise-reward", help="learned-noise: none, entropy or target."),
    ] = "none",
    reward_weight: Annotated[
        float, typer.Option("--reward-weight", help="learned-noise: reward weight lambda.")
    ] = 0.1,
    target_sigma: Annotated[
        float, typer.Option("--target-sigma", help="learned-noise: target sigma.")
    ] = 0.05,
    tokens: Annotated[
        int,
        typer.Option("--tokens", min=2, help="distill: synthetic tokens generated by the model."),
    ] = 8192,
    seq_len: Annotated[
        int, typer.Option("--seq-len", min=2, help="distill: tokens per synthetic sequence.")
    ] = 128,
    lora_rank: Annotated[
        int,
        typer.Option("--lora-rank", min=0, help="distill: LoRA rank (0: full fine-tuning)."),
    ] = 0,
    lora_alpha: Annotated[
        float, typer.Option("--lora-alpha", help="distill: LoRA scale alpha (alpha/rank).")
    ] = 16.0,
    kl_temperature: Annotated[
        float, typer.Option("--kl-temperature", help="distill: temperature of the KL loss.")
    ] = 1.0,
    learn_input_range: Annotated[
        bool,
        typer.Option(
            "--learn-input-range/--dynamic-input-range",
            help="distill: learn a static DAC range per layer (else the mapping's).",
        ),
    ] = True,
    range_lr: Annotated[
        float, typer.Option("--range-lr", help="distill: learning rate of the input ranges.")
    ] = 5e-3,
    out: OutOpt = None,
    json_out: JsonOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Train a model for analog deployment: plain, hardware-aware (hwa), learned noise, or
    distillation from the digital model on its own synthetic text (distill, LMs).

    distill on smollm2 (2 CPU cores): see docs/training.md for tokens per minute.

    Writes a run directory with the training log, plots and a safetensors checkpoint
    (checkpoint/) that records the mapping and device cards it was trained for.
    """
    from analogsim.studies.train import train  # lazy: start-up time
    from analogsim.train import HWAConfig, LearnedNoiseConfig, TrainConfig  # lazy: start-up
    from analogsim.train.distill import DistillConfig  # lazy: start-up

    t_lo, t_hi = _span(train_times, parse_time, "--train-times")
    k_lo, k_hi = _span(train_temperature, parse_temperature, "--train-temperature")
    api = HWAConfig()  # the API's defaults of the options given as None
    hwa = HWAConfig(
        t_min_s=t_lo,
        t_max_s=t_hi,
        temperature_min_K=k_lo,
        temperature_max_K=k_hi,
        engine=engine,
        resample_every=resample_every or api.resample_every,
        clip_sigma=api.clip_sigma if clip_sigma is None or method == "distill" else clip_sigma,
        stuck_at_gmin_rate=stuck_at_gmin,
        stuck_at_gmax_rate=stuck_at_gmax,
        noise_scale=train_noise_scale,
        fresh_noise=fresh_noise,
    )
    learned = LearnedNoiseConfig(
        lr=noise_lr,
        per_channel=per_channel,
        scale=noise_scale,
        reward=noise_reward,
        reward_weight=reward_weight,
        target_sigma=target_sigma,
    )
    d_api = DistillConfig()
    distill = DistillConfig(
        tokens=tokens,
        seq_len=seq_len,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        kl_temperature=kl_temperature,
        learn_input_range=learn_input_range,
        range_lr=range_lr,
        clip_sigma=d_api.clip_sigma if clip_sigma is None else clip_sigma,
    )
    cfg = TrainConfig(
        method=method,
        epochs=epochs,
        steps=steps,
        lr=lr,
        batch_size=batch_size,
        block_size=block_size,
        seed=seed,
        from_scratch=from_scratch,
        dropout=dropout,
        hwa=hwa,
        learned=learned,
        distill=distill,
    )
    res = train(
        model,
        mapping,
        device,
        method,
        out=out,
        data=data,
        text=text,
        image_size=image_size,
        config=cfg,
        progress=not no_progress,
    )
    if json_out:
        print_json(
            {
                "method": method,
                "metrics": res.metrics,
                "checkpoint": str(res.checkpoint),
                "run_dir": str(res.run_dir),
            }
        )
        return
    print_values(
        f"{model}: {method} training for {mapping} ({device or 'mapping devices'})",
        res.metrics,
        _value,
        name="metric",
    )
    console.print(f"checkpoint: {res.checkpoint}")
    console.print(f"run directory: {res.run_dir}")


def robustness_cmd(
    checkpoints: Annotated[
        list[Path], typer.Argument(help="Checkpoint folders written by `analogsim train`.")
    ],
    mapping: Annotated[
        str | None,
        typer.Option("--mapping", help="Chip partition (default: the first checkpoint's)."),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option("--device", help="Device card (default: the first checkpoint's)."),
    ] = None,
    times: TimesOpt = DEFAULT_TIMES,
    temperature: TemperaturesOpt = DEFAULT_TEMPERATURE,
    seeds: SeedsOpt = 5,
    sigma: Annotated[
        str | None,
        typer.Option("--sigma", help="Statistical weight-noise sweep: start:stop:count or list."),
    ] = None,
    noise: NoiseOpt = "gaussian",
    relative: RelativeOpt = False,
    reference: Annotated[
        str | None,
        typer.Option("--reference", help="Method whose digital accuracy normalises A*."),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="Language models: the off-the-shelf model (default: the one trained from).",
        ),
    ] = None,
    max_tokens: Annotated[
        int,
        typer.Option("--max-tokens", min=2, help="Language models: held-out perplexity tokens."),
    ] = 1024,
    out: OutOpt = None,
    json_out: JsonOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Compare trained models on the chip: metric against deployment time, temperature
    and statistical weight noise; several seeds, normalised accuracy A*, AUC, plots.

    A language-model checkpoint (one, e.g. from --method distill) is compared with the
    off-the-shelf model on the chip and with a round-to-nearest W4A8 digital baseline:
    held-out perplexity and exact-match accuracy on a small question set through the
    chat template, mean and 95 % interval over seeds.

    Noise is really on at inference (the converted chip in eval mode).
    """
    from analogsim.report.rundir import RunDir  # lazy: start-up time
    from analogsim.studies.robustness import (
        ROB_COLUMNS,
        ROB_KEYS,
        json_rows,
        robustness,
        write_plots,
    )
    from analogsim.train.checkpoint import read_sidecar

    tlist = parse_times(times, key="--times")
    temps = parse_temperatures(temperature, key="--temperature")
    sigmas = parse_range(sigma, key="sigma") if sigma else None
    metas = [read_sidecar(c) for c in checkpoints]  # fail early on a bad folder
    if metas[0].get("kind") == "causal-lm":
        _lm_robustness(
            checkpoints,
            metas[0],
            mapping,
            device,
            tlist,
            temps,
            seeds,
            baseline,
            max_tokens,
            out,
            json_out,
            no_progress,
        )
        return
    config = {
        "checkpoints": [str(c) for c in checkpoints],
        "methods": [m.get("method") for m in metas],
        "mapping": mapping,
        "device": device,
        "times_s": tlist,
        "temperatures_K": temps,
        "seeds": list(range(seeds)),
        "sigmas": sigmas,
        "noise": noise,
        "relative": relative,
        "reference": reference,
    }
    cards = metas[0].get("device_cards") or {}
    with RunDir(out, "robustness", config, ROB_COLUMNS, ROB_KEYS, cards=cards) as run:
        res = robustness(
            [str(c) for c in checkpoints],
            mapping,
            device,
            tlist,
            temps,
            seeds,
            sigmas=sigmas,
            noise=noise,
            relative=relative,
            reference=reference,
            run=run,
            progress=not no_progress,
        )
        write_plots(res, run.path)
        run.note(summary=json_rows(res), reference=res["reference"], mapping=res["mapping"])
    if json_out:
        print_json(json_rows(res))
        return
    _print_table(res)
    console.print(f"run directory: {run.path}")


def _lm_robustness(
    checkpoints: list[Path],
    meta: dict,
    mapping: str | None,
    device: str | None,
    times: list[float],
    temps: list[float],
    seeds: int,
    baseline: str | None,
    max_tokens: int,
    out: Path | None,
    json_out: bool,
    no_progress: bool,
) -> None:
    """``robustness`` for one language-model checkpoint (see :func:`lm_robustness`)."""
    from analogsim.report.rundir import RunDir  # lazy: start-up time
    from analogsim.studies.robustness import LM_COLUMNS, LM_KEYS, lm_robustness

    if len(checkpoints) != 1:
        raise ConfigError(
            "a language-model robustness run takes one checkpoint (it is compared with the "
            "off-the-shelf model and the RTN baseline itself)",
            key="checkpoints",
            value=[str(c) for c in checkpoints],
        )
    config = {
        "checkpoint": str(checkpoints[0]),
        "mapping": mapping,
        "device": device,
        "times_s": times,
        "temperatures_K": temps,
        "seeds": list(range(seeds)),
        "baseline": baseline,
        "max_tokens": max_tokens,
    }
    cards = meta.get("device_cards") or {}
    with RunDir(out, "robustness", config, LM_COLUMNS, LM_KEYS, cards=cards) as run:
        res = lm_robustness(
            checkpoints[0],
            mapping,
            device,
            times,
            temps,
            seeds,
            baseline=baseline,
            max_tokens=max_tokens,
            run=run,
            progress=not no_progress,
        )
        run.note(summary=res["summary"], mapping=res["mapping"], baseline=res["baseline"])
    if json_out:
        print_json({k: v for k, v in res.items() if k != "rows"})
        return
    _print_lm_tables(res)
    console.print(f"run directory: {run.path}")


def _print_lm_tables(res: dict) -> None:
    """Per metric: the chip at each (age, temperature) with 95 % intervals over seeds, then
    the digital references (float and RTN)."""
    summ = res["summary"]
    chip = [r for r in summ if r["axis"] == "chip"]
    points = sorted({(r["temperature_K"], r["time_s"]) for r in chip})
    where = f"{res['mapping']} ({res['device'] or 'mapping devices'})"
    for metric in ("perplexity", "accuracy", "contains"):
        title = {
            "perplexity": "held-out perplexity",
            "accuracy": "question accuracy (exact match)",
            "contains": "question accuracy (answer among the words)",
        }[metric]
        table = Table(title=f"{title} on {where}: mean ± 95 % CI over seeds")
        table.add_column("model", overflow="fold")
        for temp, t in points:
            table.add_column(f"{format_time(t)} @ {temp - 273.15:.0f} C", justify="right")
        digital_axes = sorted({r["axis"] for r in summ if r["axis"] != "chip"})
        for axis in digital_axes:
            table.add_column(axis, justify="right")
        for model in sorted({r["model"] for r in summ}, reverse=True):
            cells = []
            for temp, t in points:
                r = next(
                    (
                        r
                        for r in chip
                        if r["model"] == model
                        and r["metric"] == metric
                        and (r["temperature_K"], r["time_s"]) == (temp, t)
                    ),
                    None,
                )
                cells.append("" if r is None else _ci(r, metric))
            for axis in digital_axes:
                r = next(
                    (
                        r
                        for r in summ
                        if r["model"] == model and r["axis"] == axis and r["metric"] == metric
                    ),
                    None,
                )
                cells.append("" if r is None else _ci(r, metric))
            table.add_row(model, *cells)
        console.print(table)


def _ci(r: dict, metric: str) -> str:
    """``mean ± half width`` (no interval for a single value)."""
    pct = metric != "perplexity"
    m = f"{r['mean']:.0%}" if pct else _fmt(r["mean"])
    if r["n"] < 2 or not math.isfinite(r["ci95"]):
        return m
    return f"{m} ± {r['ci95']:.0%}" if pct else f"{m} ± {_fmt(r['ci95'], 2)}"


def _fmt(v: float, digits: int = 4) -> str:
    """``v`` to ``digits`` significant digits, infinity as "inf"."""
    return "inf" if math.isinf(v) else f"{v:.{digits}g}"


def _print_table(res: dict) -> None:
    """The robustness tables: per temperature, metric / A* / paired difference against time;
    then the metric under statistical weight noise."""
    metric = res["metric"]
    summ = res["summary"]
    time_rows = [r for r in summ if r["time_s"] is not None and "sigma" not in r]
    temps = sorted({r["temperature_K"] for r in time_rows})
    times = sorted({r["time_s"] for r in time_rows})
    where = f"{res['mapping']} ({res['device'] or 'mapping devices'})"
    for temp in temps:
        diff = next((r["metric"] for r in time_rows if r["metric"].startswith("diff_")), None)
        for what in (metric, "a_star", diff):
            if what is None:
                continue
            sel = [r for r in time_rows if r["temperature_K"] == temp and r["metric"] == what]
            if not sel:
                continue
            label = {"a_star": "A* (normalised accuracy)"}.get(what, what)
            if what == diff:
                label = f"{what} (paired per chip seed)"
            spread = "mean±SE" if what == diff else "mean±std over seeds"
            table = Table(title=f"{label} on {where} at {temp:g} K: {spread}")
            table.add_column("method", overflow="fold")
            if what == metric:
                table.add_column("digital", justify="right")
            for t in times:
                table.add_column(format_time(t), justify="right", overflow="fold")
            if what == metric:
                table.add_column("AUC", justify="right")
            for meth in res["labels"]:
                by = {r["time_s"]: r for r in sel if r["method"] == meth}
                if what == diff:
                    if not by:
                        continue
                    cells = [
                        ""
                        if t not in by
                        else f"{by[t]['mean']:+.2g}±{by[t]['std'] / math.sqrt(by[t]['n']):.2g}"
                        for t in times
                    ]
                    table.add_row(meth, *cells)
                    continue
                if what == "a_star":
                    cells = [
                        "" if t not in by else f"{by[t]['mean']:.1%}±{by[t]['std']:.1%}"
                        for t in times
                    ]
                    table.add_row(meth, *cells)
                    continue
                auc = next(
                    (
                        r
                        for r in summ
                        if r["method"] == meth
                        and r["metric"] == f"auc_{metric}"
                        and r["temperature_K"] == temp
                    ),
                    None,
                )
                cells = [
                    "" if t not in by else f"{_fmt(by[t]['mean'])}±{_fmt(by[t]['std'], 2)}"
                    for t in times
                ]
                table.add_row(
                    meth,
                    _fmt(res["digital"].get(meth, float("nan"))),
                    *cells,
                    "" if auc is None else _fmt(auc["mean"]),
                )
            console.print(table)
    sig_rows = [r for r in summ if r.get("sigma") is not None]
    if sig_rows:
        sigmas = sorted({r["sigma"] for r in sig_rows})
        table = Table(title=f"{metric} under statistical weight noise: mean±std over seeds")
        table.add_column("method", overflow="fold")
        for sg in sigmas:
            table.add_column(f"sigma {sg:g}", justify="right", overflow="fold")
        for meth in res["labels"]:
            by = {r["sigma"]: r for r in sig_rows if r["method"] == meth}
            table.add_row(
                meth,
                *[
                    "" if sg not in by else f"{_fmt(by[sg]['mean'])}±{_fmt(by[sg]['std'], 2)}"
                    for sg in sigmas
                ],
            )
        console.print(table)
    if res["reference"] and any(r["metric"] == "a_star" for r in summ):
        console.print(
            f"A* = accuracy / digital accuracy of '{res['reference']}'; AUC = mean over log10(time)"
        )
