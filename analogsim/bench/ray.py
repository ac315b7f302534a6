"""Scale benchmark of ``analogsim run`` (issue 14): points/hour of the same study on the
local process pool and on Ray, with 1 and 2 workers, measured in one run; and the
per-point cost of a real LLM on CPU (the input of the 7B estimate in docs/scaling.md).

Run it (not a timed test; minutes)::

    nice -n 10 python -m analogsim.bench.ray --out runs/bench-ray

Study: the quick layer_sensitivity experiment (tiny-gpt2, 256 tokens a point) with more
seeds, so that each executor runs enough points for a steady rate. Each case runs the
whole grid into its own run directory; the executor's results are timed in the driver
as they arrive:

* ``startup_s``: from the run's start to the first result (workers started, model
  loaded, first point);
* ``points_per_hour``: the steady rate, ``(n - 1) / (last result - first result)``;
* ``point_s``: the mean time of a point inside its worker (each worker's first point,
  which loads the model, left out);
* ``overhead_ms``: what a point costs a worker beyond its own compute, ``workers x
  (steady wall time per point) - point_s`` (scheduling, shipping the task and the result,
  the driver writing the journal); Ray's overhead per point is the difference to the
  local pool's at the same worker count.

Cases run in the order local 1, ray 1, local 2, ray 2, repeated ``rounds`` times, so a
machine whose load changes slows them alike; rows are per round. The smollm2 rows time a
few points of the full layer_sensitivity settings (1,024 tokens) in this process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from analogsim.report.rundir import RunDir
from analogsim.runner.config import Experiment, load_experiment
from analogsim.runner.executor import Executor, InlineExecutor, LocalExecutor
from analogsim.runner.points import PointResult, Task
from analogsim.runner.run import run_experiment

__all__ = ["COLUMNS", "TimedExecutor", "run_ray_bench", "scale_rows", "smollm2_rows"]

CONFIG = Path(__file__).resolve().parents[2] / "experiments" / "layer_sensitivity.toml"
COLUMNS = [
    "case",
    "round",
    "executor",
    "workers",
    "points",
    "startup_s",
    "wall_s",
    "points_per_hour",
    "point_s",
    "overhead_ms",
    "note",
]


class TimedExecutor(Executor):
    """Wraps an executor: the driver-side arrival time of each result."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.workers = inner.workers
        self.name = inner.name
        self.started = 0.0
        self.arrivals: list[float] = []
        self.results: list[PointResult] = []

    def run(self, tasks: Sequence[Task]) -> Iterator[PointResult]:
        self.started = time.perf_counter()
        for res in self.inner.run(tasks):
            self.arrivals.append(time.perf_counter())
            self.results.append(res)
            yield res

    def close(self) -> None:
        self.inner.close()


def _study(seeds: int, model: str | None) -> Experiment:
    exp = load_experiment(CONFIG, quick=True, models=[model] if model else None)
    exp.axes = [(a, list(range(seeds)) if a == "seed" else v) for a, v in exp.axes]
    exp.resolved = {**exp.resolved, "bench_seeds": seeds}
    return exp


def _row(case: str, rnd: int, timed: TimedExecutor, seconds: float) -> dict[str, Any]:
    ok = [r for r in timed.results if r.error is None]
    n = len(ok)
    t = timed.arrivals
    steady = (t[-1] - t[0]) if n > 1 else float("nan")
    rate = (n - 1) / steady * 3600 if n > 1 and steady > 0 else float("nan")
    # the first point of each worker loads the model: left out of the point time
    seen: set[str] = set()
    point_s = []
    for r in ok:
        if r.worker in seen:
            point_s.append(r.seconds)
        seen.add(r.worker)
    mean = statistics.fmean(point_s) if point_s else float("nan")
    per_point = steady / (n - 1) if n > 1 else float("nan")
    return {
        "case": case,
        "round": rnd,
        "executor": timed.name,
        "workers": timed.workers,
        "points": n,
        "startup_s": round(t[0] - timed.started, 2) if t else None,
        "wall_s": round(seconds, 2),
        "points_per_hour": round(rate),
        "point_s": round(mean, 4),
        "overhead_ms": round((timed.workers * per_point - mean) * 1000, 1),
        "note": f"failed {len(timed.results) - n}" if n < len(timed.results) else "",
    }


