"""Tests for analogsim.train.hwa: the hardware-aware training forward.

Straight-through gradients are checked exactly against the float layer's gradients;
the surrogate's output statistics against programmed chips with Z = 5 standard errors
of the samples drawn (SE of a mean s/sqrt(n), of a std s/sqrt(2n)).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers.pytorch_utils import Conv1D

from analogsim.devices import load_device
from analogsim.mapping.convert import convert
from analogsim.mapping.rules import mapping_from_dict
from analogsim.tiles.embedding import analog_layers
from analogsim.tiles.layer import AnalogLayer
from analogsim.train.hwa import (
    HWAContext,
    HWAForward,
    QATLayer,
    install_hwa,
    unwrap,
)
from analogsim.train.hwa_config import HWAConfig
from tests.conftest import IDEAL_IO
from tests.devices._stats import Z
from tests.train.conftest import fast_hwa, mlp, tiny_gpt2


def _mapping(device: str = "pcm", **tile) -> object:
    base = dict(rows=512, cols=512)
    base.update(tile)
    return mapping_from_dict(
        {"name": "t", "default": {"placement": "analog", "device": device, "tile": base}}
    )


IO_4BIT = dict(
    dac_bits=4,
    adc_bits=4,
    adc_bound=10.0,
    out_noise=0.0,
    read_noise=0.0,
    weight_scale="column",
    drift_compensation="none",
)


def _layer(module: nn.Module, device: str, seed: int = 0, cfg: HWAConfig | None = None, **tile):
    am = convert(nn.Sequential(module), _mapping(device, **tile), inplace=True)
    ctx = install_hwa(am.model, cfg or fast_hwa(), seed=seed)
    layer = am.model[0]
    layer.train()
    return am, layer, ctx


# ---------------------------------------------------------------------------- STE
def test_gradients_flow_straight_through_the_quantizers() -> None:
    """4-bit DAC and ADC in the forward; the backward equals the float layer's exactly."""
    lin = mlp((16, 8))[0]
    _, layer, _ = _layer(lin, "ideal", **IO_4BIT)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 16, generator=g, requires_grad=True)
    gy = torch.randn(6, 8, generator=g)
    y = layer(x)
    # the forward is really quantized: it differs from the float layer ...
    y_float = F.linear(x, lin.weight, lin.bias)
    assert (y - y_float).abs().max() > 1e-3
    # ... and lands on the ADC grid: (y - b) / (alpha * step * scale) is an integer
    alpha = x.detach().abs().amax(dim=1, keepdim=True)
    scale = lin.weight.detach().abs().amax(dim=1)
    step = 10.0 / 7
    codes = (y.detach() - lin.bias.detach()) / (alpha * step * scale)
    assert torch.allclose(codes, codes.round(), atol=1e-4)
    (y * gy).sum().backward()
    # STE: dL/dx = gy @ W (ideal device), dL/dW = gy^T x, dL/db = sum gy
    assert torch.allclose(x.grad, gy @ lin.weight.detach(), atol=1e-6)
    assert torch.allclose(lin.weight.grad, gy.t() @ x.detach(), atol=1e-6)
    assert torch.allclose(lin.bias.grad, gy.sum(0), atol=1e-6)


def test_static_dac_range_blocks_gradient_of_clipped_inputs() -> None:
    lin = mlp((4, 3))[0]
    _, layer, _ = _layer(lin, "ideal", **{**IO_4BIT, "dac_range": 1.0})
    x = torch.tensor([[0.5, 2.0, -0.2, -3.0]], requires_grad=True)
    layer(x).sum().backward()
    expected = torch.ones(1, 3) @ lin.weight.detach()
    expected[0, 1] = 0.0  # |x| > range: clipped by the DAC, no gradient
    expected[0, 3] = 0.0
    assert torch.allclose(x.grad, expected, atol=1e-6)


