"""The fused tile epilogue (analogsim.tiles.epilogue, triton_epilogue, io's ``fused`` path).

Statistics are checked on samples of ``n`` normals with tolerances of 4.5 standard errors
of each statistic (so a correct generator fails about once in 150,000 runs, fixed seeds
make each run deterministic): mean ``4.5 / sqrt(n)``, variance ``4.5 sqrt(2 / n)``,
skewness ``4.5 sqrt(6 / n)``, excess kurtosis ``4.5 sqrt(24 / n)``, a correlation
``4.5 / sqrt(n)``, a count with binomial spread, and Kolmogorov-Smirnov ``1.95 / sqrt(n)``
(p = 0.001).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import Tensor

from analogsim.devices.rng import NoiseStream
from analogsim.errors import ConfigError
from analogsim.tiles import epilogue as ep
from analogsim.tiles import io
from analogsim.tiles.config import TileConfig
from analogsim.tiles.io import IOPlan, set_epilogue, tile_mvm

pytestmark = pytest.mark.skipif(
    not ep.available(), reason=f"no fused CPU kernel here: {ep.unavailable_reason()}"
)


def _raw(key: int, rows: int, cols: int, tiles: int = 1) -> Tensor:
    """The kernel's normals: zero products, no ADC, unit noise, one tile per call."""
    parts = torch.zeros(tiles, rows, cols)
    out = torch.empty(rows, cols)
    return ep.epilogue_cpu(
        parts,
        out,
        alpha=None,
        out_step=None,
        bias=None,
        var=None,
        pscale=0.0,
        out_noise=1.0,
        var_scale=0.0,
        step=1.0,
        yscale=1.0,
        clip=0.0,
        do_round=False,
        key=key,
    )


