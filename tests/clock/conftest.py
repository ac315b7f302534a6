"""Fixtures for the clock tests: tiny random GPT-2s and mappings built in milliseconds.

Nothing here needs the cached tiny-gpt2 (or any download).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from analogsim.mapping.rules import mapping_from_dict
from analogsim.models import LoadedModel

IDEAL_TILE = dict(
    dac_bits=0, adc_bits=0, adc_bound=0.0, out_noise=0.0, read_noise=0.0, drift_compensation="none"
)


def tiny_gpt2(seed: int = 0, vocab: int = 100, n_layer: int = 2) -> nn.Module:
    """A random GPT-2 (2 layers, 32 wide, vocab 100, 128 positions, untied head), seeded;
    the global RNG is kept."""
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(
        n_layer=n_layer,
        n_embd=32,
        n_head=2,
        vocab_size=vocab,
        n_positions=128,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=False,  # a tied random head just repeats the last token
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(cfg).eval()
    # sharper logits than the default init, so greedy/sampled text is not near-uniform
    with torch.no_grad():
        model.transformer.ln_f.weight.mul_(20.0)
    return model


def loaded(model: nn.Module, name: str = "tiny-random-gpt2") -> LoadedModel:
    return LoadedModel(name, "causal-lm", model, None, None)


def mapping(device: str = "pcm", tile: dict[str, Any] | None = None, name: str = "test"):
    """Every weight layer analog on ``device`` (embeddings digital), tile settings ``tile``."""
    return mapping_from_dict(
        {
            "name": name,
            "tied_weights": "independent",
            "default": {"placement": "analog", "device": device, "tile": dict(tile or IDEAL_TILE)},
            "rule": [{"role": "embedding", "placement": "digital", "optional": True}],
        }
    )


@pytest.fixture
def gpt2() -> nn.Module:
    return tiny_gpt2()


@pytest.fixture
def prompt() -> torch.Tensor:
    return torch.tensor([[5, 17, 42, 7]])
