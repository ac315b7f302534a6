"""Models that are not built in: local folders and names that cannot be loaded."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, LlamaConfig

from analogsim.errors import ConfigError
from analogsim.models import builtin_models, load_model
from analogsim.models.hf import is_causal_config
from analogsim.models.tiny_gpt2 import train_tokenizer


def test_builtin_names():
    assert builtin_models() == ["digits-mlp", "minilm", "tiny-gpt2"]


@pytest.mark.parametrize(
    "name", ["no-such-model-xyz", "someone/no-such-model", "not a model!!", ""]
)
def test_unknown_name_names_the_model_and_the_builtins(name, hub_offline):
    with pytest.raises(ConfigError) as err:
        load_model(name)
    text = str(err.value)
    assert f"'{name}'" in text and "digits-mlp, minilm, tiny-gpt2" in text
    assert "not a built-in" in text and "could not be loaded" in text


def test_missing_local_folder_fails_fast():
    with pytest.raises(ConfigError, match=r"no such folder.*digits-mlp, minilm, tiny-gpt2"):
        load_model("./no/such/model/folder")


def test_causal_detection():
    assert is_causal_config(GPT2Config())
    assert is_causal_config(LlamaConfig())
    assert not is_causal_config(BertConfig())
    assert not is_causal_config(BertConfig(architectures=["BertForMaskedLM"]))
    assert is_causal_config(BertConfig(architectures=["BertLMHeadModel"]))


def _seeded(build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build()


def test_local_causal_lm_folder(tmp_path, no_network):
    config = GPT2Config(vocab_size=300, n_positions=32, n_embd=16, n_layer=1, n_head=2)
    model = _seeded(lambda: GPT2LMHeadModel(config))
    model.save_pretrained(tmp_path)
    train_tokenizer("A small text for a small tokenizer. " * 50, 300).save_pretrained(tmp_path)
    lm = load_model(str(tmp_path), progress=False)
    assert lm.kind == "causal-lm" and lm.name == str(tmp_path)
    assert not lm.model.training
    assert torch.equal(lm.model.lm_head.weight, model.lm_head.weight)
    assert isinstance(lm.data["heldout_text"], str) and lm.data["heldout_ids"].dim() == 1
    assert lm.tokenizer.decode(lm.data["heldout_ids"][:50]) == lm.tokenizer.decode(
        lm.tokenizer(lm.data["heldout_text"][:400])["input_ids"][:50]
    )


def test_local_encoder_folder_without_tokenizer(tmp_path, no_network):
    config = BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32,
    )  # fmt: skip
    _seeded(lambda: BertModel(config)).save_pretrained(tmp_path)
    lm = load_model(str(tmp_path), progress=False)
    assert lm.kind == "encoder" and lm.tokenizer is None
    assert "tokenizer_error" in lm.info
    assert isinstance(lm.data, list) and len(lm.data) == 48
