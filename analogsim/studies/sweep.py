"""Statistical weight-noise sweeps: the public noisy-LLM study, done right.

For each noise level ``sigma`` and seed, every selected weight (and bias) gets a fresh
seeded perturbation ``sigma * sample`` (or ``sigma * std(W) * sample`` with
``relative``), the model is scored, and the weights are copied back from a saved
original, bit for bit, before the next level. Differences from the public study
(REFERENCES.md): seeded and repeatable, several seeds with mean and spread, weights
restored between levels, GPT-2's tied ``lm_head`` / ``wte`` perturbed only when
embeddings are asked for (once, as one tensor), Conv1D layers included, and the sigma at
which perplexity crosses a threshold interpolated between grid points.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from analogsim.devices.noise import get_noise
from analogsim.errors import ConfigError
from analogsim.mapping.perturb import perturb, restore, select_targets
from analogsim.metrics.language import generate_samples, next_token_entropy_bits
from analogsim.models import LoadedModel, load_model
from analogsim.models.quality import DEFAULT_MAX_TOKENS, quality_metric
from analogsim.progress import progress_bar
from analogsim.report.rundir import RunDir
from analogsim.studies.evaluate import say

SWEEP_COLUMNS = ["model", "noise", "relative", "roles", "seed", "sigma", "metric", "value"]
SWEEP_KEYS = ["model", "noise", "relative", "roles", "seed", "sigma"]
DEFAULT_PROMPTS = (
    "The return statement",
    "A class definition",
    "Exceptions are raised",
)


def crossing(
    xs: Sequence[float], ys: Sequence[float], level: float, *, log: bool = True, rising: bool = True
) -> float | None:
    """First x where the piecewise-linear curve (in log y when ``log``) crosses ``level``.

    Returns None if it never does; ``inf`` values count as above any level.
    """

    def f(y: float) -> float:
        if math.isinf(y):
            return math.inf if y > 0 else -math.inf
        return math.log(y) if log else y

    target = f(level)
    prev_x, prev_y = None, None
    for x, y in zip(xs, ys, strict=True):
        fy = f(y) if not (log and y <= 0) else -math.inf
        above = fy >= target if rising else fy <= target
        if above:
            if prev_x is None:
                return float(x)
            if math.isinf(fy) or not math.isfinite(prev_y):
                # no interpolation to or from an infinite (or NaN) value: the grid point
                return float(x)
            frac = (target - prev_y) / (fy - prev_y) if fy != prev_y else 0.0
            return float(prev_x + frac * (x - prev_x))
        prev_x, prev_y = x, fy
    return None


def _metrics(loaded: LoadedModel, prompts: Sequence[str], max_tokens: int, text: str | Path | None):
    q = quality_metric(loaded, max_tokens=max_tokens, text=text)
    funcs = {q.name: q.score}
    if loaded.kind == "causal-lm":
        funcs["entropy_bits"] = lambda m: next_token_entropy_bits(
            m, loaded.tokenizer, list(prompts), steps=10
        )
    return q, funcs


def run_sweep(
    model: str | LoadedModel,
    noise: str = "gaussian",
    sigmas: Sequence[float] = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05),
    *,
    relative: bool = False,
    roles: Sequence[str] | None = None,
    include_embeddings: bool = False,
    include_bias: bool = True,
    seeds: int | Sequence[int] = 3,
    noise_params: dict[str, Any] | None = None,
    prompts: Sequence[str] = DEFAULT_PROMPTS,
    sample_tokens: int = 24,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    text: str | Path | None = None,
    run: RunDir | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score the model under weight noise at each sigma and seed.

    Language models are scored on the first ``max_tokens`` tokens of ``text`` (a file
    path or the text itself; default: the built-in held-out text, see
    :func:`analogsim.models.quality.quality_metric`). The unperturbed model is scored
    once: that baseline is every seed's row at sigma = 0 (no noise, nothing to draw).
    With ``progress``, one line per point is printed on stderr as it ends.

    Returns ``{"rows", "summary", "baseline", "samples"}``; rows are tidy
    (``model, noise, relative, roles, seed, sigma, metric, value``) and also appended to
    ``run``'s results.csv (resumable).
    """
    get_noise(noise)  # fail early on an unknown name
    if any((not math.isfinite(s)) or s < 0 for s in sigmas):
        raise ConfigError("sigmas must be finite and >= 0", key="sigma", value=list(sigmas))
    loaded = load_model(model, progress=progress) if isinstance(model, str) else model
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    targets = select_targets(
        loaded.model, roles, include_embeddings=include_embeddings, include_bias=include_bias
    )
    quality, funcs = _metrics(loaded, prompts, max_tokens, text)
    roles_label = ",".join(sorted(roles)) if roles else "all-but-embeddings"
    if include_embeddings:
        roles_label += "+embeddings"
    params = noise_params or {}
    rows: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    model_ = loaded.model
    with torch.no_grad():
        baseline = {k: float(f(model_)) for k, f in funcs.items()}
    total = len(sigmas) * len(seed_list)
    if run is not None:
        run.expect(total)
    try:
        with progress_bar(f"sweep {loaded.name} ({noise})", total, progress) as advance:
            for sigma in sigmas:
                for seed in seed_list:
                    point = dict(
                        model=loaded.name,
                        noise=noise,
                        relative=relative,
                        roles=roles_label,
                        seed=seed,
                        sigma=sigma,
                    )
                    if run is not None and run.done(**point):
                        advance(1)
                        continue
                    point_rows = []
                    if sigma == 0:  # the unperturbed model: its scores are the baseline's
                        point_rows = [
                            {**point, "metric": name, "value": v} for name, v in baseline.items()
                        ]
                    else:
                        perturb(targets, noise, sigma, seed, relative=relative, **params)
                    with torch.no_grad():
                        if sigma != 0:
                            for name, f in funcs.items():
                                v = float(f(model_))
                                point_rows.append({**point, "metric": name, "value": v})
                        if loaded.kind == "causal-lm" and seed == seed_list[0]:
                            sample = generate_samples(
                                model_, loaded.tokenizer, [prompts[0]], sample_tokens, seed=0
                            )[0]
                            samples.append(
                                {"sigma": sigma, "seed": seed, "prompt": prompts[0], "text": sample}
                            )
                    if sigma != 0:
                        restore(targets)
                    rows.extend(point_rows)
                    if run is not None:
                        run.write(point_rows)
                    say(
                        progress,
                        f"{loaded.name} sigma={sigma:g} seed={seed}: "
                        + ", ".join(f"{r['metric']} {r['value']:.4g}" for r in point_rows)
                        + (" (baseline, unperturbed)" if sigma == 0 else ""),
                    )
                    advance(1, status=f"sigma={sigma:g} seed={seed}")
    finally:
        restore(targets)
    for t in targets:
        if not torch.equal(t.param.detach(), t.original):
            raise RuntimeError(f"restore failed for {t.names}")  # never expected
    all_rows = run.rows if run is not None else rows
    summary = summarize_sweep(all_rows)
    if run is not None and samples:
        with (run.path / "samples.jsonl").open("a") as fh:
            for s in samples:
                fh.write(json.dumps(s) + "\n")
    return {
        "rows": all_rows,
        "summary": summary,
        "baseline": baseline,
        "samples": samples,
        "quality": quality.name,
        "higher_is_better": quality.higher_is_better,
        "targets": [t.names for t in targets],
    }


