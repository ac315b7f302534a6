"""Attribution of a partition's quality loss (``analogsim/studies/attribute.py``): costs,
places, every effect off equals digital, injected faults and tiny ADCs ranked first and
fixed, reproducible and resumable tables, the run directory's files."""

from __future__ import annotations

import math

import pytest
import torch

from analogsim.errors import ConfigError
from analogsim.mapping.rules import mapping_from_dict
from analogsim.models import LoadedModel
from analogsim.models.digits import load_digits_mlp
from analogsim.report.rundir import RunDir, read_csv
from analogsim.studies.attribute import ATTRIBUTE_COLUMNS, ATTRIBUTE_KEYS, run_attribute
from tests.conftest import IDEAL_TILE, analog_mapping, make_gpt2

DAY = 86400.0
#: The shipped analog preset (Rasch 2023 IO) used by the injected-cause tests.
RASCH = {
    "adc_bits": 8,
    "dac_bits": 8,
    "out_noise": 0.04,
    "read_noise": 0.0175,
    "weight_scale": "column",
}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """digits-mlp trained once into a temporary cache (one torch thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return load_digits_mlp(tmp_path_factory.getbasetemp() / "analogsim-cache", progress=False)
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def tiny_lm() -> LoadedModel:
    ids = torch.randint(0, 100, (200,), generator=torch.Generator().manual_seed(0))
    return LoadedModel("tiny-lm", "causal-lm", make_gpt2(), None, {"heldout_ids": ids})


def _injected(rule: dict) -> object:
    """Every layer analog on PCM with the Rasch tile, plus one rule for layer ``2``."""
    return mapping_from_dict(
        {
            "name": "injected",
            "default": {"placement": "analog", "device": "pcm", "tile": RASCH},
            "rule": [{"name": "2", **rule}],
        }
    )


# ---------------------------------------------------------------------------- every effect off
def test_every_effect_off_equals_digital(tiny_lm):
    """The hybrid partition at 1 h and 85 C has every effect; with all of them off the
    model scores as the digital one (float tolerance), with all on it does not."""
    res = run_attribute(
        tiny_lm,
        "digital_attention_analog_mlp",
        device="pcm",
        age_s=3600.0,
        temperature_K=358.15,
        by="layer",
        progress=False,
    )
    assert [e["effect"] for e in sorted(res["effects"], key=lambda e: e["effect"])] == sorted(
        [
            "programming",
            "drift",
            "temperature",
            "accumulated_noise",
            "dac",
            "adc",
            "output_noise",
            "mvm_read_noise",
            "digital_quant",
        ]
    )
    assert res["none"]["value"] == pytest.approx(res["digital"], rel=1e-6)
    assert abs(res["none"]["cost"]) < 1e-6
    assert res["full"]["value"] != pytest.approx(res["digital"], rel=1e-6)


def test_ideal_chip_costs_nothing_anywhere(digits):
    """An ideal device with ideal tiles has no effect to attribute: every point of every
    place scores as digital."""
    res = run_attribute(
        digits, analog_mapping("ideal", IDEAL_TILE), age_s=DAY, by="layer", progress=False
    )
    assert res["effects"] == []
    analog_rows = [r for r in res["rows"] if r["view"] != "digital"]
    assert len(analog_rows) == 2 + 3  # all/none, all/all, one per layer
    assert all(r["cost"] == 0.0 for r in analog_rows)
    assert "keeps digital quality" in res["verdict"]


# ---------------------------------------------------------------------------- known causes
def test_injected_fault_is_ranked_first(digits):
    res = run_attribute(
        digits,
        _injected({"device_overrides": {"faults.stuck_at_gmax_rate": 0.1}}),
        age_s=DAY,
        by="layer",
        seeds=2,
        progress=False,
    )
    assert res["effects"][0]["effect"] == "faults"
    assert res["places"][0]["place"] == "2"
    # the fault costs more than anything else in the place x effect grid
    grid = res["grid"]
    row = grid["places"].index("2")
    col = grid["effects"].index("faults")
    places = grid["cost"][1:]  # row 0 is the whole partition
    singles = [c for line in places for c in line[:-1] if not math.isnan(c)]
    assert grid["cost"][row][col] == max(singles)
    # the worst place made digital brings most of the quality back
    fix = next(f for f in res["fixes"] if f["fix"] == "digital:2")
    assert fix["cost"] < res["full"]["cost"] / 2


def test_tiny_adc_is_ranked_first_and_more_bits_fix_it(digits):
    # 3 bits: far enough above the other layers' costs that the ranking does not hang on
    # which normals the epilogue draws (4 bits tied with layer 4 at 2 seeds)
    res = run_attribute(
        digits,
        _injected({"tile": {"adc_bits": 3, "adc_bound": 20.0}}),
        age_s=DAY,
        by="layer",
        seeds=2,
        progress=False,
    )
    assert res["effects"][0]["effect"] == "adc"
    assert res["places"][0]["place"] == "2"
    fixes = {f["fix"]: f for f in res["fixes"]}
    assert fixes["adc_bits+2"]["cost"] < res["full"]["cost"] / 2
    # the closest to digital removes the injected cause: more ADC bits, that layer digital,
    # or the combination of the top fixes
    assert res["fixes"][0]["fix"] in ("adc_bits+2", "digital:2", "combined")
    assert f"closest to digital: {res['fixes'][0]['fix']}" in res["verdict"]


# ---------------------------------------------------------------------------- runs
def test_table_is_reproducible_and_resumes(digits, tmp_path):
    kwargs = dict(device="pcm", age_s=DAY, by="layer", seeds=2, progress=False)
    first = run_attribute(digits, "all_analog", **kwargs)
    again = run_attribute(digits, "all_analog", **kwargs)
    assert [(r["view"], r["place"], r["effect"], r["seed"], r["value"]) for r in first["rows"]] == [
        (r["view"], r["place"], r["effect"], r["seed"], r["value"]) for r in again["rows"]
    ]
    assert first["effects"] == again["effects"]

    def in_run(path):
        with RunDir(path, "attribute", {"x": 1}, ATTRIBUTE_COLUMNS, ATTRIBUTE_KEYS) as run:
            return run_attribute(digits, "all_analog", run=run, **kwargs), run

    done, run = in_run(tmp_path / "run")
    assert len(run.rows) == len(first["rows"])
    assert done["effects"] == first["effects"]
    resumed, run2 = in_run(tmp_path / "run")  # nothing is measured again
    assert len(run2.rows) == len(first["rows"])
    assert resumed["effects"] == first["effects"]
    for name in ("attribution_heatmap.png", "attribution_ranked.png", "verdict.txt"):
        assert (tmp_path / "run" / name).stat().st_size > 0
    ranking = read_csv(tmp_path / "run" / "ranking.csv")
    assert [r["name"] for r in ranking if r["kind"] == "effect"] == [
        e["effect"] for e in first["effects"]
    ]
    assert {r["kind"] for r in ranking} == {"effect", "place", "fix"}


def test_deterministic_points_use_one_seed(digits):
    res = run_attribute(digits, "all_analog", device="pcm", age_s=DAY, seeds=3, progress=False)
    seeds = {}
    for r in res["rows"]:
        seeds.setdefault((r["view"], r["place"], r["effect"]), set()).add(r["seed"])
    assert seeds[("grid", "all", "adc")] == {0}  # no random effect: scored once
    assert seeds[("grid", "all", "none")] == {0}
    assert seeds[("grid", "all", "programming")] == {0, 1, 2}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"by": "tile"}, "grouping"),
        ({"age_s": -1.0}, "age_s"),
        ({"temperature_K": 20.0}, "temperature_K"),
        ({"seeds": 0}, "seeds"),
    ],
)
def test_bad_input_is_refused(digits, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        run_attribute(digits, "all_analog", progress=False, **kwargs)


def test_an_all_digital_partition_is_refused(digits):
    with (
        pytest.warns(UserWarning, match="places no layer analog"),
        pytest.raises(ConfigError, match="nothing to attribute"),
    ):
        run_attribute(digits, "all_digital", progress=False)
