"""Tests for analogsim.train.checkpoint: safetensors weights plus the deployment sidecar."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from analogsim.devices import card_dict, load_device
from analogsim.errors import ConfigError
from analogsim.mapping.convert import convert
from analogsim.train.checkpoint import (
    SIDECAR,
    WEIGHTS,
    build_mlp,
    load_checkpoint,
    mlp_architecture,
    read_sidecar,
    save_checkpoint,
)
from tests.train.conftest import mlp, tiny_gpt2


def _save(model: nn.Module, folder, **kw):
    args = dict(
        name="digits-mlp",
        kind="classifier",
        method="hwa",
        mapping="all_analog",
        device="pcm",
        seed=3,
        metrics={"digital_accuracy": 0.97},
        data={"source": "digits"},
    )
    args.update(kw)
    return save_checkpoint(model, folder, **args)


def test_mlp_round_trip_into_analogsim_and_plain_torch(tmp_path) -> None:
    net = mlp((64, 16, 10), seed=1)
    folder = _save(net, tmp_path / "ck")
    assert {p.name for p in folder.iterdir()} == {WEIGHTS, SIDECAR}
    # analogsim: the same weights, the evaluation data rebuilt
    loaded = load_checkpoint(folder)
    for (k, a), (_, b) in zip(
        net.state_dict().items(), loaded.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k
    assert loaded.kind == "classifier" and loaded.data["x_test"].shape[1] == 64
    # and it converts again with the recorded mapping
    side = loaded.info["sidecar"]
    am = convert(loaded.model, side["mapping"]["name"], device=side["device"]).program(0)
    assert am(torch.rand(2, 64)).shape == (2, 10)
    # plain torch: safetensors + the architecture from the sidecar
    plain = build_mlp(side["architecture"]["sizes"])
    plain.load_state_dict(load_file(str(folder / WEIGHTS)))
    x = torch.rand(3, 64)
    assert torch.equal(plain(x), net(x))


def test_sidecar_records_the_deployment(tmp_path) -> None:
    folder = _save(mlp((64, 8, 10)), tmp_path / "ck")
    side = json.loads((folder / SIDECAR).read_text())
    assert side["method"] == "hwa" and side["seed"] == 3
    assert side["mapping"]["name"] == "all_analog"
    assert "[default]" in side["mapping"]["toml"]  # the mapping file's text
    assert side["device_cards"]["pcm"] == json.loads(json.dumps(card_dict(load_device("pcm"))))
    assert side["metrics"]["digital_accuracy"] == 0.97
    assert "torch" in side["versions"]
    assert side["architecture"] == {"type": "mlp", "sizes": [64, 8, 10]}


def test_tied_weights_are_stored_once_and_load_back(tmp_path) -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.head = nn.Linear(4, 10, bias=False)
            self.head.weight = self.emb.weight

        def forward(self, ids):
            return self.head(self.emb(ids))

    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = Tied()
    folder = _save(net, tmp_path / "ck", kind="classifier")
    stored = load_file(str(folder / WEIGHTS))
    assert len(stored) == 1  # one tensor for the tied pair
    fresh = Tied()
    loaded = load_checkpoint(folder, model=fresh, with_data=False)
    assert loaded.model.head.weight is loaded.model.emb.weight
    assert torch.equal(loaded.model.emb.weight, net.emb.weight)


def test_hf_gpt2_round_trip_with_from_pretrained(tmp_path) -> None:
    from transformers import GPT2LMHeadModel

    model = tiny_gpt2(seed=2)
    folder = _save(
        model,
        tmp_path / "gpt",
        name="tiny",
        kind="causal-lm",
        mapping="digital_attention_analog_mlp",
        data={"source": "pydoc"},
    )
    assert (folder / "config.json").is_file() and (folder / WEIGHTS).is_file()
    hf = GPT2LMHeadModel.from_pretrained(folder, local_files_only=True).eval()
    assert hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()  # tied
    ids = torch.randint(0, 300, (1, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(hf(ids).logits, model(ids).logits, atol=1e-6)
    loaded = load_checkpoint(folder, with_data=False)
    with torch.no_grad():
        assert torch.allclose(loaded.model(ids).logits, model(ids).logits, atol=1e-6)
    am = convert(loaded.model, "digital_attention_analog_mlp").program(0)
    with torch.no_grad():
        assert am(input_ids=ids).logits.shape == (1, 12, 300)


def test_mlp_architecture_only_for_plain_mlps() -> None:
    assert mlp_architecture(mlp((3, 4, 2))) == {"type": "mlp", "sizes": [3, 4, 2]}
    assert mlp_architecture(nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))) is None
    assert mlp_architecture(nn.Linear(3, 4)) is None


def test_a_folder_without_sidecar_is_refused(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not an analogsim checkpoint"):
        read_sidecar(tmp_path)


def test_unknown_torch_architecture_needs_a_model(tmp_path) -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    folder = _save(net, tmp_path / "ck")
    with pytest.raises(ConfigError, match="pass model="):
        load_checkpoint(folder, with_data=False)
