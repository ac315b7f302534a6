"""Plots of ``analogsim attribute``: the places x effects heat map and the ranked bars.

Both draw what :func:`analogsim.studies.attribute.attribution_summary` computed (costs
against the digital model); nothing is measured here. A cost is ``value / digital - 1``
for perplexity (drawn as the ratio to digital on a log colour scale) and ``digital -
value`` for accuracy-like metrics (drawn as the drop on a linear scale).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps

from analogsim.report.figure import colour_cycle, new_figure, save_figure

__all__ = ["cost_label", "plot_attribution_bars", "plot_attribution_heatmap"]


def cost_label(cost: float, higher_is_better: bool) -> str:
    """A cell label: ``x1.43`` (ratio to digital) or ``-0.012`` (drop); ``inf`` when lost,
    an empty string when not measured."""
    if math.isnan(cost):
        return ""
    if math.isinf(cost):
        return "inf"
    if cost == 0:
        return "0" if higher_is_better else "x1"
    if higher_is_better:
        return f"{-cost:+.3g}"
    return f"x{cost + 1:.3g}"


def _shade(cost: float, higher_is_better: bool) -> float:
    """The colour value of a cost: log10 of the ratio (perplexity) or the drop itself."""
    if math.isnan(cost):
        return math.nan
    if higher_is_better:
        return cost
    ratio = cost + 1.0
    return math.log10(ratio) if ratio > 0 else math.nan


def plot_attribution_heatmap(
    places: Sequence[str],
    effects: Sequence[str],
    costs: Sequence[Sequence[float]],
    path: str | Path,
    *,
    higher_is_better: bool,
    metric: str = "perplexity",
    title: str = "",
) -> Path:
    """Heat map of ``costs[i][j]``: place ``places[i]`` analog alone with effect
    ``effects[j]`` alone (``all``: the whole partition / every effect). Cells not measured
    (NaN) are left blank; a lost model (``inf``) takes the top colour."""
    shades = np.array([[_shade(c, higher_is_better) for c in row] for row in costs], dtype=float)
    finite = shades[np.isfinite(shades)]
    top = float(finite.max()) if finite.size else 1.0
    bottom = float(finite.min()) if finite.size else 0.0
    top = max(top, 1e-9)
    shades = np.where(np.isinf(shades), top, shades)
    width = max(6.0, 1.0 + 0.9 * len(effects))
    height = max(3.2, 1.6 + 0.45 * len(places))
    fig, ax = new_figure((width, height))
    cmap = _cmap()
    image = ax.imshow(
        np.ma.masked_invalid(shades), cmap=cmap, aspect="auto", vmin=min(0.0, bottom), vmax=top
    )
    ax.set_xticks(range(len(effects)))
    ax.set_xticklabels(effects, rotation=35, ha="right")
    ax.set_yticks(range(len(places)))
    ax.set_yticklabels(places)
    for i, row in enumerate(costs):
        for j, c in enumerate(row):
            text = cost_label(c, higher_is_better)
            if text:
                light = np.isfinite(shades[i, j]) and shades[i, j] > 0.6 * top
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if light else "black",
                )
    bar = fig.colorbar(image, ax=ax)
    bar.set_label(f"{metric} drop vs digital" if higher_is_better else f"log10({metric} / digital)")
    ax.set_xlabel("effect on alone (others ideal)")
    ax.set_ylabel("place analog alone")
    ax.set_title(title)
    return save_figure(fig, path)


def _cmap() -> Any:
    return colormaps["magma_r"].with_extremes(bad="#eeeeee")


def _wide_range(ax: Any, values: Sequence[float]) -> None:
    """A symmetric-log x axis when the bars span more than a factor 100 (perplexity costs
    run from 0.01 to thousands): small causes stay visible next to the large ones."""
    big = max((abs(v) for v in values), default=0.0)
    small = min((abs(v) for v in values if v != 0), default=big)
    if big > 10 and big > 100 * small:
        ax.set_xscale("symlog", linthresh=max(small, 1e-3))


def plot_attribution_bars(
    effects: Sequence[dict[str, Any]],
    places: Sequence[dict[str, Any]],
    path: str | Path,
    *,
    higher_is_better: bool,
    metric: str = "perplexity",
    title: str = "",
) -> Path:
    """Ranked bars: per effect the quality gained when it alone is removed (``gain``) and
    its cost when it alone is on (``alone_cost``); per place its cost analog alone
    (``cost``). Rows as in :func:`~analogsim.studies.attribute.attribution_summary`."""
    n_panels = 2 if places else 1
    fig, axes = new_figure(
        (10, max(3.0, 0.4 * max(len(effects), len(places), 1) + 1.5)), ncols=n_panels
    )
    axes = list(axes) if n_panels > 1 else [axes]
    colours = colour_cycle()
    unit = f"{metric} drop" if higher_is_better else f"{metric} / digital - 1"

    def clip(values: list[float]) -> list[float]:
        finite = [v for v in values if math.isfinite(v)]
        cap = max(finite) * 1.2 if finite and max(finite) > 0 else 1.0
        return [cap if math.isinf(v) else (0.0 if math.isnan(v) else v) for v in values]

    names = [r["effect"] for r in effects]
    y = list(range(len(names)))
    gains = clip([float(r["gain"]) for r in effects])
    alone = clip([float(r["alone_cost"]) for r in effects])
    ax = axes[0]
    ax.barh([v - 0.2 for v in y], gains, height=0.4, color=colours[0], label="gain when removed")
    ax.barh([v + 0.2 for v in y], alone, height=0.4, color=colours[1], label="cost alone")
    ax.set_yticks(y)
    ax.set_yticklabels(names)
    ax.invert_yaxis()
    _wide_range(ax, [*gains, *alone])
    ax.set_xlabel(unit)
    ax.set_title("effects, ranked")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=8)
    if places:
        ax = axes[1]
        pnames = [r["place"] for r in places]
        costs = clip([float(r.get("cost", math.nan)) for r in places])
        ax.barh(range(len(pnames)), costs, color=colours[2])
        ax.set_yticks(range(len(pnames)))
        ax.set_yticklabels(pnames, fontsize=7 if len(pnames) > 12 else 9)
        ax.invert_yaxis()
        _wide_range(ax, costs)
        ax.set_xlabel(unit)
        ax.set_title("places analog alone, ranked")
        ax.grid(alpha=0.3, axis="x")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)