def test_philox_matches_the_published_known_answers() -> None:
    """Random123's kat_vectors for philox4x32-10."""
    cases = [
        ([0, 0, 0, 0], (0, 0), [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
        (
            [0xFFFFFFFF] * 4,
            (0xFFFFFFFF, 0xFFFFFFFF),
            [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD],
        ),
        (
            [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
            (0xA4093822, 0x299F31D0),
            [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
        ),
    ]
    for ctr, key, want in cases:
        got = ep.philox4x32(np.array([ctr], dtype=np.uint32), key)[0]
        assert [int(v) for v in got] == want


@pytest.mark.parametrize("key", [0, 123456789012345, -5, (1 << 63) - 1])
def test_kernel_normals_are_the_documented_counters(key: int) -> None:
    """Rows and columns that are not multiples of the 64-column group, negative keys."""
    z = _raw(key, 7, 130)
    ref = ep.reference_normals(key, 1, 7, 130)[0]
    assert np.abs(z.numpy() - ref).max() < 2e-5  # float32 log/sin against float64


def test_normals_have_the_moments_and_the_distribution_of_n01() -> None:
    z = _raw(2026, 1024, 1024).double().flatten()  # n = 2^20
    n = z.numel()
    mean, var = z.mean().item(), z.var().item()
    c = (z - mean) / math.sqrt(var)
    skew, kurt = (c**3).mean().item(), (c**4).mean().item() - 3.0
    assert abs(mean) < 4.5 / math.sqrt(n)
    assert abs(var - 1.0) < 4.5 * math.sqrt(2.0 / n)
    assert abs(skew) < 4.5 * math.sqrt(6.0 / n)
    assert abs(kurt) < 4.5 * math.sqrt(24.0 / n)
    p3 = math.erfc(3 / math.sqrt(2))  # P(|z| > 3)
    count = (z.abs() > 3).sum().item()
    assert abs(count - n * p3) < 4.5 * math.sqrt(n * p3 * (1 - p3))
    zs, _ = torch.sort(z)
    cdf = torch.special.ndtr(zs)
    grid = torch.arange(1, n + 1, dtype=torch.float64) / n
    ks = torch.maximum((grid - cdf).abs(), (cdf - (grid - 1.0 / n)).abs()).max().item()
    assert ks < 1.95 / math.sqrt(n)
    assert z.abs().max().item() <= math.sqrt(64 * math.log(2)) + 1e-4  # the stated tail bound


def _corr(a: Tensor, b: Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    a, b = a - a.mean(), b - b.mean()
    return (a @ b / (a.norm() * b.norm())).item()


def test_normals_are_uncorrelated_across_columns_rows_and_calls() -> None:
    """Neighbours in a Box-Muller pair (j = 0, 1 of a group), in the next group, next row,
    and the same place in the next call of the same stream."""
    z = _raw(77, 512, 1024)  # 2^19 normals
    tol = 4.5 / math.sqrt(z[:, :1024:2].numel())
    cols = torch.arange(1024)
    pair = (cols % 64) // 16 == 0  # word 0: its sine partner sits 16 columns on
    assert abs(_corr(z[:, cols[pair]], z[:, cols[pair] + 16])) < 4.5 / math.sqrt(512 * 256)
    assert abs(_corr(z[:, :-1:2], z[:, 1::2])) < tol
    assert abs(_corr(z[:, :512], z[:, 512:])) < tol
    assert abs(_corr(z[:-1:2], z[1::2])) < tol
    stream = NoiseStream(9)
    k1 = int(ep.call_key(stream.fill_, torch.device("cpu")).item())
    k2 = int(ep.call_key(stream.fill_, torch.device("cpu")).item())
    assert k1 != k2
    a, b = _raw(k1, 512, 1024), _raw(k2, 512, 1024)
    assert abs(_corr(a, b)) < 4.5 / math.sqrt(a.numel())


def test_tile_noises_are_independent_through_the_tile_sum() -> None:
    """The summed noise of T tiles has variance T (a correlation rho between tiles would
    give T + T (T - 1) rho), and each tile equals the reference counters of its rows."""
    tiles, rows, cols = 4, 256, 512
    y = _raw(5, rows, cols, tiles=tiles).double()
    n = y.numel()
    assert abs(y.var().item() / tiles - 1.0) < 4.5 * math.sqrt(2.0 / n)
    ref = ep.reference_normals(5, tiles, rows, cols).sum(0)
    assert np.abs(y.numpy() - ref).max() < 1e-4


def _layer_call(seed: int, x: Tensor, w: Tensor, plan: IOPlan, var: Tensor | None = None) -> Tensor:
    stream = NoiseStream(seed)
    y, _ = tile_mvm(x, w, plan, normals=stream.fill_, var=var, var_scale=plan.read2_u2)
    return y


def _operands(m: int = 64, k: int = 300, n: int = 96) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(m, k, generator=g), torch.rand(n, k, generator=g) * 2 - 1


def test_reproducible_per_seed_and_different_across_seeds() -> None:
    x, w = _operands()
    plan = IOPlan.of(TileConfig(rows=128, out_noise=0.05, read_noise=0.02))
    var = w.abs().to(torch.bfloat16)
    a = _layer_call(3, x, w, plan, var)
    assert torch.equal(a, _layer_call(3, x, w, plan, var))
    assert not torch.equal(a, _layer_call(4, x, w, plan, var))
    stream = NoiseStream(3)
    first, _ = tile_mvm(x, w, plan, normals=stream.fill_)
    second, _ = tile_mvm(x, w, plan, normals=stream.fill_)
    assert not torch.equal(first, second)  # the next call of a stream: new noise
    stream.reseed(3)
    again, _ = tile_mvm(x, w, plan, normals=stream.fill_)
    assert torch.equal(first, again)  # reseeding replays the calls


@pytest.mark.parametrize("threads", [2, 3])
def test_result_does_not_depend_on_the_thread_count(
    threads: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ep, "MIN_PARALLEL", 0)  # split even this small call
    x, w = _operands(m=37)
    plan = IOPlan.of(TileConfig(rows=64, out_noise=0.05, read_noise=0.02))
    var = w.abs().to(torch.bfloat16)
    one = _layer_call(8, x, w, plan, var)
    torch.set_num_threads(threads)
    assert torch.equal(one, _layer_call(8, x, w, plan, var))


def test_fused_and_torch_epilogues_agree_without_noise() -> None:
    """DAC, ADC rounding, clipping (a low bound clips some partials), tile sum, scale and
    bias: the two epilogues compute the same codes; a partial within float rounding of a
    rounding boundary may land on the other code (one ADC step)."""
    x, w = _operands()
    g = torch.Generator().manual_seed(2)
    scale, bias = torch.rand(w.shape[0], generator=g) + 0.5, torch.randn(w.shape[0], generator=g)
    plan = IOPlan.of(TileConfig(rows=128, adc_bits=6, adc_bound=2.0, out_noise=0.0, read_noise=0))
    assert plan.clip > 0 and plan.adc_round
    set_epilogue("torch")
    ref, _ = tile_mvm(x, w, plan, out_scale=scale, bias=bias)
    set_epilogue("fused")
    got, _ = tile_mvm(x, w, plan, out_scale=scale, bias=bias)
    alpha = x.abs().amax(dim=1, keepdim=True)
    one_code = alpha * plan.step * scale  # (M, N): one ADC step in output units
    diff = (got - ref).abs()
    assert (diff <= 1.01 * one_code + 1e-5).all()
    assert (diff > 1e-4).float().mean() < 0.01


def test_noise_variance_is_the_stated_formula() -> None:
    """No ADC: ``y - y_clean = alpha g sum_t sqrt(o^2 + s sum_j c_j^2 |w_ij|) z_t``; the
    sample variance over 4,096 identical input rows matches it per output."""
    rows_in, k, n = 4096, 96, 8
    g = torch.Generator().manual_seed(4)
    x = (torch.randn(1, k, generator=g)).expand(rows_in, k).contiguous()
    w = torch.rand(n, k, generator=g) * 2 - 1
    tile = TileConfig(rows=32, adc_bits=0, adc_bound=0.0, out_noise=0.05, read_noise=0.03)
    plan = IOPlan.of(tile)
    var = w.abs()  # float32 variance: exact formula
    y = _layer_call(12, x, w, plan, var).double()
    clean = IOPlan.of(tile.replace(out_noise=0.0, read_noise=0.0))
    y0, _ = tile_mvm(x[:1], w, clean)
    alpha = x[0].abs().max().double()
    c = torch.round(x[0].double() / alpha * plan.dac_levels)  # DAC codes
    want = torch.zeros(n, dtype=torch.float64)
    for t in range(3):
        sl = slice(32 * t, 32 * (t + 1))
        want += plan.out_noise**2 + plan.read2_u2 * (c[sl] ** 2 * w[:, sl].double().abs()).sum(1)
    want *= alpha**2
    got = y.var(dim=0)
    assert ((got / want - 1).abs() < 4.5 * math.sqrt(2 / (rows_in - 1))).all()
    assert (y.mean(0) - y0[0]).abs().max() < 4.5 * want.sqrt().max() / math.sqrt(rows_in)


def test_training_keeps_the_torch_epilogue_and_its_gradients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """hwa's autograd function calls tile_mvm with its pooled noise source: that call takes
    the torch epilogue (the values the source fills), and the straight-through backward
    gives gradients; an inference call of the same layer is fused."""
    from analogsim.mapping.convert import convert
    from analogsim.mapping.rules import mapping_from_dict
    from analogsim.train.hwa import install_hwa
    from analogsim.train.hwa_config import HWAConfig

    calls = []
    real = ep.epilogue_cpu

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(ep, "epilogue_cpu", counting)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(40, 12))
    tile = dict(rows=16, out_noise=0.05, read_noise=0.03)
    mapping = mapping_from_dict(
        {"name": "t", "default": {"placement": "analog", "device": "ideal", "tile": tile}}
    )
    am = convert(net, mapping)
    install_hwa(am.model, HWAConfig(levels=17, table_samples=256), seed=0)
    am.model.train()
    am.model(torch.randn(5, 40)).square().sum().backward()
    weight = am.model[0].digital.weight
    assert not calls
    assert weight.grad is not None and torch.isfinite(weight.grad).all()
    assert weight.grad.abs().sum() > 0
    am.program(0).eval()
    with torch.no_grad():
        am.model(torch.randn(5, 40))
    assert calls


def test_other_dtypes_take_the_torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ep, "epilogue_cpu", None)  # would fail if called
    x, w = _operands(m=4, k=40, n=6)
    plan = IOPlan.of(TileConfig(rows=16, out_noise=0.05))
    y, _ = tile_mvm(x.double(), w.double(), plan, normals=NoiseStream(1).fill_)
    assert y.dtype == torch.float64 and torch.isfinite(y).all()


def test_unknown_epilogue_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="epilogue"):
        set_epilogue("numba")
    monkeypatch.setenv(io.EPILOGUE_ENV, "fast")
    with pytest.raises(ConfigError, match="ANALOGSIM_EPILOGUE") as err:
        io._initial_epilogue()
    assert "fast" in str(err.value) and "fused" in str(err.value)
    monkeypatch.setenv(io.EPILOGUE_ENV, "torch")
    assert io._initial_epilogue() == "torch"


_TRITON_CHECK = """
import numpy as np, torch
from analogsim.tiles import epilogue as ep, triton_epilogue as te
g = torch.Generator().manual_seed(0)
T, M, N = 3, 9, 150
parts = torch.randn(T, M, N, generator=g) * 30
var = (torch.rand(T, M, N, generator=g) * 50).to(torch.bfloat16)
alpha, step_, bias = torch.rand(M, generator=g) + 0.5, torch.rand(N, generator=g), torch.randn(N, generator=g)
kw = dict(alpha=alpha, out_step=step_, bias=bias, var=var, pscale=0.3, out_noise=0.2,
          var_scale=1e-3, step=0.08, yscale=1.0, clip=40.0, do_round=True)
key = 987654321987
cpu = ep.epilogue_cpu(parts, torch.empty(M, N), key=key, **kw)
gpu = te.epilogue_triton(parts, torch.empty(M, N), key=torch.tensor([key]), **kw)
codes = ((cpu - gpu).abs() / (alpha[:, None] * step_[None, :])).max().item()
raw = torch.zeros(1, M, N)
kw0 = dict(alpha=None, out_step=None, bias=None, var=None, pscale=0.0, out_noise=1.0,
           var_scale=0.0, step=1.0, yscale=1.0, clip=0.0, do_round=False)
z = te.epilogue_triton(raw, torch.empty(M, N), key=torch.tensor([key]), **kw0)
ref = ep.reference_normals(key, 1, M, N)[0]
print(codes, float(np.abs(z.numpy() - ref).max()), int(torch.isclose(cpu, gpu, atol=1e-4).sum()), M * N)
"""


def test_triton_kernel_in_interpreter_mode_matches_the_cpu_kernel() -> None:
    """The GPU kernel, run by Triton's CPU interpreter: the same normals (the reference
    counters) and the same outputs as the CPU kernel, up to a rare one-code rounding flip."""
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    res = subprocess.run(
        [sys.executable, "-c", _TRITON_CHECK], env=env, capture_output=True, text=True, timeout=300
    )
    if res.returncode != 0 and "interpret" in res.stderr.lower():
        pytest.skip(f"triton's interpreter does not run here: {res.stderr[-300:]}")
    assert res.returncode == 0, res.stderr[-2000:]
    codes, zdiff, same, total = res.stdout.split()
    assert float(zdiff) < 2e-5
    assert float(codes) <= 3.0 + 1e-3  # a flip moves one output by at most T codes
    assert int(same) >= 0.99 * int(total)


def test_kernel_dac_gives_the_torch_codes() -> None:
    """The fused path's one-pass DAC: the same row ranges and codes as the torch DAC, a zero
    row included (range 1e-30, codes 0)."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(33, 700, generator=g) * 3
    x[4] = 0.0
    plan = IOPlan.of(TileConfig())
    codes, alpha, _ = io.dac_codes(x, plan)
    codes = codes.clone()
    set_epilogue("torch")
    ref, ref_alpha, _ = io.dac_codes(x, plan)
    assert torch.equal(codes, ref) and torch.equal(alpha, ref_alpha)
    assert alpha[4].item() == pytest.approx(1e-30) and not codes[4].any()


def test_loading_the_kernel_keeps_subnormals_in_this_process() -> None:
    """The kernel is compiled with fast-math but linked without it: loading it must not
    switch the process to flush-to-zero (gcc < 13 links crtfastmath.o into a -ffast-math
    shared library, which did, and broke every later float op that needs subnormals)."""
    code = (
        "from analogsim.tiles import epilogue as ep\n"
        "assert ep.available(), 'kernel not built'\n"
        "tiny = 2.2250738585072014e-308\n"
        "print(tiny / 4 != 0.0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if "kernel not built" in out.stderr:
        pytest.skip("no C compiler: the fused kernel is not built here")
    assert out.stdout.strip() == "True", out.stderr[-500:]
