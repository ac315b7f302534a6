"""Digital integer quantizer: q = clamp(round(w/s), -L, L) s with L = 2^(bits-1) - 1,
s = max|w| / L per tensor or per output channel."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from analogsim.devices.quant import Quantizer, quantize_weight
from analogsim.errors import ConfigError

# Magnitudes below 1e-30 become 0: the quantizer floors its step at the smallest normal
# float (to keep all-zero tensors finite), which only matters for weights ~1e-38.
_weights = st.integers(1, 6).flatmap(
    lambda rows: st.integers(1, 8).flatmap(
        lambda cols: st.lists(
            st.floats(-100, 100, allow_nan=False, width=32).map(
                lambda v: v if abs(v) > 1e-30 else 0.0
            ),
            min_size=rows * cols,
            max_size=rows * cols,
        ).map(lambda xs: torch.tensor(xs, dtype=torch.float32).reshape(rows, cols))
    )
)
_quantizers = st.builds(Quantizer, st.integers(2, 16), st.booleans())


def _step(q: Quantizer, w: torch.Tensor) -> torch.Tensor:
    """max|w| / L over the tensor or per row, computed here (not by the quantizer)."""
    L = 2 ** (q.bits - 1) - 1
    if q.per_channel:
        return w.abs().amax(dim=1, keepdim=True) / L
    return w.abs().amax() / L


@pytest.mark.parametrize(("bits", "levels"), [(2, 1), (4, 7), (8, 127), (16, 32767)])
def test_levels(bits, levels):
    assert Quantizer(bits).levels == levels


@given(_weights, _quantizers)
@settings(deadline=None, max_examples=150)
def test_values_on_the_grid_and_error_at_most_half_a_step(w, q):
    out = q(w)
    s = _step(q, w)
    L = q.levels
    safe = torch.where(s > 0, s, torch.ones_like(s))
    k = out.double() / safe.double()
    # integer codes within [-L, L], up to float32 rounding of s and k s (relative 2^-23 each)
    tol = 4 * L * 2.0**-23
    assert torch.allclose(k, k.round(), rtol=0, atol=tol)
    assert float(k.abs().max()) <= L + tol
    # |q - w| <= s/2, plus float32 rounding: of w/s (|w/s| eps codes, i.e. |w| eps), of s and
    # of k s (each at most max|w| eps), eps = 2^-24
    err = (out - w).abs()
    amax = w.abs().amax(dim=1, keepdim=True) if q.per_channel else w.abs().amax()
    assert bool((err <= s / 2 + 4 * amax * 2.0**-24).all())
    # the largest magnitude is represented exactly at +-L steps
    if q.per_channel:
        row_max = w.abs().amax(dim=1)
        torch.testing.assert_close(out.abs().amax(dim=1), row_max, rtol=1e-6, atol=0)
    else:
        torch.testing.assert_close(out.abs().amax(), w.abs().amax(), rtol=1e-6, atol=0)


@given(_weights, _quantizers)
@settings(deadline=None, max_examples=150)
def test_idempotent(w, q):
    once = q(w)
    twice = q(once)
    torch.testing.assert_close(twice, once, rtol=1e-6, atol=0)


@given(_weights, st.integers(2, 8))
@settings(deadline=None, max_examples=100)
def test_distinct_levels_at_most_2L_plus_1(w, bits):
    out = quantize_weight(w, bits)
    assert out.unique().numel() <= 2 * (2 ** (bits - 1) - 1) + 1


def test_per_channel_uses_each_rows_own_scale():
    # row 1 is 100x smaller: per tensor its values round to 0 at 4 bits, per channel they keep
    # full 4-bit resolution
    w = torch.tensor([[1.0, -0.6, 0.3], [0.01, -0.006, 0.003]])
    per_tensor = quantize_weight(w, 4)
    per_channel = quantize_weight(w, 4, per_channel=True)
    # per tensor: step 1/7, and 0.01 * 7 = 0.07 rounds to 0
    assert torch.equal(per_tensor[1], torch.zeros(3))
    # per channel: 0.6 * 7 = 4.2 -> 4, 0.3 * 7 = 2.1 -> 2 in units of each row's max / 7
    torch.testing.assert_close(per_channel[0], torch.tensor([1.0, -4 / 7, 2 / 7]))
    torch.testing.assert_close(per_channel[1], torch.tensor([0.01, -4 / 7 * 0.01, 2 / 7 * 0.01]))


def test_per_channel_on_conv_weights():
    w = torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    w[2] *= 0.01
    q = Quantizer(3, per_channel=True)
    assert q.scale(w).shape == (4, 1, 1, 1)
    out = q(w)
    for c in range(4):
        torch.testing.assert_close(out[c], quantize_weight(w[c : c + 1], 3)[0])


def test_all_zero_weights_stay_zero():
    out = quantize_weight(torch.zeros(3, 4), 8, per_channel=True)
    assert torch.equal(out, torch.zeros(3, 4))


@pytest.mark.parametrize("bits", [1, 17, 0, 8.0, True, "8"])
def test_bad_bits(bits):
    with pytest.raises(ConfigError, match=r"key 'bits'.*integer in 2\.\.16"):
        Quantizer(bits)