def scale_rows(
    out: Path, *, seeds: int = 8, rounds: int = 1, model: str | None = None, say: Any = print
) -> list[dict[str, Any]]:
    """Local 1, Ray 1, local 2, Ray 2 workers on the same grid, ``rounds`` times."""
    from analogsim.runner.ray_executor import RayExecutor

    rows: list[dict[str, Any]] = []
    makers = [
        ("local-1", lambda: LocalExecutor(1)),
        ("ray-1", lambda: RayExecutor(1)),
        ("local-2", lambda: LocalExecutor(2)),
        ("ray-2", lambda: RayExecutor(2)),
    ]
    for rnd in range(rounds):
        for case, make in makers:
            exp = _study(seeds, model)
            timed = TimedExecutor(make())
            t0 = time.perf_counter()
            try:
                res = run_experiment(
                    exp,
                    out=out / f"{case}-r{rnd}",
                    executor=timed,
                    progress=False,
                    report=False,
                )
            finally:
                timed.close()
            row = _row(case, rnd, timed, time.perf_counter() - t0)
            say(f"{case} round {rnd}: {row}")
            rows.append(row)
            assert res["failed"] == 0, res["errors"][:1]
    return rows


def smollm2_rows(out: Path, *, points: int = 3, tokens: int = 1024) -> list[dict[str, Any]]:
    """A few layer_sensitivity points of smollm2 (1,024 tokens) in this process: the model
    load (in the first point) and the cost of one point on this CPU."""
    exp = load_experiment(CONFIG, quick=False)
    sig = [0.0, 0.02, 0.04, 0.06, 0.08][: max(2, points)]
    exp.axes = [
        (a, {"sigma": sig, "seed": [0], "roles": ["attention"]}.get(a, v)) for a, v in exp.axes
    ]
    exp.settings = {**exp.settings, "max_tokens": tokens}
    exp.resolved = {**exp.resolved, "bench": "smollm2"}
    timed = TimedExecutor(InlineExecutor(threads=os.cpu_count() or 1))
    t0 = time.perf_counter()
    run_experiment(exp, out=out / "smollm2", executor=timed, progress=False, report=False)
    row = _row("smollm2-point", 0, timed, time.perf_counter() - t0)
    row["note"] = (
        f"first point (model load + point) {timed.results[0].seconds:.1f} s; "
        f"{tokens} tokens a point, {os.cpu_count()} threads"
    )
    row["overhead_ms"] = None
    return [row]


def run_ray_bench(
    out: str | Path, *, seeds: int = 8, rounds: int = 1, smollm2: bool = True
) -> list[dict[str, Any]]:
    """Every row, written to a run directory (``results.csv``, ``manifest.json``)."""
    out = Path(out)
    load = os.getloadavg()
    config = {
        "seeds": seeds,
        "rounds": rounds,
        "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in load],
        "nice": os.nice(0),
    }
    rows = scale_rows(out / "cases", seeds=seeds, rounds=rounds)
    if smollm2:
        rows += smollm2_rows(out / "cases")
    with RunDir(out, "bench-ray", config, COLUMNS, ["case", "round"]) as run:
        run.write(rows)
        run.note(load_after=[round(x, 2) for x in os.getloadavg()])
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/bench-ray")
    ap.add_argument("--seeds", type=int, default=8, help="seeds per grid point (more points)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--no-smollm2", action="store_true")
    args = ap.parse_args(argv)
    rows = run_ray_bench(
        args.out, seeds=args.seeds, rounds=args.rounds, smollm2=not args.no_smollm2
    )
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
