"""Run directories (``analogsim/report/rundir.py``): the journal, resume, refusal of a
different config, interrupted runs and non-finite values."""

from __future__ import annotations

import csv
import json
import math

import pytest

from analogsim.errors import ConfigError
from analogsim.report.rundir import (
    JOURNAL,
    RunDir,
    interruption_line,
    read_csv,
    read_results,
    write_csv,
)

COLUMNS = ["model", "seed", "time_s", "metric", "value"]
KEYS = ["model", "seed", "time_s"]
CONFIG = {"model": "m", "times_s": [1.0, 3600.0], "seeds": [0, 1]}
POINTS = [dict(model="m", seed=s, time_s=t) for s in (0, 1) for t in (1.0, 3600.0)]


def _csv(path):
    with (path / "results.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def _measure(run: RunDir, point: dict, value: float) -> None:
    run.write([{**point, "metric": "accuracy", "value": value}])


def test_layout_and_manifest(tmp_path):
    out = tmp_path / "run"
    with RunDir(out, "eval", CONFIG, COLUMNS, KEYS, cards={"pcm": {"name": "pcm"}}) as run:
        assert json.loads(run.manifest_path.read_text())["status"] == "running"
        _measure(run, POINTS[0], 0.5)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "eval"
    assert manifest["config"] == CONFIG
    assert manifest["status"] == "complete"
    assert manifest["device_cards"] == {"pcm": {"name": "pcm"}}
    assert {"versions", "git", "argv", "created", "finished"} <= set(manifest)
    assert "torch" in manifest["versions"] and "python" in manifest["versions"]


def test_rows_are_on_disk_as_soon_as_written(tmp_path):
    run = RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS)
    _measure(run, POINTS[0], 0.25)
    # read back while the run is still open: the row is there, with the header
    rows = _csv(tmp_path)
    assert rows == [
        {"model": "m", "seed": "0", "time_s": "1.0", "metric": "accuracy", "value": "0.25"}
    ]
    _measure(run, POINTS[1], 0.125)
    assert [r["value"] for r in _csv(tmp_path)] == ["0.25", "0.125"]
    assert run.done(**POINTS[0]) and run.done(**POINTS[1])
    assert not run.done(**POINTS[2])
    # the header is written once
    text = (tmp_path / "results.csv").read_text().splitlines()
    assert text[0] == ",".join(COLUMNS) and len(text) == 3


def test_floats_round_trip_exactly(tmp_path):
    run = RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS)
    value = 0.1 + 0.2  # not representable in a short decimal
    _measure(run, POINTS[0], value)
    assert float(read_results(tmp_path)[0]["value"]) == value


@pytest.mark.parametrize("token", ["\r", "a\rb", "\r\n", "x\ny", 'q"r'])
def test_text_with_line_breaks_round_trips(tmp_path, token):
    """A generated token can be a carriage return: trace.csv and results.csv keep it
    in its cell instead of splitting the row."""
    write_csv(
        tmp_path / "trace.csv",
        [{"token": token, "step": 1}, {"token": "b", "step": 2}],
        ["token", "step"],
    )
    assert read_csv(tmp_path / "trace.csv") == [
        {"token": token, "step": "1"},
        {"token": "b", "step": "2"},
    ]
    run = RunDir(tmp_path / "run", "eval", CONFIG, COLUMNS, KEYS)
    run.write([{**POINTS[0], "metric": token, "value": 1.0}])
    run.write([{**POINTS[1], "metric": "ok", "value": 2.0}])
    assert [r["metric"] for r in read_results(tmp_path / "run")] == [token, "ok"]


def test_resume_skips_done_points_and_keeps_old_rows(tmp_path):
    with RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS) as run:
        _measure(run, POINTS[0], 0.9)
        _measure(run, POINTS[1], 0.8)
    again = RunDir(tmp_path, "eval", dict(CONFIG), COLUMNS, KEYS)
    assert again.manifest["resumed_points"] == 2
    assert [again.done(**p) for p in POINTS] == [True, True, False, False]
    # keys match whatever type the caller uses for the same value
    assert again.done(model="m", seed=0, time_s=1.0)
    assert [r["value"] for r in again.rows] == ["0.9", "0.8"]
    for i, p in enumerate(POINTS):
        if not again.done(**p):
            _measure(again, p, 0.1 * i)
    again.finish()
    rows = _csv(tmp_path)
    assert len(rows) == 4
    assert [r["value"] for r in rows[:2]] == ["0.9", "0.8"]
    assert len({(r["seed"], r["time_s"]) for r in rows}) == 4
    assert json.loads((tmp_path / "manifest.json").read_text())["status"] == "complete"


