"""Fixtures shared by the whole test suite: a seeded generator, small models (MLPs, tiny
random GPT-2s), ideal tile settings and the all-analog mapping built from a dict.

Statistical tests state their tolerance as a number of standard errors of the sample they
draw; the helpers for those standard errors live in ``tests/devices/_stats.py``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from analogsim.mapping.rules import Mapping, mapping_from_dict

SEED = 1234

#: Tile settings of an ideal input/output path: no DAC or ADC quantisation (an unbounded
#: ADC), no output or read noise, no drift compensation.
IDEAL_TILE = dict(
    dac_bits=0, adc_bits=0, adc_bound=0.0, out_noise=0.0, read_noise=0.0, drift_compensation="none"
)
#: :data:`IDEAL_TILE` without the ADC bound (the tile's default bound stays).
IDEAL_IO = {k: v for k, v in IDEAL_TILE.items() if k != "adc_bound"}


@pytest.fixture(autouse=True)
def _one_torch_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """Run tests with one intra-op thread (benchmarks keep the machine's setting).

    The tests use small tensors, where a second OpenMP thread only adds synchronisation;
    on a loaded shared machine its spin-waits make each small op up to 100x slower.
    analogsim's numbers do not depend on the thread count (tests/devices/test_rng.py).
    """
    if request.node.get_closest_marker("bench") is not None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def gen() -> torch.Generator:
    """A CPU generator seeded with a fixed seed (fresh per test)."""
    return torch.Generator().manual_seed(SEED)


def make_mlp(seed: int = 0, sizes: tuple[int, ...] = (12, 24, 16, 5)) -> nn.Sequential:
    """A small MLP ``Linear -> ReLU -> ... -> Linear`` with seeded initialisation.

    The global RNG is left as it was.
    """
    layers: list[nn.Module] = []
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


@pytest.fixture
def small_mlp() -> nn.Sequential:
    """``Linear(12, 24) - ReLU - Linear(24, 16) - ReLU - Linear(16, 5)``, seeded."""
    return make_mlp()


class Block(nn.Module):
    """Two Linear layers under one parent, for placement rules that name a parent."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d, 2 * d)
        self.fc2 = nn.Linear(2 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class TwoBlockNet(nn.Module):
    """``encoder`` (Block) -> ``decoder`` (Block) -> ``head`` (Linear): named modules for rules.

    Plain torch roles: every Linear is ``mlp`` except the last one (``head``).
    """

    def __init__(self, d: int = 8, n_out: int = 3) -> None:
        super().__init__()
        self.encoder = Block(d)
        self.decoder = Block(d)
        self.head = nn.Linear(d, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(x)))


@pytest.fixture
def two_block_net() -> TwoBlockNet:
    """A :class:`TwoBlockNet` with seeded initialisation."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return TwoBlockNet().eval()


def make_gpt2(
    seed: int = 0,
    *,
    vocab: int = 100,
    n_positions: int = 128,
    n_embd: int = 32,
    n_layer: int = 2,
    tied: bool = True,
    dropout: float | None = None,
    sharpen: float | None = None,
) -> nn.Module:
    """A random GPT-2 (``n_head`` 2, BOS = EOS = token 0) with seeded initialisation, in
    eval mode; the global RNG is left as it was.

    ``tied``: the head shares the token embedding; ``dropout``: every dropout probability
    (None: GPT-2's defaults); ``sharpen``: scale the final layer norm's weight (sharper
    logits than the default init, so greedy or sampled text is not near-uniform).
    """
    from transformers import GPT2Config, GPT2LMHeadModel  # lazy: collection time

    drop = (
        {}
        if dropout is None
        else dict.fromkeys(("resid_pdrop", "embd_pdrop", "attn_pdrop"), dropout)
    )
    cfg = GPT2Config(
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=2,
        vocab_size=vocab,
        n_positions=n_positions,
        bos_token_id=0,
        eos_token_id=0,
        tie_word_embeddings=tied,
        **drop,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(cfg).eval()
    if sharpen is not None:
        with torch.no_grad():
            model.transformer.ln_f.weight.mul_(sharpen)
    return model


def analog_mapping(
    device: str = "pcm", tile: dict[str, Any] | None = IDEAL_TILE, name: str = "test"
) -> Mapping:
    """Every weight layer analog on ``device`` (embeddings digital, tied weights placed
    independently), with tile settings ``tile`` (None: the device's defaults)."""
    default: dict[str, Any] = {"placement": "analog", "device": device}
    if tile is not None:
        default["tile"] = dict(tile)
    return mapping_from_dict(
        {
            "name": name,
            "tied_weights": "independent",
            "default": default,
            "rule": [{"role": "embedding", "placement": "digital", "optional": True}],
        }
    )