def test_device_perturbation_is_straight_through_to_the_masters() -> None:
    """With the device model on, dL/dW stays gy^T x (additive perturbation) and dL/dx uses
    the perturbed weights the forward used."""
    lin = mlp((16, 8))[0]
    _, layer, ctx = _layer(lin, "pcm", cfg=fast_hwa(noise_side="weight"), **IDEAL_IO)
    ctx.set_condition(86400.0, 300.0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 16, generator=g, requires_grad=True)
    gy = torch.randn(5, 8, generator=g)
    y = layer(x)
    (y * gy).sum().backward()
    assert torch.allclose(lin.weight.grad, gy.t() @ x.detach(), atol=1e-6)
    w_dev, _, out_scale = layer.hwa.prepare(layer, True)
    w_used = w_dev * out_scale[:, None]
    assert torch.allclose(y, F.linear(x, w_used, lin.bias), atol=1e-5)
    assert torch.allclose(x.grad, gy @ w_used, atol=1e-5)
    assert (w_used - lin.weight).abs().max() > 1e-4  # really perturbed


def test_conv1d_gpt2_layers_are_trained_through_the_hook() -> None:
    """GPT-2's Conv1D (weight stored transposed) sees the device; gradients reach every
    master, attention int8 layers train through a straight-through quantizer."""
    model = tiny_gpt2()
    am = convert(model, "digital_attention_analog_mlp")
    install_hwa(am.model, fast_hwa(), seed=0)
    hooked = dict(analog_layers(am.model))
    assert hooked and all(isinstance(la.digital, Conv1D) for la in hooked.values())
    assert any(isinstance(m, QATLayer) for m in am.model.modules())
    calls = {"n": 0}
    for layer in hooked.values():
        inner = layer.hwa

        def counted(lay, x, inner=inner):
            calls["n"] += 1
            return inner(lay, x)

        layer.hwa = counted
    am.model.train()
    ids = torch.randint(0, 300, (2, 10), generator=torch.Generator().manual_seed(0))
    out = am.model(input_ids=ids, labels=ids, use_cache=False)
    out.loss.backward()
    assert calls["n"] == len(hooked)
    for name, layer in hooked.items():
        grad = layer.digital.weight.grad
        assert grad is not None and grad.abs().sum() > 0, name
        assert grad.shape == layer.digital.weight.shape  # (in, out), transposed storage
    attn = am.model.transformer.h[0].attn.c_attn
    assert isinstance(attn, QATLayer) and attn.digital.weight.grad.abs().sum() > 0


def test_conv1d_ideal_matches_the_digital_layer_and_its_gradient() -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        conv = Conv1D(6, 5)  # weight (in=5, out=6)
        nn.init.normal_(conv.bias, std=0.1)
    ref = Conv1D(6, 5)
    ref.load_state_dict(conv.state_dict())
    _, layer, _ = _layer(conv, "ideal", **IDEAL_IO)
    x = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0))
    gy = torch.randn(2, 3, 6, generator=torch.Generator().manual_seed(1))
    y = layer(x)
    assert torch.allclose(y, ref(x), atol=1e-6)
    (y * gy).sum().backward()
    (ref(x) * gy).sum().backward()
    assert torch.allclose(conv.weight.grad, ref.weight.grad, atol=1e-5)
    assert torch.allclose(conv.bias.grad, ref.bias.grad, atol=1e-5)


@pytest.mark.parametrize("groups", [1, 2])
def test_conv2d_ideal_matches_the_digital_layer_and_its_gradient(groups: int) -> None:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        conv = nn.Conv2d(4, 6, 3, padding=1, stride=2, groups=groups)
    ref = nn.Conv2d(4, 6, 3, padding=1, stride=2, groups=groups)
    ref.load_state_dict(conv.state_dict())
    _, layer, _ = _layer(conv, "ideal", **IDEAL_IO)
    x = torch.randn(2, 4, 7, 7, generator=torch.Generator().manual_seed(0))
    y = layer(x)
    assert torch.allclose(y, ref(x), atol=1e-5)
    y.square().sum().backward()
    ref(x).square().sum().backward()
    assert torch.allclose(conv.weight.grad, ref.weight.grad, atol=1e-4)


