"""Tests of ``analogsim train`` and ``analogsim robustness`` (``analogsim/cli/train.py``)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from analogsim.cli import app

runner = CliRunner()


def test_train_then_robustness(tmp_path, digits_runs) -> None:
    out = tmp_path / "hwa"
    r = runner.invoke(
        app,
        [
            "train",
            "digits-mlp",
            "--mapping",
            "all_analog",
            "--device",
            "pcm",
            "--method",
            "hwa",
            "--epochs",
            "1",
            "--train-times",
            "1h:1d",
            "--train-temperature",
            "300K",
            "--out",
            str(out),
            "--json",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert info["method"] == "hwa" and (out / "checkpoint" / "analogsim.json").is_file()
    side = json.loads((out / "checkpoint" / "analogsim.json").read_text())
    assert side["train"]["hwa"]["temperature_max_K"] == 300.0
    assert side["train"]["hwa"]["t_max_s"] == 86400.0
    plain = digits_runs["plain"].checkpoint
    r = runner.invoke(
        app,
        [
            "robustness",
            str(plain),
            str(out / "checkpoint"),
            "--times",
            "1h,1d",
            "--temperature",
            "300K",
            "--seeds",
            "2",
            "--sigma",
            "0,0.05",
            "--out",
            str(tmp_path / "rob"),
            "--json",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    keys = {"method", "time_s", "temperature_K", "metric", "mean", "std"}
    assert rows and all(keys <= set(row) for row in rows)
    acc = [row for row in rows if row["metric"] == "accuracy" and row["time_s"] == 86400.0]
    assert {row["method"] for row in acc} == {"plain", "hwa"}
    assert (tmp_path / "rob" / "accuracy_vs_time.png").is_file()
    assert (tmp_path / "rob" / "a_star_vs_time.png").is_file()
    # the table view
    r = runner.invoke(
        app,
        [
            "robustness",
            str(plain),
            "--times",
            "1h",
            "--seeds",
            "1",
            "--no-progress",
            "--out",
            str(tmp_path / "rob2"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "A*" in r.output and "plain" in r.output


def test_bad_method_is_one_clear_error(tmp_path) -> None:
    r = runner.invoke(app, ["train", "digits-mlp", "--method", "magic", "--out", str(tmp_path)])
    assert r.exit_code != 0
    assert "unknown training method" in str(r.exception) or "unknown training method" in r.output


def test_robustness_refuses_a_folder_that_is_no_checkpoint(tmp_path) -> None:
    r = runner.invoke(app, ["robustness", str(tmp_path), "--no-progress"])
    assert r.exit_code != 0
    assert "not an analogsim checkpoint" in str(r.exception) + r.output
