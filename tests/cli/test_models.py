"""Tests of ``analogsim roles`` and ``analogsim map`` (``analogsim/cli/models.py``)."""

from __future__ import annotations

import pytest


def test_roles_json(cli):
    res = cli("roles", "digits-mlp", "--json")
    assert res.exit_code == 0, res.output
    data = res.json()
    assert data["family"] == "torch"
    assert [(x["name"], x["role"]) for x in data["layers"]] == [
        ("0", "mlp"),
        ("2", "mlp"),
        ("4", "head"),
    ]
    assert [(x["in_features"], x["out_features"]) for x in data["layers"]] == [
        (64, 128),
        (128, 64),
        (64, 10),
    ]
    assert data["unclassified"] == []


def test_roles_table(cli):
    res = cli("roles", "digits-mlp")
    assert res.exit_code == 0
    assert "head" in res.output and "mlp" in res.output


def test_map_json_first_last_digital(cli):
    res = cli("map", "digits-mlp", "--mapping", "first_last_digital", "--json")
    assert res.exit_code == 0, res.output
    data = res.json()
    layers = data["layers"]
    for layer in layers:
        assert {"name", "role", "placement", "device", "tiles", "params", "rule"} <= set(layer)
    assert [(x["name"], x["placement"]) for x in layers] == [
        ("0", "digital"),
        ("2", "analog"),
        ("4", "digital"),
    ]
    assert [x["device"] for x in layers] == [None, "pcm", None]
    assert [x["tiles"] for x in layers] == [0, 1, 0]
    # Linear(64,128), Linear(128,64), Linear(64,10) with biases
    params = [64 * 128 + 128, 128 * 64 + 64, 64 * 10 + 10]
    assert [x["params"] for x in layers] == params
    assert layers[1]["rule"] == "default"
    assert "block" in layers[0]["rule"] and "block" in layers[2]["rule"]
    t = data["totals"]
    assert (t["layers"], t["analog_layers"], t["tiles"]) == (3, 1, 1)
    assert t["params"] == sum(params)
    assert t["analog_param_share"] == pytest.approx(params[1] / sum(params))
    assert t["analog_mac_share"] == pytest.approx(128 * 64 / (64 * 128 + 128 * 64 + 64 * 10))


def test_map_table_with_device(cli):
    res = cli("map", "digits-mlp", "--mapping", "all_analog", "--device", "rram")
    assert res.exit_code == 0, res.output
    assert "rram" in res.output and "3/3 layers" in res.words()
