"""Partition comparison (``analogsim/compare.py``): ``--vary`` parsing and application,
variants, ``run_compare`` on the digits MLP and the documented JSON rows."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch

from analogsim.cost.estimate import estimate_cost
from analogsim.devices.card import card_dict
from analogsim.errors import ConfigError
from analogsim.mapping.rules import load_mapping, resolve_plan
from analogsim.models.digits import load_digits_mlp
from analogsim.report.rundir import RunDir
from analogsim.studies.compare import (
    COMPARE_COLUMNS,
    COMPARE_KEYS,
    Vary,
    json_rows,
    parse_vary,
    run_compare,
    variants,
)
from tests.metrics.conftest import make_gpt2

pytestmark = pytest.mark.filterwarnings("ignore:mapping 'all_digital' places no layer analog")

HOUR = 3600.0
DOCUMENTED = {"mapping", "time_s", "temperature_K", "metric", "mean", "std", "energy_per_token_J"}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """digits-mlp trained once per session into a temporary cache (one torch thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return load_digits_mlp(tmp_path_factory.getbasetemp() / "analogsim-cache", progress=False)
    finally:
        torch.set_num_threads(before)


def _plan(model, mapping):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "places no layer analog"
        return resolve_plan(model, mapping)


# ---------------------------------------------------------------------------- parse_vary
@pytest.mark.parametrize(
    ("text", "key", "values"),
    [
        ("adc_bits=4,6,8", "adc_bits", (4, 6, 8)),
        ("dac_bits = 6", "dac_bits", (6,)),
        ("tile_rows=128, 256,512", "tile_rows", (128, 256, 512)),
        ("tile_cols=64", "tile_cols", (64,)),
        ("rows=32", "rows", (32,)),
        ("out_noise=0,0.02", "out_noise", (0.0, 0.02)),
        ("weight_scale=tensor,column", "weight_scale", ("tensor", "column")),
        ("dac_range=dynamic,1.5", "dac_range", ("dynamic", 1.5)),
        ("pcm.drift_scale=0.5,1,2", "pcm.drift_scale", (0.5, 1.0, 2.0)),
        ("pcm.drift.scale=2", "pcm.drift.scale", (2.0,)),
        ("rram.faults.stuck_at_gmin_rate=0,0.1", "rram.faults.stuck_at_gmin_rate", (0.0, 0.1)),
    ],
)
def test_parse_vary_values(text, key, values):
    v = parse_vary(text)
    assert v.key == key
    assert v.values == values
    assert [type(x) for x in v.values] == [type(x) for x in values]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("adc_bits", "takes KEY=V1,V2"),
        ("adc_bits=", "at least one value"),
        ("adc_bits= , ", "at least one value"),
        ("nosuch=1", "unknown parameter to vary"),
        ("pcm=1", "unknown parameter to vary"),
        ("flash.drift_scale=1", "unknown parameter to vary"),
        ("adc_bits=four", "must be an integer"),
        ("adc_bits=4.5", "must be an integer"),
        ("adc_bits=4,1", "at least 2 bits"),
        ("adc_bits=99", "integer in range"),
        ("tile_rows=0", "integer in range"),
        ("out_noise=-1", "finite number >= 0"),
        ("out_noise=x", "not a number"),
        ("weight_scale=diagonal", "invalid weight scale"),
        ("pcm.drift_scale=abc", "not a number"),
        ("pcm.drift_scale=1,-1", "out of physical range"),
        ("pcm.nosuch=1", "section"),
        ("pcm.drift.nosuch=1", "unknown key 'nosuch'"),
        ("pcm.faults.stuck_at_gmax_rate=2", r"\[0, 1\]"),
    ],
)
def test_parse_vary_errors(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_vary(text)


def test_parse_vary_error_lists_what_is_allowed():
    with pytest.raises(ConfigError) as info:
        parse_vary("nosuch=1")
    for word in ("adc_bits", "tile_rows", "pcm", "rram"):
        assert word in info.value.allowed


def test_vary_label():
    assert Vary("adc_bits", (4,)).label(4) == "adc_bits=4"
    assert Vary("pcm.drift_scale", (0.5,)).label(0.5) == "pcm.drift_scale=0.5"
    assert Vary("weight_scale", ("tensor",)).label("tensor") == "weight_scale=tensor"
    assert Vary("pcm.drift_scale", (2.0,)).label(2.0) == "pcm.drift_scale=2"


def test_vary_labels_keep_every_digit():
    """Labels key the run's points: values that differ must get different labels."""
    v = parse_vary("pcm.drift_scale=1.0000001,1.0000002,0.123456789")
    labels = [v.label(x) for x in v.values]
    assert len(set(labels)) == 3
    assert labels[2] == "pcm.drift_scale=0.123456789"


# ---------------------------------------------------------------------------- apply
def _tiles(plan):
    return {p.name: p.tile for p in plan.layers}


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [("adc_bits=4", "adc_bits", 4), ("tile_rows=32", "rows", 32), ("tile_cols=16", "cols", 16)],
)
def test_apply_tile_setting_changes_only_that_setting(digits, text, field, value):
    v = parse_vary(text)
    base = _plan(digits.model, load_mapping("all_analog"))
    varied = _plan(digits.model, v.apply(load_mapping("all_analog"), value))
    for b, p in zip(base.layers, varied.layers, strict=True):
        assert p.placement == b.placement == "analog"
        assert p.device == b.device
        assert p.tile == dataclasses.replace(b.tile, **{field: value})
        assert getattr(b.tile, field) != value