# ---------------------------------------------------------------------------- noise present / absent
def _stats(outs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return outs.mean(0), outs.std(0)


@pytest.mark.parametrize(
    ("engine", "side"), [("surrogate", "output"), ("surrogate", "weight"), ("device", "weight")]
)
def test_training_forward_matches_programmed_chips_in_distribution(engine: str, side: str) -> None:
    """Mean and spread of the training forward at (1 day, 300 K) equal those of the
    inference path over programmed chips, within Z standard errors."""
    n = 300
    lin = mlp((24, 6), seed=3)[0]
    x = torch.rand(4, 24, generator=torch.Generator().manual_seed(2))
    cfg = HWAConfig(levels=33, table_samples=4096, engine=engine, noise_side=side)
    mapping = _mapping("pcm", **{**IDEAL_IO, "drift_compensation": "global"})
    am = convert(nn.Sequential(lin), mapping)
    ctx = install_hwa(am.model, cfg, seed=0)
    layer = am.model[0]
    layer.train()
    train = []
    for _ in range(n):
        ctx.set_condition(86400.0, 300.0)
        train.append(layer(x).detach())
    ref = convert(nn.Sequential(lin), mapping)
    inf = []
    for s in range(n):
        ref.program(s).at(86400.0, 300.0)
        with torch.no_grad():
            inf.append(ref(x))
    m1, s1 = _stats(torch.stack(train))
    m2, s2 = _stats(torch.stack(inf))
    se_mean = torch.sqrt((s1**2 + s2**2) / n)
    assert ((m1 - m2).abs() <= Z * se_mean).all(), ((m1 - m2) / se_mean).abs().max()
    se_std = torch.sqrt((s1**2 + s2**2) / (2 * n))
    assert ((s1 - s2).abs() <= Z * se_std).all(), ((s1 - s2) / se_std).abs().max()
    assert (s1 > 0).all()  # noise is present in training


def test_noise_present_in_training_and_new_each_draw() -> None:
    lin = mlp((12, 5))[0]
    _, layer, ctx = _layer(lin, "pcm", cfg=fast_hwa(), **IO_4BIT)
    x = torch.rand(3, 12, generator=torch.Generator().manual_seed(0))
    y1 = layer(x).detach()
    ctx.step()
    y2 = layer(x).detach()
    assert not torch.equal(y1, y2)
    assert not torch.allclose(y1, F.linear(x, lin.weight, lin.bias))


def test_eval_mode_and_no_grad_use_the_inference_path() -> None:
    """The hook runs only in training mode with gradients on; otherwise the layer is the
    programmed chip, bit for bit the same as one without hooks."""
    net = mlp((10, 8, 3))
    mapping = "all_analog"
    hooked = convert(net, mapping)
    install_hwa(hooked.model, fast_hwa(), seed=0)
    plain = convert(net, mapping)
    hooked.program(7).at(3600.0, 300.0)
    plain.program(7).at(3600.0, 300.0)
    x = torch.rand(4, 10, generator=torch.Generator().manual_seed(0))
    hooked.eval()
    plain.eval()
    assert torch.equal(hooked(x), plain(x))  # eval mode, grad enabled
    hooked.train()
    with torch.no_grad():
        assert torch.equal(hooked(x), plain(x))  # training mode, no grad


def test_unwrap_gives_the_digital_model_with_trained_masters() -> None:
    net = mlp((10, 8, 3))
    am = convert(net, "all_analog")
    install_hwa(am.model, fast_hwa(), seed=0)
    w = am.model[0].digital.weight
    digital = unwrap(am.model)
    assert isinstance(digital[0], nn.Linear) and digital[0].weight is w
    assert not any(isinstance(m, AnalogLayer) for m in digital.modules())
    x = torch.rand(2, 10)
    assert torch.equal(digital(x), net(x))  # no noise left: the float layers


# ---------------------------------------------------------------------------- faults, draws
@pytest.mark.parametrize("engine", ["surrogate", "device"])
def test_every_device_stuck_at_gmin_zeroes_the_weights(engine: str) -> None:
    """Stuck-at-g_min rate 1: G+ = G- = 0, so the layer outputs its bias only."""
    lin = mlp((6, 4))[0]
    cfg = fast_hwa(engine=engine, stuck_at_gmin_rate=1.0)
    _, layer, _ = _layer(lin, "pcm", cfg=cfg, **IDEAL_IO)
    y = layer(torch.rand(3, 6))
    assert torch.allclose(y, lin.bias.detach().expand(3, 4), atol=1e-6)


def test_stuck_fraction_matches_the_rate() -> None:
    """With a stuck-at-g_max rate p, a zero weight reads +-1 (one device at g_max) with
    probability about 2p(1-p): binomial tolerance."""
    p, n = 0.1, 200 * 200
    lin = nn.Linear(200, 200, bias=False)
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[0, 0] = 1.0  # sets the scale
    cfg = fast_hwa(stuck_at_gmax_rate=p, noise_side="weight")
    _, layer, _ = _layer(lin, "pcm", cfg=cfg, **IDEAL_IO)
    w_dev, _, _ = layer.hwa.prepare(layer, False)
    frac = float((w_dev.abs() > 0.5).float().mean())
    expect = 2 * p * (1 - p)
    assert abs(frac - expect) <= Z * math.sqrt(expect * (1 - expect) / n)


def test_resample_every_keeps_a_draw_for_k_steps() -> None:
    lin = mlp((8, 4))[0]
    _, layer, ctx = _layer(lin, "pcm", cfg=fast_hwa(resample_every=3), **IDEAL_IO)
    x = torch.rand(2, 8)
    draws = []
    for _ in range(7):
        layer(x)
        draws.append(ctx.layer_state(layer.hwa.name).drawn_at)
        ctx.step()
    assert draws == [0, 0, 0, 3, 3, 3, 6]


def test_same_seed_same_training_forward() -> None:
    outs = []
    for _ in range(2):
        lin = mlp((8, 4))[0]
        _, layer, ctx = _layer(lin, "pcm", cfg=fast_hwa(), **IO_4BIT)
        ys = []
        for _ in range(3):
            ys.append(layer(torch.ones(2, 8)).detach())
            ctx.step()
        outs.append(torch.stack(ys))
    assert torch.equal(outs[0], outs[1])


# ---------------------------------------------------------------------------- context
def test_conditions_cover_the_grid() -> None:
    ctx = HWAContext(HWAConfig(times_per_decade=1, temperature_max_K=320), seed=0)
    seen_t, seen_T = set(), set()
    for _ in range(400):
        t, temp = ctx.step()
        seen_t.add(t)
        seen_T.add(temp)
    assert seen_t == set(ctx.times) and seen_T == set(ctx.temperatures)


def test_hook_is_an_hwa_forward_per_layer() -> None:
    am = convert(mlp((6, 5, 2)), "all_analog")
    install_hwa(am.model, fast_hwa())
    names = [la.hwa.name for _, la in analog_layers(am.model)]
    assert names == ["0", "2"]
    assert all(isinstance(la.hwa, HWAForward) for _, la in analog_layers(am.model))
    assert load_device("pcm").name == "pcm"


def test_noise_scale_multiplies_the_device_perturbation() -> None:
    outs = {}
    for gamma in (1.0, 2.0):
        lin = mlp((16, 8), seed=4)[0]
        _, layer, ctx = _layer(
            lin, "pcm", cfg=fast_hwa(noise_side="weight", noise_scale=gamma), **IDEAL_IO
        )
        ctx.set_condition(86400.0, 300.0)
        w_dev, _, _ = layer.hwa.prepare(layer, False)
        st = ctx.layer_state(layer.hwa.name)
        outs[gamma] = w_dev - lin.weight.detach() * st.inv_scale
    assert torch.allclose(outs[2.0], 2 * outs[1.0], atol=1e-6)
    assert outs[1.0].abs().max() > 1e-3
