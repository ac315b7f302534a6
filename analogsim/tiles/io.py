r"""The tile's input/output path, written once: DAC, tiled MVM, noise, ADC, sum, scale.

:func:`tile_mvm` is the one kernel; the inference layer (:class:`~analogsim.tiles.layer.
AnalogLayer`) and hardware-aware training (:mod:`analogsim.train.hwa`, inside its autograd
function) both call it. Units as in :mod:`analogsim.tiles.config`: weights normalised to
``[-1, 1]``; each input vector scaled to ``[-1, 1]`` by ``alpha`` (its max ``|x|``, or the
static ``dac_range``). Per tile of ``rows`` inputs, for output ``i``:

.. math::

    c_j = \mathrm{round}(L_{in} x_j / \alpha), \quad u = 1 / L_{in}

    p_i = \mathrm{clip}\Big(\mathrm{round}\big((u \sum_j c_j w_{ij} + \sigma_i z_i)
          / \Delta\big), \pm b/\Delta\Big), \qquad
    \sigma_i^2 = o^2 + s \sum_j c_j^2 V_{ij}

with ``L_in = 2^(b-1)-1`` DAC levels, ``Delta`` the ADC step (``adc_bound / L_out``), ``o``
the output noise, ``z ~ N(0, 1)`` and ``s V`` the per-weight noise variance: per-MVM read
noise ``s = (r u)^2``, ``V = |w|`` (aihwkit PCM_READ form; exact, as the output noise and
read noise are independent Gaussians), to which training adds the variance of output-side
weight noise. The output is ``y_i = alpha Delta g_i sum_tiles p_i + b_i`` with ``g`` the
digital output scale (weight scale x drift compensation).

Two epilogues (everything after the per-tile products), chosen by :func:`set_epilogue` or
``ANALOGSIM_EPILOGUE`` (``fused``, the default, or ``torch``):

* ``fused``: one product per tile into a ``(T, M, N)`` buffer (plus, with read noise, one
  variance product per tile), then one pass (:mod:`analogsim.tiles.epilogue` on CPU,
  :mod:`analogsim.tiles.triton_epilogue` on CUDA) adds the noise, with normals generated in
  that pass from a counter-based generator keyed once per call from ``normals``' stream,
  rounds, clips, sums the tiles and scales. Same distribution as ``torch``, other random
  numbers. It takes float32 calls whose ``normals`` is a
  :class:`~analogsim.devices.rng.NoiseStream`'s ``fill_`` (the inference layers'); other
  dtypes, other noise sources (hardware-aware training's pooled noise, whose values the
  caller chose) and machines without the kernel take the ``torch`` path.
* ``torch``: the noise of all tiles drawn by ``normals`` into one buffer before the tile
  loop; the MVM fused with the noise (``addmm_``); rounding, clipping, the tile sum and
  the scales as torch passes, in place, on scratch buffers the caller may share between
  calls (``buffer``); a single tile writes straight into the output.

The read-noise variance product runs in the variance's dtype (bfloat16 with float32
accumulation at inference). ``tile_mvm`` runs without a graph: training wraps it in its own
autograd function (straight-through backward) and passes its pooled noise source, so
training runs the ``torch`` epilogue (the same numbers as before the fused one existed).

Drift compensation (:func:`drift_readout`, :func:`drift_compensation`) is the digital
factor ``c = readout(0) / readout(t)`` with ``readout = mean |w|`` of the normalised
weights, per layer (``global``) or per output row (``column``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from analogsim.devices.physics import levels_for_bits
from analogsim.errors import ConfigError
from analogsim.tiles import epilogue as _cpu_epilogue
from analogsim.tiles import triton_epilogue as _gpu_epilogue
from analogsim.tiles.config import TileConfig

Buffer = Callable[[str, tuple[int, ...], Tensor], Tensor]
"""``buffer(key, shape, like)``: a scratch tensor of ``shape`` with ``like``'s dtype and
device (its contents are overwritten)."""

Normals = Callable[[Tensor], Any]
"""``normals(out)``: fill ``out`` with independent N(0, 1) in place."""


EPILOGUES = ("fused", "torch")
"""The tile epilogues (module docstring): ``fused`` (default) and ``torch``."""

EPILOGUE_ENV = "ANALOGSIM_EPILOGUE"


def _initial_epilogue() -> str:
    name = os.environ.get(EPILOGUE_ENV, "fused").strip() or "fused"
    if name not in EPILOGUES:
        raise ConfigError(
            "unknown tile epilogue",
            file="environment",
            key=EPILOGUE_ENV,
            value=name,
            allowed=", ".join(EPILOGUES),
        )
    return name


_EPILOGUE = _initial_epilogue()


def set_epilogue(name: str) -> str:
    """Choose the tile epilogue for every later :func:`tile_mvm` call; returns the previous."""
    global _EPILOGUE
    if name not in EPILOGUES:
        raise ConfigError(
            "unknown tile epilogue", key="epilogue", value=name, allowed=", ".join(EPILOGUES)
        )
    prev, _EPILOGUE = _EPILOGUE, name
    return prev


def get_epilogue() -> str:
    """The epilogue :func:`tile_mvm` uses (``fused`` falls back per call, module docstring)."""
    return _EPILOGUE


def fused_available(device: torch.device | str = "cpu") -> bool:
    """True when the fused epilogue runs on ``device`` here (a built CPU kernel, or triton
    for CUDA)."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return _cpu_epilogue.available()
    return dev.type == "cuda" and _gpu_epilogue.available()


