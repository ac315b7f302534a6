"""Plots drawn from tidy result rows (so they can be redrawn from results.csv)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from analogsim.report.figure import (
    colour_cycle,
    finish_axes,
    finite,
    new_figure,
    save_figure,
    time_axis,
)
from analogsim.units import format_time

_STYLES = ["-", "--", ":", "-."]


def _f(x: Any) -> float:
    return float(x)


def _x(t: float) -> float:
    # time 0 cannot sit on a log axis: draw it at 0.5 s and label it
    return t if t > 0 else 0.5


#: Tick candidates per decade on a log axis, from the sparsest: the first that gives at
#: least three ticks in view is used (thinned to at most ``max_ticks``).
_LOG_SUBS = ((1.0,), (1.0, 3.0), (1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0))


def log_ticks(lo: float, hi: float, max_ticks: int = 6) -> list[float]:
    """At most ``max_ticks`` round tick positions on a log axis from ``lo`` to ``hi``
    (both > 0): decades when the range spans several, else 1-3, 1-2-5 or finer steps, so
    that labels never crowd (matplotlib's own minor labels ``2x10^-1, 3x10^-1 ...``
    overlap on ranges of about a decade)."""
    if not (0 < lo < hi and math.isfinite(hi)):
        return []
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    inside = (lo * (1 - 1e-9), hi * (1 + 1e-9))
    ticks: list[float] = []
    for subs in _LOG_SUBS:
        ticks = [float(f"{s * 10.0**k:.3g}") for k in decades for s in subs]
        ticks = [t for t in ticks if inside[0] <= t <= inside[1]]
        if len(ticks) >= 3:
            break
    if len(ticks) > max_ticks:
        ticks = ticks[:: math.ceil(len(ticks) / max_ticks)]
    for digits in (2, 3, 4, 6):  # a range narrower than the finest steps: three inside it
        if len(ticks) >= 2:
            break
        ticks = sorted({float(f"{lo * (hi / lo) ** f:.{digits}g}") for f in (0.1, 0.5, 0.9)})
    return ticks


def log_axis_ticks(axis: Any, max_ticks: int = 6) -> None:
    """Tick a log ``axis`` (``ax.xaxis``) at :func:`log_ticks` of its current view, labelled
    as plain numbers (``0.002``, ``0.5``, ``20``), without minor labels. Call it after
    the data are drawn."""
    lo, hi = sorted(axis.get_view_interval())
    ticks = log_ticks(lo, hi, max_ticks)
    if ticks:
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:.3g}"))
        axis.set_minor_formatter(NullFormatter())


def _baseline(ax, value: float | None, name: str) -> None:
    """A dashed black line at the reference score ``value`` (when finite), labelled
    ``name`` and the value."""
    if value is not None and math.isfinite(value):
        ax.axhline(value, color="black", lw=1, ls="--", label=f"{name} {value:.4g}")


def plot_datasheet(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Mean G/G_target (band: 1st-99th percentile, else +-1 std) against time; colour per level, style per T."""
    fig, ax = new_figure(figsize=(7, 4.5))
    levels = sorted({_f(r["g_rel"]) for r in rows})
    temps = sorted({_f(r["temperature_K"]) for r in rows})
    colors = colour_cycle()
    for i, g in enumerate(levels):
        for j, temp in enumerate(temps):
            sel = sorted(
                (r for r in rows if _f(r["g_rel"]) == g and _f(r["temperature_K"]) == temp),
                key=lambda r: _f(r["time_s"]),
            )
            x = [_x(_f(r["time_s"])) for r in sel]
            m = [_f(r["mean"]) for r in sel]
            if all("p01" in r and "p99" in r for r in sel):
                lo = [_f(r["p01"]) for r in sel]
                hi = [_f(r["p99"]) for r in sel]
            else:
                lo = [_f(r["mean"]) - _f(r["std"]) for r in sel]
                hi = [_f(r["mean"]) + _f(r["std"]) for r in sel]
            c = colors[i % len(colors)]
            ax.plot(x, m, _STYLES[j % 4], color=c, marker="o", label=f"g={g:g}, {temp:g} K")
            ax.fill_between(x, lo, hi, color=c, alpha=0.12)
    time_axis(ax, [_x(_f(r["time_s"])) for r in rows])
    ax.set_ylabel("G(t, T) / G_target")
    ax.axhline(1.0, color="grey", lw=0.6)
    ax.set_title(title or "device datasheet")
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3, which="both")
    return save_figure(fig, path)


