"""Plots of a clocked run's trace (``analogsim/report/trace_plots.py``), from hand-made
trace files with and without a cliff, faults and sigma."""

from __future__ import annotations

import math

from analogsim.report.rundir import write_csv
from analogsim.report.trace_plots import plot_stream_trace, plot_trace

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    data = path.read_bytes()
    return data[:8] == PNG and len(data) > 1000


def _gen_trace(path, n=30, *, sigma=False, faults=True):
    cols = [
        "token_index",
        "time_s",
        "temperature_K",
        "logprob",
        "entropy_bits",
        "digital_logprob",
        "digital_entropy_bits",
        "sigma",
        "weight_error_mlp",
        "faults_so_far",
        "updated",
    ]
    rows = [
        {
            "token_index": k,
            "time_s": 3600.0 * 24 * k,
            "temperature_K": 300.0 + 10 * math.sin(k),
            "logprob": -1.0 + (0.1 * k if k > 20 else 0.0),
            "entropy_bits": 2.0,
            "digital_logprob": -1.0 if k != 3 else math.nan,
            "digital_entropy_bits": 2.1,
            "sigma": 0.001 * k if sigma else None,
            "weight_error_mlp": 0.01 * k,
            "faults_so_far": k if faults else None,
            "updated": k % 5 == 0,
        }
        for k in range(n)
    ]
    write_csv(path, rows, cols)
    return path


def test_plot_trace_with_and_without_a_cliff(tmp_path):
    trace = _gen_trace(tmp_path / "trace.csv")
    cliff = {
        "alarm_index": 25,
        "onset_index": 21,
        "rolling_gap": [0.0] * 21 + [0.5] * 9,
    }
    paths = plot_trace(trace, tmp_path / "a", cliff=cliff, title="toy")
    names = ["temperature_time.png", "logprob.png", "entropy.png", "weight_error.png"]
    assert [p.name for p in paths] == names
    assert all(_is_png(p) for p in paths)
    paths = plot_trace(_gen_trace(tmp_path / "t2.csv", sigma=True), tmp_path / "b")
    assert all(_is_png(p) for p in paths)


def test_plot_trace_of_an_empty_trace(tmp_path):
    paths = plot_trace(_gen_trace(tmp_path / "trace.csv", n=0), tmp_path)
    assert len(paths) == 4 and all(p.exists() for p in paths)


def test_plot_stream_trace(tmp_path):
    cols = ["time_s", "temperature_K", "rolling_accuracy", "weight_error_mlp"]
    rows = [
        {
            "time_s": 3600.0 * i,
            "temperature_K": 300.0,
            "rolling_accuracy": 1.0 - 0.01 * i,
            "weight_error_mlp": 0.001 * i,
        }
        for i in range(40)
    ]
    write_csv(tmp_path / "trace.csv", rows, cols)
    paths = plot_stream_trace(
        tmp_path / "trace.csv",
        tmp_path,
        digital_accuracy=0.98,
        digital_rolling=[1.0] * 40,
        title="toy",
    )
    assert [p.name for p in paths] == ["accuracy_vs_time.png", "weight_error.png"]
    assert all(_is_png(p) for p in paths)
    # no weight-error columns (a digital run): one plot
    write_csv(tmp_path / "d.csv", rows, cols[:3])
    assert len(plot_stream_trace(tmp_path / "d.csv", tmp_path / "d")) == 1
