"""The figure helpers every plot uses: headless pyplot, figure creation and saving.

Plots are drawn with the ``Agg`` backend (no display needed), created with
:func:`new_figure` and written with :func:`save_figure`, which lays the figure out,
writes the PNG and closes it (no figure is left open between plots).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after the backend is chosen

__all__ = ["colour_cycle", "new_figure", "plt", "save_figure"]


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