def test_resume_with_other_config_is_refused(tmp_path):
    with RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS) as run:
        _measure(run, POINTS[0], 0.9)
    other = {**CONFIG, "seeds": [0, 1, 2]}
    with pytest.raises(ConfigError, match="different run") as info:
        RunDir(tmp_path, "eval", other, COLUMNS, KEYS)
    assert str(tmp_path / "manifest.json") in str(info.value)
    assert "--out" in str(info.value)
    with pytest.raises(ConfigError, match="different run"):
        RunDir(tmp_path, "sweep", CONFIG, COLUMNS, KEYS)
    # nothing was lost or changed by the refusals
    assert len(_csv(tmp_path)) == 1
    assert json.loads((tmp_path / "manifest.json").read_text())["config"] == CONFIG


def test_other_columns_are_refused(tmp_path):
    with RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS) as run:
        _measure(run, POINTS[0], 0.9)
    with pytest.raises(ConfigError, match="other columns"):
        RunDir(tmp_path, "eval", CONFIG, [*COLUMNS, "extra"], KEYS)


def _measure_all(run: RunDir, values: dict, interrupt_at: int | None = None) -> list[int]:
    measured = []
    for i, p in enumerate(POINTS):
        if run.done(**p):
            continue
        if i == interrupt_at:
            raise KeyboardInterrupt
        _measure(run, p, values[i])
        measured.append(i)
    return measured


def test_interrupted_run_keeps_rows_and_resumes(tmp_path):
    values = {0: 0.9, 1: 0.8, 2: 0.7, 3: 0.6}
    with pytest.raises(KeyboardInterrupt), RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS) as run:
        _measure_all(run, values, interrupt_at=2)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert [r["value"] for r in _csv(tmp_path)] == ["0.9", "0.8"]

    with RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS) as run:
        assert _measure_all(run, values) == [2, 3]  # only the rest is measured
    rows = _csv(tmp_path)
    assert [float(r["value"]) for r in rows] == [0.9, 0.8, 0.7, 0.6]
    assert len({tuple(r[k] for k in KEYS) for r in rows}) == len(rows) == 4
    assert json.loads((tmp_path / "manifest.json").read_text())["status"] == "complete"


def test_failed_run_records_the_error(tmp_path):
    with pytest.raises(RuntimeError), RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS):
        raise RuntimeError("boom")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert "RuntimeError: boom" in manifest["error"]


def test_inf_and_nan_written_as_text_and_read_back(tmp_path):
    config = {**CONFIG, "threshold": math.inf}
    with RunDir(tmp_path, "sweep", config, COLUMNS, KEYS) as run:
        _measure(run, POINTS[0], math.inf)
        _measure(run, POINTS[1], -math.inf)
        _measure(run, POINTS[2], math.nan)
        run.note(summary=[{"mean": math.inf}])
    rows = read_results(tmp_path)
    assert [r["value"] for r in rows] == ["inf", "-inf", "nan"]
    assert float(rows[0]["value"]) == math.inf and float(rows[1]["value"]) == -math.inf
    assert math.isnan(float(rows[2]["value"]))
    # the manifest stays valid JSON (no bare Infinity) and resumes with the same config
    manifest = json.loads(
        (tmp_path / "manifest.json").read_text(), parse_constant=lambda c: pytest.fail(c)
    )
    assert manifest["config"]["threshold"] == "inf"
    assert manifest["summary"] == [{"mean": "inf"}]
    again = RunDir(tmp_path, "sweep", config, COLUMNS, KEYS)
    assert again.manifest["resumed_points"] == 3


def test_default_out_is_timestamped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = RunDir(None, "eval", CONFIG, COLUMNS, KEYS)
    assert run.path.resolve().parent == (tmp_path / "runs").resolve()
    assert run.path.name.endswith("-eval")
    assert (run.path / "manifest.json").exists()


