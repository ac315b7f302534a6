"""Cut, damaged and unwritable files of a run directory: the next run resumes with the
rows of an uninterrupted run, or stops with one clear line (no traceback)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analogsim.cli import app, main
from analogsim.report.rundir import JOURNAL, RunDir, read_results
from analogsim.studies.evaluate import EVAL_KEYS
from tests.reliability.harness import COUNTS, ENV, command, compare_rows, count_tracebacks, run

COLUMNS = ["model", "seed", "sigma", "metric", "value"]
KEYS = ["model", "seed", "sigma"]
CONFIG = {"model": "m", "seeds": [0, 1], "sigmas": [0.0, 0.1, 0.2]}
POINTS = [dict(model="m", seed=s, sigma=g) for s in (0, 1) for g in (0.0, 0.1, 0.2)]
METRICS = ("accuracy", "loss", "margin")  # three rows per point


def _study(folder: Path) -> None:
    """A resumable study of six points with three rows each (values from the point)."""
    with RunDir(folder, "sweep", CONFIG, COLUMNS, KEYS) as run:
        run.expect(len(POINTS))
        for p in POINTS:
            if not run.done(**p):
                rows = [
                    {**p, "metric": m, "value": (p["seed"] + 1) * p["sigma"] / (i + 3)}
                    for i, m in enumerate(METRICS)
                ]
                run.write(rows)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("finished") / "run"
    _study(folder)
    return folder


def _last_point_offsets(text: bytes, rows_per_point: int) -> range:
    """Byte offsets from the start of the last point's rows to the end of the file."""
    lines = text.splitlines(keepends=True)
    start = len(text) - sum(len(x) for x in lines[-rows_per_point:])
    return range(start, len(text))


