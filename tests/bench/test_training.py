"""Tests for analogsim.bench.training: the training-step benchmark rows."""

from __future__ import annotations

from analogsim.bench.run import BENCH_COLUMNS
from analogsim.bench.training import bench_training_step


def test_bench_rows_have_the_make_bench_columns() -> None:
    rows = bench_training_step(["wide-mlp"], quick=True, rounds=2, engines=("surrogate",))
    assert [r["engine"] for r in rows] == ["plain", "hwa-surrogate", "learned-noise"]
    for r in rows:
        assert list(r) == BENCH_COLUMNS
        assert r["regime"] == "train-step" and r["median_ms"] > 0
        assert abs(r["ratio"] - r["median_ms"] / r["digital_ms"]) < 1e-9
    assert rows[0]["ratio"] == 1.0
