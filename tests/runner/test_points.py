"""Grid points: deterministic order, seeds from the config and coordinates only."""

from __future__ import annotations

from analogsim.runner.points import expand_grid, point_seed

AXES = [("model", ["a", "b"]), ("sigma", [0.0, 0.01, 0.02]), ("seed", [0, 1])]


def test_order_and_indices() -> None:
    pts = expand_grid(AXES, base_seed=0)
    assert [p.index for p in pts] == list(range(12))
    assert pts[0].as_dict() == {"model": "a", "sigma": 0.0, "seed": 0}
    assert pts[-1].as_dict() == {"model": "b", "sigma": 0.02, "seed": 1}


def test_seed_depends_on_coordinates_and_base_not_on_order() -> None:
    pts = {p.coords: p.seed for p in expand_grid(AXES, base_seed=0)}
    rev = {p.coords: p.seed for p in expand_grid([(a, v[::-1]) for a, v in AXES], base_seed=0)}
    assert pts == rev  # the same point has the same seed wherever it sits in the grid
    other = {p.coords: p.seed for p in expand_grid(AXES, base_seed=1)}
    assert all(other[c] != s for c, s in pts.items())
    # sigma is a shared draw: points differing only in sigma share the seed
    by = {}
    for c, s in pts.items():
        d = dict(c)
        by.setdefault((d["model"], d["seed"]), set()).add(s)
    assert all(len(v) == 1 for v in by.values()) and len(by) == 4
    assert len({next(iter(v)) for v in by.values()}) == 4


def test_canonical_numbers() -> None:
    assert point_seed(0, [("sigma", 0.01), ("seed", 1)], ()) == point_seed(
        0, [("sigma", 1e-2), ("seed", 1.0)], ()
    )
    assert point_seed(0, [("x", "1")], ()) != point_seed(0, [("x", 1)], ())


def test_keep_drops_points_and_keeps_indices_dense() -> None:
    pts = expand_grid(AXES, base_seed=0, keep=lambda c: not (c["sigma"] == 0 and c["seed"] > 0))
    assert len(pts) == 10 and [p.index for p in pts] == list(range(10))
