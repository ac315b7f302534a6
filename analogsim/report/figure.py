"""The figure helpers every plot uses: headless pyplot, figure creation and saving.

Plots are drawn with the ``Agg`` backend (no display needed), created with
:func:`new_figure` and written with :func:`save_figure`, which lays the figure out,
writes the PNG and closes it (no figure is left open between plots).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after the backend is chosen

from analogsim.units import format_time

__all__ = [
    "colour_cycle",
    "finish_axes",
    "finite",
    "new_figure",
    "plt",
    "save_figure",
    "time_axis",
]


def new_figure(figsize: tuple[float, float] = (8, 4), **subplots: Any) -> tuple[Any, Any]:
    """``plt.subplots(figsize=figsize, **subplots)``: a new ``(figure, axes)``."""
    return plt.subplots(figsize=figsize, **subplots)


def colour_cycle() -> list[str]:
    """The colours of matplotlib's default property cycle, in order."""
    return plt.rcParams["axes.prop_cycle"].by_key()["color"]


def save_figure(fig: Any, path: str | Path, *, dpi: int = 120) -> Path:
    """Lay out, write (PNG at ``dpi``, the folder created) and close ``fig``; returns the path."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def finite(values: Iterable[float], missing: float = float("nan")) -> list[float]:
    """``values`` with every non-finite one replaced by ``missing`` (NaN: a gap in a line;
    0.0: no error bar)."""
    return [v if math.isfinite(v) else missing for v in values]


def time_axis(ax: Any, times: Iterable[float]) -> None:
    """A log x axis of deployment time, ticked and labelled at the positive ``times``."""
    ts = sorted({t for t in times if t > 0})
    ax.set_xscale("log")
    if ts:
        ax.set_xticks(ts)
        ax.set_xticklabels([format_time(t) for t in ts])
    ax.set_xlabel("time since programming")


def finish_axes(
    ax: Any,
    *,
    ylabel: str,
    title: str,
    log_y: bool = False,
    grid: str = "both",
    legend: float = 8,
) -> None:
    """The closing styling of a panel: log y when asked, the y label and title, a light
    grid (``which=grid``) and a legend (font size ``legend``)."""
    if log_y:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which=grid)
    ax.legend(fontsize=legend)
