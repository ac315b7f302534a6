"""Robustness of trained models on the simulated chip: noise really on at inference.

The public learnable-noise study's robustness curve was flat because its evaluation ran
in eval mode, where its noise was switched off. Here every point is measured on a
converted, programmed chip (:func:`analogsim.studies.evaluate.evaluate`: programming noise, drift,
read noise, temperature, the tile's IO - all active in eval mode, as deployed), and on the
digital model under seeded statistical weight noise (:func:`analogsim.studies.sweep.run_sweep`),
over several seeds with mean and spread.

Summaries
---------
* **Normalised accuracy** (classifiers) ``A*(t, T) = A(t, T) / A_FP``, per seed, then mean
  and std over seeds. ``A_FP`` is the floating-point (digital) accuracy of the reference
  model: the ``plain`` checkpoint when one is compared (so every method is measured
  against the same baseline), else each model's own digital accuracy (``reference``
  chooses). This follows Rasch et al., Nat. Commun. 14, 5282 (2023), who report accuracy
  normalised to the FP reference and call >= 99 % "iso-accuracy"; we could not consult
  the paper's exact formula here, so ``A = A_AIMC / A_FP`` is our reading, unconfirmed
  (a chance-corrected variant would be ``(A - A_chance)/(A_FP - A_chance)``).
* **Paired difference** to the reference, per seed: chips with the same seed share every
  device draw, so ``diff_<metric>_vs_<ref>`` (mean and std over seeds; standard error
  std/sqrt(n)) resolves differences far below the chip-to-chip spread.
* **Area under the curve**: the mean of the metric over ``log10(time)`` by the
  trapezoidal rule, ``AUC = 1/(log t_n - log t_1) integral m(t) dlog t`` (in the metric's
  units; for sigma sweeps the mean over ``sigma`` likewise). Higher is better for
  accuracy, lower for perplexity.

Rows (``results.csv``): ``method, checkpoint, axis, seed, time_s, temperature_K, sigma,
metric, value`` with ``axis`` = ``digital`` | ``time`` | ``sigma``. JSON summary rows have
``method, time_s, temperature_K, metric, mean, std`` (plus ``n``, and ``sigma`` on sigma
rows; ``a_star`` and ``auc_*`` are metrics of their own).
"""

from __future__ import annotations

import copy
import math
import statistics
import sys
import tomllib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from analogsim.devices.quant import Quantizer
from analogsim.errors import ConfigError
from analogsim.mapping.convert import convert
from analogsim.mapping.rules import load_mapping, mapping_from_dict, mapping_paths, resolve_plan
from analogsim.metrics.language import generate_samples
from analogsim.models import load_model
from analogsim.models.base import LoadedModel, prompt_ids
from analogsim.models.quality import quality_metric
from analogsim.progress import progress_bar
from analogsim.report.train_plots import plot_robustness_sigma, plot_robustness_time
from analogsim.studies.evaluate import evaluate
from analogsim.studies.sweep import run_sweep
from analogsim.tiles.kinds import forward_with, module_kind, set_submodule, weight_matrix
from analogsim.train.checkpoint import load_checkpoint
from analogsim.train.distill import apply_input_ranges
from analogsim.units import format_time

YEAR_S = 365.25 * 86400.0
ROB_COLUMNS = [
    "method",
    "checkpoint",
    "axis",
    "seed",
    "time_s",
    "temperature_K",
    "sigma",
    "metric",
    "value",
]
ROB_KEYS = ["method", "checkpoint", "axis", "seed", "time_s", "temperature_K", "sigma", "metric"]


def normalized_accuracy(accuracy: float, fp_accuracy: float, chance: float = 0.0) -> float:
    """``A* = (A - chance) / (A_FP - chance)``; with ``chance = 0`` (default) ``A / A_FP``."""
    if fp_accuracy - chance <= 0:
        return float("nan")
    return (accuracy - chance) / (fp_accuracy - chance)


def auc_log_time(times: Sequence[float], values: Sequence[float]) -> float:
    """Mean of ``values`` over ``log10(times)`` (trapezoid), times > 0 only.

    One point gives its value; ``inf`` values give ``inf``.
    """
    pts = sorted((t, v) for t, v in zip(times, values, strict=True) if t > 0)
    if not pts:
        return float("nan")
    if len(pts) == 1:
        return float(pts[0][1])
    xs = [math.log10(t) for t, _ in pts]
    return _mean_trapezoid(xs, [v for _, v in pts])


