"""Speed on a real LLM (issue 12 item 5): SmolLM2-135M-Instruct, measured in one run.

* ``sweep-point``: one point of ``analogsim sweep`` (perturb every weight but the
  embeddings with seeded Gaussian noise, evaluate ``tokens`` held-out tokens, restore the
  weights) against an unperturbed evaluation of the same tokens, timed round-robin
  (:func:`analogsim.bench.timing.interleaved`). Target: at most 1.2x. The perturb and
  restore passes are also timed alone and reported in their own rows.
* ``state``: ageing the chip (issue 18): ``program``, ``at(1 h)`` and ``at(1 d, 358 K)`` of
  the ``all_analog`` PCM chip, in seconds (``median_ms``), each one pass per analog layer
  that regenerates every device from its seed; the first call of each kind in the process
  (compiling the pass, or loading it from inductor's cache) and the median of ``rounds``
  later calls. Target: at most 2 s each.
* ``realistic`` / ``extreme``: clocked generation at 1 s/token from 1 h and at 1 d/token
  (every token moves the chip) against plain ``generate`` on the same converted model
  (:func:`analogsim.bench.clock.run_generation_bench`). Targets: at least 0.9x and 0.3x
  the tokens/s.

Rows are in the format of :mod:`analogsim.bench.run` (``case, regime, engine,
median_ms, digital_ms, ratio, note``).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from analogsim.bench.clock import run_generation_bench
from analogsim.bench.timing import interleaved
from analogsim.mapping.convert import convert
from analogsim.mapping.perturb import perturb, restore, select_targets
from analogsim.models import LoadedModel, load_model
from analogsim.models.quality import quality_metric

__all__ = ["run_smollm2_bench", "state_rows", "sweep_point_rows"]


def sweep_point_rows(
    loaded: LoadedModel, *, tokens: int = 1024, sigma: float = 0.01, rounds: int = 3
) -> list[dict[str, Any]]:
    """One sweep point (perturb, evaluate ``tokens`` tokens, restore) against one
    unperturbed evaluation of the same tokens; and the perturb and restore passes alone."""
    quality = quality_metric(loaded, max_tokens=tokens)
    model = loaded.model
    targets = select_targets(model)
    n_params = sum(t.param.numel() for t in targets)

    def plain() -> None:
        with torch.no_grad():
            quality.score(model)

    def point() -> None:
        perturb(targets, "gaussian", sigma, 0)
        try:
            with torch.no_grad():
                quality.score(model)
        finally:
            restore(targets)

    def only_perturb() -> None:
        perturb(targets, "gaussian", sigma, 0)

    def only_restore() -> None:
        restore(targets)

    med = interleaved({"plain": plain, "point": point}, rounds=rounds, warmup=1)
    t0 = time.perf_counter()
    only_perturb()
    t_perturb = time.perf_counter() - t0
    t0 = time.perf_counter()
    only_restore()
    t_restore = time.perf_counter() - t0
    case = f"{loaded.name}, sweep point, {tokens} tokens"
    threads = torch.get_num_threads()
    base = {"case": case, "digital_ms": med["plain"] * 1e3}
    return [
        {
            **base,
            "regime": "sweep-point",
            "engine": "perturb+eval+restore",
            "median_ms": med["point"] * 1e3,
            "ratio": med["point"] / med["plain"],
            "note": f"target <= 1.2x; {n_params / 1e6:.0f} M perturbed parameters, sigma "
            f"{sigma:g}; median of {rounds} interleaved rounds, {threads} threads",
        },
        {
            **base,
            "regime": "sweep-point",
            "engine": "perturb",
            "median_ms": t_perturb * 1e3,
            "ratio": t_perturb / med["plain"],
            "note": "one perturb pass alone (seeded draw per parameter), one run",
        },
        {
            **base,
            "regime": "sweep-point",
            "engine": "restore",
            "median_ms": t_restore * 1e3,
            "ratio": t_restore / med["plain"],
            "note": "one restore pass alone (copy of the saved originals), one run",
        },
    ]


def state_rows(loaded: LoadedModel, *, rounds: int = 3) -> list[dict[str, Any]]:
    """``convert``, ``program``, ``at(1 h)`` and ``at(1 d, 358 K)`` of ``loaded`` converted
    ``all_analog`` on PCM: seconds of the first call and median of ``rounds`` more."""
    t0 = time.perf_counter()
    am = convert(loaded.model, "all_analog", device="pcm")
    t_convert = time.perf_counter() - t0
    steps = {
        "program": lambda: am.program(0),
        "at(1 h)": lambda: am.at(3600.0),
        "at(1 d, 358 K)": lambda: am.at(86400.0, 358.0),
    }
    first: dict[str, float] = {}
    later: dict[str, list[float]] = {k: [] for k in steps}
    for r in range(rounds + 1):
        for name, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            if r == 0:
                first[name] = dt
            else:
                later[name].append(dt)
    n = sum(layer.matrix().numel() for _, layer in am.analog_layers())
    threads = torch.get_num_threads()
    case = f"{loaded.name}, all_analog pcm, {n / 1e6:.0f} M analog weights"
    rows = [
        {
            "case": case,
            "regime": "state",
            "engine": "convert",
            "median_ms": t_convert * 1e3,
            "digital_ms": float("nan"),
            "ratio": float("nan"),
            "note": "deep copy and wrap, one run",
        }
    ]
    for name in steps:
        med = statistics.median(later[name])
        rows.append(
            {
                "case": case,
                "regime": "state",
                "engine": name,
                "median_ms": med * 1e3,
                "digital_ms": float("nan"),
                "ratio": float("nan"),
                "note": f"target <= 2 s; median of {rounds} after the first call "
                f"({first[name]:.1f} s: compiling the pass or loading it from cache), "
                f"{threads} threads",
            }
        )
    am.restore()
    return rows


def run_smollm2_bench(
    *,
    quick: bool = False,
    tokens: int = 1024,
    gen_tokens: int = 32,
    extreme_tokens: int = 4,
    rounds: int | None = None,
    console: Any = None,
) -> list[dict[str, Any]]:
    """The sweep-point and generation benchmarks on ``smollm2``; bench rows.

    ``extreme_tokens``: tokens of the 1 d/token case (each one a full state update of
    135 M devices, tens of seconds on 2 cores today). ``quick``: 256 tokens, 8 generated.
    """
    loaded = load_model("smollm2", progress=console is not None)
    if quick:
        tokens, gen_tokens, extreme_tokens = 256, 8, 2
    reps = rounds or (1 if quick else 3)
    rows = sweep_point_rows(loaded, tokens=tokens, rounds=reps)
    rows += state_rows(loaded, rounds=reps)
    rows += run_generation_bench(
        tokens=gen_tokens,
        rounds=reps,
        model=loaded.model,
        name=loaded.name,
        ages=(3600.0,),
        extreme_tokens=extreme_tokens,
        extreme_rounds=1,
    )
    return rows