def summarize_sweep(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (sigma, metric): mean, std, min, max over seeds (inf-aware)."""
    groups: dict[tuple[float, str], list[float]] = defaultdict(list)
    for r in rows:
        groups[(float(r["sigma"]), r["metric"])].append(float(r["value"]))
    out = []
    for (sigma, metric), vals in sorted(groups.items()):
        finite = [v for v in vals if math.isfinite(v)]
        n = len(vals)
        if len(finite) == n:
            mean = sum(vals) / n
            std = (sum((v - mean) ** 2 for v in vals) / (n - 1)) ** 0.5 if n > 1 else 0.0
        else:
            # an infinite value makes the mean infinite; NaN values alone make it NaN
            mean = math.inf if any(math.isinf(v) for v in vals) else math.nan
            std = math.nan
        out.append(
            {
                "sigma": sigma,
                "metric": metric,
                "mean": mean,
                "std": std,
                "min": min(vals),
                "max": max(vals),
                "n": n,
            }
        )
    return out


def thresholds(
    summary: Sequence[dict[str, Any]],
    metric: str,
    baseline: float,
    *,
    higher_is_better: bool,
    absolute: Sequence[float] = (),
    multiples: Sequence[float] = (),
) -> list[dict[str, Any]]:
    """Interpolated sigma where the mean metric first crosses each threshold.

    For perplexity-like metrics (lower is better) the crossings are rising, in log space;
    for accuracy-like metrics they are falling, in linear space. ``multiples`` are of the
    baseline (e.g. 2x perplexity, or 0.9x accuracy).
    """
    pts = sorted((r["sigma"], r["mean"]) for r in summary if r["metric"] == metric)
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    out = []
    levels = [
        (f"{metric} >= {a:g}" if not higher_is_better else f"{metric} <= {a:g}", a)
        for a in absolute
    ]
    levels += [(f"{m:g}x baseline", m * baseline) for m in multiples]
    for label, level in levels:
        x = crossing(xs, ys, level, log=not higher_is_better, rising=not higher_is_better)
        out.append({"threshold": label, "level": level, "sigma": x})
    return out
