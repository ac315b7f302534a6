"""tiny-gpt2 at seconds scale: build, reload with from_pretrained, tokenizer, training."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from safetensors.torch import load_file
from transformers import GPT2LMHeadModel

import analogsim.models.tiny_gpt2 as tg
from analogsim.errors import ConfigError
from analogsim.metrics import perplexity
from analogsim.models import (
    build_tiny_gpt2,
    load_model,
    load_tiny_gpt2,
    load_tiny_gpt2_folder,
    pending_build,
)
from tests.models.conftest import SMALL_GPT2


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpt2")
    folder = build_tiny_gpt2(root, recipe=SMALL_GPT2, progress=False)
    return root, folder


def test_corpus_split_is_fixed():
    train, heldout = tg.pydoc_corpus()
    assert 0.08 < len(heldout) / (len(train) + len(heldout)) < 0.12
    assert (
        train.endswith("\n")
        and (train + heldout) == tg.pydoc_corpus(0.2)[0] + tg.pydoc_corpus(0.2)[1]
    )


def test_build_writes_a_complete_folder_and_nothing_else(built):
    root, folder = built
    assert folder == root / "tiny-gpt2"
    assert [p.name for p in root.iterdir()] == ["tiny-gpt2"]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "meta.json"):
        assert (folder / name).is_file()
    assert tg.cached_build_is_valid(folder, SMALL_GPT2)
    assert not tg.cached_build_is_valid(folder, dataclasses.replace(SMALL_GPT2, steps=31))


def test_loads_back_with_from_pretrained(built):
    _, folder = built
    lm = load_tiny_gpt2_folder(folder)
    assert lm.kind == "causal-lm" and isinstance(lm.model, GPT2LMHeadModel)
    assert not lm.model.training
    assert lm.model.lm_head.weight is lm.model.transformer.wte.weight  # tied, as GPT-2
    assert all(p.dtype == torch.float32 for p in lm.model.parameters())
    assert lm.info["params"] == sum(p.numel() for p in lm.model.parameters())
    saved = load_file(str(folder / "model.safetensors"))
    assert torch.equal(
        saved["transformer.h.0.mlp.c_fc.weight"], lm.model.transformer.h[0].mlp.c_fc.weight
    )


def test_tokenizer_round_trips_and_has_gpt2_specials(built):
    lm = load_tiny_gpt2_folder(built[1])
    tok = lm.tokenizer
    assert tok.eos_token == tok.bos_token == "<|endoftext|>" and tok.eos_token_id == 0
    assert len(tok) == SMALL_GPT2.vocab_size
    for text in [lm.data["heldout_text"][:2000], "naïve café → 你好\n\tx = {'a': 1}  "]:
        assert tok.decode(tok(text)["input_ids"]) == text
    data = lm.data
    assert data["heldout_ids"].dtype == torch.long and data["heldout_ids"].dim() == 1
    assert tok.decode(data["heldout_ids"]) == data["heldout_text"]
    assert data["train_ids"].numel() > 8 * data["heldout_ids"].numel()


def test_short_training_beats_the_untrained_model(built):
    lm = load_tiny_gpt2_folder(built[1])
    ppl = lm.info["heldout_perplexity"]
    assert math.isfinite(ppl) and 1.0 < ppl < SMALL_GPT2.vocab_size
    heldout = lm.data["heldout_ids"]
    again = perplexity(lm.model, heldout, max_length=64, stride=32)
    assert again == pytest.approx(ppl, rel=1e-5)  # the saved model is the evaluated one
    untrained = tg._make_model(SMALL_GPT2, eos_id=0).eval()
    assert perplexity(untrained, heldout, max_length=64, stride=32) > 1.5 * ppl


def test_build_is_deterministic_and_leaves_global_rng_alone(tmp_path):
    small = dataclasses.replace(SMALL_GPT2, steps=3)
    state = torch.get_rng_state()
    a = build_tiny_gpt2(tmp_path / "a", recipe=small, progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    b = build_tiny_gpt2(tmp_path / "b", recipe=small, progress=False)
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()


def test_interrupted_build_keeps_the_previous_folder(tmp_path, monkeypatch):
    small = dataclasses.replace(SMALL_GPT2, steps=2)
    folder = build_tiny_gpt2(tmp_path, recipe=small, progress=False)
    before = (folder / "model.safetensors").read_bytes()

    def _interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tg, "perplexity", _interrupt)  # dies after training, before saving
    with pytest.raises(KeyboardInterrupt):
        build_tiny_gpt2(tmp_path, recipe=dataclasses.replace(small, steps=3), progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["tiny-gpt2"]
    assert (folder / "model.safetensors").read_bytes() == before


def test_load_model_uses_the_cache(cache, monkeypatch):
    small = dataclasses.replace(SMALL_GPT2, steps=2)
    monkeypatch.setattr(tg, "DEFAULT_RECIPE", small)
    first = load_model("tiny-gpt2", progress=False)
    assert first.info["from_cache"] is False
    assert first.info["cache_path"] == str(cache / "tiny-gpt2")
    assert set(first.data) == {"train_ids", "heldout_ids", "heldout_text"}
    second = load_tiny_gpt2(progress=False)
    assert second.info["from_cache"] is True
    assert torch.equal(second.model.transformer.wte.weight, first.model.transformer.wte.weight)
    (cache / "tiny-gpt2" / "model.safetensors").write_bytes(b"truncated")
    assert load_model("tiny-gpt2", progress=False).info["from_cache"] is False  # damaged
    monkeypatch.setattr(tg, "DEFAULT_RECIPE", dataclasses.replace(small, seed=1))
    assert load_model("tiny-gpt2", progress=False).info["from_cache"] is False  # recipe changed


def test_recipe_errors_name_the_key():
    with pytest.raises(
        ConfigError, match=r"unknown tiny-gpt2 recipe key.*allowed: version, vocab_size"
    ):
        tg.TinyGPT2Recipe().replace(n_layers=2)
    with pytest.raises(ConfigError, match="block_size"):
        tg.TinyGPT2Recipe().replace(block_size=512)
    with pytest.raises(ConfigError, match="n_embd"):
        tg.TinyGPT2Recipe().replace(n_embd=130)
    with pytest.raises(ConfigError, match="vocab_size"):
        build_tiny_gpt2("/nonexistent", vocab_size=100)


def test_a_build_says_what_it_builds_and_how_long_it_takes(cache, monkeypatch, capsys):
    small = dataclasses.replace(SMALL_GPT2, steps=2)
    monkeypatch.setattr(tg, "DEFAULT_RECIPE", small)
    assert pending_build("tiny-gpt2") == tg.build_notice(cache / "tiny-gpt2", small)
    assert pending_build("digits-mlp") is None
    load_model("tiny-gpt2", progress=True)
    err = capsys.readouterr().err
    assert "building tiny-gpt2 once: 2 training steps on CPU, under a minute" in err
    assert "scoring held-out perplexity" in err
    assert pending_build("tiny-gpt2") is None  # built and cached


def test_the_default_build_estimate_is_the_measured_one():
    assert tg.estimated_build_seconds() == pytest.approx(1000 * 0.45)
    assert "about 8 min" in tg.build_notice(tg.Path("/c"))
    assert tg.estimated_build_seconds(SMALL_GPT2) < 1.0
