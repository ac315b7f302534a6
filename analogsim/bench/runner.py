"""Points per hour of ``analogsim run`` with 1 and 2 local worker processes (issue 13).

For each case the same tasks (points of a shipped experiment) run on a
:class:`~analogsim.runner.executor.LocalExecutor` with 1 worker (all cores' torch
threads), with 1 worker and 1 thread, and with 2 workers (half the threads each); ratios
are against the first. Each pool is warmed first (one point per worker: process start,
imports and the model load are not counted), then ``points`` points are timed. The ratio ``points/hour(2) / points/hour(1)`` says whether a study is
*thread-bound*: when one process already keeps both cores busy with torch's intra-op
threads (large matrix products: smollm2), a second process adds little; small models
(tiny-gpt2) leave cores idle between small kernels and Python overhead, so two
processes nearly double the rate. Target (issue 13): at least 1.6x for studies that are
not thread-bound.

Run: ``python -m analogsim.bench.runner [--quick] [--out DIR]`` (writes a run directory
with results.csv and prints the table).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analogsim.report.rundir import RunDir
from analogsim.runner.config import load_experiment
from analogsim.runner.executor import LocalExecutor, threads_per_worker
from analogsim.runner.points import Task

__all__ = ["CASES", "bench_case", "run_runner_bench"]

COLUMNS = ["case", "workers", "threads", "points", "seconds", "points_per_hour", "ratio"]
KEYS = ["case", "workers", "threads"]
# case -> (experiment, model, metric names, max_tokens)
CASES: dict[str, tuple[str, str, list[str], int]] = {
    "tiny-gpt2 noise point": ("noise_sweep", "tiny-gpt2", ["perplexity", "entropy_bits"], 256),
    "smollm2 noise point": ("noise_sweep", "smollm2", ["perplexity"], 256),
}


def _tasks(case: str, n: int) -> list[Task]:
    exp_name, model, metrics, max_tokens = CASES[case]
    exp = load_experiment(Path("experiments") / f"{exp_name}.toml", models=[model])
    settings = {**exp.settings, "metrics": metrics, "max_tokens": max_tokens}
    points = [p for p in exp.points() if float(p["sigma"]) > 0]
    return [Task(exp.study, settings, p) for p in points[: n + 2]]


def bench_case(
    case: str, workers: int, points: int, cores: int | None = None, threads: int | None = None
) -> dict[str, Any]:
    """Time ``points`` points of ``case`` on ``workers`` warmed processes with ``threads``
    torch threads each (default :func:`threads_per_worker`)."""
    tasks = _tasks(case, points)
    warm, timed = tasks[:workers], tasks[workers : workers + points]
    threads = threads or threads_per_worker(workers, cores)
    ex = LocalExecutor(workers, threads=threads)
    try:
        for res in ex.run(warm):
            if res.error:
                raise RuntimeError(res.error)
        t0 = time.perf_counter()
        done = sum(1 for res in ex.run(timed) if res.error is None)
        seconds = time.perf_counter() - t0
    finally:
        ex.close()
    return {
        "case": case,
        "workers": workers,
        "threads": threads,
        "points": done,
        "seconds": seconds,
        "points_per_hour": done / seconds * 3600,
    }


def run_runner_bench(
    out: str | Path | None = None,
    *,
    quick: bool = False,
    cases: Sequence[str] | None = None,
    points: int | None = None,
    console: Any = None,
) -> Path:
    """Every case with 1 and 2 workers; rows in ``out``'s results.csv (printed as they come,
    and as a table on ``console``); returns the run directory."""
    names = list(cases or (["tiny-gpt2 noise point"] if quick else CASES))
    points = points or (6 if quick else 12)
    rows: list[dict[str, Any]] = []
    config = {"cases": names, "points": points, "cores": os.cpu_count()}
    with RunDir(out, "bench-runner", config, COLUMNS, KEYS) as run:
        run.expect(3 * len(names))
        for case in names:
            one = bench_case(case, 1, points)  # all cores' threads in one process
            single = bench_case(case, 1, points, threads=1)  # one thread, one process
            two = bench_case(case, 2, points)
            for r in (one, single, two):
                r["ratio"] = r["points_per_hour"] / one["points_per_hour"]
            for r in (one, single, two):
                run.write([r])
                rows.append(r)
                print(
                    f"{r['case']:>22}  workers {r['workers']}  threads {r['threads']}  "
                    f"{r['points_per_hour']:8.0f} points/h  x{r['ratio']:.2f}",
                    flush=True,
                )
        if console is not None:
            from rich.table import Table

            table = Table(title="analogsim run: points/hour by worker count")
            for col in COLUMNS:
                table.add_column(col)
            for r in rows:
                table.add_row(
                    *(f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in COLUMNS)
                )
            console.print(table)
    return run.path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny-gpt2 only, 6 points")
    parser.add_argument("--out", default=None, help="run directory")
    parser.add_argument(
        "--case", action="append", choices=list(CASES), help="one case (repeatable)"
    )
    parser.add_argument("--points", type=int, default=None, help="timed points per setting")
    args = parser.parse_args(argv)
    run_runner_bench(args.out, quick=args.quick, cases=args.case, points=args.points)


if __name__ == "__main__":
    main()
