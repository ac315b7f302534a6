"""Fixtures for the clock tests: tiny random GPT-2s and mappings built in milliseconds.

Nothing here needs the cached tiny-gpt2 (or any download). The shared pieces (the GPT-2
factory, ideal tile settings, the all-analog mapping) are in ``tests/conftest.py``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from analogsim.models import LoadedModel
from tests.conftest import make_gpt2


def tiny_gpt2(seed: int = 0, vocab: int = 100, n_layer: int = 2) -> nn.Module:
    """The clock tests' GPT-2: 32 wide, 128 positions, an untied head (a tied random head
    just repeats the last token) and sharpened logits."""
    return make_gpt2(seed, vocab=vocab, n_positions=128, n_layer=n_layer, tied=False, sharpen=20.0)


def loaded(model: nn.Module, name: str = "tiny-random-gpt2") -> LoadedModel:
    return LoadedModel(name, "causal-lm", model, None, None)


@pytest.fixture
def gpt2() -> nn.Module:
    return tiny_gpt2()


@pytest.fixture
def prompt() -> torch.Tensor:
    return torch.tensor([[5, 17, 42, 7]])
