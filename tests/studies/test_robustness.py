"""Tests for analogsim.studies.robustness: noise on at inference, A*, AUC, resume."""

from __future__ import annotations

import math

import pytest

from analogsim.report.rundir import RunDir
from analogsim.studies.robustness import (
    ROB_COLUMNS,
    ROB_KEYS,
    auc_linear,
    auc_log_time,
    json_rows,
    normalized_accuracy,
    robustness,
    summarize_robustness,
    write_plots,
)


def test_normalized_accuracy() -> None:
    assert normalized_accuracy(0.95, 0.97) == pytest.approx(0.95 / 0.97)
    assert normalized_accuracy(0.55, 0.91, chance=0.1) == pytest.approx(0.45 / 0.81)
    assert math.isnan(normalized_accuracy(0.5, 0.1, chance=0.1))


def test_auc_is_the_mean_over_log_time() -> None:
    # linear in log10 t from 1 s (1.0) to 1e4 s (0.6): mean 0.8
    assert auc_log_time([1, 10, 100, 1e4], [1.0, 0.9, 0.8, 0.6]) == pytest.approx(0.8)
    assert auc_log_time([0, 1, 100], [5.0, 1.0, 3.0]) == pytest.approx(2.0)  # t = 0 skipped
    assert auc_log_time([3600], [0.7]) == 0.7
    assert auc_log_time([1, 10], [1.0, math.inf]) == math.inf
    assert auc_linear([0, 0.02, 0.04], [1.0, 0.8, 0.8]) == pytest.approx(0.85)


def _rows() -> list[dict]:
    rows = [
        {
            "method": "plain",
            "axis": "digital",
            "seed": -1,
            "time_s": 0.0,
            "metric": "accuracy",
            "value": 0.9,
        },
        {
            "method": "hwa",
            "axis": "digital",
            "seed": -1,
            "time_s": 0.0,
            "metric": "accuracy",
            "value": 0.8,
        },
    ]
    for meth, vals in (("plain", [0.81, 0.72]), ("hwa", [0.9, 0.9])):
        for seed, v in enumerate(vals):
            for t, scale in ((1.0, 1.0), (100.0, 0.5)):
                rows.append(
                    {
                        "method": meth,
                        "axis": "time",
                        "seed": seed,
                        "time_s": t,
                        "temperature_K": 300.0,
                        "metric": "accuracy",
                        "value": v * scale,
                    }
                )
    return rows


def test_summary_normalises_by_the_plain_reference() -> None:
    res = summarize_robustness(_rows(), metric="accuracy", higher_is_better=True)
    assert res["reference"] == "plain"
    by = {(r["method"], r["time_s"], r["metric"]): r for r in res["summary"]}
    a = by[("plain", 1.0, "a_star")]
    assert a["mean"] == pytest.approx((0.81 + 0.72) / 2 / 0.9)
    assert a["std"] == pytest.approx(abs(0.81 - 0.72) / 0.9 / math.sqrt(2))
    assert by[("hwa", 1.0, "a_star")]["mean"] == pytest.approx(1.0)  # 0.9 / plain's 0.9
    auc = by[("hwa", None, "auc_accuracy")]
    assert auc["mean"] == pytest.approx((0.9 + 0.45) / 2)
    diff = by[("hwa", 1.0, "diff_accuracy_vs_plain")]  # paired per seed
    assert diff["mean"] == pytest.approx(((0.9 - 0.81) + (0.9 - 0.72)) / 2)
    assert diff["n"] == 2
    own = summarize_robustness(_rows(), metric="accuracy", higher_is_better=True, reference="hwa")
    assert own["reference"] == "hwa"


@pytest.fixture(scope="module")
def checkpoints(digits_runs) -> dict[str, str]:
    return {m: str(r.checkpoint) for m, r in digits_runs.items()}


def test_noise_is_on_at_inference_and_off_for_the_digital_model(checkpoints, tmp_path) -> None:
    config = {"t": 1}
    with RunDir(tmp_path / "rob", "robustness", config, ROB_COLUMNS, ROB_KEYS) as run:
        res = robustness(
            [checkpoints["plain"], checkpoints["hwa"]],
            times=[1.0, 86400.0],
            seeds=3,
            sigmas=[0.0, 0.05],
            run=run,
            progress=False,
        )
    assert res["mapping"] == "all_analog" and res["device"] == "pcm"  # from the sidecar
    time_rows = [r for r in res["rows"] if r["axis"] == "time"]
    assert len(time_rows) == 2 * 2 * 3
    # the chip perturbs in eval mode: per-seed values differ
    vals = {float(r["value"]) for r in time_rows if r["method"] == "plain"}
    assert len(vals) > 1
    # sigma = 0 is the digital model, identical for every seed (no noise where none is asked)
    zero = [
        float(r["value"])
        for r in res["rows"]
        if r["axis"] == "sigma" and float(r["sigma"]) == 0.0 and r["method"] == "plain"
    ]
    assert (
        len(zero) == 3 and len(set(zero)) == 1 and zero[0] == pytest.approx(res["digital"]["plain"])
    )
    rows = json_rows(res)
    assert all(
        {"method", "time_s", "temperature_K", "metric", "mean", "std"} <= set(r) for r in rows
    )
    assert {r["metric"] for r in rows} >= {
        "accuracy",
        "a_star",
        "auc_accuracy",
        "auc_sigma_accuracy",
    }
    paths = write_plots(res, tmp_path)
    assert {p.name for p in paths} == {
        "accuracy_vs_time.png",
        "a_star_vs_time.png",
        "accuracy_vs_sigma.png",
    }
    # resume: the same run directory has every point; nothing is measured again
    with RunDir(tmp_path / "rob", "robustness", config, ROB_COLUMNS, ROB_KEYS) as run2:
        n = len(run2.rows)
        again = robustness(
            [checkpoints["plain"], checkpoints["hwa"]],
            times=[1.0, 86400.0],
            seeds=3,
            sigmas=[0.0, 0.05],
            run=run2,
            progress=False,
        )
        assert len(run2.rows) == n
    assert json_rows(again) == rows
