"""Tests for analogsim.mapping.rules: mapping files, rule priority, cascade, errors.

The model for most tests is ``TwoBlockNet`` (tests/conftest.py): layers ``encoder.fc1``,
``encoder.fc2``, ``decoder.fc1``, ``decoder.fc2`` (role ``mlp``) and ``head`` (role ``head``).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from transformers import (
    BertConfig,
    BertForMaskedLM,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
)

from analogsim.devices.quant import Quantizer
from analogsim.errors import ConfigError
from analogsim.mapping.roles import weight_layers
from analogsim.mapping.rules import (
    cards_of,
    list_mappings,
    load_mapping,
    mapping_from_dict,
    resolve_layer,
    resolve_plan,
)
from analogsim.tiles.config import TileConfig
from tests.conftest import TwoBlockNet

LAYERS = ("encoder.fc1", "encoder.fc2", "decoder.fc1", "decoder.fc2", "head")


def mapping(rules: list[dict[str, Any]], default: dict[str, Any] | None = None, **top: Any):
    data = {"name": "test", "default": default or {"placement": "analog", "device": "pcm"}}
    data["rule"] = rules
    data.update(top)
    return mapping_from_dict(data, file="m.toml")


def plan_of(rules, default=None, model=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "nothing analog" warning expected here
        return resolve_plan(model or TwoBlockNet(), mapping(rules, default), **kw).by_name()


# ---------------------------------------------------------------------------- priority
def test_priority_default_role_match_name_regardless_of_order():
    rules = [  # listed from highest to lowest level: file order must not matter across levels
        {"name": "encoder.fc1", "device": "ideal"},
        {"match": r"encoder\.fc\d", "placement": "analog", "device": "rram"},
        {"role": "mlp", "placement": "digital"},
    ]
    p = plan_of(rules)
    assert (p["encoder.fc1"].placement, p["encoder.fc1"].device.name) == ("analog", "ideal")
    assert p["encoder.fc1"].rule == "rule[0] name='encoder.fc1'"
    assert (p["encoder.fc2"].placement, p["encoder.fc2"].device.name) == ("analog", "rram")
    assert p["encoder.fc2"].rule == r"rule[1] match='encoder\\.fc\\d'"
    assert p["decoder.fc1"].placement == "digital" and p["decoder.fc1"].device is None
    assert p["decoder.fc1"].rule == "rule[2] role='mlp'"
    assert (p["head"].placement, p["head"].device.name, p["head"].rule) == (
        "analog",
        "pcm",
        "default",
    )
    # every rule that touched a layer is listed, lowest priority first
    assert p["encoder.fc1"].rules == (
        "default",
        "rule[2] role='mlp'",
        r"rule[1] match='encoder\\.fc\\d'",
        "rule[0] name='encoder.fc1'",
    )


def test_parent_name_applies_to_children_and_deeper_beats_parent():
    rules = [
        {"name": "decoder.fc2", "placement": "analog", "device": "rram"},  # earlier, but deeper
        {"name": "decoder", "placement": "digital"},
    ]
    p = plan_of(rules)
    assert p["decoder.fc1"].placement == "digital"
    assert p["decoder.fc1"].rule == "rule[1] name='decoder'"
    assert (p["decoder.fc2"].placement, p["decoder.fc2"].device.name) == ("analog", "rram")
    assert p["encoder.fc1"].placement == "analog" and p["encoder.fc1"].rule == "default"


def test_match_is_fullmatch_on_the_name_or_a_parent():
    p = plan_of([{"match": "enc.*r", "placement": "digital"}])  # fullmatches 'encoder'
    assert [n for n in LAYERS if p[n].placement == "digital"] == ["encoder.fc1", "encoder.fc2"]
    p = plan_of([{"match": r".*\.fc1", "placement": "digital"}])
    assert [n for n in LAYERS if p[n].placement == "digital"] == ["encoder.fc1", "decoder.fc1"]
    # 'fc1' alone is not a full name of any module: a search would match, fullmatch does not
    with pytest.raises(ConfigError, match=r"rule\[0\] match='fc1' matches no layer"):
        plan_of([{"match": "fc1", "placement": "digital"}])


def test_among_equals_the_later_rule_wins():
    p = plan_of([{"role": "mlp", "device": "rram"}, {"role": "mlp", "device": "ideal"}])
    assert {p[n].device.name for n in LAYERS[:4]} == {"ideal"}
    assert p["encoder.fc1"].rule == "rule[1] role='mlp'"


def test_role_head_selects_the_last_linear():
    p = plan_of([{"role": "head", "placement": "digital"}])
    assert [n for n in LAYERS if p[n].placement == "digital"] == ["head"]


# ---------------------------------------------------------------------------- cascade
def test_tile_settings_cascade_key_by_key():
    default = {"placement": "analog", "device": "pcm", "tile": {"rows": 64, "adc_bits": 6}}
    rules = [
        {"role": "mlp", "tile": {"adc_bits": 4}},
        {"name": "encoder.fc1", "tile": {"out_noise": 0.0}},
    ]
    p = plan_of(rules, default)
    base = TileConfig()
    assert p["encoder.fc1"].tile == base.replace(rows=64, adc_bits=4, out_noise=0.0)
    assert p["encoder.fc2"].tile == base.replace(rows=64, adc_bits=4)
    assert p["head"].tile == base.replace(rows=64, adc_bits=6)
    # a rule that only changes tile settings does not claim the placement decision
    assert p["encoder.fc1"].rule == "default"
    assert "rule[1] name='encoder.fc1'" in p["encoder.fc1"].rules


def test_resolve_layer_is_pure():
    m = mapping([{"role": "mlp", "tile": {"adc_bits": 4}}])
    a = resolve_layer("x.y", "mlp", m)
    b = resolve_layer("x.y", "mlp", m)
    assert a == b
    settings, decided, applied = a
    assert settings["tile"] == {"adc_bits": 4} and decided == "default"
    assert applied == ("default", "rule[0] role='mlp'")
    assert m.default.settings.get("tile") is None  # the mapping is not modified


def test_digital_quantizer_and_device_overrides():
    rules = [
        {"name": "head", "placement": "digital", "quantizer": {"bits": 4, "per_channel": True}},
        {"name": "encoder", "device_overrides": {"drift.scale": 2.0}},
    ]
    p = plan_of(rules)
    assert p["head"].quantizer == Quantizer(4, True) and p["head"].device is None
    assert p["encoder.fc1"].device.drift.scale == 2.0
    assert p["decoder.fc1"].device.drift.scale == 1.0
    assert p["decoder.fc1"].quantizer is None


def test_quantizer_none_on_a_digital_layer():
    default = {"placement": "digital", "quantizer": {"bits": 8}}
    p = plan_of(
        [
            {"name": "head", "quantizer": "none"},
            {"name": "encoder", "placement": "analog", "device": "pcm"},
        ],
        default,
    )
    assert p["decoder.fc1"].quantizer == Quantizer(8)
    assert p["head"].quantizer is None


# ---------------------------------------------------------------------------- optional / unused
def test_rule_matching_nothing_is_an_error_naming_the_rule(tmp_path):
    path = tmp_path / "map.toml"
    path.write_text(
        'name = "m"\n[default]\nplacement = "analog"\ndevice = "pcm"\n'
        '[[rule]]\nrole = "mlp"\ndevice = "rram"\n'
        '[[rule]]\nrole = "embedding"\nplacement = "digital"\n'
    )
    with pytest.raises(ConfigError) as info:
        resolve_plan(TwoBlockNet(), load_mapping(path))
    msg = str(info.value)
    assert msg.startswith(f"{path.resolve()}: key 'rule[1].role': ")
    assert "rule[1] role='embedding' matches no layer" in msg and "'embedding'" in msg
    assert "head, mlp" in msg  # the roles present in the model
    # a mapping built from a dict has no file: the error names the mapping
    with pytest.raises(ConfigError, match=r"^test: key 'rule\[0\].name'.*'nope' matches no layer"):
        plan_of([{"name": "nope", "placement": "digital"}])


def test_optional_rule_may_match_nothing_and_strict_false():
    p = plan_of([{"role": "embedding", "placement": "digital", "optional": True}])
    assert all(p[n].placement == "analog" for n in LAYERS)
    p = plan_of([{"name": "nope", "placement": "digital"}], strict=False)
    assert all(p[n].placement == "analog" for n in LAYERS)


def test_all_digital_mapping_warns(two_block_net):
    with pytest.warns(UserWarning, match="'all_digital' places no layer analog"):
        plan = resolve_plan(two_block_net, load_mapping("all_digital"))
    assert all(p.placement == "digital" for p in plan.layers)
    with pytest.warns(UserWarning, match="places no layer analog"):
        plan_of_warn = resolve_plan(
            two_block_net,
            mapping([{"role": "head", "placement": "digital"}], {"placement": "digital"}),
        )
    assert plan_of_warn.totals()["analog_layers"] == 0


# ---------------------------------------------------------------------------- shipped / loading
def test_shipped_mappings(two_block_net):
    assert {"all_analog", "all_digital"} <= set(list_mappings())
    m = load_mapping("all_analog")
    assert m.path is not None and m.path.name == "all_analog.toml"
    plan = resolve_plan(two_block_net, m)  # the embedding rule is optional
    assert all(p.placement == "analog" and p.device.name == "pcm" for p in plan.layers)
    # the Rasch 2023 preset: per-column weight scales, global drift compensation
    assert plan.layers[0].tile == TileConfig(drift_compensation="global", weight_scale="column")


def test_with_device_and_with_tile_override_the_file():
    m = mapping([{"name": "head", "device": "ideal"}, {"role": "mlp", "tile": {"rows": 8}}])
    p = resolve_plan(TwoBlockNet(), m.with_device("rram").with_tile(adc_bits=4)).by_name()
    assert {p[n].device.name for n in LAYERS} == {"rram"}
    assert {p[n].tile.adc_bits for n in LAYERS} == {4}
    assert p["encoder.fc1"].tile.rows == 8 and p["head"].tile.rows == 512


def test_load_mapping_from_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\n[default]\nplacement = "analog"\ndevice = "rram"\n')
    assert load_mapping(str(path)).default.settings["device"] == "rram"
    assert load_mapping(path).path == path.resolve()


def test_bad_toml_missing_file_unknown_name(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\n[[rule]\n')
    with pytest.raises(ConfigError, match=re.escape(str(path)) + ": not valid TOML"):
        load_mapping(path)
    with pytest.raises(ConfigError, match="mapping file not found"):
        load_mapping(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"unknown mapping.*'nope'.*all_analog"):
        load_mapping("nope")


ERRORS = [
    (
        "unknown top-level",
        {"colour": 1},
        r"key 'colour'.*unknown top-level key.*name, description, default, rule",
    ),
    ("missing name", {"name": ""}, r"key 'name'.*missing or empty 'name'"),
    (
        "unknown rule key",
        {"rule": [{"role": "mlp", "placment": "digital"}]},
        r"key 'rule\[0\].placment'.*unknown key.*role, .*match, name, placement, device",
    ),
    (
        "unknown default key",
        {"default": {"placement": "digital", "role": "mlp"}},
        r"key 'default.role'.*unknown key",
    ),
    (
        "bad placement",
        {"rule": [{"role": "mlp", "placement": "cloud"}]},
        r"key 'rule\[0\].placement'.*invalid placement.*'cloud'.*analog, digital",
    ),
    (
        "unknown role",
        {"rule": [{"role": "ffn", "placement": "digital"}]},
        r"key 'rule\[0\].role'.*unknown role.*'ffn'.*attention, mlp, embedding, head, conv, other",
    ),
    (
        "bad regex",
        {"rule": [{"match": "enc(oder", "placement": "digital"}]},
        r"key 'rule\[0\].match'.*invalid regular expression.*'enc\(oder'",
    ),
    (
        "two selectors",
        {"rule": [{"role": "mlp", "name": "head", "placement": "digital"}]},
        r"key 'rule\[0\]'.*exactly one of role, .*match, name.*\['role', 'name'\]",
    ),
    (
        "no selector",
        {"rule": [{"placement": "digital"}]},
        r"key 'rule\[0\]'.*exactly one of role, .*match, name",
    ),
    (
        "empty selector",
        {"rule": [{"name": "", "placement": "digital"}]},
        r"key 'rule\[0\].name'.*non-empty string",
    ),
    (
        "rule sets nothing",
        {"rule": [{"role": "mlp", "note": "hi"}]},
        r"key 'rule\[0\]'.*rule sets nothing",
    ),
    (
        "unknown device",
        {"rule": [{"role": "mlp", "device": "unobtainium"}]},
        r"key 'rule\[0\].device'.*unknown device.*'unobtainium'",
    ),
    (
        "device not a string",
        {"rule": [{"role": "mlp", "device": 3}]},
        r"key 'rule\[0\].device'.*device name or path",
    ),
    (
        "analog default without device",
        {"default": {"placement": "analog"}},
        r"key 'default.device'.*an analog default needs a device",
    ),
    ("bad tied_weights", {"tied_weights": "merge"}, r"key 'tied_weights'.*'merge'.*follow-head"),
    (
        "bad tile key",
        {"rule": [{"role": "mlp", "tile": {"row": 8}}]},
        r"key 'rule\[0\].tile.row'.*unknown tile setting",
    ),
    (
        "bad tile value",
        {"default": {"placement": "analog", "device": "pcm", "tile": {"adc_bits": 1}}},
        r"key 'default.tile.adc_bits'.*at least 2 bits",
    ),
    (
        "tile not a table",
        {"rule": [{"role": "mlp", "tile": 8}]},
        r"key 'rule\[0\].tile'.*table of tile settings",
    ),
    (
        "bad quantizer bits",
        {"rule": [{"role": "mlp", "quantizer": {"bits": 40}}]},
        r"key 'rule\[0\].quantizer.bits'.*2\.\.16",
    ),
    (
        "bad quantizer form",
        {"rule": [{"role": "mlp", "quantizer": {"bitz": 4}}]},
        r"key 'rule\[0\].quantizer'.*'none' or",
    ),
    (
        "overrides not a table",
        {"rule": [{"role": "mlp", "device_overrides": 2}]},
        r"key 'rule\[0\].device_overrides'.*'section.key'",
    ),
    (
        "optional not bool",
        {"rule": [{"role": "mlp", "placement": "digital", "optional": "yes"}]},
        r"key 'rule\[0\].optional'.*true or false",
    ),
    ("rules not an array", {"rule": {"role": "mlp"}}, r"key 'rule'.*array of tables"),
    ("default not a table", {"default": "analog"}, r"key 'default'.*must be a table"),
]


@pytest.mark.parametrize(("change", "pattern"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_mapping_errors_name_file_and_key(change, pattern):
    data = {"name": "test", "default": {"placement": "analog", "device": "pcm"}, **change}
    with pytest.raises(ConfigError, match="m.toml: " + pattern):
        mapping_from_dict(data, file="m.toml")


def test_errors_from_a_file_name_the_file(tmp_path: Path):
    path = tmp_path / "map.toml"
    path.write_text(
        'name = "m"\n[default]\nplacement = "analog"\ndevice = "pcm"\n[[rule]]\nrole = "ffn"\nplacement = "digital"\n'
    )
    with pytest.raises(ConfigError, match=re.escape(f"{path}: key 'rule[0].role'")):
        load_mapping(path)


def test_device_overrides_may_set_a_piecewise_function():
    const = {"form": "const", "c": [0.07]}
    p = plan_of([{"role": "mlp", "device_overrides": {"drift.nu_mean": const}}])
    assert p["encoder.fc1"].device.drift.nu_mean.scalar(0.5) == pytest.approx(0.07)
    assert p["head"].device.drift.nu_mean.scalar(1.0) == pytest.approx(0.049)
    assert p["encoder.fc1"].device is p["decoder.fc2"].device  # one model per distinct card


def test_device_overrides_are_validated_when_resolving():
    m = mapping([{"role": "mlp", "device_overrides": {"drift.scale": -1.0}}])
    with pytest.raises(ConfigError, match=r"key 'drift.scale'.*out of physical range"):
        resolve_plan(TwoBlockNet(), m)


# ---------------------------------------------------------------------------- HF models
def test_gpt2_roles_and_report(tiny_hf):
    from tests.mapping.conftest import N_LAYERS

    model = tiny_hf("gpt2")
    m = mapping(
        [
            {"role": "attention", "placement": "digital", "quantizer": {"bits": 8}},
            {"role": "embedding", "placement": "digital"},
            {"name": "transformer.h.0", "placement": "analog", "device": "rram"},
        ],
        # lm_head is tied to wte: a mapping that places them differently must say so
        tied_weights="independent",
    )
    plan = resolve_plan(model, m)
    by = plan.by_name()
    digital_q = [p.name for p in plan.layers if p.quantizer is not None]
    assert len(digital_q) == 2 * (N_LAYERS - 1)  # attention outside block 0
    assert by["transformer.h.0.attn.c_attn"].device.name == "rram"
    assert by["transformer.h.0.attn.c_attn"].rule == "rule[2] name='transformer.h.0'"
    assert by["transformer.h.1.mlp.c_fc"].device.name == "pcm"
    assert by["lm_head"].placement == "analog" and by["lm_head"].tied_to == "transformer.wte"
    assert by["transformer.wte"].placement == "digital"
    row = by["transformer.h.1.attn.c_attn"].as_dict()
    assert row["rule"] == "rule[0] role='attention'" and row["quantizer"] == {
        "bits": 8,
        "per_channel": False,
    }


# ---------------------------------------------------------------------------- cards_of
def test_cards_of():
    assert set(cards_of(load_mapping("all_analog"))) == {"pcm"}
    assert set(cards_of(load_mapping("all_analog"), "rram")) == {"rram"}
    assert cards_of(load_mapping("all_digital")) == {}
    card = cards_of(load_mapping("all_analog"))["pcm"]
    assert card["name"] == "pcm"
    assert card["drift"]["t0_s"] == 20.0  # pcm drift t0


# ---------------------------------------------------------------------------- tied weights
def _tiny(family: str) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if family == "gpt2":
            return GPT2LMHeadModel(
                GPT2Config(vocab_size=100, n_embd=16, n_layer=1, n_head=2, n_positions=32)
            )
        if family == "bert":
            return BertForMaskedLM(
                BertConfig(
                    vocab_size=100,
                    hidden_size=16,
                    num_hidden_layers=1,
                    num_attention_heads=2,
                    intermediate_size=32,
                    max_position_embeddings=32,
                )
            )
        if family == "llama":
            return LlamaForCausalLM(
                LlamaConfig(
                    vocab_size=100,
                    hidden_size=16,
                    intermediate_size=32,
                    num_hidden_layers=1,
                    num_attention_heads=2,
                    num_key_value_heads=2,
                    tie_word_embeddings=True,
                )
            )
        return T5ForConditionalGeneration(
            T5Config(
                vocab_size=100,
                d_model=16,
                d_kv=4,
                d_ff=32,
                num_layers=1,
                num_decoder_layers=1,
                num_heads=2,
            )
        )


def _weight_layer_params(model: nn.Module) -> int:
    """Distinct parameters of the weight layers (a shared weight once)."""
    seen: dict[int, int] = {}
    for _, module in weight_layers(model):
        for p in module.parameters(recurse=False):
            seen[id(p)] = p.numel()
    return sum(seen.values())


@pytest.mark.parametrize(
    ("family", "group"),
    [
        ("gpt2", ["transformer.wte", "lm_head"]),
        ("bert", ["bert.embeddings.word_embeddings", "cls.predictions.decoder"]),
        ("llama", ["model.embed_tokens", "lm_head"]),
        ("t5", ["shared", "encoder.embed_tokens", "decoder.embed_tokens", "lm_head"]),
    ],
)
def test_a_tied_weight_counts_once(family, group):
    model = _tiny(family)
    plan = resolve_plan(model, load_mapping("all_analog"))
    totals = plan.totals()
    assert totals["tied_groups"] == [group]
    assert totals["params"] == _weight_layer_params(model)
    # the head is analog, so the shared weight is held on analog tiles: counted analog once
    head = plan.by_name()[group[-1]]
    assert head.placement == "analog"
    tied = {n for g in totals["tied_groups"] for n in g}
    untied_digital = sum(
        p.params for p in plan.layers if p.placement == "digital" and p.name not in tied
    )
    assert totals["analog_params"] == totals["params"] - untied_digital
    with pytest.warns(UserWarning, match="places no layer analog"):
        digital = resolve_plan(model, load_mapping("all_digital")).totals()
    assert digital["params"] == totals["params"] and digital["analog_params"] == 0