def test_apply_tile_rows_tile_count_by_hand(digits):
    # digits MLP: 64x128, 128x64, 64x10 (in x out); 512x512 tiles hold each layer in one
    assert _plan(digits.model, load_mapping("all_analog")).totals()["tiles"] == 3
    # 32-row tiles: ceil(64/32) + ceil(128/32) + ceil(64/32) = 2 + 4 + 2
    m = parse_vary("tile_rows=32").apply(load_mapping("all_analog"), 32)
    assert _plan(digits.model, m).totals()["tiles"] == 8


def test_apply_tile_setting_keeps_partition_of_gpt2():
    model = make_gpt2()
    mapping = load_mapping("digital_attention_analog_mlp")
    base = _plan(model, mapping)
    varied = _plan(model, parse_vary("adc_bits=4").apply(mapping, 4))
    for b, p in zip(base.layers, varied.layers, strict=True):
        assert (p.placement, p.role, p.rule, p.quantizer) == (
            b.placement,
            b.role,
            b.rule,
            b.quantizer,
        )
        if b.placement == "analog":
            assert b.role == "mlp"
            assert p.tile == b.tile.replace(adc_bits=4)
        else:
            assert p.tile is None and b.tile is None
    assert any(p.placement == "analog" for p in varied.layers)
    assert any(p.quantizer is not None for p in varied.layers)


@pytest.mark.parametrize("key", ["pcm.drift_scale", "pcm.drift.scale"])
def test_apply_device_setting_changes_only_that_card_value(digits, key):
    v = parse_vary(f"{key}=2")
    base = _plan(digits.model, load_mapping("all_analog"))
    varied = _plan(digits.model, v.apply(load_mapping("all_analog"), 2.0))
    for b, p in zip(base.layers, varied.layers, strict=True):
        assert p.tile == b.tile
        assert b.device.drift.scale == 1.0 and p.device.drift.scale == 2.0
        before, after = card_dict(b.device), card_dict(p.device)
        assert after["drift"].pop("scale") == 2.0 and before["drift"].pop("scale") == 1.0
        assert after == before


def test_apply_does_not_change_the_input_mapping():
    m = load_mapping("all_analog")
    before = (m.default.settings, m.device_overrides)
    parse_vary("adc_bits=4").apply(m, 4)
    parse_vary("pcm.drift_scale=2").apply(m, 2.0)
    assert m.default.settings["tile"]["adc_bits"] == 8
    assert m.device_overrides == {}
    assert (m.default.settings, m.device_overrides) == before


def test_variants():
    v = parse_vary("adc_bits=4,8")
    out = variants(["all_digital", "all_analog"], v, None)
    assert [(m.name, label) for m, label in out] == [
        ("all_digital", "adc_bits=4"),
        ("all_digital", "adc_bits=8"),
        ("all_analog", "adc_bits=4"),
        ("all_analog", "adc_bits=8"),
    ]
    assert [(m.name, label) for m, label in variants(["all_analog"], None, "rram")] == [
        ("all_analog", "")
    ]
    ((m, _),) = variants(["all_analog"], None, "rram")
    assert m.default.settings["device"] == "rram"


