"""Tests for analogsim.cost.table: the published numbers, sources, scaling laws and the
validation of cost files."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from analogsim.cost.table import ENTRIES, cost_paths, costs_from_dict, load_costs
from analogsim.errors import ConfigError
from tests.cost.conftest import pJ


# ---------------------------------------------------------------------------- the cost table
def test_default_table_holds_the_published_numbers(costs):
    # Horowitz, ISSCC 2014 (45 nm)
    assert costs.int8_mul_J == pytest.approx(0.2 * pJ)
    assert costs.int8_add_J == pytest.approx(0.03 * pJ)
    assert costs.int32_mul_J == pytest.approx(3.1 * pJ)
    assert costs.int32_add_J == pytest.approx(0.1 * pJ)
    assert costs.fp16_mul_J == pytest.approx(1.1 * pJ)
    assert costs.fp16_add_J == pytest.approx(0.4 * pJ)
    assert costs.fp32_mul_J == pytest.approx(3.7 * pJ)
    assert costs.fp32_add_J == pytest.approx(0.9 * pJ)
    assert costs.sram_read_64b_J == pytest.approx(10 * pJ)
    assert 1.3e-9 <= costs.dram_read_64b_J <= 2.6e-9
    # ISAAC: about 1.7 pJ per 8-bit conversion
    assert costs.adc_conversion_J == pytest.approx(1.7 * pJ) and costs.adc_ref_bits == 8
    # derived assumptions: V^2 G t = 0.04 V^2 * 12.5 uS * 50 ns; HERMES 63.1 TOPS / 64 cores
    assert costs.array_mac_J == pytest.approx(0.2**2 * 12.5e-6 * 50e-9)
    assert costs.analog_mvm_time_s == pytest.approx(2 * 256 * 256 / (63.1e12 / 64), rel=0.01)
    assert costs.tile_area_mm2 == pytest.approx(63.1 / 64 / 1.59, rel=0.01)
    assert (costs.tile_area_rows, costs.tile_area_cols) == (256, 256)


def test_every_entry_has_a_source_or_a_stated_assumption(costs):
    sources, assumptions = costs.sources(), costs.assumptions()
    for entry in ENTRIES:
        assert entry in sources or entry in assumptions, entry
    # no source exists for these: they must be marked, with the derivation
    for entry in ("array_mac", "dac_conversion", "tile_area", "digital_mac_rate"):
        assert entry in assumptions and len(assumptions[entry]) > 20
    assert "default" in cost_paths()
    assert cost_paths()["default"].parent.name == "costs"


def test_scaling_laws_hit_the_published_points(costs):
    assert costs.int_mul_J(8) == pytest.approx(costs.int8_mul_J)
    assert costs.int_mul_J(32) == pytest.approx(costs.int32_mul_J)
    assert costs.int_add_J(32) == pytest.approx(costs.int32_add_J)
    assert costs.int8_mul_J < costs.int_mul_J(16) < costs.int32_mul_J
    assert costs.adc_energy_J(8) == pytest.approx(1.7 * pJ)
    assert costs.adc_energy_J(0) == costs.adc_energy_J(8)  # ideal converters costed at 8 bits
    assert costs.dac_energy_J(4) == pytest.approx(costs.dac_conversion_J / 2)
    assert costs.tile_area(512, 512) == pytest.approx(4 * costs.tile_area_mm2)


# ---------------------------------------------------------------------------- cost file validation
def default_data() -> dict[str, Any]:
    with cost_paths()["default"].open("rb") as fh:
        return tomllib.load(fh)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(extra=1), r"c\.toml: key 'extra': unknown key 'extra'; allowed: name"),
        (lambda d: d.pop("adc_conversion"), r"key 'adc_conversion': missing cost entry"),
        (lambda d: d["adc_conversion"].pop("value"), r"key 'adc_conversion\.value': missing value"),
        (lambda d: d["tile_area"].pop("rows"), r"key 'tile_area\.rows': missing value"),
        (
            lambda d: d["int8_add"].update(value=-0.03),
            r"key 'int8_add\.value': costs cannot be negative",
        ),
        (
            lambda d: d["int8_add"].update(value="x"),
            r"key 'int8_add\.value': must be a finite number",
        ),
        (lambda d: d["int8_add"].update(volts=1), r"key 'int8_add\.volts': unknown key 'volts'"),
        (lambda d: d["int8_add"].update(unit="kWh"), r"key 'int8_add\.unit'.*allowed: fJ, pJ"),
        (
            lambda d: d["int8_add"].pop("source"),
            r"key 'int8_add\.source': every cost needs a source",
        ),
        (lambda d: d["array_mac"].pop("reason"), r"key 'array_mac\.reason'.*reason"),
        (lambda d: d["adc_conversion"].update(bits=1), r"key 'adc_conversion\.bits'.*2\.\.24"),
        (
            lambda d: d["dram_bandwidth"].update(value=0),
            r"key 'dram_bandwidth\.value': must be positive",
        ),
        (lambda d: d["int8_add"].update(source=""), r"key 'int8_add\.source': must be a non-empty"),
    ],
)
def test_cost_file_validation(change, message):
    data = default_data()
    change(data)
    with pytest.raises(ConfigError, match=message):
        costs_from_dict(data, file="c.toml")


def test_load_costs_names_the_file(tmp_path):
    text = cost_paths()["default"].read_text().replace("value = 0.03", "value = -0.03")
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(
        ConfigError, match=r"mine\.toml: key 'int8_add\.value': costs cannot be negative"
    ):
        load_costs(path)
    with pytest.raises(ConfigError, match="cost file not found"):
        load_costs(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[adc_conversion\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_costs(bad)
    assert load_costs("default") == load_costs()