def fresh_buffer(key: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """A new uninitialised tensor (the :data:`Buffer` of callers without a workspace)."""
    return torch.empty(shape, dtype=like.dtype, device=like.device)


@dataclass(frozen=True)
class IOPlan:
    """Constants of a tile's IO, computed once from a :class:`TileConfig`.

    Attributes:
        io: False: no DAC, tiles or ADC (plain MVM, with the optional variance noise).
        rows: inputs per tile.
        dac_static: static input range, or None for the dynamic (max ``|x|``) range.
        dac_levels: positive DAC levels ``L_in``; 0 = ideal DAC.
        in_unit: ``u = 1 / L_in`` (1 with an ideal DAC).
        step: ADC step ``Delta`` in normalised units (1 with an ideal ADC).
        adc_round: round to ADC codes.
        clip: ADC clip in steps (0 = none).
        out_noise: output noise std per tile, normalised units.
        read2_u2: ``(read_noise * in_unit)^2``, the scale of ``|w|`` in the noise variance.
    """

    io: bool
    rows: int
    dac_static: float | None
    dac_levels: int
    in_unit: float
    step: float
    adc_round: bool
    clip: float
    out_noise: float
    read2_u2: float

    @classmethod
    def of(cls, tile: TileConfig, io: bool = True) -> IOPlan:
        """The plan of ``tile``; ``io=False`` turns every converter and tile split off."""
        if not io:
            return cls(False, 1 << 30, None, 0, 1.0, 1.0, False, 0.0, 0.0, 0.0)
        lv = levels_for_bits(tile.dac_bits) if tile.dac_bits else 0
        in_unit = 1.0 / lv if lv else 1.0
        if tile.adc_bits:
            lo = levels_for_bits(tile.adc_bits)
            step = (tile.adc_bound / lo) if tile.adc_bound > 0 else 1.0 / lo
        else:
            step = 1.0
        clip = tile.adc_bound / step if tile.adc_bound > 0 else 0.0
        static = None if tile.dac_range == "dynamic" else float(tile.dac_range)
        return cls(
            True,
            tile.rows,
            static,
            lv,
            in_unit,
            step,
            bool(tile.adc_bits),
            clip,
            tile.out_noise,
            (tile.read_noise * in_unit) ** 2,
        )

    def out_step(self, out_scale: Tensor) -> Tensor:
        """``out_scale x step``: the per-output factor of the ADC codes times ``alpha``."""
        return out_scale * self.step if self.step != 1.0 else out_scale


@torch.no_grad()
def dac_codes(
    x: Tensor,
    plan: IOPlan,
    *,
    buffer: Buffer = fresh_buffer,
    key: str = "",
    clip_mask: bool = False,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The DAC of :func:`tile_mvm`: ``(xs, alpha, mask)``, ``xs (M, K)`` the input codes (a
    ``buffer``), ``alpha (M, 1)`` the range of each row, ``mask`` as in :func:`tile_mvm`."""
    m, k = x.shape
    lv = plan.dac_levels or 1
    xs = buffer(key + "x", (m, k), x)  # (M, K) DAC codes
    if (
        plan.dac_static is None
        and _EPILOGUE == "fused"
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.is_contiguous()
        and _cpu_epilogue.available()
    ):
        alpha = x.new_empty((m, 1))  # (M, 1)
        _cpu_epilogue.dac_cpu(x, xs, alpha, lv, bool(plan.dac_levels))  # one pass per row
        return xs, alpha, None
    if plan.dac_static is None:
        # max |x| per row as max(max x, -min x): two vectorised reductions, no |x|
        # temporary (linalg.vector_norm(ord=inf) took 15-25x longer here)
        alpha = torch.maximum(x.amax(dim=1, keepdim=True), x.amin(dim=1, keepdim=True).neg_())
        alpha.clamp_(min=1e-30)  # (M, 1)
    else:
        alpha = torch.full((m, 1), plan.dac_static, device=x.device, dtype=x.dtype)  # (M, 1)
    torch.mul(x, alpha.reciprocal().mul_(lv), out=xs)  # (M, K)
    mask = None
    if plan.dac_static is not None:
        if clip_mask:
            mask = (xs.abs() <= lv).to(x.dtype)  # (M, K)
        xs.clamp_(-lv, lv)
    if plan.dac_levels:
        xs.round_()
    return xs, alpha, mask


@torch.no_grad()
def tile_products(
    xs: Tensor,
    w: Tensor,
    plan: IOPlan,
    parts: Tensor,
    var: Tensor | None = None,
    xsq: Tensor | None = None,
    vparts: Tensor | None = None,
) -> Tensor:
    """The fused epilogue's products: ``parts[t] = xs_t @ w_t^T`` per tile ``t`` (``parts
    (T, M, N)``), and with ``var`` the variance sums ``vparts[t] = xsq_t @ var_t^T``
    (``xsq = xs^2`` in var's dtype). Returns ``parts``."""
    k = xs.shape[1]
    for t in range(parts.shape[0]):
        k0, k1 = t * plan.rows, min(k, (t + 1) * plan.rows)
        torch.mm(xs[:, k0:k1], w[:, k0:k1].t(), out=parts[t])  # (M, N)
        if var is not None:
            torch.mm(xsq[:, k0:k1], var[:, k0:k1].t(), out=vparts[t])  # (M, N)
    return parts


@torch.no_grad()
def tile_mvm(
    x: Tensor,
    w: Tensor,
    plan: IOPlan,
    *,
    normals: Normals | None = None,
    var: Tensor | None = None,
    var_scale: float = 1.0,
    out_scale: Tensor | None = None,
    out_step: Tensor | None = None,
    bias: Tensor | None = None,
    buffer: Buffer = fresh_buffer,
    key: str = "",
    clip_mask: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Tiled analog MVM of ``x (M, K)`` on normalised weights ``w (N, K)`` (module docstring).

    Args:
        x: inputs, one vector per row.
        w: normalised weights ``(N, K)``.
        plan: the tile's IO constants.
        normals: fills a tensor with N(0, 1) in place; needed when there is noise
            (``plan.out_noise > 0`` or ``var``). Called once, with the ``(T, M, N)``
            partials of all ``T`` tiles (``(M, N)`` when ``plan.io`` is off); the fused
            epilogue instead draws one key from it when it is a ``NoiseStream``'s ``fill_``.
        var: ``V (N, K)``: per-weight noise variance per squared DAC code (read noise
            ``|w|``, plus output-side weight noise in training); its dtype sets the dtype
            of the variance product (bfloat16: float32 accumulation, ~0.4 % error).
        var_scale: ``s``, multiplies ``sum_j c_j^2 V_ij`` (read noise: ``plan.read2_u2``).
        out_scale: per-output digital scale ``(N,)`` (weight scale x compensation).
        out_step: ``plan.out_step(out_scale)``, when the caller keeps it precomputed.
        bias: ``(N,)`` added at the end (fused with the output scale).
        buffer: scratch tensors (:data:`Buffer`); a shared workspace or fresh tensors.
        key: prefix of the scratch buffers' keys.
        clip_mask: also return the ``(M, K)`` mask of inputs inside a static DAC range.
    Returns:
        ``(y, mask)``: ``y (M, N)`` a fresh tensor in weight units (never a buffer), and
        the DAC clip mask (1 inside the range, 0 clipped) or None.
    """
    m, k = x.shape
    n = w.shape[0]
    fused = (
        plan.io
        and _EPILOGUE == "fused"
        and _fusable(x, w, var, out_step, out_scale, bias)
        and (normals is None or _cpu_epilogue.keyed_stream(normals) is not None)
    )
    if out_step is None and out_scale is not None and not fused:
        out_step = plan.out_step(out_scale)  # (N,)
    if not plan.io:
        y = x @ w.t()  # (M, N)
        if var is not None:
            std = (x * x) @ var.t()  # (M, N) output-side weight-noise variance
            z = torch.empty_like(y)  # (M, N)
            normals(z)
            y.addcmul_(std.sqrt_(), z)  # (M, N)
        return _scale_and_bias(y, out_step, bias), None
    xs, alpha, mask = dac_codes(x, plan, buffer=buffer, key=key, clip_mask=clip_mask)
    u, step = plan.in_unit, plan.step
    # ADC grid: tile outputs are held as ADC codes (units of `step`)
    n_tiles = math.ceil(k / plan.rows)
    noisy = plan.out_noise > 0 or var is not None
    if fused:
        # the ADC step rides in the kernel's scalar factor: no (N,) product per call
        scale, yscale = (out_step, 1.0) if out_step is not None else (out_scale, plan.step)
        y = _fused(
            xs, w, plan, n_tiles, alpha, normals, var, var_scale, scale, yscale, bias, buffer, key
        )
        return y, mask
    if n_tiles == 1:
        # one tile: its partial is the output; a fresh tensor saves copying it out
        single = x.new_empty((m, n))  # (M, N)
        parts = single.unsqueeze(0)  # (1, M, N)
    else:
        parts = buffer(key + "parts", (n_tiles, m, n), x)  # (T, M, N) one partial per tile
    if noisy:
        normals(parts)  # (T, M, N) N(0, 1)
    if var is not None:
        xsq = buffer(key + "xsq", (m, k), x.new_empty(0, dtype=var.dtype))  # (M, K) c^2
        torch.mul(xs, xs, out=xsq)
    for t in range(n_tiles):
        k0, k1 = t * plan.rows, min(k, (t + 1) * plan.rows)
        xt, wt = xs[:, k0:k1], w[:, k0:k1]  # (M, Kt), (N, Kt)
        buf = parts[t]  # (M, N)
        if var is not None:
            # noise std per output: sqrt(o^2 + s sum_j c_j^2 V_ij), in var's dtype
            std = torch.mm(xsq[:, k0:k1], var[:, k0:k1].t())  # (M, N)
            if var_scale != 1.0:
                std.mul_(var_scale)
            std.add_(plan.out_noise**2).sqrt_()
            buf.mul_(std).addmm_(xt, wt.t(), beta=1.0 / step, alpha=u / step)  # (M, N)
        elif noisy:
            buf.addmm_(xt, wt.t(), beta=plan.out_noise / step, alpha=u / step)  # (M, N)
        else:
            torch.mm(xt, wt.t(), out=buf)  # (M, N)
            if u != step:
                buf.mul_(u / step)
    if plan.adc_round:
        parts.round_()
    if plan.clip > 0:
        parts.clamp_(-plan.clip, plan.clip)
    y = torch.sum(parts, dim=0) if n_tiles > 1 else single  # (M, N); not a view of a buffer
    y.mul_(alpha)
    if out_step is None and step != 1.0:
        y.mul_(step)
    return _scale_and_bias(y, out_step, bias), mask


def _fusable(
    x: Tensor,
    w: Tensor,
    var: Tensor | None,
    out_step: Tensor | None,
    out_scale: Tensor | None,
    bias: Tensor | None,
) -> bool:
    """True when the fused epilogue takes this call (float32 operands on a device it runs on)."""
    f32 = torch.float32
    if x.dtype != f32 or w.dtype != f32 or not fused_available(x.device):
        return False
    if var is not None and var.dtype not in (f32, torch.bfloat16):
        return False
    return all(t is None or t.dtype == f32 for t in (out_step, out_scale, bias))


def _fused(
    xs: Tensor,
    w: Tensor,
    plan: IOPlan,
    n_tiles: int,
    alpha: Tensor,
    normals: Normals | None,
    var: Tensor | None,
    var_scale: float,
    scale: Tensor | None,
    yscale: float,
    bias: Tensor | None,
    buffer: Buffer,
    key: str,
) -> Tensor:
    """Products per tile, then the fused epilogue (module docstring); returns ``y (M, N)``
    ``= alpha yscale scale sum_t (...) + bias``."""
    m, k = xs.shape
    n = w.shape[0]
    y = xs.new_empty((m, n))  # (M, N) fresh output
    # one tile: the epilogue reads each block of its product before writing it, in place
    parts = y.unsqueeze(0) if n_tiles == 1 else buffer(key + "parts", (n_tiles, m, n), xs)
    vparts = None
    if var is not None:
        xsq = buffer(key + "xsq", (m, k), xs.new_empty(0, dtype=var.dtype))  # (M, K) c^2
        torch.mul(xs, xs, out=xsq)
        vparts = buffer(key + "vparts", (n_tiles, m, n), xsq)  # (T, M, N) sum_j c_j^2 V_ij
    else:
        xsq = None
    tile_products(xs, w, plan, parts, var, xsq, vparts)
    noisy = plan.out_noise > 0 or var is not None
    call_key = _cpu_epilogue.call_key(normals, xs.device) if noisy else None  # (1,) int64
    consts = dict(
        alpha=alpha.view(m),
        out_step=None if scale is None else scale.contiguous(),
        bias=None if bias is None else bias.contiguous(),
        var=vparts,
        pscale=plan.in_unit / plan.step,
        out_noise=plan.out_noise,
        var_scale=var_scale,
        step=plan.step,
        yscale=yscale,
        clip=plan.clip,
        do_round=plan.adc_round,
    )
    if xs.device.type == "cpu":
        key_int = None if call_key is None else int(call_key.item())
        return _cpu_epilogue.epilogue_cpu(parts, y, key=key_int, **consts)
    return _gpu_epilogue.epilogue_triton(parts, y, key=call_key, **consts)


def _scale_and_bias(y: Tensor, scale: Tensor | None, bias: Tensor | None) -> Tensor:
    """``y * scale + bias`` in place on ``y (M, N)`` (either may be None)."""
    if scale is not None:
        if bias is not None:
            return torch.addcmul(bias, y, scale, out=y)  # (M, N)
        return y.mul_(scale)
    if bias is not None:
        y.add_(bias)
    return y


# ---------------------------------------------------------------------------- compensation
def drift_readout(w: Tensor, mode: str) -> Tensor:
    """The readout drift compensation holds constant: ``mean |w|`` of normalised weights
    ``w (N, K)`` over the layer (``global``, shape ``(1,)``) or per output row (``column``,
    ``(N,)``), at least ``1e-12``."""
    a = w.abs()  # (N, K)
    readout = a.mean(dim=1) if mode == "column" else a.mean().reshape(1)
    return readout.clamp(min=1e-12)


def drift_compensation(ref: Tensor, now: Tensor, n: int) -> Tensor:
    """The digital compensation factor ``c = readout(0) / readout(t)`` per output, ``(n,)``
    (a view; ``ref`` and ``now`` are ``(1,)`` or ``(n,)`` readouts, ``now > 0``)."""
    return (ref / now).expand(n)


__all__ = [
    "EPILOGUES",
    "EPILOGUE_ENV",
    "Buffer",
    "IOPlan",
    "Normals",
    "dac_codes",
    "drift_compensation",
    "drift_readout",
    "fresh_buffer",
    "fused_available",
    "get_epilogue",
    "set_epilogue",
    "tile_mvm",
    "tile_products",
]
