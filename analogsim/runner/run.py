"""``analogsim run``: expand an experiment's grid, run the points on an executor, append
each finished point to the run directory, show them live, write the report.

The parent process is the only writer of the run directory (a
:class:`~analogsim.report.rundir.RunDir`: SQLite journal, one transaction per point), so
a ``kill -9`` of the runner or of a worker loses at most the points in flight, and a
rerun with the same ``--out`` skips every point already in the journal. ``results.csv``
is sorted by the points' grid order (:mod:`analogsim.runner.points`), so it is the same
file whatever the worker count or the order in which the points finished.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from analogsim.progress import progress_bar
from analogsim.report.rundir import RunDir, _encode
from analogsim.runner.config import Experiment, load_experiment
from analogsim.runner.executor import Executor, LocalExecutor
from analogsim.runner.models import availability, prepare
from analogsim.runner.points import Point, PointResult, Task

__all__ = ["COMMAND", "ResultsDir", "result_columns", "run_experiment"]

COMMAND = "run"
ROW_COLUMNS = ["metric", "value", "text"]


def result_columns(exp: Experiment) -> list[str]:
    """results.csv columns: the grid axes in order, then ``metric, value, text``."""
    return [a for a, _ in exp.axes] + ROW_COLUMNS


class ResultsDir(RunDir):
    """A :class:`RunDir` whose results.csv lists the points in grid order (rows of one
    point in the order the point function gave them), not in the order they finished."""

    def __init__(
        self, path: Any, config: dict[str, Any], exp: Experiment, points: Sequence[Point]
    ) -> None:
        self._order: dict[tuple[str, ...], int] = {}
        self.key_columns = [a for a, _ in exp.axes]
        for p in points:
            self._order[self._key(p.as_dict())] = p.index
        super().__init__(path, COMMAND, config, result_columns(exp), self.key_columns)

    def _csv_text(self) -> str:
        order = sorted(
            range(len(self.rows)),
            key=lambda i: (self._order.get(self._key(self.rows[i]), math.inf), i),
        )
        return "".join([_encode(self.columns), *(self._lines[i] for i in order)])

    def _sync_csv(self) -> None:
        """results.csv is derived from the journal: rewrite it when it is behind (a kill
        between a point's commit and its export); an edited file is kept aside (RunDir)."""
        if self.results_path.exists():
            have = self.results_path.read_text(encoding="utf-8", errors="replace")
            want = self._csv_text()
            if have != want and set(have.splitlines()) <= set(want.splitlines()):
                self._export()
                return
        super()._sync_csv()


def _say(con: Console, text: str) -> None:
    con.print(escape(text), highlight=False, soft_wrap=True)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _rate(t0: float, done: int) -> str:
    """Points per hour since this session started (model preparation included), for
    the progress bar's status: points done, points/hour and the ETA on one line."""
    seconds = max(time.perf_counter() - t0, 1e-9)
    return f"{done / seconds * 3600:,.0f} points/h;"


def _table_line(exp: Experiment, res: PointResult, widths: dict[str, int]) -> str:
    c = res.point.as_dict()
    parts = [f"{_cell(c[a]):>{widths[a]}}" for a, _ in exp.axes]
    shown = [r for r in res.rows if r.get("value") is not None][:4]
    parts += [f"{r['metric']} {_cell(float(r['value']))}" for r in shown]
    parts.append(f"{res.seconds:.1f}s")
    return "  ".join(parts)


def _header(exp: Experiment, widths: dict[str, int]) -> str:
    return "  ".join(f"{a:>{widths[a]}}" for a, _ in exp.axes) + "  measurements"


def run_experiment(
    config: str | Path | Experiment,
    *,
    out: str | Path | None = None,
    quick: bool = False,
    workers: int = 1,
    executor: Executor | None = None,
    models: Sequence[str] | None = None,
    progress: bool = True,
    report: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run an experiment config (or a loaded :class:`Experiment`) into a run directory.

    Args:
        config: the TOML file.
        out: run directory (default ``runs/<timestamp>-run``); an existing one resumes.
        quick: apply the config's ``[quick]`` values (the smoke version).
        workers: local worker processes (ignored when ``executor`` is given).
        executor: where points run (default :class:`LocalExecutor` with ``workers``).
        models: replace the grid's model axis.
        progress: live table and progress bar on stderr.
        report: write ``report.md`` (and the summary) at the end.

    Returns:
        ``{"run_dir", "points", "done", "failed", "skipped", "errors", "report"}``.
    """
    exp = (
        config
        if isinstance(config, Experiment)
        else load_experiment(config, quick=quick, models=models)
    )
    con = console or Console(stderr=True)
    say = (lambda t: _say(con, t)) if progress else (lambda t: None)
    # hub names that cannot be reached are skipped (said, and recorded in the report)
    skipped = {}
    for spec in exp.axis("model"):
        why = availability(spec)
        if why is not None:
            skipped[spec] = why
            say(why)
    available = [m for m in exp.axis("model") if m not in skipped]
    points = exp.points(models=available)
    all_points = exp.points()
    resolved = {**exp.resolved, "quick": exp.quick, "config_file": str(exp.path)}
    run = ResultsDir(out, resolved, exp, all_points)
    errors: list[tuple[Point, str]] = []
    executor_name = ""
    t0 = time.perf_counter()
    with run:
        run.expect(len(points))
        todo = [p for p in points if not run.done(**p.as_dict())]
        for spec in available if todo else []:
            prepare(spec, progress=progress, say=say)  # one build in this process, not N
        tasks = [Task(exp.study, exp.settings, p) for p in todo]
        own = executor is None
        ex = executor if executor is not None else LocalExecutor(max(1, int(workers)))
        executor_name = ex.name
        run.note(executor=ex.name, skipped_models=skipped)
        widths = {a: max(len(a), *(len(_cell(v)) for v in vals)) for a, vals in exp.axes}
        try:
            if tasks:
                say(
                    f"{exp.name}: {len(tasks)} of {len(points)} points to run on {ex.name} ({run.path})"
                )
                say(_header(exp, widths))
            with progress_bar(f"{exp.name}", len(points), progress, console=con) as advance:
                advance(len(points) - len(tasks))
                done = 0
                for res in ex.run(tasks):
                    done += 1
                    if res.error is not None:
                        errors.append((res.point, res.error))
                        # always said, also without progress: the run will exit non-zero
                        _say(con, f"FAILED {res.point.label()}: {res.error.splitlines()[0]}")
                        advance(1, status="failed")
                        continue
                    coords = res.point.as_dict()
                    run.write([{**coords, **r} for r in res.rows])
                    say(_table_line(exp, res, widths))
                    advance(1, status=f"{_rate(t0, done)} {res.point.label()}")
        finally:
            if own:
                ex.close()
        seconds = time.perf_counter() - t0
        run.note(
            last_session={
                "points_run": len(tasks) - len(errors),
                "failed": len(errors),
                "seconds": seconds,
                "executor": executor_name,
                "points_per_hour": (len(tasks) - len(errors)) / seconds * 3600
                if seconds > 0
                else None,
            }
        )
        report_path = None
        if report:
            from analogsim.runner.report import write_report

            report_path = write_report(run, exp, skipped=skipped, errors=errors)
        if errors:
            run.note(failed_points=[{"point": p.label(), "error": e} for p, e in errors])
    status = "complete" if not errors else "incomplete"
    if errors:
        run.finish("incomplete")
    return {
        "run_dir": run.path,
        "points": len(points),
        "done": run.points,
        "failed": len(errors),
        "skipped": skipped,
        "errors": [(p.label(), e) for p, e in errors],
        "report": report_path,
        "status": status,
        "seconds": seconds,
    }
