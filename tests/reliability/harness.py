"""What the fault-injection tests share: the counts they report, running the command
line in a subprocess, killing it at a seeded random moment, and comparing rows."""

from __future__ import annotations

import collections
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from analogsim.report.rundir import JOURNAL, read_results

COUNTS = {"runs_killed": 0, "rows_lost": 0, "rows_duplicated": 0, "tracebacks_shown": 0}

# one torch thread (two cores shared by the whole suite), no colour, wide lines
ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NO_COLOR": "1",
    "TERM": "dumb",
    "COLUMNS": "200",
}


def command(*args: str | Path) -> list[str]:
    """``analogsim ARGS`` as this interpreter runs it (the installed entry point)."""
    return [sys.executable, "-c", "from analogsim.cli import main; main()", *map(str, args)]


def env(cache: Path) -> dict[str, str]:
    return {**os.environ, **ENV, "ANALOGSIM_CACHE": str(cache)}


def run(args: list[str], cache: Path, **kw) -> subprocess.CompletedProcess[str]:
    """Run to the end; a traceback on stderr is counted."""
    done = subprocess.run(args, env=env(cache), capture_output=True, text=True, **kw)
    count_tracebacks(done.stderr)
    return done


def count_tracebacks(stderr: str) -> None:
    COUNTS["tracebacks_shown"] += stderr.count("Traceback")


def points_in(folder: Path) -> int:
    """Finished points in a run directory's journal (0 while it does not exist yet)."""
    path = folder / JOURNAL
    if not path.exists():
        return -1
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.1) as db:
            return db.execute("SELECT count(*) FROM points").fetchone()[0]
    except sqlite3.Error:
        return -1  # being created or locked by the writer: ask again


def kill_at_random(
    args: list[str], out: Path, cache: Path, rng: random.Random, points: int
) -> bool:
    """Start the command, wait until a random number of its ``points`` are committed
    (0: its run directory is open), wait a random fraction of a second more and
    ``kill -9`` it. True when it was killed (not finished first)."""
    k = rng.randrange(0, max(points, 1))
    delay = rng.uniform(0.0, 0.4)
    proc = subprocess.Popen(
        args, env=env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 300
    while proc.poll() is None and points_in(out) < k and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    count_tracebacks(err)
    killed = proc.returncode == -signal.SIGKILL
    COUNTS["runs_killed"] += int(killed)
    return killed


def compare_rows(got_dir: Path, want: list[dict[str, str]], keys: list[str]) -> None:
    """Count lost and duplicated rows of ``got_dir`` against the rows ``want`` of an
    uninterrupted run, then require exactly the same rows (same numbers)."""
    got = read_results(got_dir)
    key = lambda r: tuple(r[k] for k in keys)  # noqa: E731
    seen = collections.Counter(key(r) for r in got)
    COUNTS["rows_duplicated"] += sum(n - 1 for n in seen.values())
    COUNTS["rows_lost"] += sum(1 for r in want if key(r) not in seen)
    assert sorted(map(key, got)) == sorted(map(key, want))

    def measured(rows: list[dict[str, str]]) -> list[tuple[str, ...]]:
        # wall-clock metrics (generate_seconds, tokens_per_s) differ between any two runs
        return sorted(tuple(r.values()) for r in rows if not _timing(r.get("metric", "")))

    assert measured(got) == measured(want)


def _timing(metric: str) -> bool:
    return metric.endswith(("_seconds", "_per_s"))