# ---------------------------------------------------------------------------- run_compare
def test_run_compare_energy_and_json_rows(digits):
    res = run_compare(digits, ["all_digital", "all_analog"], times=(HOUR,), seeds=1, progress=False)
    costs = res["costs"]
    e_dig = costs[("all_digital", "")]["energy_per_token_J"]
    e_ana = costs[("all_analog", "")]["energy_per_token_J"]
    assert 0 < e_ana < e_dig  # batch-1, digital weights read from SRAM every token
    assert costs[("all_digital", "")]["tiles"] == 0 and costs[("all_analog", "")]["tiles"] == 3
    # the cost is the estimate of the resolved plan
    plan = _plan(digits.model, load_mapping("all_analog"))
    assert e_ana == estimate_cost(plan, attention_macs_per_token=0).energy_per_token_J
    assert res["metric"] == "accuracy"
    assert res["digital"] == pytest.approx(digits.info["test_accuracy"], abs=1e-12)

    rows = json_rows(res, None)
    assert [r["mapping"] for r in rows] == ["all_digital", "all_analog"]
    for r in rows:
        assert set(r) == DOCUMENTED
        assert (r["time_s"], r["temperature_K"], r["metric"]) == (HOUR, 300.0, "accuracy")
        assert r["energy_per_token_J"] == costs[(r["mapping"], "")]["energy_per_token_J"]
        assert r["std"] == 0.0  # one seed
    assert rows[0]["mean"] == res["digital"]  # all digital is the digital model
    assert 0.5 < rows[1]["mean"] <= 1.0


def test_run_compare_vary_rows(digits):
    v = parse_vary("adc_bits=4,8")
    res = run_compare(digits, ["all_analog"], times=(HOUR,), seeds=1, vary=v, progress=False)
    rows = json_rows(res, v)
    assert [(r["adc_bits"], r["vary"]) for r in rows] == [(4, "adc_bits=4"), (8, "adc_bits=8")]
    for r in rows:
        assert set(r) == DOCUMENTED | {"adc_bits", "vary"}
    e4, e8 = (r["energy_per_token_J"] for r in rows)
    assert e4 < e8  # cheaper converters


def test_run_compare_device_vary_rows(digits):
    v = parse_vary("pcm.drift_scale=0.5,2")
    res = run_compare(digits, ["all_analog"], times=(HOUR,), seeds=1, vary=v, progress=False)
    rows = json_rows(res, v)
    values = [r["pcm.drift_scale"] for r in rows]
    assert values == [0.5, 2.0] and all(isinstance(x, float) for x in values)
    assert [r["vary"] for r in rows] == ["pcm.drift_scale=0.5", "pcm.drift_scale=2"]
    assert rows[0]["energy_per_token_J"] == rows[1]["energy_per_token_J"]


def test_run_compare_json_rows_carry_the_exact_varied_value(digits):
    v = parse_vary("out_noise=0.0123456789")
    res = run_compare(digits, ["all_analog"], times=(HOUR,), seeds=1, vary=v, progress=False)
    (row,) = json_rows(res, v)
    assert row["out_noise"] == 0.0123456789


def test_run_compare_with_run_dir_resumes(digits, tmp_path):
    v = parse_vary("adc_bits=4,8")
    kw = dict(times=(HOUR,), seeds=1, vary=v, progress=False)
    with RunDir(tmp_path, "compare", {"x": 1}, COMPARE_COLUMNS, COMPARE_KEYS) as run:
        first = run_compare(digits, ["all_digital", "all_analog"], run=run, **kw)
    assert len(first["rows"]) == 1 + 2 * 2  # the digital baseline once, then 2 x 2 points
    with RunDir(tmp_path, "compare", {"x": 1}, COMPARE_COLUMNS, COMPARE_KEYS) as run:
        again = run_compare(digits, ["all_digital", "all_analog"], run=run, **kw)
    assert run.manifest["resumed_points"] == 5
    assert len(again["rows"]) == 5
    assert json_rows(again, v) == json_rows(first, v)


def test_run_compare_scores_digital_and_all_digital_once(digits, monkeypatch):
    """The digital model once for every partition; all-digital once, not per age/seed."""
    import analogsim.studies.evaluate as study

    real = study.quality_metric
    calls = {"n": 0}

    def counted(loaded, **kw):
        q = real(loaded, **kw)

        def score(m):
            calls["n"] += 1
            return q.score(m)

        return dataclasses.replace(q, score=score)

    monkeypatch.setattr(study, "quality_metric", counted)
    times, temps, seeds = (1.0, HOUR, 86400.0), (300.0, 358.0), 2
    res = run_compare(
        digits,
        ["all_digital", "all_analog"],
        times=times,
        temperatures=temps,
        seeds=seeds,
        progress=False,
    )
    points = len(times) * len(temps) * seeds
    assert calls["n"] == 1 + 1 + points  # digital, all digital once, every analog point
    assert len(res["rows"]) == 1 + 2 * points  # one digital row; every point has its row
    assert [r["mapping"] for r in res["rows"]].count("digital") == 1
    dig = [r["value"] for r in res["rows"] if r["mapping"] == "all_digital"]
    assert dig == [res["digital"]] * points
