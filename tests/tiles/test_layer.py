"""Tests for analogsim.tiles.layer: an analog layer on crossbar tiles.

Units (tiles/config.py): inputs are scaled to [-1, 1] by alpha = max|x| per input vector
(dynamic DAC), weights by the layer's max|W| (or per output row); output noise, read noise
and the ADC bound are in these normalised units. For an ideal device and no compensation the
layer's output is y = w_scale * alpha * y_norm + b, so y_norm = (y - b) / (w_scale alpha).
Statistical tolerances: Z = 5 standard errors; the SE of a Gaussian sample std is s/sqrt(2n).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers.pytorch_utils import Conv1D

from analogsim.devices import load_device
from analogsim.tiles.config import TileConfig
from analogsim.tiles.layer import AnalogLayer
from tests.devices._stats import Z

IDEAL = load_device("ideal")
# Force the per-tile IO path with every converter off: output noise far below float32 rounding,
# no ADC clipping.
IO_IDEAL = TileConfig.ideal(out_noise=1e-12, adc_bound=0.0)


def analog(module: nn.Module, tile: TileConfig, device=IDEAL, seed: int = 0) -> AnalogLayer:
    return AnalogLayer(module, device, tile, name="layer").program(seed)


def _seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def linear(k: int = 37, n: int = 23, seed: int = 0, bias: bool = True) -> nn.Linear:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Linear(k, n, bias=bias)


def conv1d(k: int = 37, n: int = 23, seed: int = 0) -> Conv1D:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        m = Conv1D(n, k)  # GPT-2 Conv1D(nf, nx): weight (nx, nf) = (in, out)
        nn.init.normal_(m.bias, std=0.1)
        return m


def conv2d(seed: int = 0, **kw) -> nn.Conv2d:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Conv2d(**kw)


def rows_with_unit_max(m: int, k: int, seed: int = 1) -> torch.Tensor:
    """Inputs whose max |x| per row is exactly 1 (so the dynamic DAC scale alpha is 1)."""
    x = torch.rand(m, k, generator=_seeded(seed)) * 2 - 1
    x[:, 0] = 1.0
    return x


CONV_CASES = {
    "plain": dict(in_channels=3, out_channels=8, kernel_size=3),
    "stride_padding": dict(in_channels=3, out_channels=8, kernel_size=3, stride=2, padding=1),
    "groups": dict(in_channels=4, out_channels=6, kernel_size=3, padding=1, groups=2),
    "depthwise": dict(in_channels=4, out_channels=4, kernel_size=3, groups=4),
    "dilation_rect": dict(
        in_channels=3, out_channels=5, kernel_size=(3, 2), dilation=2, stride=(1, 2)
    ),
    "same": dict(in_channels=3, out_channels=4, kernel_size=3, padding="same", bias=False),
    # torch pads an even kernel's 'same' asymmetrically (one more on the bottom/right)
    "same_even": dict(in_channels=2, out_channels=3, kernel_size=(2, 4), padding="same"),
    "valid": dict(in_channels=2, out_channels=3, kernel_size=2, padding="valid"),
    "asym_padding": dict(in_channels=2, out_channels=3, kernel_size=(1, 5), padding=(0, 2)),
}


# ------------------------------------------------------------------ ideal == digital
@pytest.mark.parametrize("tile", [TileConfig.ideal(), IO_IDEAL], ids=["fast", "io"])
def test_linear_equals_digital(tile):
    m = linear()
    x = torch.randn(5, 7, 37, generator=_seeded())  # leading dims kept
    layer = analog(m, tile.replace(rows=16))  # 3 tiles on the IO path
    assert layer.tile.io_enabled == (tile is IO_IDEAL)
    torch.testing.assert_close(layer(x), m(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tile", [TileConfig.ideal(), IO_IDEAL], ids=["fast", "io"])
def test_gpt2_conv1d_equals_digital(tile):
    m = conv1d()
    x = torch.randn(2, 9, 37, generator=_seeded())
    layer = analog(m, tile.replace(rows=10))
    assert (layer.in_features, layer.out_features) == (37, 23)
    torch.testing.assert_close(layer(x), m(x), rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("tile", [TileConfig.ideal(), IO_IDEAL], ids=["fast", "io"])
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv2d_equals_digital(tile, case):
    m = conv2d(**CONV_CASES[case])
    x = torch.randn(2, m.in_channels, 9, 10, generator=_seeded())
    layer = analog(m, tile.replace(rows=7))  # several tiles along C*kh*kw
    torch.testing.assert_close(layer(x), m(x), rtol=1e-5, atol=1e-5)


def test_column_scale_on_ideal_device_equals_digital():
    m = linear()
    x = torch.randn(4, 37, generator=_seeded())
    for tile in (TileConfig.ideal(weight_scale="column"), IO_IDEAL.replace(weight_scale="column")):
        torch.testing.assert_close(analog(m, tile)(x), m(x), rtol=1e-5, atol=1e-6)


def test_layer_keeps_the_digital_module_untouched():
    m = linear()
    before = m.weight.detach().clone()
    layer = analog(m, IO_IDEAL)
    layer(torch.randn(3, 37))
    assert layer.digital is m and torch.equal(m.weight, before)


# ------------------------------------------------------------------ DAC
def test_dac_rounds_inputs_to_levels_of_the_dynamic_range():
    """Identity weights: y = alpha round(x/alpha (2^(b-1) - 1)) / (2^(b-1) - 1)."""
    m = nn.Linear(8, 8, bias=False)
    with torch.no_grad():
        m.weight.copy_(torch.eye(8))
    x = torch.randn(50, 8, generator=_seeded(2)) * 3
    layer = analog(m, TileConfig.ideal(dac_bits=4, adc_bound=0.0))
    alpha = x.abs().amax(dim=1, keepdim=True)
    expected = torch.round(x / alpha * 7) / 7 * alpha
    torch.testing.assert_close(layer(x), expected, rtol=1e-6, atol=1e-6)


def test_dac_static_range_clips():
    m = nn.Linear(6, 6, bias=False)
    with torch.no_grad():
        m.weight.copy_(torch.eye(6))
    x = torch.randn(40, 6, generator=_seeded(3))
    layer = analog(m, TileConfig.ideal(dac_bits=3, dac_range=0.5, adc_bound=0.0))
    expected = torch.round((x / 0.5).clamp(-1, 1) * 3) / 3 * 0.5
    torch.testing.assert_close(layer(x), expected, rtol=1e-6, atol=1e-6)
    # without DAC bits: clipping only
    layer = analog(m, IO_IDEAL.replace(dac_range=0.5))
    torch.testing.assert_close(layer(x), x.clamp(-0.5, 0.5), rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------ ADC
def _adc_reference(x, w, rows, bits, bound):
    """Independent per-tile ADC: y_norm = sum_t clamp(round(x_n W_n,t / step), -L, L) step."""
    alpha = x.abs().amax(dim=1, keepdim=True)
    scale = w.abs().max()
    xn, wn = x / alpha, w / scale
    L = 2 ** (bits - 1) - 1
    step = bound / L
    total = 0
    for k0 in range(0, w.shape[1], rows):
        part = xn[:, k0 : k0 + rows] @ wn[:, k0 : k0 + rows].T
        total = total + torch.round(part / step).clamp(-L, L) * step
    return total, alpha * scale, step


@pytest.mark.parametrize("rows", [64, 20])
def test_adc_outputs_on_grid_and_equal_reference(rows):
    m = linear(64, 10, seed=4, bias=False)
    x = torch.randn(200, 64, generator=_seeded(4))
    layer = analog(m, TileConfig.ideal(adc_bits=6, adc_bound=3.0, rows=rows))
    y = layer(x)
    ref_norm, unit, step = _adc_reference(x, m.weight.detach(), rows, 6, 3.0)
    y_norm = y / unit
    codes = y_norm / step
    torch.testing.assert_close(codes, codes.round(), rtol=0, atol=1e-3)
    n_tiles = math.ceil(64 / rows)
    assert float(y_norm.abs().max()) <= n_tiles * 3.0 * (1 + 1e-6)
    torch.testing.assert_close(y_norm, ref_norm, rtol=0, atol=1e-4)


def test_adc_clips_at_bound():
    """All-ones weights and inputs: the true normalised output is 64, the ADC gives its bound."""
    m = nn.Linear(64, 4, bias=False)
    with torch.no_grad():
        m.weight.fill_(0.5)
    x = torch.full((3, 64), 2.0)
    for bits in (8, 0):  # the bound clips with or without ADC resolution
        layer = analog(m, TileConfig.ideal(adc_bits=bits, adc_bound=10.0, out_noise=1e-12))
        # y = bound * alpha * w_scale = 10 * 2 * 0.5
        torch.testing.assert_close(layer(x), torch.full((3, 4), 10.0))


# ------------------------------------------------------------------ noise
M = 20_000  # repeated input vectors: each output gets M independent noise samples


def _noise_norm(layer, m, x):
    """(y - y_clean) / (w_scale alpha) with alpha = 1: the noise in normalised units."""
    with torch.no_grad():
        return (layer(x) - m(x)) / m.weight.abs().max()


@pytest.mark.parametrize(("rows", "n_tiles"), [(48, 1), (16, 3)])
def test_output_noise_std_per_tile(rows, n_tiles):
    """Each tile adds N(0, out_noise^2) per output before the digital sum: std sqrt(T) out_noise."""
    m = linear(48, 8, seed=5)
    x = rows_with_unit_max(1, 48).expand(M, 48).contiguous()
    layer = analog(m, TileConfig.ideal(out_noise=0.1, adc_bound=0.0, rows=rows))
    e = _noise_norm(layer, m, x).double()
    expected = 0.1 * math.sqrt(n_tiles)
    n = e.numel()
    assert abs(float(e.std()) - expected) <= Z * expected / math.sqrt(2 * n)
    assert abs(float(e.mean())) <= Z * expected / math.sqrt(n)


@pytest.mark.parametrize(("rows", "dac_bits"), [(48, 0), (16, 0), (16, 8)])
def test_read_noise_std_per_output(rows, dac_bits):
    """Per-MVM read noise: std_i = sqrt(T out^2 + read^2 sum_j |W_ij| x_j^2), normalised units.

    (aihwkit PCM_READ form; per tile the sum runs over the tile's rows, so over all tiles it is
    the whole row. With a DAC the x_j are the quantized inputs.)
    """
    m = linear(48, 8, seed=6)
    x1 = rows_with_unit_max(1, 48, seed=7)
    x = x1.expand(M, 48).contiguous()
    out_noise, read_noise = 0.02, 0.3
    tile = TileConfig.ideal(
        out_noise=out_noise, read_noise=read_noise, adc_bound=0.0, rows=rows, dac_bits=dac_bits
    )
    layer = analog(m, tile)
    wn = (m.weight / m.weight.abs().max()).detach().double()
    xq = x1.double()
    if dac_bits:
        L = 2 ** (dac_bits - 1) - 1
        xq = torch.round(xq * L) / L
    n_tiles = math.ceil(48 / rows)
    expected = torch.sqrt(n_tiles * out_noise**2 + read_noise**2 * (wn.abs() @ (xq[0] ** 2)))
    with torch.no_grad():
        clean = F.linear(xq.float() * 1.0, m.weight, m.bias).double()  # alpha = 1
        e = (layer(x).double() - clean) / float(m.weight.abs().max())
    got = e.std(dim=0)
    se = expected / math.sqrt(2 * M)
    assert bool(((got - expected).abs() <= Z * se).all()), (got, expected)
    # the outputs' stds differ (conductance-dependent), so the test sees the |W| weighting
    assert float(expected.max() / expected.min()) > 1.1


def test_noise_is_fresh_per_forward_and_seeded():
    m = linear(48, 8, seed=8)
    x = torch.randn(16, 48, generator=_seeded(8))
    tile = TileConfig.ideal(out_noise=0.05, read_noise=0.05)
    a, b = analog(m, tile, seed=3), analog(m, tile, seed=3)
    ya1, yb1 = a(x), b(x)
    assert torch.equal(ya1, yb1)  # same seed, same numbers
    ya2 = a(x)
    assert not torch.equal(ya1, ya2)  # fresh noise per MVM
    assert not torch.equal(analog(m, tile, seed=4)(x), ya1)  # different seed
    a.program(3)
    assert torch.equal(a(x), ya1)  # re-programming replays


# ------------------------------------------------------------------ weight scale
def test_column_weight_scale_keeps_small_rows_accurate():
    """Rows of very different magnitude through a coarse ADC.

    Per column each row uses its own max|W_i|, so the error of row i is at most half an ADC step
    times alpha max|W_i|; per tensor the small row's output is swamped by the step of the big one.
    """
    m = linear(32, 2, seed=9, bias=False)
    with torch.no_grad():
        m.weight[1] *= 1e-3
    x = torch.randn(100, 32, generator=_seeded(9))
    bits, bound = 8, 32.0  # |y_norm| <= K = 32: no clipping, only rounding
    step = bound / (2 ** (bits - 1) - 1)
    alpha = x.abs().amax(dim=1)
    exact = m(x)
    col = analog(m, TileConfig.ideal(adc_bits=bits, adc_bound=bound, weight_scale="column"))
    torch.testing.assert_close(col._w_scale, m.weight.abs().amax(dim=1))
    torch.testing.assert_close(col.normalized_target().abs().amax(dim=1), torch.ones(2))
    err = (col(x) - exact).abs()
    bound_err = 0.5 * step * alpha[:, None] * m.weight.abs().amax(dim=1)[None, :]
    assert bool((err <= bound_err * (1 + 1e-4) + 1e-7).all())
    tensor = analog(m, TileConfig.ideal(adc_bits=bits, adc_bound=bound))
    err_t = (tensor(x)[:, 1] - exact[:, 1]).abs()
    assert float(err_t.detach().mean()) > 10 * float(err[:, 1].detach().mean())


# ------------------------------------------------------------------ drift compensation
PCM = load_device("pcm")
YEAR = 365.0 * 86400.0


def _mean_abs_w(layer: AnalogLayer) -> torch.Tensor:
    """Per-row mean |effective weight| in weight units (fast path folds every factor in)."""
    return layer.w_eff.abs().mean(dim=1)


@pytest.mark.parametrize("mode", ["global", "column"])
def test_drift_compensation_restores_the_reference(mode):
    m = linear(64, 32, seed=10)
    none = analog(m, TileConfig.ideal(), device=PCM, seed=5)
    comp = analog(m, TileConfig.ideal(drift_compensation=mode), device=PCM, seed=5)
    ref_rows = _mean_abs_w(none)  # at t = 0, right after programming
    torch.testing.assert_close(comp.w_eff, none.w_eff)  # no correction at t = 0
    none.set_state(YEAR, None)
    comp.set_state(YEAR, None)
    drifted = _mean_abs_w(none)
    assert float(drifted.mean()) < 0.7 * float(ref_rows.mean())  # drift is large after 1 y
    got = _mean_abs_w(comp)
    if mode == "global":
        torch.testing.assert_close(got.mean(), ref_rows.mean(), rtol=1e-5, atol=0)
        # one factor for the layer: row ratios are those of the uncompensated state
        torch.testing.assert_close(got / got.mean(), drifted / drifted.mean(), rtol=1e-5, atol=0)
    else:
        torch.testing.assert_close(got, ref_rows, rtol=1e-5, atol=0)


def test_compensation_on_the_io_path_goes_into_the_output_scale():
    m = linear(64, 16, seed=11)
    none = analog(m, TileConfig.ideal(out_noise=1e-12, adc_bound=0.0), device=PCM, seed=6)
    comp = analog(
        m, TileConfig.ideal(out_noise=1e-12, adc_bound=0.0, drift_compensation="global"), PCM, 6
    )
    ref = none.w_eff.abs().mean()
    none.set_state(YEAR, None)
    comp.set_state(YEAR, None)
    factor = ref / none.w_eff.abs().mean()
    torch.testing.assert_close(comp.out_mult, none.out_mult * factor, rtol=1e-5, atol=0)
    x = torch.randn(8, 64, generator=_seeded(11))
    b = m.bias.detach()
    torch.testing.assert_close(comp(x) - b, (none(x) - b) * factor, rtol=1e-4, atol=1e-5)


def test_frozen_compensation_and_recalibrate():
    m = linear(64, 16, seed=12)
    layer = analog(m, TileConfig.ideal(drift_compensation="global"), device=PCM, seed=7)
    layer.set_state(3600.0, None)
    comp_1h = layer._comp.clone()
    layer.frozen_compensation = True
    layer.set_state(YEAR, None)
    assert torch.equal(layer._comp, comp_1h)  # frozen between calibrations
    layer.recalibrate()
    assert float(layer._comp[0]) > float(comp_1h[0])  # more drift, larger correction
    assert layer.frozen_compensation


# ------------------------------------------------------------------ state
def test_state_is_recomputed_not_accumulated():
    m = linear(40, 12, seed=13)
    a = analog(m, TileConfig.ideal(), device=PCM, seed=8)
    for t in (10.0, 1e5, 3600.0):
        a.set_state(t, 330.0)
    b = analog(m, TileConfig.ideal(), device=PCM, seed=8)
    b.set_state(3600.0, 330.0)
    assert torch.equal(a.w_eff, b.w_eff)
    assert (a.time_s, a.temperature_K) == (3600.0, 330.0)


def test_device_state_uses_the_differential_pair():
    """w_eff = (G+ - G-)/(g_max - g_min) x scale, each conductance from the device model."""
    m = linear(30, 10, seed=14)
    layer = analog(m, TileConfig.ideal(), device=PCM, seed=9)
    layer.set_state(86400.0, None)
    w = m.weight.detach()
    scale = w.abs().max()
    g = PCM.conductances(PCM.targets((w / scale).reshape(-1)), layer.seed, 86400.0)
    expected = ((g[0] - g[1]) / PCM.g_max).reshape(w.shape) * scale
    torch.testing.assert_close(layer.w_eff, expected, rtol=1e-5, atol=1e-7)


def test_tile_count_and_state_bytes():
    m = linear(1100, 700, bias=False)
    layer = analog(m, TileConfig.ideal(rows=512, cols=512))
    assert layer.tiles_count() == 3 * 2
    g = analog(
        conv2d(in_channels=8, out_channels=6, kernel_size=3, groups=2),
        TileConfig.ideal(rows=10, cols=2),
    )
    # per group: K = 4 * 9 = 36 -> 4 tiles of 10 rows; 3 outputs -> 2 tiles of 2 columns
    assert g.tiles_count() == 2 * 4 * 2
    # device state: w_eff (1x the weights) plus O(out) vectors
    weight_bytes = m.weight.numel() * m.weight.element_size()
    assert weight_bytes <= layer.state_bytes() <= weight_bytes + 4 * 700 * 4


def test_errors():
    layer = AnalogLayer(linear(), IDEAL, TileConfig.ideal(), name="fc")
    with pytest.raises(RuntimeError, match="'fc' is not programmed"):
        layer(torch.randn(2, 37))
    with pytest.raises(TypeError, match="cannot map Conv1d"):
        AnalogLayer(nn.Conv1d(3, 4, 2), IDEAL, TileConfig.ideal())


@pytest.mark.parametrize("tile", [TileConfig.ideal(), IO_IDEAL], ids=["fast", "io"])
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [1, (2, 1), "same"])
def test_conv2d_padding_modes(tile, mode, padding):
    m = conv2d(in_channels=2, out_channels=3, kernel_size=3, padding=padding, padding_mode=mode)
    x = torch.randn(2, 2, 6, 7, generator=_seeded(15))
    torch.testing.assert_close(analog(m, tile)(x), m(x), rtol=1e-5, atol=1e-6)


def test_layers_share_one_thread_workspace_and_outputs_stay_independent():
    """Scratch buffers are shared by all layers (grown to the largest), and a later layer's
    forward never touches an earlier layer's output."""
    import threading

    from analogsim.tiles.layer import free_shared_workspace, shared_workspace_bytes

    tile = TileConfig(rows=16, cols=16, dac_bits=8, adc_bits=8, out_noise=0.04, read_noise=0.02)
    small = analog(linear(32, 8, seed=1), tile, seed=1)
    big = analog(linear(64, 48, seed=2), tile, seed=2)
    x_small, x_big = (
        torch.randn(5, 32, generator=_seeded(3)),
        torch.randn(7, 64, generator=_seeded(4)),
    )
    free_shared_workspace()
    with torch.no_grad():
        y_big = big(x_big)
        after_big = shared_workspace_bytes()
        y_small = small(x_small)
        y_small_copy = y_small.clone()
        big(x_big)  # reuses the same scratch; must not write into y_small
    assert shared_workspace_bytes() == after_big  # no second set of buffers for `small`
    assert torch.equal(y_small, y_small_copy)
    assert y_big.data_ptr() != y_small.data_ptr()
    # another thread gets its own buffers
    seen = []
    worker = threading.Thread(target=lambda: seen.append(shared_workspace_bytes()))
    worker.start()
    worker.join()
    assert seen == [0]
    free_shared_workspace()
    assert shared_workspace_bytes() == 0


@pytest.mark.parametrize("card", ["pcm", "rram"])
def test_state_is_a_function_of_time_across_noise_intervals(card):
    """Moving to later noise intervals (and back) gives exactly the numbers of going there
    at once, with or without the (now memory-free) time cache."""
    device = load_device(card)
    tile = TileConfig.ideal()
    module = linear(30, 20, seed=5)
    moved, fresh = analog(module, tile, device, seed=9), analog(module, tile, device, seed=9)
    moved.enable_time_cache(True)
    times = [1.0, 3600.0, 2 * 3600.0, 86400.0, 40 * 86400.0, 3.15e7, 3600.0, 5e7]
    intervals = [device.noise_interval(t) for t in times]
    assert len(set(intervals)) >= 4, intervals  # the sequence really crosses intervals
    for t in times:
        for temperature in (None, 358.0):
            a = moved.effective_normalized(t, temperature)
            b = analog(module, tile, device, seed=9).effective_normalized(t, temperature)
            assert torch.equal(a, b), (card, t, temperature)
            assert torch.equal(a, fresh.effective_normalized(t, temperature))
    assert moved.time_cache_bytes() == 0
