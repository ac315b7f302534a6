"""analogsim run: same numbers whatever the worker count, resume after kill -9 of the
runner or of a worker with no point lost or duplicated, hub models skipped fast."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analogsim.errors import ConfigError
from analogsim.report.rundir import read_results
from analogsim.runner.clusters import make_executor
from analogsim.runner.config import load_experiment
from analogsim.runner.executor import InlineExecutor, LocalExecutor
from analogsim.runner.run import run_experiment
from tests.runner.conftest import sweep_config


def _run(config: Path, out: Path, **kw) -> dict:
    return run_experiment(config, out=out, progress=False, **kw)


class _KillOneWorker(LocalExecutor):
    """Two worker processes; after the first result, one of them is killed (SIGKILL)."""

    def run(self, tasks):
        killed = False
        for res in super().run(tasks):
            yield res
            if not killed:
                os.kill(self.pids()[0], signal.SIGKILL)
                killed = True


def test_two_workers_with_one_killed_give_the_inline_results_csv(
    lm_folder, write_config, tmp_path
) -> None:
    cfg = write_config(sweep_config(str(lm_folder)))
    a = _run(cfg, tmp_path / "inline", executor=InlineExecutor())
    ex = _KillOneWorker(2)
    try:
        b = _run(cfg, tmp_path / "two", executor=ex)
    finally:
        ex.close()
    assert ex.restarts >= 1  # a worker really died and its point was resubmitted
    assert a["failed"] == b["failed"] == 0 and a["done"] == a["points"] == b["done"] == 9
    text_a = (tmp_path / "inline" / "results.csv").read_text()
    assert text_a == (tmp_path / "two" / "results.csv").read_text()  # nothing lost or doubled
    rows = read_results(tmp_path / "inline")
    # grid order: roles then sigma then seed, the baseline first
    assert [(r["roles"], r["sigma"], r["seed"]) for r in rows][:3] == [
        ("attention", "0.0", "0"),
        ("attention", "0.05", "0"),
        ("attention", "0.05", "1"),
    ]
    values = {float(r["value"]) for r in rows}
    assert len(values) > 5  # seeds and sigmas really differ
    report = (tmp_path / "two" / "report.md").read_text()
    assert "0.034" in report and "sigma at 2x baseline" in report


def test_rerun_skips_finished_points(lm_folder, write_config, tmp_path) -> None:
    cfg = write_config(sweep_config(str(lm_folder)))
    first = _run(cfg, tmp_path / "r", executor=InlineExecutor())
    before = (tmp_path / "r" / "results.csv").read_text()

    class Counting(InlineExecutor):
        seen = 0

        def run(self, tasks):
            Counting.seen += len(tasks)
            yield from super().run(tasks)

    again = _run(cfg, tmp_path / "r", executor=Counting())
    assert Counting.seen == 0 and again["done"] == first["done"]
    assert (tmp_path / "r" / "results.csv").read_text() == before
    # another config in the same directory is refused
    with pytest.raises(ConfigError, match="different run"):
        _run(write_config(sweep_config(str(lm_folder), seeds=3), "b.toml"), tmp_path / "r")


def _journal_points(out: Path) -> int:
    try:
        with sqlite3.connect(out / "results.sqlite", timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_kill_9_of_the_runner_then_rerun_equals_an_uninterrupted_run(
    lm_folder, write_config, tmp_path
) -> None:
    # slow points (longer texts) so the kill lands mid-run
    cfg = write_config(sweep_config(str(lm_folder), sigmas="[0.0, 0.02, 0.05, 0.1, 0.2]", seeds=3))
    out = tmp_path / "killed"
    code = (
        "import sys; from analogsim.runner.run import run_experiment; "
        "run_experiment(sys.argv[1], out=sys.argv[2], workers=1, progress=False)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(cfg), str(out)],
        start_new_session=True,  # its workers are in its process group
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while _journal_points(out) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its workers, mid-run
    proc.wait()
    partial = _journal_points(out)
    total = len(load_experiment(cfg).points())
    assert 3 <= partial < total
    resumed = _run(cfg, out, executor=InlineExecutor())
    assert resumed["done"] == total and resumed["failed"] == 0
    _run(cfg, tmp_path / "whole", executor=InlineExecutor())
    assert (out / "results.csv").read_text() == (tmp_path / "whole" / "results.csv").read_text()


def test_unreachable_hub_model_is_skipped_fast(
    lm_folder, write_config, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    text = sweep_config(str(lm_folder), seeds=1).replace(
        f'model = ["{lm_folder}"]', f'model = ["{lm_folder}", "someone/not-here-model"]'
    )
    t0 = time.perf_counter()
    res = _run(write_config(text), tmp_path / "hub", executor=InlineExecutor())
    assert time.perf_counter() - t0 < 60
    assert list(res["skipped"]) == ["someone/not-here-model"] and res["failed"] == 0
    report = (tmp_path / "hub" / "report.md").read_text()
    assert "skipped 'someone/not-here-model'" in report


def test_make_executor_refuses_bad_forms() -> None:
    with pytest.raises(ConfigError, match="--cluster"):
        make_executor("slurm", 1)
    with pytest.raises(ConfigError, match="--address"):
        make_executor("local", 1, address="1.2.3.4:6379")
    assert make_executor("local", 2).workers == 2
    # one torch thread per worker whatever the count: a reduction split over threads sums
    # in another order, and results.csv must not depend on --workers
    assert LocalExecutor(1).threads == LocalExecutor(2).threads == 1


def test_progress_status_gives_points_per_hour(monkeypatch) -> None:
    """The bar's status carries the rate so far (points/hour), beside points done and ETA."""
    from analogsim.runner import run as run_mod

    monkeypatch.setattr(run_mod.time, "perf_counter", lambda: 1800.0)
    assert run_mod._rate(0.0, 25) == "50 points/h;"
    assert run_mod._rate(1800.0, 0) == "0 points/h;"
