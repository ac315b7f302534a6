"""Plots (``analogsim/report/plots.py``) from hand-made tidy rows, non-finite values included."""

from __future__ import annotations

import itertools
import math

import pytest

from analogsim.report.plots import (
    log_ticks,
    plot_datasheet,
    plot_metric_vs_time,
    plot_quality_vs_energy,
    plot_sweep,
)

PNG = b"\x89PNG\r\n\x1a\n"
INF, NAN = math.inf, math.nan


def _is_png(path) -> bool:
    data = path.read_bytes()
    return data[:8] == PNG and len(data) > 1000


def test_plot_datasheet(tmp_path):
    rows = [
        dict(g_rel=g, time_s=t, temperature_K=temp, mean=m, std=0.05, p01=m - 0.1, p99=m + 0.1)
        for g in (0.5, 1.0)
        for temp in (300.0, 358.15)
        for t, m in ((0.0, 1.0), (3600.0, 0.8), (3.15e7, 0.5))
    ]
    out = plot_datasheet(rows, tmp_path / "ds.png", title="pcm")
    assert out == tmp_path / "ds.png" and _is_png(out)


def test_plot_datasheet_without_percentiles_and_with_nan(tmp_path):
    rows = [
        dict(g_rel="1.0", time_s="1.0", temperature_K="300", mean="0.9", std="0.1"),
        dict(g_rel="1.0", time_s="3600.0", temperature_K="300", mean="nan", std="nan"),
        dict(g_rel="1.0", time_s="3.15e7", temperature_K="300", mean="inf", std="inf"),
    ]
    assert _is_png(plot_datasheet(rows, tmp_path / "ds.png"))


def _summary(mapping, temp, means, stds=None, energy=1e-9, vary=""):
    times = (1.0, 3600.0, 86400.0)
    stds = stds or [0.01] * len(means)
    return [
        dict(
            mapping=mapping,
            device="pcm",
            vary=vary,
            time_s=t,
            temperature_K=temp,
            metric="perplexity",
            mean=m,
            std=s,
            n=2,
            energy_per_token_J=energy,
        )
        for t, m, s in zip(times, means, stds, strict=True)
    ]


@pytest.mark.parametrize("log_y", [False, True])
def test_plot_metric_vs_time_with_inf_and_nan(tmp_path, log_y):
    summary = (
        _summary("all_analog", 300.0, [20.0, 25.0, INF], [1.0, 2.0, NAN])
        + _summary("all_analog", 358.15, [21.0, NAN, INF], [0.0, NAN, 0.0])
        + _summary("all_digital", 300.0, [18.0, 18.0, 18.0])
        + [
            dict(
                mapping="x",
                device="",
                time_s=5.0,
                temperature_K=300.0,
                metric="other",
                mean=1.0,
                std=0.0,
            )
        ]
    )
    out = plot_metric_vs_time(
        summary, tmp_path / "t.png", metric="perplexity", baseline=18.0, log_y=log_y
    )
    assert _is_png(out)


@pytest.mark.filterwarnings("ignore:No artists with labels found")
def test_plot_metric_vs_time_edge_inputs(tmp_path):
    # a zero time (drawn at 0.5 s), a non-finite baseline, rows read back from CSV (strings)
    summary = [
        dict(
            mapping="m",
            device="d",
            time_s="0.0",
            temperature_K="300.0",
            metric="accuracy",
            mean="0.9",
            std="0.0",
        ),
        dict(
            mapping="m",
            device="d",
            time_s="3600.0",
            temperature_K="300.0",
            metric="accuracy",
            mean="0.8",
            std="0.05",
        ),
    ]
    assert _is_png(
        plot_metric_vs_time(summary, tmp_path / "a.png", metric="accuracy", baseline=INF)
    )
    assert _is_png(plot_metric_vs_time([], tmp_path / "empty.png", metric="accuracy"))


@pytest.mark.parametrize("log_y", [False, True])
def test_plot_sweep_with_inf_and_crossings(tmp_path, log_y):
    summary = [
        dict(sigma=s, metric="perplexity", mean=m, std=sd, min=lo, max=hi, n=3)
        for s, m, sd, lo, hi in (
            (0.0, 20.0, 0.0, 20.0, 20.0),
            (0.05, 40.0, 5.0, 35.0, 46.0),
            (0.1, INF, NAN, 300.0, INF),
            (0.15, NAN, NAN, NAN, NAN),
        )
    ]
    crossings = [
        {"threshold": "2x baseline", "level": 40.0, "sigma": 0.05},
        {"threshold": "perplexity >= 1e4", "level": 1e4, "sigma": None},
    ]
    out = plot_sweep(
        summary,
        tmp_path / "s.png",
        metric="perplexity",
        baseline=20.0,
        crossings=crossings,
        log_y=log_y,
    )
    assert _is_png(out)