def test_write_csv_cells_round_trip(tmp_path):
    """Trace files: floats round-trip (repr), bools are 1/0, None is empty, and the file
    is replaced atomically (no .tmp left behind)."""
    rows = [
        {"a": 0.1 + 0.2, "b": True, "c": None, "d": "x"},
        {"a": math.inf, "b": False, "c": -math.inf, "d": 3},
        {"a": math.nan, "b": 1, "d": ""},
    ]
    path = write_csv(tmp_path / "t.csv", rows, ["a", "b", "c", "d"])
    back = read_csv(path)
    assert [list(r.values()) for r in back] == [
        [repr(0.1 + 0.2), "1", "", "x"],
        ["inf", "0", "-inf", "3"],
        ["nan", "1", "", ""],
    ]
    assert float(back[0]["a"]) == 0.1 + 0.2
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_results_csv_has_unix_line_endings_and_a_journal(tmp_path):
    with RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS) as run:
        _measure(run, POINTS[0], 0.5)
    data = (tmp_path / "results.csv").read_bytes()
    assert b"\r" not in data and data.count(b"\n") == 2
    assert (tmp_path / JOURNAL).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "results.csv", JOURNAL]


def test_a_point_of_several_rows_is_one_transaction(tmp_path):
    """A write that fails part-way (here: the second row has a key that is no column)
    leaves nothing of its point behind."""
    run = RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS)
    with pytest.raises(ValueError, match="not columns"):
        run.write([{**POINTS[0], "metric": "a", "value": 1.0}, {**POINTS[0], "bogus": 1}])
    assert not run.done(**POINTS[0]) and run.points == 0
    assert not (tmp_path / "results.csv").exists()


def test_resume_and_interrupt_lines(tmp_path, capsys):
    values = {0: 0.9, 1: 0.8, 2: 0.7, 3: 0.6}
    with pytest.raises(KeyboardInterrupt), RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS) as run:
        run.expect(len(POINTS))
        _measure_all(run, values, interrupt_at=2)
    assert interruption_line().startswith("interrupted after 2 of 4 points; rerun the same")
    assert capsys.readouterr().err == ""  # a fresh run says nothing
    with RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS) as run:
        run.expect(len(POINTS))
        run.expect(1)  # the first announcement wins (an outer study's total)
        _measure_all(run, values)
    err = capsys.readouterr().err
    assert err.count("resuming: 2 of 4 points already done") == 1


def test_legacy_torn_directory_is_taken_over(tmp_path, capsys):
    """A results.csv of an older version (CRLF, no journal) cut mid-row, and a next row
    glued onto the torn one: complete rows are kept, the rest dropped and said."""
    header = ",".join(COLUMNS)
    text = f"{header}\r\nm,0,1.0,accuracy,0.9\r\nm,0,3600.0,accu" + "m,1,1.0,accuracy,0.7\r\n"
    (tmp_path / "results.csv").write_bytes(text.encode())
    run = RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS)
    assert "dropped 1 incomplete row" in capsys.readouterr().err
    assert [run.done(**p) for p in POINTS] == [True, False, False, False]
    assert (tmp_path / "results.csv").read_bytes() == f"{header}\nm,0,1.0,accuracy,0.9\n".encode()


def test_damaged_manifest_and_journal_are_named(tmp_path):
    with RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS) as run:
        _measure(run, POINTS[0], 0.5)
    good = (tmp_path / "manifest.json").read_text()
    (tmp_path / "manifest.json").write_text(good[:40])
    with pytest.raises(ConfigError, match="damaged") as info:
        RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS)
    assert str(tmp_path / "manifest.json") in str(info.value)
    assert "delete manifest.json" in str(info.value)
    (tmp_path / "manifest.json").write_text(good)
    (tmp_path / JOURNAL).write_bytes(b"garbage" * 200)
    with pytest.raises(ConfigError, match="journal of finished points is damaged"):
        RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS)


def test_edited_results_csv_is_kept_aside(tmp_path, capsys):
    with RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS) as run:
        _measure(run, POINTS[0], 0.5)
    edited = (tmp_path / "results.csv").read_text().replace("0.5", "0.55")
    (tmp_path / "results.csv").write_text(edited)
    RunDir(tmp_path, "eval", CONFIG, COLUMNS, KEYS).finish()
    assert "results.csv.edited" in capsys.readouterr().err
    assert (tmp_path / "results.csv.edited").read_text() == edited
    assert read_results(tmp_path)[0]["value"] == "0.5"