def auc_linear(xs: Sequence[float], values: Sequence[float]) -> float:
    """Mean of ``values`` over ``xs`` (trapezoid)."""
    pts = sorted(zip(xs, values, strict=True))
    if len(pts) == 1:
        return float(pts[0][1])
    return _mean_trapezoid([x for x, _ in pts], [v for _, v in pts])


def _mean_trapezoid(xs: list[float], ys: list[float]) -> float:
    if any(math.isinf(y) for y in ys):
        return float("inf")
    span = xs[-1] - xs[0]
    if span <= 0:
        return statistics.fmean(ys)
    area = sum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2 for i in range(len(xs) - 1))
    return area / span


def mapping_from_sidecar(meta: dict[str, Any]) -> Any:
    """The mapping a checkpoint was trained for: the shipped one of that name if its text
    is the recorded one, else the recorded file if it still exists, else the recorded text."""
    rec = meta.get("mapping") or {}
    name, path, text = rec.get("name"), rec.get("path"), rec.get("toml")
    shipped = mapping_paths()
    if name in shipped and (text is None or shipped[name].read_text() == text):
        return name
    if path and Path(path).is_file() and (text is None or Path(path).read_text() == text):
        return path
    if text:
        return mapping_from_dict(tomllib.loads(text), file=f"{name} (recorded in checkpoint)")
    if rec.get("raw"):
        return mapping_from_dict(rec["raw"], file=f"{name} (recorded in checkpoint)")
    raise ConfigError("give a mapping (the checkpoint records none)", key="mapping")


def _label(meta: dict[str, Any], path: Path, used: set[str]) -> str:
    """The method, with the noise reward for learned noise (``learned-noise/entropy``);
    ``#2``, ``#3`` ... for repeats."""
    base = str(meta.get("method") or path.name)
    reward = ((meta.get("train") or {}).get("learned") or {}).get("reward")
    if base == "learned-noise" and reward not in (None, "none"):
        base = f"{base}/{reward}"
    label = base
    i = 2
    while label in used:
        label = f"{base}#{i}"
        i += 1
    used.add(label)
    return label


def _mean_std(vals: list[float]) -> tuple[float, float]:
    finite = [v for v in vals if math.isfinite(v)]
    if len(finite) != len(vals):
        return (float("inf") if any(math.isinf(v) for v in vals) else float("nan")), float("nan")
    mean = statistics.fmean(vals)
    std = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return mean, std