def test_plot_quality_vs_energy_with_inf_nan_and_missing_energy(tmp_path):
    summary = (
        _summary(
            "all_analog", 300.0, [20.0, 25.0, INF], [1.0, INF, NAN], energy=1e-9, vary="adc_bits=4"
        )
        + _summary("all_analog", 358.15, [21.0, NAN, INF], energy=1e-9, vary="adc_bits=4")
        + _summary("all_digital", 300.0, [18.0, 18.0, 18.0], energy=7e-8)
        + _summary("all_digital", 358.15, [18.0, 18.0, 18.0], energy=None)
    )
    out = plot_quality_vs_energy(
        summary, tmp_path / "e.png", metric="perplexity", baseline=18.0, log_y=True
    )
    assert _is_png(out)


@pytest.mark.filterwarnings("ignore:No artists with labels found")
def test_plot_quality_vs_energy_empty(tmp_path):
    assert _is_png(plot_quality_vs_energy([], tmp_path / "e.png", metric="accuracy"))


# ---------------------------------------------------------------------------- log ticks
def _label_overlaps(ax, axis: str = "x") -> tuple[int, list[tuple[str, str]]]:
    """Number of tick labels in view on ``ax``'s axis and the neighbouring pairs whose
    drawn boxes overlap."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax_obj = ax.xaxis if axis == "x" else ax.yaxis
    lo, hi = sorted(ax_obj.get_view_interval())
    ticks = [*ax_obj.get_major_ticks(), *ax_obj.get_minor_ticks()]
    boxes = []
    for tick in ticks:
        label = tick.label1
        if lo <= tick.get_loc() <= hi and label.get_visible() and label.get_text():
            boxes.append((label.get_window_extent(renderer), label.get_text()))
    lower, upper = ("x0", "x1") if axis == "x" else ("y0", "y1")
    boxes.sort(key=lambda b: getattr(b[0], lower))
    pairs = itertools.pairwise(boxes)
    bad = [(a[1], b[1]) for a, b in pairs if getattr(a[0], upper) > getattr(b[0], lower)]
    return len(boxes), bad


@pytest.mark.parametrize("lo", [1e-3, 3.16e-3, 3.16e-2, 0.1, 0.316])
@pytest.mark.parametrize("ratio", [1.05, 1.5, 3.0, 9.0, 15.0, 30.0, 1e4])
def test_energy_axis_tick_labels_never_overlap(tmp_path, monkeypatch, lo, ratio):
    """The energy axis of plot_quality_vs_energy (log x) has 2 to 6 labels that never
    overlap, whatever the span (matplotlib's own minor labels overlapped around a
    decade, e.g. 3x10^-2 and 4x10^-2)."""
    import analogsim.report.plots as plots

    figures = []
    real_save = plots.save_figure
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig) or path)
    summary = _summary("all_analog", 300.0, [20.0, 30.0, 40.0], energy=lo * 1e-6)
    summary += _summary("all_digital", 300.0, [18.0, 19.0, 21.0], energy=lo * ratio * 1e-6)
    plots.plot_quality_vs_energy(summary, tmp_path / "e.png", metric="perplexity", log_y=True)
    (fig,) = figures
    ax = fig.axes[0]
    n, bad = _label_overlaps(ax, "x")
    assert 2 <= n <= 6 and not bad, (n, bad)
    assert not _label_overlaps(ax, "y")[1]
    real_save(fig, tmp_path / "e.png")


@pytest.mark.parametrize(
    ("lo", "hi", "ticks"),
    [
        (1e-6, 1e3, [1e-6, 1e-4, 1e-2, 1.0, 100.0]),  # decades, thinned to at most 6
        (0.00108, 0.0687, [0.003, 0.01, 0.03]),  # 1-3 steps
        (0.3, 0.9, [0.3, 0.4, 0.5, 0.6, 0.8]),  # fine steps below a decade
        (0.1, 1.0, [0.1, 0.3, 1.0]),
    ],
)
def test_log_ticks(lo, hi, ticks):
    assert log_ticks(lo, hi) == pytest.approx(ticks)


@pytest.mark.parametrize(("lo", "hi"), [(0.2, 0.21), (5.0, 5.0001), (1.0, 1.0 + 1e-9)])
def test_log_ticks_of_a_narrow_range_are_distinct_and_inside(lo, hi):
    t = log_ticks(lo, hi)
    assert (len(t) >= 2 and len(set(t)) == len(t)) or len(t) >= 1
    assert all(lo * 0.99 <= x <= hi * 1.01 for x in t)


@pytest.mark.parametrize(("lo", "hi"), [(0.0, 1.0), (-1.0, 1.0), (1.0, 1.0), (1.0, math.inf)])
def test_log_ticks_of_no_log_range_is_empty(lo, hi):
    assert log_ticks(lo, hi) == []
