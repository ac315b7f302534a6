"""Point functions: what one grid point of each study measures, inside a worker.

A point function is ``fn(settings, point) -> rows``: ``settings`` are the run's resolved
config sections (the same for every point), ``point`` the coordinates and seed; each
row is ``{"metric": name, "value": number or None, "text": str or None}``. It loads its
model through the worker's cache (:func:`analogsim.runner.cache.get_model`), leaves the
model as it found it (weights restored bit for bit, in ``finally``), and draws randomness
only from ``point.seed``.

Studies:

* ``noise``: weight noise of one distribution, size ``sigma`` and roles on a digital
  model (:func:`analogsim.mapping.perturb.perturb` / ``restore``, as
  :func:`analogsim.studies.sweep.run_sweep`): perplexity, next-token entropy in bits,
  Distinct-n of greedy continuations, a generated sample, the weights' std.
* ``drift``: noise that grows *during* generation (``analogsim.runner.drift``).
* ``chip``: a partition on a device at an age and temperature
  (``analogsim.runner.chip``).
* ``plasticity``: local-rule plasticity on LoRA adapters while the chip ages
  (``analogsim.studies.generate.plasticity_point``, docs/plasticity.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from analogsim.runner.points import Point

__all__ = [
    "NOISE_METRICS",
    "POINT_FUNCTIONS",
    "language_rows",
    "noise_point",
    "quality_of",
    "roles_of",
]

NOISE_METRICS = (
    "perplexity",
    "entropy_bits",
    "distinct_1",
    "distinct_2",
    "sample",
    "weight_std",
    "params",
)


def roles_of(label: str) -> list[str] | None:
    """``"all"`` -> None (every weight layer but embeddings); ``"attention+mlp"`` -> list."""
    return None if label == "all" else label.split("+")


def quality_of(spec: str, loaded: Any, settings: Mapping[str, Any]) -> Any:
    """The model's quality metric on the run's evaluation text, made once per worker."""
    from analogsim.models.quality import quality_metric
    from analogsim.runner.cache import cached

    key = ("quality", settings["max_tokens"], settings.get("text"))
    return cached(
        spec,
        key,
        lambda: quality_metric(
            loaded, max_tokens=settings["max_tokens"], text=settings.get("text")
        ),
    )


def language_rows(
    spec: str, loaded: Any, settings: Mapping[str, Any], wanted: set[str]
) -> list[dict[str, Any]]:
    """The metrics of ``wanted`` that read the model as it is now (perturbed or not):
    perplexity (the model's quality metric), entropy_bits, distinct_n and a sample of
    greedy continuations of the prompts."""
    import torch

    from analogsim.metrics import distinct_n, generate_samples, next_token_entropy_bits

    rows: list[dict[str, Any]] = []
    model = loaded.model
    with torch.no_grad():
        if "perplexity" in wanted:
            q = quality_of(spec, loaded, settings)
            rows.append(_row(q.name, _finite_or_inf(q.score(model))))
        lm = loaded.kind == "causal-lm" and loaded.tokenizer is not None
        if lm and "entropy_bits" in wanted:
            h = next_token_entropy_bits(
                model, loaded.tokenizer, list(settings["prompts"]), steps=settings["entropy_steps"]
            )
            rows.append(_row("entropy_bits", h))
        gen = {"distinct_1", "distinct_2", "sample"} & wanted
        if lm and gen:
            texts = generate_samples(
                model, loaded.tokenizer, list(settings["prompts"]), settings["tokens"]
            )
            for n in (1, 2):
                if f"distinct_{n}" in wanted:
                    rows.append(_row(f"distinct_{n}", distinct_n(texts, n)))
            if "sample" in wanted:
                rows.append({"metric": "sample", "value": None, "text": texts[0]})
    return rows


def noise_point(settings: Mapping[str, Any], point: Point) -> list[dict[str, Any]]:
    """Weight noise ``noise`` of size ``sigma`` on the layers of ``roles`` of ``model``
    (absolute sigma, or relative to each weight's std with ``relative``), drawn from
    ``point.seed``; the metrics of ``settings["metrics"]``; the weights put back."""
    from analogsim.mapping.perturb import perturb, restore, select_targets
    from analogsim.runner.cache import get_model

    c = point.as_dict()
    spec = str(c["model"])
    loaded = get_model(spec)
    sigma = float(c["sigma"])
    wanted = set(settings["metrics"])
    targets = select_targets(
        loaded.model,
        roles_of(str(c.get("roles", "all"))),
        include_embeddings=bool(settings.get("include_embeddings", False)),
    )
    rows: list[dict[str, Any]] = []
    if "weight_std" in wanted and sigma == 0:
        rows.append(_row("weight_std", _weight_std(targets)))
    if "params" in wanted and sigma == 0:
        rows.append(_row("params", float(sum(p.numel() for p in loaded.model.parameters()))))
    try:
        if sigma > 0:
            perturb(
                targets, str(c["noise"]), sigma, point.seed, relative=bool(c.get("relative", False))
            )
        rows.extend(language_rows(spec, loaded, settings, wanted))
    finally:
        restore(targets)
    return rows


def _weight_std(targets: list[Any]) -> float:
    """Standard deviation of all selected weight entries pooled (biases left out)."""
    n, s, s2 = 0, 0.0, 0.0
    for t in targets:
        if t.kind != "weight":
            continue
        w = t.original.double()
        n += w.numel()
        s += float(w.sum())
        s2 += float((w * w).sum())
    if n < 2:
        return math.nan
    mean = s / n
    return math.sqrt(max(0.0, (s2 - n * mean * mean) / (n - 1)))


def _finite_or_inf(v: float) -> float:
    """Perplexity from non-finite logits (NaN) counts as exploded: ``inf``."""
    return math.inf if math.isnan(v) else float(v)


def _row(metric: str, value: float) -> dict[str, Any]:
    return {"metric": metric, "value": float(value), "text": None}


def _lazy(module: str, name: str) -> Callable[[Mapping[str, Any], Point], list[dict[str, Any]]]:
    def call(settings: Mapping[str, Any], point: Point) -> list[dict[str, Any]]:
        import importlib

        return getattr(importlib.import_module(module), name)(settings, point)

    call.__name__ = name
    return call


POINT_FUNCTIONS: dict[str, Callable[[Mapping[str, Any], Point], list[dict[str, Any]]]] = {
    "noise": noise_point,
    "drift": _lazy("analogsim.runner.drift", "drift_point"),
    "chip": _lazy("analogsim.runner.chip", "chip_point"),
    "plasticity": _lazy("analogsim.studies.generate", "plasticity_point"),
}
