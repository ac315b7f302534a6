"""Points of an experiment grid: what one unit of work is, how it is seeded, how it sorts.

A *point* is one combination of the grid's coordinates (``model``, ``noise``, ``roles``,
``sigma``, ``seed`` ...). The grid is expanded in a fixed order (the axes in the order
the study declares them, each axis's values in the order the config lists them), and a
point's ``index`` is its position in that order. ``results.csv`` is sorted by ``index``
(then by the order of the rows the point function returned), so the file does not depend
on which worker finished first.

Seeding: a point's ``seed`` is derived (BLAKE2b, :func:`analogsim.devices.rng.derive_seed`)
from the experiment's base seed and the point's coordinates, never from a worker id or
the order of execution. Axes named in ``shared_draw`` (``sigma``: the noise *size*) are
left out of the derivation on purpose: the points that differ only in sigma share one
noise draw, scaled (common random numbers), so each seed is one smooth curve in sigma and
the sigma where it crosses a threshold is well defined per seed.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analogsim.devices.rng import derive_seed

__all__ = ["Point", "PointResult", "Task", "expand_grid", "point_seed"]

Scalar = str | int | float | bool


@dataclass(frozen=True)
class Point:
    """One grid point.

    Attributes:
        index: position in the grid's deterministic order (the sort key of results.csv).
        coords: ``(axis, value)`` pairs in axis order; values are JSON scalars.
        seed: the point's seed (:func:`point_seed`): the same for the same config and
            coordinates, whatever the worker or the worker count.
    """

    index: int
    coords: tuple[tuple[str, Scalar], ...]
    seed: int

    def as_dict(self) -> dict[str, Scalar]:
        """The coordinates as a dict (axis order kept)."""
        return dict(self.coords)

    def __getitem__(self, axis: str) -> Scalar:
        return self.as_dict()[axis]

    def label(self) -> str:
        """``model=tiny-gpt2 sigma=0.01 seed=1``: for progress lines and errors."""
        return " ".join(f"{k}={_short(v)}" for k, v in self.coords)


@dataclass(frozen=True)
class Task:
    """What an executor ships to a worker: the study's point function, the settings every
    point of the run shares, and the point. Plain data (picklable, JSON-able settings),
    so any executor (process pool, Ray) can carry it.

    Attributes:
        study: the point function's name in :data:`analogsim.runner.studies.POINT_FUNCTIONS`.
        settings: the validated, resolved config sections the point function reads
            (metrics, generation, chip ...); identical for all tasks of a run.
        point: the grid point.
    """

    study: str
    settings: Mapping[str, Any]
    point: Point


@dataclass
class PointResult:
    """A finished (or failed) point, as an executor yields it back.

    Attributes:
        point: the point.
        rows: the measurements, each ``{"metric": str, "value": float, "text": str?}``
            (the runner adds the coordinates); empty when ``error`` is set.
        seconds: wall time of the point inside the worker (model load included the first
            time a worker meets a model).
        worker: who ran it (``pid 1234``; informational, never part of a result).
        error: the exception text (with its type) if the point raised; the point is then
            not written, and a rerun tries it again.
    """

    point: Point
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    worker: str = ""
    error: str | None = None


def point_seed(
    base_seed: int, coords: Iterable[tuple[str, Scalar]], shared_draw: Sequence[str]
) -> int:
    """The seed of a point: ``derive_seed(base, "axis=value", ...)`` over its coordinates
    in axis order, skipping the axes in ``shared_draw``. Values are written as canonical
    JSON, so ``0.01`` and ``1e-2`` give the same seed, and ``1`` and ``1.0`` do too."""
    parts = [f"{k}={_canonical(v)}" for k, v in coords if k not in shared_draw]
    return derive_seed(int(base_seed), "analogsim.runner", *parts)


def expand_grid(
    axes: Sequence[tuple[str, Sequence[Scalar]]],
    *,
    base_seed: int,
    shared_draw: Sequence[str] = ("sigma",),
    keep: Any = None,
) -> list[Point]:
    """Every combination of the axes' values, in order (the first axis varies slowest).

    ``keep(coords_dict) -> bool`` drops combinations (e.g. seeds > 0 at sigma 0, where
    nothing is drawn); indices count the kept points only, so they stay dense.
    """
    names = [a for a, _ in axes]
    points: list[Point] = []
    for values in itertools.product(*[list(v) for _, v in axes]):
        coords = tuple(zip(names, values, strict=True))
        if keep is not None and not keep(dict(coords)):
            continue
        points.append(Point(len(points), coords, point_seed(base_seed, coords, shared_draw)))
    return points


def _canonical(v: Scalar) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        f = float(v)
        return json.dumps(int(f)) if f.is_integer() and abs(f) < 2**53 else repr(f)
    return json.dumps(v)


def _short(v: Scalar) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
