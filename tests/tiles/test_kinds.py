"""Tests for analogsim.tiles.kinds: weight-layer kinds, their matrix and forward."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from analogsim.tiles.kinds import (
    KINDS,
    MVM_KINDS,
    conv2d_columns,
    forward_with,
    module_kind,
    set_submodule,
    weight_matrix,
)


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _modules() -> dict[str, nn.Module]:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        conv1d = Conv1D(5, 7)  # GPT-2 Conv1D(nf, nx): weight (nx, nf) = (in, out)
        nn.init.normal_(conv1d.bias, std=0.1)
        return {
            "linear": nn.Linear(7, 5),
            "conv1d": conv1d,
            "conv2d": nn.Conv2d(4, 6, 3, padding=1, groups=2),
            "embedding": nn.Embedding(11, 5, padding_idx=0),
        }


def test_every_weight_layer_has_a_kind_and_others_none() -> None:
    mods = _modules()
    assert [module_kind(m) for m in mods.values()] == list(KINDS)
    assert set(MVM_KINDS) == set(KINDS) - {"embedding"}
    for other in (nn.Conv1d(1, 2, 1), nn.LayerNorm(3), nn.ConvTranspose2d(1, 1, 2)):
        assert module_kind(other) is None
    with pytest.raises(TypeError, match="LayerNorm is not a weight layer"):
        weight_matrix(nn.LayerNorm(3))


def test_gpt2_conv1d_matrix_is_the_transposed_weight() -> None:
    m = _modules()["conv1d"]
    assert module_kind(m) == "conv1d"
    assert torch.equal(weight_matrix(m), m.weight.t())


def test_weight_matrix_is_out_by_in() -> None:
    mods = _modules()
    assert weight_matrix(mods["linear"]).shape == (5, 7)
    assert weight_matrix(mods["conv2d"]).shape == (6, 2 * 3 * 3)
    assert weight_matrix(mods["embedding"]) is mods["embedding"].weight


@pytest.mark.parametrize("kind", KINDS)
def test_forward_with_own_matrix_is_the_module_forward(kind: str) -> None:
    m = _modules()[kind]
    x = {
        "linear": torch.randn(2, 3, 7, generator=_seeded()),
        "conv1d": torch.randn(2, 3, 7, generator=_seeded()),
        "conv2d": torch.randn(2, 4, 5, 6, generator=_seeded()),
        "embedding": torch.tensor([[0, 3, 10], [4, 4, 1]]),
    }[kind]
    torch.testing.assert_close(forward_with(m, x, weight_matrix(m)), m(x))


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_forward_with_another_matrix_keeps_the_conv2d_padding_mode(mode: str) -> None:
    with torch.random.fork_rng():
        torch.manual_seed(1)
        m = nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode)
    w2 = torch.randn(3, 2 * 9, generator=_seeded(2))
    ref = nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode)
    with torch.no_grad():
        ref.weight.copy_(w2.view_as(ref.weight))
        ref.bias.copy_(m.bias)
    x = torch.randn(2, 2, 5, 6, generator=_seeded(3))
    torch.testing.assert_close(forward_with(m, x, w2), ref(x))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=(2, 4), padding="same"),
        dict(kernel_size=3, padding=1, padding_mode="reflect", dilation=1),
        dict(kernel_size=(3, 2), dilation=2, stride=(1, 2)),
    ],
)
def test_conv2d_columns_times_the_matrix_is_the_convolution(kw: dict) -> None:
    with torch.random.fork_rng():
        torch.manual_seed(4)
        conv = nn.Conv2d(3, 4, bias=False, **kw)
    x = torch.randn(2, 3, 7, 8, generator=_seeded(5))
    cols, unflatten = conv2d_columns(conv, x)
    y = unflatten(cols @ weight_matrix(conv).t())
    torch.testing.assert_close(y, conv(x), rtol=1e-5, atol=1e-5)


def test_set_submodule_replaces_by_dotted_name() -> None:
    net = nn.Sequential(nn.Sequential(nn.Linear(2, 2)), nn.ReLU())
    new = nn.Identity()
    set_submodule(net, "0.0", new)
    assert net[0][0] is new
    set_submodule(net, "1", new)
    assert net[1] is new
