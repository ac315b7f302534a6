"""Tests for analogsim.cost.attention: attention MACs per token from a model's config."""

from __future__ import annotations

import pytest

from analogsim.cost.attention import attention_macs_per_token
from analogsim.errors import ConfigError
from tests.cost.conftest import mlp


def test_attention_macs_formula_on_a_tiny_gpt2_config():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(n_layer=3, n_embd=32, n_head=2, n_positions=64, vocab_size=100)
    # QK^T: 10 keys x 32 per layer; AV: as many again; 3 layers
    assert attention_macs_per_token(cfg, 10) == 2 * 3 * 10 * 32 == 1920
    assert attention_macs_per_token(cfg, 0) == 0
    assert attention_macs_per_token(cfg, 20) == 2 * attention_macs_per_token(cfg, 10)
    bert = transformers.BertConfig(num_hidden_layers=2, hidden_size=48, num_attention_heads=4)
    assert attention_macs_per_token(bert, 5) == 2 * 2 * 5 * 48
    # a model with a .config works too; non-transformers give 0
    assert attention_macs_per_token(mlp(4, 4), 10) == 0
    assert attention_macs_per_token(None, 10) == 0
    with pytest.raises(ConfigError, match="context_tokens"):
        attention_macs_per_token(cfg, -1)


def test_attention_macs_use_head_dim_when_set():
    class Cfg:  # a config whose heads x head_dim differs from the hidden size
        model_type = "x"
        num_hidden_layers = 2
        hidden_size = 64
        num_attention_heads = 4
        head_dim = 32

    assert attention_macs_per_token(Cfg(), 3) == 2 * 2 * 3 * 4 * 32
