"""``analogsim attribute`` (``analogsim/cli/attribute.py``): the JSON, the tables and the
verdict, the run directory and resume, bad options refused before any work, and defaults
that mirror the API's."""

from __future__ import annotations

import inspect
import json

import pytest

from analogsim.cli.attribute import DEFAULT_AGE, DEFAULT_MAX_TOKENS
from analogsim.errors import ConfigError
from analogsim.studies.attribute import run_attribute
from analogsim.units import parse_time
from tests.cli.test_options import _cli_defaults

ARGS = ("attribute", "digits-mlp", "--mapping", "all_analog", "--device", "pcm", "--age", "1d")


def test_attribute_json_parses_and_resumes(cli, tmp_path):
    out = tmp_path / "attr"
    res = cli(*ARGS, "--by", "layer", "--out", out, "--json", "--no-progress")
    assert res.exit_code == 0, res.output
    data = res.json()
    assert data["metric"] == "accuracy" and data["higher_is_better"] is True
    assert data["none"]["cost"] == pytest.approx(0.0, abs=1e-9)
    ranks = [e["rank"] for e in data["effects"]]
    assert ranks == list(range(1, len(ranks) + 1)) and len(ranks) >= 5
    assert {e["effect"] for e in data["effects"]} >= {"programming", "drift", "adc", "dac"}
    assert [p["place"] for p in sorted(data["places"], key=lambda p: p["place"])] == ["0", "2", "4"]
    grid = data["grid"]
    assert grid["places"] == ["all", *[p["place"] for p in _in_module_order(data)]]
    assert len(grid["cost"]) == len(grid["places"])
    assert all(len(line) == len(grid["effects"]) for line in grid["cost"])
    assert data["verdict"].startswith("digital accuracy")
    for name in ("results.csv", "ranking.csv", "verdict.txt", "attribution_heatmap.png"):
        assert (out / name).exists(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "attribute" and manifest["status"] == "complete"
    assert manifest["config"]["age_s"] == 86400.0 and manifest["config"]["by"] == "layer"

    rows = (out / "results.csv").read_text()
    again = cli(*ARGS, "--by", "layer", "--out", out, "--json", "--no-progress")
    assert again.exit_code == 0, again.output
    assert (out / "results.csv").read_text() == rows  # nothing measured twice
    assert again.json()["effects"] == data["effects"]


def _in_module_order(data):
    return sorted(data["places"], key=lambda p: int(p["place"]))


def test_attribute_tables_and_verdict(cli, tmp_path):
    res = cli(*ARGS, "--out", tmp_path / "t", "--no-progress")
    assert res.exit_code == 0, res.output
    words = res.words()
    assert "effects ranked by the quality gained without them" in words
    assert "top causes" in words and "run directory:" in words


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("--by", "tile", "--by"),
        ("--age", "soon", "--age"),
        ("--temperature", "20", "--temperature"),
    ],
)
def test_bad_options_fail_before_any_work(cli, tmp_path, option, value, match):
    out = tmp_path / "never"
    res = cli(*ARGS, option, value, "--out", out, "--no-progress")
    assert res.exit_code != 0
    assert isinstance(res.exception, ConfigError) and match in str(res.exception)
    assert not out.exists()


def test_defaults_mirror_the_api():
    cli = _cli_defaults("attribute")
    api = {
        k: p.default
        for k, p in inspect.signature(run_attribute).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    assert parse_time(DEFAULT_AGE) == api["age_s"]
    assert DEFAULT_MAX_TOKENS == api["max_tokens"] == cli["max_tokens"]
    assert cli["age"] == DEFAULT_AGE
    for key in ("mapping", "by", "seeds", "device"):
        assert cli[key] == api[key], key
    assert cli["temperature"] is None and api["temperature_K"] is None
