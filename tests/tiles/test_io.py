"""Tests for analogsim.tiles.io: the tile's IO kernel and drift compensation.

The kernel is checked against closed forms here; the per-converter behaviour of the
inference layer (DAC and ADC grids, noise statistics) in tests/tiles/test_layer.py, and the
training forward's in tests/train/test_hwa.py. The last test runs one layer through both
callers, inference and hardware-aware training, with the same normals.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from analogsim.devices.rng import NoiseStream
from analogsim.mapping.convert import convert
from analogsim.mapping.rules import mapping_from_dict
from analogsim.tiles.config import TileConfig
from analogsim.tiles.io import (
    EPILOGUES,
    IOPlan,
    drift_compensation,
    drift_readout,
    fresh_buffer,
    fused_available,
    set_epilogue,
    tile_mvm,
)
from analogsim.train.hwa import install_hwa
from analogsim.train.hwa_config import HWAConfig


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _operands(m: int = 6, k: int = 37, n: int = 9) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    g = _seeded(1)
    x = torch.randn(m, k, generator=g) * 3  # (M, K)
    w = torch.rand(n, k, generator=g) * 2 - 1  # (N, K) normalised
    scale = torch.rand(n, generator=g) + 0.5  # (N,)
    bias = torch.randn(n, generator=g)  # (N,)
    return x, w, scale, bias


@pytest.mark.parametrize("io", [True, False], ids=["tiles", "io_off"])
@pytest.mark.parametrize("rows", [8, 512], ids=["5_tiles", "1_tile"])
def test_every_non_ideality_off_is_the_plain_mvm(io: bool, rows: int) -> None:
    x, w, scale, bias = _operands()
    plan = IOPlan.of(TileConfig.ideal(rows=rows), io=io)
    y, mask = tile_mvm(x, w, plan, out_scale=scale, bias=bias)
    torch.testing.assert_close(y, x @ (w * scale[:, None]).t() + bias, rtol=1e-5, atol=1e-5)
    assert mask is None
    y, _ = tile_mvm(x, w, plan)  # no scale, no bias
    torch.testing.assert_close(y, x @ w.t(), rtol=1e-5, atol=1e-5)


def test_plan_constants_follow_the_tile() -> None:
    plan = IOPlan.of(TileConfig(dac_bits=8, adc_bits=4, adc_bound=10.0, read_noise=0.02))
    assert (plan.dac_levels, plan.in_unit) == (127, 1 / 127)
    assert plan.step == pytest.approx(10.0 / 7) and plan.clip == pytest.approx(7.0)
    assert plan.read2_u2 == pytest.approx((0.02 / 127) ** 2)
    off = IOPlan.of(TileConfig(), io=False)
    assert not off.io and off.step == 1.0 and off.dac_levels == 0


def test_static_dac_range_returns_the_clip_mask() -> None:
    x = torch.tensor([[0.5, 2.0, -0.2, -3.0]])
    w = torch.ones(2, 4)
    plan = IOPlan.of(TileConfig.ideal(dac_bits=4, dac_range=1.0))
    _, mask = tile_mvm(x, w, plan, clip_mask=True)
    assert torch.equal(mask, torch.tensor([[1.0, 0.0, 1.0, 0.0]]))
    _, dynamic = tile_mvm(x, w, IOPlan.of(TileConfig.ideal(dac_bits=4)), clip_mask=True)
    assert dynamic is None


@pytest.mark.parametrize("epilogue", EPILOGUES)
def test_shared_buffers_and_fresh_tensors_give_the_same_bits(epilogue: str) -> None:
    set_epilogue(epilogue)
    x, w, scale, bias = _operands(k=40)
    plan = IOPlan.of(TileConfig(rows=16, out_noise=0.05, read_noise=0.03))
    bufs: dict[str, Tensor] = {}

    def shared(key: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        if key not in bufs:
            bufs[key] = fresh_buffer(key, shape, like)
        return bufs[key]

    var = w.abs().to(torch.bfloat16)
    kw = dict(var=var, var_scale=plan.read2_u2, out_scale=scale, bias=bias)
    # the fused epilogue keys its normals from a NoiseStream; the torch one takes any
    y_fresh, _ = tile_mvm(x, w, plan, normals=NoiseStream(7).fill_, **kw)
    y_shared, _ = tile_mvm(x, w, plan, normals=NoiseStream(7).fill_, buffer=shared, **kw)
    assert torch.equal(y_fresh, y_shared)
    fused = epilogue == "fused" and fused_available()
    assert set(bufs) == ({"x", "parts", "xsq", "vparts"} if fused else {"x", "parts", "xsq"})
    assert all(b.data_ptr() != y_shared.data_ptr() for b in bufs.values())


def test_drift_compensation_is_the_readout_ratio() -> None:
    ref = torch.tensor([[0.5, -0.5], [1.0, 0.0]])
    now = ref * torch.tensor([[0.5], [0.25]])
    assert torch.equal(drift_readout(ref, "global"), torch.tensor([0.5]))
    assert torch.equal(drift_readout(ref, "column"), torch.tensor([0.5, 0.5]))
    comp = drift_compensation(drift_readout(ref, "column"), drift_readout(now, "column"), 2)
    assert torch.equal(comp, torch.tensor([2.0, 4.0]))
    glob = drift_compensation(drift_readout(ref, "global"), drift_readout(now, "global"), 2)
    assert torch.allclose(glob, torch.full((2,), 0.5 / (0.375 / 2)))
    assert drift_readout(torch.zeros(2, 2), "global").item() == pytest.approx(1e-12)  # never 0


class _FixedNormals:
    """The same N(0, 1) for every call of the same shape (stands in for both noise sources)."""

    def fill_(self, out: Tensor) -> Tensor:
        return out.copy_(torch.randn(out.shape, generator=_seeded(11)))


def test_inference_layer_and_training_forward_agree_on_the_same_draws() -> None:
    """One ideal-device layer, 3 tiles, DAC, output and read noise: the inference tile and
    the hwa forward run the same kernel, so with the same normals their outputs agree up to
    float rounding of the normalised weights (``W / s`` vs ``W * (1/s)``) and of the
    read-noise variance (bfloat16 at inference, float32 for this small layer in training)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(40, 12))
    tile = dict(rows=16, dac_bits=8, adc_bits=0, adc_bound=0.0, out_noise=0.05, read_noise=0.03)
    mapping = mapping_from_dict(
        {
            "name": "t",
            "default": {"placement": "analog", "device": "ideal", "tile": tile},
        }
    )
    x = torch.randn(5, 40, generator=_seeded(3))
    inference = convert(copy.deepcopy(net), mapping, seed=0)
    layer = inference.model[0]
    layer._noise = _FixedNormals()
    with torch.no_grad():
        y_inf = inference(x)
    training = convert(copy.deepcopy(net), mapping)
    ctx = install_hwa(training.model, HWAConfig(levels=17, table_samples=256), seed=0)
    ctx._noise = _FixedNormals()
    training.model.train()
    y_hwa = training.model(x).detach()
    y_clean = net(x).detach()
    noise = (y_inf - y_clean).abs().max()
    assert noise > 1e-3  # really noisy
    assert (y_hwa - y_inf).abs().max() <= 0.01 * noise
