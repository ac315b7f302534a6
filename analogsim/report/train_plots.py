"""Plots of training runs and robustness comparisons, drawn from saved rows (CSV).

Drawing only; figures are made and written with :mod:`analogsim.report.figure`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analogsim.report.figure import (
    colour_cycle,
    finish_axes,
    finite,
    new_figure,
    save_figure,
    time_axis,
)


def _f(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def plot_training(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Training loss against step (and every other logged metric on a second panel)."""
    metrics = sorted({r["metric"] for r in rows})
    others = [m for m in metrics if m != "loss"]
    fig, axes = new_figure((6.5 * (1 + bool(others)), 4), nrows=1, ncols=1 + bool(others))
    axes = [axes] if not others else list(axes)
    loss = sorted((_f(r["step"]), _f(r["value"])) for r in rows if r["metric"] == "loss")
    if loss:
        axes[0].plot([s for s, _ in loss], [v for _, v in loss], lw=1)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("training loss")
    axes[0].grid(alpha=0.3)
    if others:
        for m in others:
            pts = sorted((_f(r["step"]), _f(r["value"])) for r in rows if r["metric"] == m)
            axes[1].plot([s for s, _ in pts], [v for _, v in pts], "o-", label=m)
        axes[1].set_xlabel("step")
        axes[1].legend(fontsize=8)
        axes[1].grid(alpha=0.3)
    fig.suptitle(title or "training")
    return save_figure(fig, path)


def plot_learned_sigma(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Learned noise sigma per layer against step (band: min..max over channels)."""
    fig, ax = new_figure(figsize=(7, 4.3))
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[r["layer"]].append(r)
    for layer, sel in sorted(by.items()):
        sel.sort(key=lambda r: _f(r["step"]))
        x = [_f(r["step"]) for r in sel]
        ax.plot(x, [_f(r["sigma_mean"]) for r in sel], label=layer)
        lo = [_f(r["sigma_min"]) for r in sel]
        hi = [_f(r["sigma_max"]) for r in sel]
        if any(a != b for a, b in zip(lo, hi, strict=True)):
            ax.fill_between(x, lo, hi, alpha=0.15)
    ax.set_xlabel("step")
    finish_axes(
        ax,
        ylabel="learned sigma",
        title=title or "learned noise over training",
        grid="major",
        legend=7,
    )
    return save_figure(fig, path)


def plot_robustness_time(
    summary: Sequence[dict[str, Any]],
    path: str | Path,
    *,
    metric: str,
    digital: dict[str, float] | None = None,
    title: str = "",
    log_y: bool = False,
) -> Path:
    """Mean metric (error bars: std over seeds) against deployment time; a line per method
    and temperature; dashed lines: each method's digital score."""
    fig, ax = new_figure(figsize=(7.5, 4.8))
    colors = colour_cycle()
    styles = ["-", "--", ":", "-."]
    methods = sorted({r["method"] for r in summary})
    temps = sorted({_f(r["temperature_K"]) for r in summary})
    for mi, meth in enumerate(methods):
        for ti, temp in enumerate(temps):
            sel = sorted(
                (
                    r
                    for r in summary
                    if r["method"] == meth
                    and _f(r["temperature_K"]) == temp
                    and r["metric"] == metric
                ),
                key=lambda r: _f(r["time_s"]),
            )
            if not sel:
                continue
            x = [max(_f(r["time_s"]), 0.5) for r in sel]
            y = finite(_f(r["mean"]) for r in sel)
            e = finite((_f(r["std"]) for r in sel), missing=0.0)
            ax.errorbar(
                x,
                y,
                yerr=e,
                fmt=styles[ti % 4] + "o",
                color=colors[mi % len(colors)],
                capsize=3,
                label=f"{meth} @ {temp:g} K",
            )
        if digital and meth in digital and math.isfinite(digital[meth]):
            ax.axhline(digital[meth], color=colors[mi % len(colors)], lw=0.8, ls="--")
    time_axis(ax, [max(_f(r["time_s"]), 0.5) for r in summary])
    finish_axes(ax, ylabel=metric, title=title or f"{metric} over deployment time", log_y=log_y)
    return save_figure(fig, path)


def plot_robustness_sigma(
    summary: Sequence[dict[str, Any]],
    path: str | Path,
    *,
    metric: str,
    title: str = "",
    log_y: bool = False,
) -> Path:
    """Mean metric (band: +-std over seeds) against statistical weight-noise sigma."""
    fig, ax = new_figure(figsize=(7, 4.5))
    for meth in sorted({r["method"] for r in summary}):
        sel = sorted(
            (r for r in summary if r["method"] == meth and r["metric"] == metric),
            key=lambda r: _f(r["sigma"]),
        )
        x = [_f(r["sigma"]) for r in sel]
        m = finite(_f(r["mean"]) for r in sel)
        s = finite((_f(r["std"]) for r in sel), missing=0.0)
        (line,) = ax.plot(x, m, "o-", label=meth)
        ax.fill_between(
            x,
            [a - b for a, b in zip(m, s, strict=True)],
            [a + b for a, b in zip(m, s, strict=True)],
            alpha=0.15,
            color=line.get_color(),
        )
    ax.set_xlabel("weight-noise sigma")
    finish_axes(
        ax,
        ylabel=metric,
        title=title or f"{metric} against weight noise",
        log_y=log_y,
        grid="major",
    )
    return save_figure(fig, path)


__all__ = [
    "plot_learned_sigma",
    "plot_robustness_sigma",
    "plot_robustness_time",
    "plot_training",
]
