"""Shared fixtures for mapper tests: tiny random-initialised Hugging Face models.

Nothing is downloaded: every model is built with ``from_config`` from a config small enough
to build in milliseconds, under a fixed seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

# A layer count no per-layer constant equals, so closed-form counts catch off-by-one rules.
N_LAYERS = 3

_DECODER = dict(
    num_hidden_layers=N_LAYERS,
    hidden_size=32,
    num_attention_heads=2,
    num_key_value_heads=2,
    intermediate_size=48,
    vocab_size=100,
    max_position_embeddings=64,
    bos_token_id=0,
    eos_token_id=0,
    pad_token_id=0,
)

# model_type -> (Auto class name, config kwargs)
TINY_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "gpt2": (
        "AutoModelForCausalLM",
        dict(
            n_layer=N_LAYERS,
            n_embd=32,
            n_head=2,
            n_positions=64,
            vocab_size=100,
            bos_token_id=0,
            eos_token_id=0,
        ),
    ),
    "bert": (
        "AutoModelForMaskedLM",
        dict(
            num_hidden_layers=N_LAYERS,
            hidden_size=32,
            num_attention_heads=2,
            intermediate_size=48,
            vocab_size=100,
            max_position_embeddings=64,
        ),
    ),
    "llama": ("AutoModelForCausalLM", dict(_DECODER)),
    "mistral": ("AutoModelForCausalLM", dict(_DECODER)),
    "qwen2": ("AutoModelForCausalLM", dict(_DECODER)),
    "phi3": ("AutoModelForCausalLM", dict(_DECODER)),
    "opt": (
        "AutoModelForCausalLM",
        dict(
            num_hidden_layers=N_LAYERS,
            hidden_size=32,
            num_attention_heads=2,
            ffn_dim=48,
            vocab_size=100,
            max_position_embeddings=64,
            word_embed_proj_dim=16,  # != hidden_size, so project_in/project_out exist
            bos_token_id=0,
            eos_token_id=0,
            pad_token_id=0,
        ),
    ),
    "gpt_neox": (
        "AutoModelForCausalLM",
        dict(
            num_hidden_layers=N_LAYERS,
            hidden_size=32,
            num_attention_heads=2,
            intermediate_size=48,
            vocab_size=100,
            max_position_embeddings=64,
            bos_token_id=0,
            eos_token_id=0,
        ),
    ),
    # Families with no table of their own (generic fallback).
    "bloom": (
        "AutoModelForCausalLM",
        dict(n_layer=N_LAYERS, hidden_size=32, n_head=2, vocab_size=100),
    ),
    "gptj": (
        "AutoModelForCausalLM",
        dict(
            n_layer=N_LAYERS,
            n_embd=32,
            n_head=2,
            rotary_dim=8,
            n_positions=64,
            vocab_size=100,
            bos_token_id=0,
            eos_token_id=0,
        ),
    ),
    "t5": (
        "AutoModelForSeq2SeqLM",
        dict(
            num_layers=N_LAYERS,
            num_decoder_layers=N_LAYERS,
            d_model=32,
            d_kv=16,
            num_heads=2,
            d_ff=48,
            vocab_size=100,
            feed_forward_proj="relu",
        ),
    ),
    "roberta": (
        "AutoModelForMaskedLM",
        dict(
            num_hidden_layers=N_LAYERS,
            hidden_size=32,
            num_attention_heads=2,
            intermediate_size=48,
            vocab_size=100,
            max_position_embeddings=64,
        ),
    ),
    "mamba": (
        "AutoModelForCausalLM",
        dict(num_hidden_layers=N_LAYERS, hidden_size=32, state_size=4, vocab_size=100),
    ),
}


def build_tiny(
    model_type: str, auto_class: str | None = None, seed: int = 0, **overrides: Any
) -> nn.Module:
    """A tiny random-initialised model of ``model_type`` (no download)."""
    import transformers

    default_class, kwargs = TINY_CONFIGS[model_type]
    config = transformers.AutoConfig.for_model(model_type, **{**kwargs, **overrides})
    torch.manual_seed(seed)
    model = getattr(transformers, auto_class or default_class).from_config(config)
    return model.eval()


@pytest.fixture
def tiny_hf() -> Callable[..., nn.Module]:
    """Factory: ``tiny_hf("gpt2")``, ``tiny_hf("bert", "AutoModel")``, ``tiny_hf("llama",
    tie_word_embeddings=True)``."""
    return build_tiny
