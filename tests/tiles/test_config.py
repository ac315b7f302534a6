"""Tests for analogsim.tiles.config: tile settings as validated frozen data."""

from __future__ import annotations

import dataclasses

import pytest

from analogsim.errors import ConfigError
from analogsim.tiles.config import TILE_KEYS, TileConfig, validate_tile


def test_defaults_are_the_hardware_aware_preset():
    """Rasch 2023 preset (REFERENCES.md): 8-bit in/out, bound 10, out_noise 0.04,
    w_noise 0.0175, 512-row tiles, global drift compensation."""
    t = TileConfig()
    assert (t.rows, t.dac_bits, t.adc_bits, t.adc_bound) == (512, 8, 8, 10.0)
    assert (t.out_noise, t.read_noise, t.drift_compensation) == (0.04, 0.0175, "global")
    assert t.io_enabled


def test_ideal_switches_every_non_ideality_off():
    t = TileConfig.ideal()
    assert not t.io_enabled
    assert (t.dac_bits, t.adc_bits, t.out_noise, t.read_noise) == (0, 0, 0.0, 0.0)
    assert t.drift_compensation == "none"
    assert TileConfig.ideal(rows=64).rows == 64


@pytest.mark.parametrize(
    "change", [{"dac_bits": 4}, {"adc_bits": 4}, {"out_noise": 1e-9}, {"read_noise": 1e-9}]
)
def test_any_io_non_ideality_enables_the_io_path(change):
    assert TileConfig.ideal(**change).io_enabled


def test_frozen_and_replace():
    t = TileConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.rows = 3  # type: ignore[misc]
    u = t.replace(rows=128)
    assert u.rows == 128 and t.rows == 512
    assert set(TILE_KEYS) == {f.name for f in dataclasses.fields(TileConfig)}


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"rows": 0}, r"key 'tile.rows'.*integer in range.*got 0.*1\.\."),
        ({"rows": 2.5}, r"key 'tile.rows'.*integer in range"),
        ({"dac_bits": 1}, r"key 'tile.dac_bits'.*at least 2 bits"),
        ({"adc_bits": 1}, r"key 'tile.adc_bits'.*at least 2 bits"),
        ({"adc_bits": 30}, r"key 'tile.adc_bits'.*allowed: 0\.\.24"),
        ({"out_noise": -0.1}, r"key 'tile.out_noise'.*finite number >= 0"),
        ({"read_noise": float("nan")}, r"key 'tile.read_noise'.*finite number >= 0"),
        ({"adc_bound": "big"}, r"key 'tile.adc_bound'.*finite number >= 0"),
        ({"dac_range": 0.0}, r"key 'tile.dac_range'.*'dynamic' or a positive number"),
        ({"dac_range": "auto"}, r"key 'tile.dac_range'.*'dynamic' or a positive number"),
        ({"weight_scale": "row"}, r"key 'tile.weight_scale'.*'row'.*tensor, column"),
        ({"drift_compensation": "local"}, r"key 'tile.drift_compensation'.*none, global, column"),
    ],
)
def test_invalid_settings(change, pattern):
    with pytest.raises(ConfigError, match=pattern):
        TileConfig(**change)


def test_unknown_setting_lists_valid_ones():
    full = {k: getattr(TileConfig(), k) for k in TILE_KEYS}
    with pytest.raises(ConfigError, match=r"map.toml: key 'rule\[0\].tile.bitz'.*rows, cols"):
        validate_tile({**full, "bitz": 3}, file="map.toml", prefix="rule[0].tile.")