def plot_metric_vs_time(
    summary: Sequence[dict[str, Any]],
    path: str | Path,
    *,
    metric: str,
    series: Sequence[str] = ("mapping", "device"),
    baseline: float | None = None,
    title: str = "",
    log_y: bool = False,
) -> Path:
    """Mean metric (error bars: std over seeds) against time; a line per series and T."""
    fig, ax = new_figure(figsize=(7.5, 4.8))
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in summary:
        if r.get("metric", metric) != metric:
            continue
        groups[(*(r.get(s, "") for s in series), _f(r["temperature_K"]))].append(r)
    temps = sorted({k[-1] for k in groups})
    names = sorted({k[:-1] for k in groups})
    colors = colour_cycle()
    for key, sel in sorted(groups.items()):
        sel.sort(key=lambda r: _f(r["time_s"]))
        ci = names.index(key[:-1])
        si = temps.index(key[-1])
        x = [_x(_f(r["time_s"])) for r in sel]
        y = [_f(r["mean"]) for r in sel]
        e = [_f(r["std"]) for r in sel]
        y_plot = finite(y)
        label = " / ".join(str(k) for k in key[:-1] if str(k)) + f" @ {key[-1]:g} K"
        ax.errorbar(
            x,
            y_plot,
            yerr=e,
            fmt=_STYLES[si % 4] + "o",
            color=colors[ci % len(colors)],
            capsize=3,
            label=label,
        )
    _baseline(ax, baseline, "digital")
    time_axis(ax, [_x(_f(r["time_s"])) for r in summary])
    finish_axes(ax, ylabel=metric, title=title or f"{metric} over deployment time", log_y=log_y)
    return save_figure(fig, path)


def plot_sweep(
    summary: Sequence[dict[str, Any]],
    path: str | Path,
    *,
    metric: str,
    baseline: float | None = None,
    crossings: Sequence[dict[str, Any]] = (),
    title: str = "",
    log_y: bool = False,
) -> Path:
    """Mean metric against sigma with the min..max band over seeds and threshold crossings."""
    rows = sorted((r for r in summary if r["metric"] == metric), key=lambda r: _f(r["sigma"]))
    fig, ax = new_figure(figsize=(7, 4.5))
    x = [_f(r["sigma"]) for r in rows]
    m = finite(_f(r["mean"]) for r in rows)
    lo = finite(_f(r["min"]) for r in rows)
    hi = finite(_f(r["max"]) for r in rows)
    ax.plot(x, m, "o-", label="mean over seeds")
    ax.fill_between(x, lo, hi, alpha=0.2, label="min..max")
    _baseline(ax, baseline, "no noise")
    for c in crossings:
        if c.get("sigma") is not None:
            ax.axvline(c["sigma"], color="red", ls=":", lw=1)
            ax.annotate(
                f"{c['threshold']}\nsigma={c['sigma']:.3g}",
                (c["sigma"], c["level"]),
                fontsize=7,
                color="red",
            )
    ax.set_xlabel("sigma")
    finish_axes(ax, ylabel=metric, title=title or f"{metric} against weight noise", log_y=log_y)
    return save_figure(fig, path)


def plot_quality_vs_energy(
    summary: Sequence[dict[str, Any]],
    path: str | Path,
    *,
    metric: str,
    baseline: float | None = None,
    title: str = "",
    log_y: bool = False,
) -> Path:
    """Metric against energy per token, one panel per temperature, one marker per time."""
    temps = sorted({_f(r["temperature_K"]) for r in summary if r["metric"] == metric})
    times = sorted({_f(r["time_s"]) for r in summary if r["metric"] == metric})
    fig, axes = new_figure(
        (5.5 * max(1, len(temps)), 4.5), nrows=1, ncols=max(1, len(temps)), squeeze=False
    )
    markers = ["o", "s", "^", "D", "v", "P", "X", "*"]
    for ax, temp in zip(axes[0], temps, strict=False):
        for i, t in enumerate(times):
            sel = [
                r
                for r in summary
                if r["metric"] == metric
                and _f(r["temperature_K"]) == temp
                and _f(r["time_s"]) == t
                and r.get("energy_per_token_J") is not None
            ]
            xs = [_f(r["energy_per_token_J"]) * 1e6 for r in sel]
            ys = finite(_f(r["mean"]) for r in sel)
            es = finite((_f(r["std"]) for r in sel), missing=0.0)
            ax.errorbar(
                xs,
                ys,
                yerr=es,
                fmt=markers[i % len(markers)],
                capsize=3,
                label=f"t = {format_time(t)}",
                alpha=0.8,
            )
            if i == len(times) - 1:
                for r, x, y in zip(sel, xs, ys, strict=True):
                    name = r["mapping"] + (f" [{r['vary']}]" if r.get("vary") else "")
                    ax.annotate(name, (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
        _baseline(ax, baseline, "digital")
        ax.set_xscale("log")
        ax.set_xlabel("energy per token (uJ, estimate)")
        finish_axes(ax, ylabel=metric, title=f"{temp:g} K", log_y=log_y, legend=7)
        log_axis_ticks(ax.xaxis)
        if log_y:
            log_axis_ticks(ax.yaxis)
    fig.suptitle(title or f"{metric} against energy per token")
    return save_figure(fig, path)
