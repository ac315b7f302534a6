"""Tests for analogsim.train.hwa_config: hardware-aware training settings and their grids."""

from __future__ import annotations

import itertools

import pytest

from analogsim.errors import ConfigError
from analogsim.train.hwa_config import HWAConfig


def test_time_grid_is_log_spaced_with_both_ends() -> None:
    cfg = HWAConfig(t_min_s=1.0, t_max_s=1e4, times_per_decade=2)
    grid = cfg.time_grid()
    assert len(grid) == 9
    assert grid[0] == pytest.approx(1.0) and grid[-1] == pytest.approx(1e4)
    ratios = [b / a for a, b in itertools.pairwise(grid)]
    assert all(r == pytest.approx(10**0.5) for r in ratios)
    assert HWAConfig(temperature_min_K=300, temperature_max_K=325).temperature_grid() == [
        300,
        310,
        320,
        325,
    ]


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        ({"engine": "exact"}, "engine"),
        ({"t_min_s": 10.0, "t_max_s": 1.0}, "t_min_s"),
        ({"resample_every": 0}, "resample_every"),
        ({"stuck_at_gmin_rate": 1.5}, "stuck_at_gmin_rate"),
        ({"noise_side": "input"}, "noise_side"),
    ],
)
def test_bad_settings_name_the_key(kw: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=f"hwa.{key}"):
        HWAConfig(**kw)
