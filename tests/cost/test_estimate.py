"""Tests for analogsim.cost.estimate: operation counts, energy, area, latency.

Expected energies are computed here by hand from the layer sizes and the cost table's
values (or from the published numbers directly), never by calling the code under test.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from analogsim.cost.attention import attention_macs_per_token, kv_cache_bytes_per_token
from analogsim.cost.estimate import BREAKDOWN_KEYS, estimate_cost
from analogsim.cost.table import cost_paths, load_costs
from analogsim.errors import ConfigError
from analogsim.mapping.rules import mapping_from_dict, resolve_plan
from tests.cost.conftest import mlp

pJ = 1e-12


def plan_for(model: nn.Module, default: dict[str, Any], rules: list[dict[str, Any]] | None = None):
    """Resolve a mapping given as a dict on ``model`` (no 'nothing analog' warning shown)."""
    m = mapping_from_dict({"name": "test", "default": default, "rule": rules or []}, file="t.toml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return resolve_plan(model, m)


def analog(**tile: Any) -> dict[str, Any]:
    return {"placement": "analog", "device": "pcm", "tile": tile}


DIGITAL = {"placement": "digital"}


# ---------------------------------------------------------------------------- hand-computed example
def hand_model() -> nn.Sequential:
    # layer "0": Linear(600, 300) analog on 256 x 128 tiles (600 is not a multiple of 256)
    # layer "2": Linear(300, 10) digital fp16
    return mlp(600, 300, 10)


def hand_plan():
    return plan_for(
        hand_model(),
        analog(rows=256, cols=128, dac_bits=8, adc_bits=8),
        [{"name": "2", "placement": "digital"}],
    )


def test_energy_of_a_hand_computed_example(costs):
    report = estimate_cost(hand_plan(), costs=costs)  # fp16, sram by default
    c = costs
    # analog layer: K = 600, N = 300, R = 256, C = 128 -> 3 tiles along K, 3 along N
    analog_J = (
        600 * 300 * c.array_mac_J  # MACs in the array
        + 600 * 3 * c.dac_conversion_J  # K DACs per column of tiles, 8 bits
        + 300 * 3 * c.adc_conversion_J  # N ADCs per row of tiles, 8 bits
        + 300 * 2 * c.int32_add_J  # partial sums of 3 tiles: 2 adds per output
        + 300 * c.fp16_mul_J  # output scaling
        + 300 * c.fp16_add_J  # bias
    )
    # digital layer: 3000 MACs at fp16, 10 bias adds, 3010 fp16 values read from SRAM
    digital_J = (
        3000 * (c.fp16_mul_J + c.fp16_add_J) + 10 * c.fp16_add_J + 3010 * 2 / 8 * c.sram_read_64b_J
    )
    assert report.layers[0].energy_J == pytest.approx(analog_J, rel=1e-12)
    assert report.layers[1].energy_J == pytest.approx(digital_J, rel=1e-12)
    assert report.energy_per_token_J == pytest.approx(analog_J + digital_J, rel=1e-12)
    # the same with the default table's numbers written out, in pJ:
    # 180000*0.025 + 1800*0.05 + 900*1.7 + 600*0.1 + 300*1.1 + 300*0.4 = 6630
    # 3000*1.5 + 10*0.4 + 3010*2/8*10 = 12029
    assert report.energy_per_token_J == pytest.approx((6630 + 12029) * pJ, rel=1e-9)
    b = report.breakdown_J
    assert b["adc"] == pytest.approx(900 * 1.7 * pJ)
    assert b["weight_memory"] == pytest.approx(7525 * pJ)
    assert b["attention_matmul"] == 0.0
    # area and devices: 9 tiles of 256 x 128 = half the 256 x 256 reference each; PCM: 2 per weight
    assert report.tiles == 9
    assert report.devices == 600 * 300 * 2
    assert report.area_mm2 == pytest.approx(9 * c.tile_area_mm2 / 2)
    # latency: one MVM time, then max(3000 MACs / rate, 6020 B / SRAM bandwidth)
    expected_t = c.analog_mvm_time_s + max(
        3000 / c.digital_mac_rate_per_s, 6020 / c.sram_bandwidth_B_per_s
    )
    assert report.latency_per_token_s == pytest.approx(expected_t)


def test_a_custom_cost_file_with_round_numbers(tmp_path):
    # every energy 1 pJ, so the energy in pJ is the number of operations (bytes / 8 for reads)
    text = Path(cost_paths()["default"]).read_text()
    text = re.sub(r"(?m)^value = [0-9.]+\nunit = \"[fpn]J\"", 'value = 1.0\nunit = "pJ"', text)
    path = tmp_path / "round.toml"
    path.write_text(text)
    c = load_costs(path)
    assert c.path == path.resolve() and c.name == "default"
    assert c.adc_conversion_J == c.dram_read_64b_J == c.array_mac_J == 1 * pJ
    r = estimate_cost(hand_plan(), costs=c)
    analog_ops = 180000 + 1800 + 900 + 600 + 300 + 300
    digital_ops = 3000 * 2 + 10 + 3010 * 2 / 8
    assert r.energy_per_token_J == pytest.approx((analog_ops + digital_ops) * pJ)


# ---------------------------------------------------------------------------- counts
@pytest.mark.parametrize(
    ("K", "N", "R", "C"),
    [(600, 300, 256, 128), (512, 512, 512, 512), (513, 7, 512, 512), (5, 9, 4, 2)],
)
def test_tile_and_conversion_counts(K, N, R, C):
    plan = plan_for(nn.Sequential(nn.Linear(K, N)), analog(rows=R, cols=C))
    lc = estimate_cost(plan).layers[0]
    kt, nt = math.ceil(K / R), math.ceil(N / C)
    assert lc.tiles == kt * nt == plan.layers[0].tiles()
    assert lc.analog_macs == K * N
    assert lc.dac_conversions == K * nt
    assert lc.adc_conversions == N * kt
    assert lc.digital_adds == N * (kt - 1) + N  # partial sums + bias
    assert lc.digital_muls == N
    assert lc.weight_bytes_read == 0 and lc.digital_macs == 0


def test_adc_energy_scales_with_bits(costs):
    def adc_J(bits: int) -> float:
        return estimate_cost(plan_for(mlp(600, 300), analog(rows=256, adc_bits=bits))).breakdown_J[
            "adc"
        ]

    e8 = adc_J(8)
    assert e8 == pytest.approx(300 * 3 * 1.7 * pJ)
    assert adc_J(10) == pytest.approx(4 * e8)
    assert adc_J(4) == pytest.approx(e8 / 16)
    r0 = estimate_cost(plan_for(mlp(600, 300), analog(rows=256, adc_bits=0)))
    assert r0.breakdown_J["adc"] == pytest.approx(e8)
    assert any("ideal converters" in n and "8 bits" in n for n in r0.notes)


def test_dac_energy_scales_with_bits():
    def dac_J(bits: int) -> float:
        return estimate_cost(plan_for(mlp(64, 32), analog(dac_bits=bits))).breakdown_J["dac"]

    assert dac_J(4) == pytest.approx(dac_J(8) / 2)
    assert dac_J(0) == pytest.approx(dac_J(8))


def test_digital_precision_choice(costs):
    plan = plan_for(mlp(64, 32, bias=False), DIGITAL)
    per_mac = {
        "fp32": costs.fp32_mul_J + costs.fp32_add_J,  # 4.6 pJ
        "fp16": costs.fp16_mul_J + costs.fp16_add_J,  # 1.5 pJ
        "int8": costs.int8_mul_J + costs.int32_add_J,  # 0.3 pJ: int32 accumulator
    }
    for precision, mac in per_mac.items():
        r = estimate_cost(plan, digital_precision=precision, weight_memory="none")
        assert r.energy_per_token_J == pytest.approx(64 * 32 * mac), precision
        nbytes = {"fp32": 4, "fp16": 2, "int8": 1}[precision] * 64 * 32
        assert r.layers[0].weight_bytes_read == nbytes
    fp32 = estimate_cost(plan, digital_precision="fp32").energy_per_token_J
    fp16 = estimate_cost(plan, digital_precision="fp16").energy_per_token_J
    int8 = estimate_cost(plan, digital_precision="int8").energy_per_token_J
    assert fp32 > fp16 > int8


def test_a_layer_quantizer_overrides_the_digital_precision(costs):
    plan = plan_for(mlp(64, 32, bias=False), {"placement": "digital", "quantizer": {"bits": 4}})
    lc = estimate_cost(plan, digital_precision="fp32").layers[0]
    assert lc.precision == "int4"
    assert lc.weight_bytes_read == 64 * 32 * 0.5
    mac = costs.int_mul_J(4) + costs.int32_add_J
    assert lc.breakdown_J["digital_mac"] == pytest.approx(64 * 32 * mac)
    assert costs.int_mul_J(4) < costs.int8_mul_J


def test_weight_memory_choice(costs):
    plan = plan_for(mlp(64, 32), DIGITAL)  # 64*32 + 32 params, fp16
    nbytes = (64 * 32 + 32) * 2
    w = {
        m: estimate_cost(plan, weight_memory=m).breakdown_J["weight_memory"]
        for m in ("sram", "dram", "none")
    }
    assert w["sram"] == pytest.approx(nbytes / 8 * 10 * pJ)
    assert w["dram"] == pytest.approx(nbytes / 8 * costs.dram_read_64b_J)
    assert w["none"] == 0.0
    assert w["dram"] / w["sram"] == pytest.approx(costs.dram_read_64b_J / costs.sram_read_64b_J)
    # analog layers read no weights, whatever the memory
    a = plan_for(mlp(64, 32), analog())
    assert estimate_cost(a, weight_memory="dram").energy_per_token_J == pytest.approx(
        estimate_cost(a, weight_memory="sram").energy_per_token_J
    )


@pytest.mark.parametrize("memory", ["sram", "dram"])
@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_all_analog_is_cheaper_per_token_than_all_digital(memory, precision):
    model = mlp(512, 2048, 512)  # a transformer-sized MLP block at batch 1
    kw = dict(weight_memory=memory, digital_precision=precision)
    a = estimate_cost(plan_for(model, analog(rows=512, cols=512)), **kw)
    d = estimate_cost(plan_for(model, DIGITAL), **kw)
    assert a.energy_per_token_J < d.energy_per_token_J
    # the digital side pays mostly for moving weights; the analog side moves none
    assert d.breakdown_J["weight_memory"] > d.breakdown_J["digital_mac"] / 2
    assert a.breakdown_J["weight_memory"] == 0.0
    mixed = estimate_cost(plan_for(model, analog(), [{"name": "2", "placement": "digital"}]), **kw)
    assert a.energy_per_token_J < mixed.energy_per_token_J < d.energy_per_token_J


# ---------------------------------------------------------------------------- other layer kinds
def test_embeddings_read_one_row_and_do_no_macs(costs):
    model = nn.Sequential(nn.Embedding(100, 16), nn.Linear(16, 100))
    plan = plan_for(model, analog(), [{"role": "embedding", "placement": "digital"}])
    r = estimate_cost(plan)
    emb = r.layers[0]
    assert (emb.kind, emb.placement, emb.digital_macs, emb.analog_macs) == (
        "embedding",
        "digital",
        0,
        0,
    )
    assert emb.weight_bytes_read == 16 * 2  # one fp16 row
    assert emb.energy_J == pytest.approx(32 / 8 * 10 * pJ)
    # placed analog: the table occupies tiles; a lookup senses 16 values
    a = estimate_cost(plan_for(model, analog(rows=8, cols=64)))
    emb = a.layers[0]
    assert emb.tiles == math.ceil(16 / 8) * math.ceil(100 / 64)
    assert emb.devices == 1600 * 2
    assert emb.adc_conversions == 16 and emb.weight_bytes_read == 0
    assert emb.energy_J == pytest.approx(16 * (costs.array_mac_J + costs.adc_conversion_J))
    assert any("embedding" in n for n in a.notes)


def test_conv2d_counts_per_output_pixel():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 4))
    r = estimate_cost(plan_for(model, analog()))
    conv = r.layers[0]
    assert conv.kind == "conv2d" and conv.analog_macs == 3 * 3 * 3 * 8
    d = estimate_cost(plan_for(model, DIGITAL))
    assert d.layers[0].digital_macs == 216 and d.layers[0].weight_bytes_read == 0
    assert any("per output pixel" in n for n in d.notes)


def test_tiny_gpt2_all_analog_mapping():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(
        n_layer=3,
        n_embd=32,
        n_head=2,
        n_positions=64,
        vocab_size=100,
        bos_token_id=0,
        eos_token_id=0,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = transformers.GPT2LMHeadModel(cfg)
    from analogsim.mapping.rules import load_mapping

    plan = resolve_plan(model, load_mapping("all_analog"))
    att = attention_macs_per_token(cfg, 64)
    r = estimate_cost(plan, attention_macs_per_token=att)
    assert r.tiles == plan.totals()["tiles"]  # embeddings digital in this mapping
    assert r.breakdown_J["attention_matmul"] == pytest.approx(att * 1.5 * pJ)
    analog_macs = sum(p.macs_per_token for p in plan.layers if p.placement == "analog")
    assert sum(lc.analog_macs for lc in r.layers) == analog_macs
    assert r.macs_per_token == analog_macs + att


# ---------------------------------------------------------------------------- attention MACs
def test_attention_macs_are_costed_at_the_digital_precision(costs):
    plan = plan_for(mlp(8, 8), analog())
    base = estimate_cost(plan, digital_precision="fp32")
    r = estimate_cost(plan, digital_precision="fp32", attention_macs_per_token=1000)
    assert r.breakdown_J["attention_matmul"] == pytest.approx(1000 * 4.6 * pJ)
    assert r.energy_per_token_J - base.energy_per_token_J == pytest.approx(1000 * 4.6 * pJ)
    assert r.latency_per_token_s - base.latency_per_token_s == pytest.approx(
        1000 / costs.digital_mac_rate_per_s
    )


def test_kv_cache_bytes_and_their_cost():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(n_layer=3, n_embd=32, n_head=2, n_positions=64, vocab_size=100)
    # keys and values: 2 x 3 layers x 10 positions x 32 numbers x 2 bytes
    assert kv_cache_bytes_per_token(cfg, 10) == 2 * 3 * 10 * 32 * 2 == 3840
    assert kv_cache_bytes_per_token(cfg, 10, "int8") == 1920
    gqa = transformers.LlamaConfig(
        num_hidden_layers=2, hidden_size=64, num_attention_heads=4, num_key_value_heads=1
    )
    assert kv_cache_bytes_per_token(gqa, 10) == 2 * 2 * 10 * (1 * 16) * 2  # one KV head of 16
    assert kv_cache_bytes_per_token(mlp(4, 4), 10) == 0.0
    plan = plan_for(mlp(8, 8), analog())
    base = estimate_cost(plan)
    r = estimate_cost(plan, kv_cache_bytes_per_token=3840)
    assert r.breakdown_J["kv_cache"] == pytest.approx(3840 / 8 * 10 * pJ)
    assert r.energy_per_token_J - base.energy_per_token_J == pytest.approx(3840 / 8 * 10 * pJ)
    assert (
        estimate_cost(plan, kv_cache_bytes_per_token=3840, weight_memory="none").breakdown_J[
            "kv_cache"
        ]
        == 0.0
    )
    with pytest.raises(ConfigError, match="kv_cache_bytes_per_token"):
        estimate_cost(plan, kv_cache_bytes_per_token=-1)


def test_a_tied_analog_embedding_shares_the_head_arrays_only_when_the_mapping_says_so():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(
        n_layer=1,
        n_embd=32,
        n_head=2,
        n_positions=16,
        vocab_size=100,
        bos_token_id=0,
        eos_token_id=0,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = transformers.GPT2LMHeadModel(cfg)
    tiles = {}
    for policy in ("follow-head", "independent"):
        m = mapping_from_dict(
            {"name": policy, "tied_weights": policy, "default": analog(rows=16, cols=64)}
        )
        r = estimate_cost(resolve_plan(model, m))
        tiles[policy] = {lc.name: lc.tiles for lc in r.layers}
    wte = math.ceil(32 / 16) * math.ceil(100 / 64)  # the table as a (d -> vocab) matrix
    assert tiles["independent"]["transformer.wte"] == wte
    assert tiles["follow-head"]["transformer.wte"] == 0
    assert tiles["follow-head"]["lm_head"] == tiles["independent"]["lm_head"] == wte


# ---------------------------------------------------------------------------- report
def test_report_is_consistent_deterministic_and_serialisable():
    plan = hand_plan()
    r = estimate_cost(plan, attention_macs_per_token=77, kv_cache_bytes_per_token=100)
    assert set(r.breakdown_J) == set(BREAKDOWN_KEYS)
    assert r.energy_per_token_J == pytest.approx(sum(r.breakdown_J.values()))
    assert r.energy_per_token_J == pytest.approx(
        sum(lc.energy_J for lc in r.layers)
        + r.breakdown_J["attention_matmul"]
        + r.breakdown_J["kv_cache"]
    )
    parts = r.energy_by_placement_J()
    assert sum(parts.values()) == pytest.approx(r.energy_per_token_J)
    assert estimate_cost(plan, attention_macs_per_token=77, kv_cache_bytes_per_token=100) == r
    d = json.loads(json.dumps(r.as_dict()))
    assert d["mapping"] == "test" and len(d["layers"]) == 2
    assert len(r.rows()) == 2 and "energy_adc_J" in r.rows()[0]
    assert r.tops_per_W > 0


def test_bad_arguments_are_config_errors():
    plan = hand_plan()
    with pytest.raises(ConfigError, match=r"digital_precision.*bf16.*allowed: fp32, fp16"):
        estimate_cost(plan, digital_precision="bf16")
    with pytest.raises(ConfigError, match=r"weight_memory.*hbm.*sram, dram, none"):
        estimate_cost(plan, weight_memory="hbm")
    with pytest.raises(ConfigError, match="attention_macs_per_token"):
        estimate_cost(plan, attention_macs_per_token=-5)
    with pytest.raises(ConfigError, match="PlacementPlan"):
        estimate_cost(hand_model())  # type: ignore[arg-type]


def test_replace_changes_values_and_validates(costs):
    free_adc = costs.replace(adc_conversion_J=0.0)
    r = estimate_cost(hand_plan(), costs=free_adc)
    assert r.breakdown_J["adc"] == 0.0 and r.costs.endswith("(modified)")
    with pytest.raises(ConfigError, match=r"adc_conversion_J.*negative"):
        costs.replace(adc_conversion_J=-1e-12)
    with pytest.raises(ConfigError, match="unknown cost field 'adc_J'"):
        costs.replace(adc_J=1.0)