def _interrupted(folder: Path) -> None:
    m = json.loads((folder / "manifest.json").read_text())
    m["status"] = "running"
    (folder / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize("journal", [True, False], ids=["journal", "legacy-crlf"])
def test_results_cut_at_every_byte_of_the_last_point(finished, tmp_path, journal, capsys):
    """results.csv cut at each byte offset of its last point (3 rows), then resumed: the
    file ends up byte for byte as the uninterrupted run's. ``legacy-crlf``: a directory
    of an older version (CRLF, no journal) whose last append was cut."""
    want = (finished / "results.csv").read_bytes()
    original = want.replace(b"\n", b"\r\n") if not journal else want
    offsets = _last_point_offsets(original, len(METRICS))
    assert len(offsets) > 60
    for cut in offsets:
        folder = tmp_path / f"cut{cut}"
        shutil.copytree(finished, folder)
        if not journal:
            (folder / JOURNAL).unlink()
            _interrupted(folder)
        (folder / "results.csv").write_bytes(original[:cut])
        _study(folder)
        got = (folder / "results.csv").read_bytes()
        compare_rows(folder, read_results(finished), [*KEYS, "metric"])
        assert got == want, cut
        shutil.rmtree(folder)
    err = capsys.readouterr().err
    if not journal:
        assert "dropped" in err and "incomplete row" in err
    else:
        assert "restored from results.sqlite" in err
    assert "resuming: 5 of 6 points already done" in err or journal


def test_a_torn_temporary_file_is_ignored(finished, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(finished, folder)
    (folder / "results.csv.tmp").write_text("model,seed,si")
    (folder / "manifest.json.tmp").write_text('{"comm')
    _study(folder)
    assert (folder / "results.csv").read_bytes() == (finished / "results.csv").read_bytes()


# ------------------------------------------------------------------ the command line
def _main(monkeypatch, capsys, *args: str | Path) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sys, "argv", ["analogsim", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    count_tracebacks(err)
    return code, err


def _flat(text: str) -> str:
    """``text`` without whitespace (the console wraps long lines at 80 columns)."""
    return "".join(text.split())


EVAL = ["eval", "digits-mlp", "--mapping", "all_analog", "--device", "pcm", "--no-progress"]


@pytest.fixture
def eval_dir(cli_cache, tmp_path, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ANALOGSIM_CACHE", str(cli_cache))
    out = tmp_path / "eval"
    res = CliRunner().invoke(app, [*EVAL, "--times", "1h,1d", "--seeds", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_damaged_manifest_gives_one_clear_line(eval_dir, monkeypatch, capsys):
    rows = read_results(eval_dir)
    text = (eval_dir / "manifest.json").read_text()
    (eval_dir / "manifest.json").write_text(text[: len(text) // 2])
    code, err = _main(
        monkeypatch, capsys, *EVAL, "--times", "1h,1d", "--seeds", "1", "--out", eval_dir
    )
    assert code == 2
    assert "Traceback" not in err
    assert str(eval_dir / "manifest.json") in _flat(err)
    assert "deletemanifest.json" in _flat(err)
    # doing what it says continues the run with its rows
    (eval_dir / "manifest.json").unlink()
    code, err = _main(
        monkeypatch, capsys, *EVAL, "--times", "1h,1d", "--seeds", "1", "--out", eval_dir
    )
    assert code == 0, err
    assert "resuming: 3 of 3 points already done" in err
    assert read_results(eval_dir) == rows


def test_damaged_journal_gives_one_clear_line(eval_dir, monkeypatch, capsys):
    (eval_dir / JOURNAL).write_bytes(b"not a database" * 100)
    code, err = _main(
        monkeypatch, capsys, *EVAL, "--times", "1h,1d", "--seeds", "1", "--out", eval_dir
    )
    assert code == 2 and "Traceback" not in err
    assert "results.sqlite" in _flat(err) and "damaged" in err


def _read_only(folder: Path) -> object:
    """Make ``folder`` read-only (chmod; as root, which chmod does not stop, a read-only
    bind mount); returns an undo function, or skips where neither is possible."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [folder, *folder.iterdir()]}
        for p in modes:
            p.chmod(0o555 if p.is_dir() else 0o444)
        return lambda: [p.chmod(m) for p, m in modes.items()]
    ok = subprocess.run(["mount", "--bind", folder, folder], capture_output=True).returncode == 0
    if ok:
        ok = (
            subprocess.run(
                ["mount", "-o", "remount,bind,ro", folder, folder], capture_output=True
            ).returncode
            == 0
        )
        if not ok:
            subprocess.run(["umount", "-l", folder], check=False)
    if not ok:
        pytest.skip("running as root without a way to make a read-only folder")
    return lambda: subprocess.run(["umount", "-l", folder], check=True)


def test_read_only_directory_gives_one_clear_line(eval_dir, monkeypatch, capsys):
    before = {p.name: p.read_bytes() for p in eval_dir.iterdir() if p.is_file()}
    undo = _read_only(eval_dir)
    try:
        code, err = _main(
            monkeypatch, capsys, *EVAL, "--times", "1h,1d", "--seeds", "1", "--out", eval_dir
        )
    finally:
        undo()  # type: ignore[operator]
    assert code in (1, 2) and "Traceback" not in err
    assert "cannotwrite" in _flat(err) and "--out" in _flat(err)
    assert {p.name: p.read_bytes() for p in eval_dir.iterdir() if p.is_file()} == before


def _limited(limit: int):  # type: ignore[no-untyped-def]
    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limited


def test_file_size_limit_at_the_start(cli_cache, tmp_path):
    """A file-size limit (a full disk, as a process sees it) that the journal's first
    pages already exceed: one clear line naming the file, exit 2, no traceback."""
    out = tmp_path / "full"
    args = command(*EVAL, "--times", "1h", "--seeds", "1", "--out", out)
    full = run(args, cli_cache, preexec_fn=_limited(12_000))
    assert full.returncode in (1, 2), full.stderr
    assert "Traceback" not in full.stderr
    assert "cannotwrite" in _flat(full.stderr) and JOURNAL in _flat(full.stderr)


@pytest.mark.slow
def test_file_size_limit_mid_run(cli_cache, tmp_path):
    """A file-size limit hit part-way through (57 points: the journal outgrows its
    first pages): one clear line, every finished point whole, and the rerun without the
    limit finishes with the rows of an uninterrupted run."""
    grid = ["--times", "1s,1m,1h,6h,1d,1w,30d,1y", "--seeds", "7"]
    ref = tmp_path / "ref"
    res = CliRunner().invoke(
        app, [*EVAL, *grid, "--out", str(ref)], env={**ENV, "ANALOGSIM_CACHE": str(cli_cache)}
    )
    assert res.exit_code == 0, res.output
    # the journal's last pages do not fit (its first 4 pages hold the tables)
    limit = (ref / JOURNAL).stat().st_size - 1
    assert limit > 4 * 4096
    out = tmp_path / "full"
    args = command(*EVAL, *grid, "--out", out)
    full = run(args, cli_cache, preexec_fn=_limited(limit))
    assert full.returncode in (1, 2), full.stderr
    assert "Traceback" not in full.stderr and "cannot write" in full.stderr
    kept = read_results(out) if (out / "results.csv").exists() else []
    assert 0 < len(kept) < len(read_results(ref)), full.stderr  # it stopped part-way
    again = run(args, cli_cache)
    assert again.returncode == 0, again.stderr
    compare_rows(out, read_results(ref), [*EVAL_KEYS, "metric"])
    assert COUNTS["tracebacks_shown"] == 0