def robustness(
    checkpoints: Sequence[str | Path | LoadedModel],
    mapping: Any = None,
    device: str | None = None,
    times: Sequence[float] = (1.0, 3600.0, 86400.0, YEAR_S),
    temperatures: Sequence[float] = (300.0,),
    seeds: int | Sequence[int] = 5,
    *,
    sigmas: Sequence[float] | None = None,
    noise: str = "gaussian",
    relative: bool = False,
    reference: str | None = None,
    labels: Sequence[str] | None = None,
    run: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Compare trained models on the chip over time and temperature (and weight noise).

    Args:
        checkpoints: checkpoint folders (or loaded models, with ``labels``).
        mapping, device: the deployment; default: the first checkpoint's recorded mapping
            and device.
        times, temperatures: deployment times (s) and temperatures (K; held since
            programming).
        seeds: programmed chips per point (``int``: seeds 0..n-1).
        sigmas: statistical weight-noise levels for a sweep (``None``: no sweep).
        noise, relative: the sweep's distribution and whether sigma is relative to each
            layer's weight std.
        reference: the method label whose digital accuracy normalises A* (default
            ``plain`` when present, else each model's own).
        run: a :class:`~analogsim.report.rundir.RunDir` with :data:`ROB_COLUMNS`; points
            already in it are skipped (resume).
    Returns:
        ``{"rows", "summary", "digital", "metric", "higher_is_better", "reference",
        "labels"}`` with ``summary`` the JSON rows described in the module docstring.
    """
    if not checkpoints:
        raise ConfigError("no checkpoints to compare", key="checkpoints")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ConfigError("need at least one seed", key="seeds", value=seeds)
    models: list[tuple[str, str, LoadedModel]] = []
    used: set[str] = set()
    for i, ck in enumerate(checkpoints):
        if isinstance(ck, LoadedModel):
            label = labels[i] if labels else _label({"method": ck.name}, Path(ck.name), used)
            used.add(label)
            models.append((label, ck.name, ck))
            continue
        loaded = load_checkpoint(ck)
        meta = loaded.info["sidecar"]
        label = labels[i] if labels else _label(meta, Path(ck), used)
        models.append((label, str(ck), loaded))
    kinds = {m.kind for _, _, m in models}
    if len(kinds) != 1:
        raise ConfigError("checkpoints of different kinds cannot be compared", value=sorted(kinds))
    first_meta = models[0][2].info.get("sidecar", {})
    if mapping is None:
        mapping = mapping_from_sidecar(first_meta)
    if device is None:
        device = first_meta.get("device")
    quality = quality_metric(models[0][2])
    rows: list[dict[str, Any]] = list(run.rows) if run is not None else []

    def emit(new: list[dict[str, Any]]) -> None:
        if run is not None:
            run.write(new)
            rows[:] = list(run.rows)
        else:
            rows.extend(new)

    def done(**point: Any) -> bool:
        return run is not None and run.done(**point)

    for label, ck, loaded in models:
        todo = [
            s
            for s in seed_list
            if not all(
                done(
                    method=label,
                    checkpoint=ck,
                    axis="time",
                    seed=s,
                    time_s=t,
                    temperature_K=temp,
                    sigma="",
                    metric=quality.name,
                )
                for t in times
                for temp in temperatures
            )
        ]
        digital_done = done(
            method=label,
            checkpoint=ck,
            axis="digital",
            seed=-1,
            time_s=0.0,
            temperature_K="",
            sigma="",
            metric=quality.name,
        )
        if todo or not digital_done:
            got = evaluate(
                loaded,
                mapping,
                device,
                list(times),
                list(temperatures),
                todo,
                progress=progress,
                label=label,
            )
            new = []
            for r in got:
                digital = r["mapping"] == "digital"
                if digital and digital_done:
                    continue
                new.append(
                    {
                        "method": label,
                        "checkpoint": ck,
                        "axis": "digital" if digital else "time",
                        "seed": r["seed"],
                        "time_s": r["time_s"],
                        "temperature_K": "" if digital else r["temperature_K"],
                        "sigma": "",
                        "metric": r["metric"],
                        "value": r["value"],
                    }
                )
            emit(new)
        if sigmas:
            todo_s = [
                s
                for s in seed_list
                if not all(
                    done(
                        method=label,
                        checkpoint=ck,
                        axis="sigma",
                        seed=s,
                        time_s="",
                        temperature_K="",
                        sigma=sg,
                        metric=quality.name,
                    )
                    for sg in sigmas
                )
            ]
            if todo_s:
                res = run_sweep(
                    loaded, noise, list(sigmas), relative=relative, seeds=todo_s, progress=progress
                )
                emit(
                    [
                        {
                            "method": label,
                            "checkpoint": ck,
                            "axis": "sigma",
                            "seed": r["seed"],
                            "time_s": "",
                            "temperature_K": "",
                            "sigma": r["sigma"],
                            "metric": r["metric"],
                            "value": r["value"],
                        }
                        for r in res["rows"]
                        if r["metric"] == quality.name
                    ]
                )
    out = summarize_robustness(
        rows,
        metric=quality.name,
        higher_is_better=quality.higher_is_better,
        reference=reference,
        classifier=models[0][2].kind == "classifier",
    )
    out["labels"] = [label for label, _, _ in models]
    out["mapping"] = load_mapping(mapping).name
    out["device"] = device
    out["rows"] = rows
    return out


def summarize_robustness(
    rows: Sequence[dict[str, Any]],
    *,
    metric: str,
    higher_is_better: bool,
    reference: str | None = None,
    classifier: bool = True,
) -> dict[str, Any]:
    """Mean/std over seeds, A* (classifiers) and AUC from tidy robustness rows."""

    def f(x: Any) -> float:
        return float(x)

    digital: dict[str, float] = {}
    for r in rows:
        if r["axis"] == "digital" and r["metric"] == metric:
            digital[r["method"]] = f(r["value"])
    ref_label = reference
    if ref_label is None and "plain" in digital:
        ref_label = "plain"
    if not classifier and reference is None:
        ref_label = "plain" if "plain" in digital else None
    if ref_label is not None and ref_label not in digital:
        raise ConfigError(
            "reference method not among the compared models",
            key="reference",
            value=ref_label,
            allowed=", ".join(sorted(digital)),
        )

    groups: dict[tuple, list[float]] = defaultdict(list)
    astar: dict[tuple, list[float]] = defaultdict(list)
    sig: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        if r["metric"] != metric:
            continue
        if r["axis"] == "time":
            key = (r["method"], f(r["time_s"]), f(r["temperature_K"]))
            groups[key].append(f(r["value"]))
            if classifier:
                fp = digital.get(ref_label or r["method"])
                if fp is not None:
                    astar[key].append(normalized_accuracy(f(r["value"]), fp))
        elif r["axis"] == "sigma":
            sig[(r["method"], f(r["sigma"]))].append(f(r["value"]))

    summary: list[dict[str, Any]] = []
    for (meth, t, temp), vals in sorted(groups.items()):
        mean, std = _mean_std(vals)
        summary.append(
            {
                "method": meth,
                "time_s": t,
                "temperature_K": temp,
                "metric": metric,
                "mean": mean,
                "std": std,
                "n": len(vals),
            }
        )
    for (meth, t, temp), vals in sorted(astar.items()):
        mean, std = _mean_std(vals)
        summary.append(
            {
                "method": meth,
                "time_s": t,
                "temperature_K": temp,
                "metric": "a_star",
                "mean": mean,
                "std": std,
                "n": len(vals),
            }
        )
    # paired differences to the reference: chips of the same seed share every device draw
    # (programming, drift, read noise), so the difference per seed removes most chip-to-chip
    # spread; std/sqrt(n) is the standard error of the mean difference
    if ref_label is not None:
        by_seed: dict[tuple, float] = {}
        for r in rows:
            if r["axis"] == "time" and r["metric"] == metric:
                key = (r["method"], f(r["time_s"]), f(r["temperature_K"]), int(f(r["seed"])))
                by_seed[key] = f(r["value"])
        diffs: dict[tuple, list[float]] = defaultdict(list)
        for (meth, t, temp, seed), v in by_seed.items():
            ref_v = by_seed.get((ref_label, t, temp, seed))
            if meth != ref_label and ref_v is not None:
                diffs[(meth, t, temp)].append(v - ref_v)
        for (meth, t, temp), vals in sorted(diffs.items()):
            mean, std = _mean_std(vals)
            summary.append(
                {
                    "method": meth,
                    "time_s": t,
                    "temperature_K": temp,
                    "metric": f"diff_{metric}_vs_{ref_label}",
                    "mean": mean,
                    "std": std,
                    "n": len(vals),
                }
            )
    # AUC over log time per (method, temperature), on the per-seed curves
    per_seed: dict[tuple, dict[int, list[tuple[float, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for r in rows:
        if r["axis"] == "time" and r["metric"] == metric:
            per_seed[(r["method"], f(r["temperature_K"]))][int(f(r["seed"]))].append(
                (f(r["time_s"]), f(r["value"]))
            )
    for (meth, temp), by_seed in sorted(per_seed.items()):
        aucs = [auc_log_time([t for t, _ in pts], [v for _, v in pts]) for pts in by_seed.values()]
        mean, std = _mean_std(aucs)
        summary.append(
            {
                "method": meth,
                "time_s": None,
                "temperature_K": temp,
                "metric": f"auc_{metric}",
                "mean": mean,
                "std": std,
                "n": len(aucs),
            }
        )
    for (meth, sg), vals in sorted(sig.items()):
        mean, std = _mean_std(vals)
        summary.append(
            {
                "method": meth,
                "time_s": None,
                "temperature_K": None,
                "sigma": sg,
                "metric": metric,
                "mean": mean,
                "std": std,
                "n": len(vals),
            }
        )
    sig_seed: dict[str, dict[int, list[tuple[float, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for r in rows:
        if r["axis"] == "sigma" and r["metric"] == metric:
            sig_seed[r["method"]][int(f(r["seed"]))].append((f(r["sigma"]), f(r["value"])))
    for meth, by_seed in sorted(sig_seed.items()):
        aucs = [auc_linear([s for s, _ in pts], [v for _, v in pts]) for pts in by_seed.values()]
        mean, std = _mean_std(aucs)
        summary.append(
            {
                "method": meth,
                "time_s": None,
                "temperature_K": None,
                "sigma": None,
                "metric": f"auc_sigma_{metric}",
                "mean": mean,
                "std": std,
                "n": len(aucs),
            }
        )
    return {
        "summary": summary,
        "digital": digital,
        "reference": ref_label,
        "metric": metric,
        "higher_is_better": higher_is_better,
    }


def json_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary as JSON rows (every row has ``method, time_s, temperature_K, metric,
    mean, std``), digital scores included as ``time_s = 0`` rows of ``digital_<metric>``."""
    out = []
    for meth, v in sorted(result["digital"].items()):
        out.append(
            {
                "method": meth,
                "time_s": 0.0,
                "temperature_K": None,
                "metric": f"digital_{result['metric']}",
                "mean": v,
                "std": 0.0,
                "n": 1,
            }
        )
    for r in result["summary"]:
        row = {k: r.get(k) for k in ("method", "time_s", "temperature_K", "metric", "mean", "std")}
        row["n"] = r.get("n")
        if "sigma" in r:
            row["sigma"] = r["sigma"]
        out.append(row)
    return out


def write_plots(result: dict[str, Any], folder: str | Path, title: str = "") -> list[Path]:
    """Metric and A* against time, metric against sigma, into ``folder``."""
    folder = Path(folder)
    metric = result["metric"]
    log_y = metric == "perplexity"
    paths = []
    time_rows = [r for r in result["summary"] if r["time_s"] is not None and "sigma" not in r]
    if time_rows:
        paths.append(
            plot_robustness_time(
                time_rows,
                folder / f"{metric}_vs_time.png",
                metric=metric,
                digital=result["digital"],
                title=title or f"{metric} on the chip over deployment time",
                log_y=log_y,
            )
        )
        if any(r["metric"] == "a_star" for r in time_rows):
            paths.append(
                plot_robustness_time(
                    time_rows,
                    folder / "a_star_vs_time.png",
                    metric="a_star",
                    title=f"normalised accuracy A* (reference: {result['reference'] or 'own'})",
                )
            )
    sig_rows = [r for r in result["summary"] if r.get("sigma") is not None]
    if sig_rows:
        paths.append(
            plot_robustness_sigma(
                sig_rows,
                folder / f"{metric}_vs_sigma.png",
                metric=metric,
                title=f"{metric} under statistical weight noise",
                log_y=log_y,
            )
        )
    return paths


__all__ = [
    "LM_COLUMNS",
    "LM_KEYS",
    "QUESTIONS",
    "ROB_COLUMNS",
    "ROB_KEYS",
    "auc_linear",
    "auc_log_time",
    "contains_match",
    "exact_match",
    "json_rows",
    "lm_robustness",
    "normalize_answer",
    "normalized_accuracy",
    "robustness",
    "rtn_quantize",
    "summarize_lm",
    "summarize_robustness",
    "t_interval",
    "write_plots",
]


# ---------------------------------------------------------------------------- language models
QUESTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("What is the capital of France?", ("paris",)),
    ("What is the capital of Italy?", ("rome",)),
    ("What is the capital of Japan?", ("tokyo",)),
    ("What is the chemical symbol for gold?", ("au",)),
    ("How many days are there in a week?", ("7", "seven")),
    ("How many legs does a spider have?", ("8", "eight")),
    ("What color is the sky on a clear day?", ("blue",)),
    ("What is the largest planet in our solar system?", ("jupiter",)),
    ("What is 2 + 3?", ("5", "five")),
    ("What gas do plants absorb from the air?", ("carbon dioxide", "co2")),
)
"""The small question set of :func:`lm_robustness`: ``(question, accepted answers)``, short
facts a 135M instruct model knows. Each is asked through the chat template with
:data:`QA_INSTRUCTION` appended."""

QA_INSTRUCTION = " Answer with one word."
QA_NEW_TOKENS = 16
LM_COLUMNS = ["model", "axis", "seed", "time_s", "temperature_K", "metric", "value", "text"]
LM_KEYS = ["model", "axis", "seed", "time_s", "temperature_K", "metric"]
TRAINED, OFF_THE_SHELF = "trained", "off-the-shelf"


def normalize_answer(text: str) -> str:
    """Lower case, first line, punctuation and articles removed, spaces squeezed."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in line.lower())
    words = [w for w in line.split() if w not in ("a", "an", "the")]
    return " ".join(words)


def exact_match(text: str, answers: Sequence[str]) -> bool:
    """The normalised answer equals one of ``answers`` (normalised alike)."""
    got = normalize_answer(text)
    return any(got == normalize_answer(a) for a in answers)


def contains_match(text: str, answers: Sequence[str]) -> bool:
    """One of ``answers`` appears as whole words in the normalised answer (lenient)."""
    got = f" {normalize_answer(text)} "
    return any(f" {normalize_answer(a)} " in got for a in answers)


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, half width, std)`` of the Student-t confidence interval of the mean over
    seeds; half width ``nan`` for one value, ``inf`` mean for infinite values."""
    mean, std = _mean_std(list(values))
    n = len(values)
    if n < 2 or not math.isfinite(mean):
        return mean, float("nan"), std
    from scipy.stats import t as student_t

    return mean, float(student_t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n), std


class _ActQuant(torch.nn.Module):
    """Round-to-nearest digital layer: weights quantised once per output channel (symmetric,
    ``w_bits``), inputs per token at run time (symmetric abs-max, ``a_bits``)."""

    def __init__(self, module: torch.nn.Module, w_bits: int, a_bits: int) -> None:
        super().__init__()
        self.digital = module
        self.levels = 2 ** (a_bits - 1) - 1
        with torch.no_grad():
            self.register_buffer(
                "w_q", Quantizer(w_bits, per_channel=True)(weight_matrix(module)).contiguous()
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12) / self.levels
        xq = torch.round(x / s).clamp_(-self.levels, self.levels).mul_(s)
        return forward_with(self.digital, xq, self.w_q)


def rtn_quantize(
    model: torch.nn.Module, mapping: Any, *, w_bits: int = 4, a_bits: int = 8
) -> torch.nn.Module:
    """A copy of ``model`` with round-to-nearest W``w_bits``A``a_bits`` on the layers the
    mapping places analog (the same layers, so analog and digital compare like for like);
    the rest stays float. Per-output-channel weights, per-token activations."""
    net = copy.deepcopy(model).eval()
    plan = resolve_plan(net, load_mapping(mapping))
    modules = dict(net.named_modules())
    for lp in plan.layers:
        if lp.placement != "analog":
            continue
        mod = modules.get(lp.name)
        if mod is None or module_kind(mod) not in ("linear", "conv1d"):
            continue
        set_submodule(net, lp.name, _ActQuant(mod, w_bits, a_bits))
    return net


def _answers(model: torch.nn.Module, loaded: LoadedModel, questions: Sequence[Any]) -> list[str]:
    """Greedy answers to ``questions``, each asked as a user message through the chat
    template when the tokenizer has one (raw text otherwise)."""
    tok = loaded.tokenizer
    prompts = [prompt_ids(tok, q + QA_INSTRUCTION).tolist() for q, _ in questions]
    return generate_samples(model, tok, prompts, QA_NEW_TOKENS)


def lm_robustness(
    checkpoint: str | Path,
    mapping: Any = None,
    device: str | None = None,
    times: Sequence[float] = (3600.0, 86400.0, YEAR_S),
    temperatures: Sequence[float] = (300.0, 358.15),
    seeds: int | Sequence[int] = 3,
    *,
    baseline: str | None = None,
    questions: Sequence[tuple[str, Sequence[str]]] = QUESTIONS,
    max_tokens: int = 1024,
    w_bits: int = 4,
    a_bits: int = 8,
    run: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """A distilled language model against the off-the-shelf one and a digital RTN baseline.

    Models: ``trained`` (the checkpoint, its learned input ranges set on its chip),
    ``off-the-shelf`` (``baseline``, default the model the checkpoint was trained from),
    both on the chip (``mapping``/``device``, default the checkpoint's) at every
    ``(time, temperature)`` for every seed; and digitally, once each: both in float, and
    both round-to-nearest W4A8 (:func:`rtn_quantize`; for ``off-the-shelf`` the baseline of
    the paper, for ``trained`` its "quantises better" by-product). Metrics: held-out
    perplexity (first ``max_tokens`` tokens) and the question set through the chat
    template (``accuracy``: exact match of the normalised answer; ``contains``: the answer
    among the words). Summary rows carry mean, std and the 95 % Student-t interval over
    seeds. Rows go to ``run`` (:data:`LM_COLUMNS`) as they are measured; points already
    there are skipped.
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ConfigError("need at least one seed", key="seeds", value=seeds)
    trained = load_checkpoint(checkpoint)
    if trained.kind != "causal-lm":
        raise ConfigError(
            "lm_robustness compares causal language models",
            key="checkpoint",
            value=str(checkpoint),
        )
    meta = trained.info["sidecar"]
    ranges = meta.get("input_ranges") or {}
    if mapping is None:
        mapping = mapping_from_sidecar(meta)
    if device is None:
        device = meta.get("device")
    m = load_mapping(mapping).with_device(device)
    base_name = baseline or meta.get("model")
    off = load_model(str(base_name), progress=progress)
    quality = quality_metric(trained, max_tokens=max_tokens)
    rows: list[dict[str, Any]] = list(run.rows) if run is not None else []

    def done(**point: Any) -> bool:
        return run is not None and run.done(**point)

    def emit(new: list[dict[str, Any]]) -> None:
        rows.extend(new)
        if run is not None:
            run.write(new)

    def measure(model: torch.nn.Module, label: str, point: dict[str, Any]) -> None:
        if done(model=label, **point, metric="perplexity") and done(
            model=label, **point, metric="contains"
        ):
            return
        with torch.no_grad():
            ppl = float(quality.score(model))
        texts = _answers(model, trained, questions)
        acc = sum(exact_match(t, a) for t, (_, a) in zip(texts, questions, strict=True))
        con = sum(contains_match(t, a) for t, (_, a) in zip(texts, questions, strict=True))
        n = len(questions)
        emit(
            [
                {"model": label, **point, "metric": "perplexity", "value": ppl, "text": ""},
                {
                    "model": label,
                    **point,
                    "metric": "accuracy",
                    "value": acc / n,
                    "text": " | ".join(_one_line(t) for t in texts),
                },
                {"model": label, **point, "metric": "contains", "value": con / n, "text": ""},
            ]
        )
        if progress:
            where = (
                "digital"
                if point["axis"] != "chip"
                else f"seed {point['seed']} t={format_time(point['time_s'])} "
                f"T={point['temperature_K']:g}K"
            )
            print(
                f"{label} {where}: perplexity {ppl:.4g}, exact {acc}/{n}, contains {con}/{n}",
                file=sys.stderr,
                flush=True,
            )

    digital_pt = dict(axis="digital", seed=-1, time_s=0.0, temperature_K=0.0)
    rtn_pt = dict(axis=f"rtn-w{w_bits}a{a_bits}", seed=-1, time_s=0.0, temperature_K=0.0)
    models = ((TRAINED, trained, ranges), (OFF_THE_SHELF, off, {}))
    for label, loaded, _ in models:
        measure(loaded.model, label, digital_pt)
        if not done(model=label, **rtn_pt, metric="contains"):
            measure(rtn_quantize(loaded.model, m, w_bits=w_bits, a_bits=a_bits), label, rtn_pt)
    total = len(models) * len(seed_list) * len(times) * len(temperatures)
    with progress_bar("robustness (language model)", total, progress) as advance:
        for label, loaded, rng in models:
            for seed in seed_list:
                points = [
                    dict(axis="chip", seed=seed, time_s=float(t), temperature_K=float(temp))
                    for temp in temperatures
                    for t in times
                ]
                todo = [p for p in points if not done(model=label, **p, metric="contains")]
                advance(len(points) - len(todo))
                if not todo:
                    continue
                am = convert(loaded.model, m)
                if rng:
                    apply_input_ranges(am, rng)
                am.program(seed)
                for p in todo:
                    am.at(p["time_s"], p["temperature_K"])
                    measure(am, label, p)
                    advance(1)
                del am
    out = summarize_lm(rows)
    out.update(
        mapping=m.name,
        device=device,
        baseline=str(base_name),
        checkpoint=str(checkpoint),
        input_ranges=len(ranges),
        rtn=f"w{w_bits}a{a_bits}",
        rows=rows,
    )
    return out


def summarize_lm(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per ``(model, axis, time, temperature, metric)``: mean, std, 95 % interval, n."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        key = (r["model"], r["axis"], float(r["time_s"]), float(r["temperature_K"]), r["metric"])
        groups[key].append(float(r["value"]))
    summary = []
    for (model, axis, t, temp, metric), vals in sorted(groups.items()):
        mean, half, std = t_interval(vals)
        summary.append(
            {
                "model": model,
                "axis": axis,
                "time_s": t,
                "temperature_K": temp,
                "metric": metric,
                "mean": mean,
                "ci95": half,
                "std": std,
                "n": len(vals),
            }
        )
    return {"summary": summary}


def _one_line(text: str) -> str:
    return " ".join(text.split())
