"""Tests for analogsim.tiles.embedding: analog embedding tables and a model's analog layers."""

from __future__ import annotations

import torch
from torch import nn

from analogsim.devices import load_device
from analogsim.tiles.config import TileConfig
from analogsim.tiles.embedding import AnalogEmbedding, analog_layers
from analogsim.tiles.layer import AnalogLayer

IDEAL = load_device("ideal")


def _model() -> nn.ModuleDict:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        emb = nn.Embedding(10, 4, padding_idx=0)
        lin = nn.Linear(4, 3)
    return nn.ModuleDict(
        {
            "emb": AnalogEmbedding(emb, IDEAL, "emb"),
            "head": nn.Sequential(AnalogLayer(lin, IDEAL, TileConfig.ideal(), "head.0")),
            "plain": nn.Linear(3, 3),
        }
    )


def test_ideal_lookup_reads_the_table() -> None:
    model = _model()
    emb = model["emb"].program(0)
    ids = torch.tensor([[0, 3, 9], [4, 4, 1]])
    torch.testing.assert_close(emb(ids), emb.digital(ids))
    assert emb.kind == "embedding" and emb.state_bytes() > 0


def test_analog_layers_skips_the_layers_wrappers_hold_as_parts() -> None:
    model = _model()
    found = dict(analog_layers(model))
    assert list(found) == ["emb", "head.0"]  # not emb._layer: part of the embedding
    assert model["emb"]._layer.inner
    assert [name for name, _ in analog_layers(model, embeddings=False)] == ["head.0"]
