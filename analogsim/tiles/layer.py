"""An analog layer: a torch weight layer mapped onto crossbar tiles of a device.

:class:`AnalogLayer` wraps an ``nn.Linear``, a GPT-2 ``Conv1D`` (weight stored
transposed) or an ``nn.Conv2d`` *in place of* the original module, which it keeps
untouched as ``.digital`` (so restoring gives the original weights bit for bit).

State, time and memory
----------------------
``program(seed)`` fixes the layer's device seed; every per-device random quantity is
regenerated from it in fixed chunks (see :mod:`analogsim.devices.rng`), so the only
weight-sized tensor the layer keeps is ``w_eff``, the effective weights at the current
(equivalent time, temperature): extra memory = 1x the weight bytes. ``set_state(t, T)``
recomputes ``w_eff`` from the programmed state; the answer never depends on earlier calls.

Forward
-------
* every tile non-ideality off: ``F.linear(x, w_eff, b)`` with compensation and scales
  folded into ``w_eff`` (the cost of the digital layer);
* otherwise per tile of ``rows`` inputs: DAC (scale by max|x| or a static range, round to
  ``2^(b-1)-1`` levels), MVM on the tile's slice of ``w_eff``, output noise and per-MVM
  read noise folded into *one* Gaussian per output with variance
  ``out_noise^2 + read_noise^2 sum_j |W_ij| x_j^2`` (exact: both are independent
  Gaussians), ADC (round to the grid ``adc_bound/(2^(b-1)-1)``, clip at ``adc_bound``),
  digital sum over tiles, then the digital output scale (weight scale x compensation).
  The noise for all tiles is drawn into one buffer by two threads; the MVM is fused with
  the noise (``addmm_``); everything else is in place on scratch buffers shared by all layers of a thread.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from analogsim.devices.model import DeviceModel
from analogsim.devices.physics import levels_for_bits
from analogsim.devices.rng import CHUNK, NoiseStream, derive_seed, run_chunks
from analogsim.tiles.config import TileConfig

try:  # transformers is a dependency, but keep the tiles importable without it
    from transformers.pytorch_utils import Conv1D as _HFConv1D
except Exception:  # pragma: no cover - exercised only without transformers
    _HFConv1D = None

KINDS = ("linear", "conv1d", "conv2d")


class _Workspace(threading.local):
    """Forward scratch buffers shared by every analog layer of one thread.

    Layers run one after another and :meth:`AnalogLayer.mvm` returns a fresh tensor, so
    the DAC codes, partial sums and squared inputs of one call are dead when the next
    layer starts: one set of buffers (grown to the largest layer and batch seen) serves
    the whole model instead of one set per layer. Thread-local, so models run from
    several threads never share a buffer.
    """

    def __init__(self) -> None:
        self.bufs: dict[str, Tensor] = {}

    def get(self, key: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        n = math.prod(shape)
        buf = self.bufs.get(key)
        if buf is None or buf.numel() < n or buf.device != like.device or buf.dtype != like.dtype:
            del buf  # let the old buffer go before the new one is allocated
            self.bufs.pop(key, None)
            buf = torch.empty(n, device=like.device, dtype=like.dtype)
            self.bufs[key] = buf
        return buf[:n].view(shape)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.bufs.values())


_WORKSPACE = _Workspace()


def shared_workspace_bytes() -> int:
    """Bytes of forward scratch buffers held for the calling thread (shared by all layers)."""
    return _WORKSPACE.nbytes()


def free_shared_workspace() -> None:
    """Drop the calling thread's forward scratch buffers (rebuilt on the next forward)."""
    _WORKSPACE.bufs.clear()


def conv2d_columns(conv: nn.Conv2d, x: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """A Conv2d input as an MVM: ``(cols, unflatten)``.

    ``cols`` is ``(B*L, C*kh*kw)`` (im2col, padded as ``nn.Conv2d`` pads: 'same' may be
    asymmetric for even kernels, and 'reflect' / 'replicate' / 'circular' are not zeros);
    ``unflatten`` turns the ``(B*L, N)`` outputs into ``(B, N, H_out, W_out)``.
    """
    pad = conv.padding
    if conv.padding_mode != "zeros" or isinstance(pad, str):
        mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
        x = F.pad(x, conv._reversed_padding_repeated_twice, mode=mode)
        pad = (0, 0)
    b, _, h, w_in = x.shape
    kh, kw = conv.kernel_size
    h_out = (h + 2 * pad[0] - conv.dilation[0] * (kh - 1) - 1) // conv.stride[0] + 1
    w_out = (w_in + 2 * pad[1] - conv.dilation[1] * (kw - 1) - 1) // conv.stride[1] + 1
    cols = F.unfold(x, (kh, kw), dilation=conv.dilation, padding=pad, stride=conv.stride)
    cols = cols.transpose(1, 2).reshape(-1, cols.shape[1])

    def unflatten(y: Tensor) -> Tensor:
        n = y.shape[1]
        return y.view(b, h_out * w_out, n).transpose(1, 2).reshape(b, n, h_out, w_out)

    return cols, unflatten


def module_kind(module: nn.Module) -> str | None:
    """``"linear"``, ``"conv1d"`` (GPT-2 Conv1D), ``"conv2d"`` or None if not mappable."""
    if isinstance(module, nn.Linear):
        return "linear"
    if _HFConv1D is not None and isinstance(module, _HFConv1D):
        return "conv1d"
    if isinstance(module, nn.Conv2d):
        return "conv2d"
    return None


def weight_matrix(module: nn.Module) -> Tensor:
    """The ``(out, in)`` matrix an MVM sees (a view where possible)."""
    kind = module_kind(module)
    w = module.weight
    if kind == "linear":
        return w
    if kind == "conv1d":
        return w.t()  # Conv1D stores (in, out)
    if kind == "conv2d":
        return w.reshape(w.shape[0], -1)
    raise TypeError(f"cannot map {type(module).__name__} onto a crossbar")


class AnalogLayer(nn.Module):
    """A weight layer on simulated crossbar tiles (see module docstring).

    Args:
        module: the digital layer (``nn.Linear``, GPT-2 ``Conv1D``, ``nn.Conv2d``).
        device: the device model of the tiles.
        tile: tile settings.
        name: the qualified module name (for reports and seeds).
    """

    def __init__(
        self, module: nn.Module, device: DeviceModel, tile: TileConfig, name: str = ""
    ) -> None:
        super().__init__()
        kind = module_kind(module)
        if kind is None:
            raise TypeError(
                f"{name or 'module'}: cannot map {type(module).__name__} onto a crossbar"
            )
        self.kind = kind
        self.digital = module
        self.device_model = device
        self.tile = tile
        self.name = name
        mat = weight_matrix(module)
        self.out_features, self.in_features = int(mat.shape[0]), int(mat.shape[1])
        if kind == "conv2d":
            self.groups = module.groups
            self.in_features_total = self.in_features * self.groups
        else:
            self.groups = 1
        self.seed: int | None = None
        self.time_s = 0.0
        self.temperature_K: float | None = None
        self.register_buffer("w_eff", None, persistent=False)
        self.register_buffer("out_mult", None, persistent=False)
        self.register_buffer("_ref_readout", None, persistent=False)
        self.register_buffer("_w_scale", None, persistent=False)
        self._noise = NoiseStream(0)
        self._w_abs: Tensor | None = None
        self._w_abs_src: Tensor | None = None
        self.time_cache = False
        self._tcache: dict[str, Any] | None = None
        self._comp: Tensor | None = None
        self.frozen_compensation = False
        # Training hook: a callable (layer, x) -> y used instead of the inference forward
        # when the module is in training mode with gradients on (noise-aware training).
        self.hwa: Any = None

    # ------------------------------------------------------------------ info
    @property
    def bias(self) -> Tensor | None:
        return self.digital.bias

    def tiles_count(self) -> int:
        """Crossbar tiles this layer occupies: ceil(K/rows) x ceil(N/cols) per group."""
        per_group_out = self.out_features // self.groups
        return (
            self.groups
            * math.ceil(self.in_features / self.tile.rows)
            * math.ceil(per_group_out / self.tile.cols)
        )

    def state_bytes(self) -> int:
        """Bytes the layer holds beyond the original module (device state and caches)."""
        total = 0
        for t in (self.w_eff, self.out_mult, self._ref_readout, self._w_scale):
            if t is not None:
                total += t.numel() * t.element_size()
        return total

    def workspace_bytes(self) -> int:
        """Bytes of forward caches this layer holds (the bfloat16 ``|w|`` for read noise).

        The scratch buffers of the forward are shared by all layers of a thread: see
        :func:`shared_workspace_bytes`.
        """
        if self._w_abs is None:
            return 0
        return self._w_abs.numel() * self._w_abs.element_size()

    def free_workspace(self) -> None:
        """Drop the cached ``|w|`` and the thread's shared scratch buffers (rebuilt on demand)."""
        free_shared_workspace()
        self._w_abs = None
        self._w_abs_src = None

    def extra_repr(self) -> str:
        return (
            f"{self.kind}, in={self.in_features}, out={self.out_features}, "
            f"device={self.device_model.name}, tiles={self.tiles_count()}, io={self.tile.io_enabled}"
        )

    # ------------------------------------------------------------------ state
    def matrix(self) -> Tensor:
        """The original weights as an ``(out, in)`` matrix."""
        return weight_matrix(self.digital)

    @torch.no_grad()
    def program(self, seed: int) -> AnalogLayer:
        """Fix the device seed (sampling all per-device quantities) and go to t = 0, T_ref."""
        self.seed = int(seed)
        self._noise = NoiseStream(derive_seed(self.seed, "forward"), self.matrix().device)
        w = self.matrix().detach()
        if self.tile.weight_scale == "column":
            scale = w.abs().amax(dim=1)
        else:
            scale = w.abs().amax().reshape(1).expand(w.shape[0]).clone()
        self._w_scale = scale.clamp_(min=torch.finfo(w.dtype).tiny)
        self._ref_readout = None
        self._comp = None
        self.frozen_compensation = False
        self.set_state(0.0, None)
        return self

    @torch.no_grad()
    def normalized_target(self) -> Tensor:
        """``W / scale`` in ``[-1, 1]``, contiguous ``(out, in)``."""
        return (self.matrix().detach() / self._w_scale[:, None]).contiguous()

    @torch.no_grad()
    def effective_normalized(self, time_s: float, temperature_K: float | None) -> Tensor:
        """Normalised effective weights ``(G+ - G-)/(g_max - g_min)`` at (t, T), fresh tensor."""
        if self.seed is None:
            raise RuntimeError(f"{self.name}: call program(seed) before reading device state")
        w_norm = self.normalized_target()
        dev = self.device_model
        if dev.is_ideal:
            return w_norm
        span = dev.g_max - dev.g_min
        if self.time_cache:
            g = dev.assemble(self._time_components(w_norm, time_s), time_s, temperature_K)
            return torch.sub(g[0], g[1]).div_(span).view_as(w_norm)
        out = torch.empty_like(w_norm)
        flat_w, flat_o = w_norm.view(-1), out.view(-1)
        jobs = list(enumerate(range(0, flat_w.numel(), CHUNK)))

        def work(job: tuple[int, int]) -> None:
            i, start = job
            wc = flat_w[start : start + CHUNK]
            g = dev.conductances(dev.targets(wc), self.seed, time_s, temperature_K, chunk=i)
            torch.sub(g[0], g[1], out=flat_o[start : start + CHUNK]).div_(span)

        run_chunks(work, jobs)
        return out

    # ------------------------------------------------------------------ time cache
    def enable_time_cache(self, enabled: bool = True) -> None:
        """Keep the per-device components of the current noise interval in memory.

        Then moving in time costs a few elementwise passes over the weights instead of
        regenerating every draw (the clock turns this on). Memory: 7 to 10 tensors of twice
        the weight size (see :meth:`time_cache_bytes`); numbers are identical.
        """
        self.time_cache = bool(enabled)
        if not enabled:
            self._tcache = None

    def time_cache_bytes(self) -> int:
        """Bytes the time cache holds now (0 when off or not built)."""
        if self._tcache is None:
            return 0
        total = 0
        for v in self._tcache.values():
            for t in v if isinstance(v, list) else [v]:
                if isinstance(t, Tensor):
                    total += t.numel() * t.element_size()
        return total

    def _time_components(self, w_norm: Tensor, time_s: float) -> dict[str, Any]:
        dev = self.device_model
        k = dev.noise_interval(time_s)
        cache = self._tcache
        if cache is not None and cache["seed"] == self.seed:
            if cache["k"] == k:
                return cache
            if cache["k"] < k and "b" in cache:
                return self._advance_time_cache(cache, k)
        flat_w = w_norm.reshape(-1)
        n = flat_w.numel()
        full: dict[str, Any] = {}
        for i, start in enumerate(range(0, n, CHUNK)):
            wc = flat_w[start : start + CHUNK]
            comp = dev.components(dev.targets(wc), self.seed, time_s, chunk=i, advanceable=True)
            for key, val in comp.items():
                if key == "k":
                    continue
                if isinstance(val, list):
                    dst = full.setdefault(key, [wc.new_empty((2, n)) for _ in val])
                    for d, v in zip(dst, val, strict=True):
                        d[:, start : start + CHUNK] = v  # full components: no None parts
                elif isinstance(val, Tensor):
                    dst = full.setdefault(
                        key, torch.empty((2, n), dtype=val.dtype, device=val.device)
                    )
                    dst[:, start : start + CHUNK] = val
                else:
                    full.setdefault(key, val)
        full["k"] = k
        full["seed"] = self.seed
        for key in ("P", "nu", "c", "ea"):
            full.setdefault(key, None)
        self._tcache = full
        return full

    def _advance_time_cache(self, cache: dict[str, Any], k: int) -> dict[str, Any]:
        """Move the cache to a later noise interval: only the read-noise parts change, and
        they are advanced from the stored Brownian value (bit-identical to a rebuild)."""
        dev = self.device_model
        n = cache["b"].shape[1]
        for i, start in enumerate(range(0, n, CHUNK)):
            sl = slice(start, start + CHUNK)
            part = {"k": cache["k"], "b": cache["b"][:, sl], "amp": cache["amp"][:, sl]}
            if "stuck" in cache:
                part["stuck"] = cache["stuck"][:, sl]
            for dst, val in zip(
                cache["c"], dev.advance_read_noise(part, self.seed, k, chunk=i), strict=True
            ):
                dst[:, sl] = val
        cache["k"] = k
        return cache

    @torch.no_grad()
    def set_state(self, time_s: float, temperature_K: float | None) -> None:
        """Recompute ``w_eff`` at equivalent time ``time_s`` and read temperature ``temperature_K``."""
        w = self.effective_normalized(time_s, temperature_K)
        self.time_s = float(time_s)
        self.temperature_K = temperature_K
        # fresh per-forward noise restarts from (seed, t, T): a measurement at a state does
        # not depend on which states were read before it (resumable runs are bit-exact)
        self._noise.reseed(
            derive_seed(self.seed, "forward", repr(float(time_s)), repr(temperature_K))
        )
        comp = self._compensation(w)
        mult = self._w_scale if comp is None else self._w_scale * comp
        if self.tile.io_enabled:
            self.w_eff = w
            self.out_mult = mult
        else:
            self.w_eff = w.mul_(mult[:, None])
            self.out_mult = None

    def _compensation(self, w: Tensor) -> Tensor | None:
        mode = self.tile.drift_compensation
        if mode == "none":
            return None
        readout = w.abs().mean(dim=1) if mode == "column" else w.abs().mean().reshape(1)
        readout = readout.clamp(min=1e-12)
        if self._ref_readout is None:
            self._ref_readout = readout.clone()
        if self.frozen_compensation and self._comp is not None:
            return self._comp
        comp = (self._ref_readout / readout).expand(self.out_features).clone()
        self._comp = comp
        return comp

    def recalibrate(self) -> None:
        """Recompute the drift-compensation factor now (when it is frozen between calibrations)."""
        frozen = self.frozen_compensation
        self.frozen_compensation = False
        self.set_state(self.time_s, self.temperature_K)
        self.frozen_compensation = frozen

    # ------------------------------------------------------------------ forward
    def _buf(self, key: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        return _WORKSPACE.get(key, shape, like)

    def forward(self, x: Tensor) -> Tensor:
        if self.hwa is not None and self.training and torch.is_grad_enabled():
            return self.hwa(self, x)
        if self.w_eff is None:
            raise RuntimeError(
                f"analog layer '{self.name}' is not programmed: call program(seed) first"
            )
        if self.kind == "conv2d":
            return self._forward_conv2d(x)
        bias = self.bias
        if not self.tile.io_enabled:
            return F.linear(x, self.w_eff, bias)
        lead = x.shape[:-1]
        y = self.mvm(
            x.reshape(-1, self.in_features), self.w_eff, out_scale=self.out_mult, bias=bias
        )
        return y.view(*lead, self.out_features)

    def _forward_conv2d(self, x: Tensor) -> Tensor:
        conv: nn.Conv2d = self.digital
        if not self.tile.io_enabled:
            padding = conv.padding
            if conv.padding_mode != "zeros":
                # as nn.Conv2d does: pad explicitly ('reflect', 'replicate', 'circular'), then
                # convolve without padding
                x = F.pad(x, conv._reversed_padding_repeated_twice, mode=conv.padding_mode)
                padding = 0
            return F.conv2d(
                x,
                self.w_eff.view_as(conv.weight),
                conv.bias,
                conv.stride,
                padding,
                conv.dilation,
                conv.groups,
            )
        cols, unflatten = conv2d_columns(conv, x)
        g = self.groups
        kg, og = self.in_features, self.out_features // g
        outs = []
        for gi in range(g):
            xg = cols[:, gi * kg : (gi + 1) * kg]
            wg = self.w_eff[gi * og : (gi + 1) * og]
            outs.append(self.mvm(xg.contiguous() if g > 1 else xg, wg, key=f"g{gi}"))
        y = outs[0] if g == 1 else torch.cat(outs, dim=1)
        y.mul_(self.out_mult)
        if conv.bias is not None:
            y.add_(conv.bias)
        return unflatten(y)

    @torch.no_grad()
    def mvm(
        self,
        x2: Tensor,
        w: Tensor,
        key: str = "",
        out_scale: Tensor | None = None,
        bias: Tensor | None = None,
    ) -> Tensor:
        """Tiled analog MVM of ``x2 (M, K)`` with normalised weights ``w (N, K)``.

        Returns a fresh ``(M, N)`` tensor in weight units: the ADC codes summed over tiles
        times the ADC step and the input scale, times ``out_scale`` (per output) if given,
        plus ``bias`` if given (with ``out_scale`` in one fused multiply-add).
        Scratch buffers are shared by all layers of the thread (see
        :func:`shared_workspace_bytes`).
        """
        cfg = self.tile
        m, k = x2.shape
        n = w.shape[0]
        # DAC: scale each input vector to [-1, 1]; round to integer codes in units of `in_unit`
        xs = self._buf(key + "x", (m, k), x2)
        if cfg.dac_range == "dynamic":
            # max |x| per row as max(max x, -min x): two vectorised reductions, no |x|
            # temporary (linalg.vector_norm(ord=inf) took 15-25x longer here)
            alpha = torch.maximum(x2.amax(dim=1, keepdim=True), x2.amin(dim=1, keepdim=True).neg_())
            alpha.clamp_(min=1e-30)
        else:
            alpha = torch.full((m, 1), float(cfg.dac_range), device=x2.device, dtype=x2.dtype)
        lv = levels_for_bits(cfg.dac_bits) if cfg.dac_bits else 1
        torch.mul(x2, alpha.reciprocal().mul_(lv), out=xs)
        if cfg.dac_range != "dynamic":
            xs.clamp_(-lv, lv)
        if cfg.dac_bits:
            xs.round_()
        in_unit = 1.0 / lv
        # ADC grid: tile outputs are held as ADC codes (units of `step`)
        if cfg.adc_bits:
            lo = levels_for_bits(cfg.adc_bits)
            step = (cfg.adc_bound / lo) if cfg.adc_bound > 0 else 1.0 / lo
        else:
            step = 1.0
        clip = cfg.adc_bound / step if cfg.adc_bound > 0 else 0.0
        n_tiles = math.ceil(k / cfg.rows)
        noisy = cfg.out_noise > 0 or cfg.read_noise > 0
        if n_tiles == 1:
            # one tile: its partial is the output; a fresh tensor saves copying it out
            single = x2.new_empty((m, n))
            parts = single.unsqueeze(0)
        else:
            parts = self._buf(key + "parts", (n_tiles, m, n), x2)  # one partial per tile
        if noisy:
            self._noise.fill_(parts)  # N(0, 1), drawn by two threads
        if cfg.read_noise > 0:
            # per-MVM read noise std per output: read_noise * sqrt(sum_j |W_ij| x_j^2) (normalised
            # units); its variance product runs in bfloat16 with float32 accumulation
            xsq = self._buf(key + "xsq", (m, k), x2.new_empty(0, dtype=torch.bfloat16))
            torch.mul(xs, xs, out=xsq)
            wabs = self._abs_weight(w)
        for t in range(n_tiles):
            k0, k1 = t * cfg.rows, min(k, (t + 1) * cfg.rows)
            xt, wt = xs[:, k0:k1], w[:, k0:k1]
            buf = parts[t]
            if cfg.read_noise > 0:
                std = torch.mm(xsq[:, k0:k1], wabs[:, k0:k1].t())  # (M, N) bf16
                std.mul_((cfg.read_noise * in_unit) ** 2).add_(cfg.out_noise**2).sqrt_()
                buf.mul_(std).addmm_(xt, wt.t(), beta=1.0 / step, alpha=in_unit / step)
            elif noisy:
                buf.addmm_(xt, wt.t(), beta=cfg.out_noise / step, alpha=in_unit / step)
            else:
                torch.mm(xt, wt.t(), out=buf)
                if in_unit != step:
                    buf.mul_(in_unit / step)
        if cfg.adc_bits:
            parts.round_()
        if clip > 0:
            parts.clamp_(-clip, clip)
        y = torch.sum(parts, dim=0) if n_tiles > 1 else single  # not a view: callers may edit
        y.mul_(alpha)
        if out_scale is not None:
            scale = out_scale * step if step != 1.0 else out_scale
            if bias is not None:
                return torch.addcmul(bias, y, scale, out=y)
            y.mul_(scale)
        elif step != 1.0:
            y.mul_(step)
        if bias is not None:
            y.add_(bias)
        return y

    def _abs_weight(self, w: Tensor) -> Tensor:
        """``|w|`` in bfloat16 for the read-noise variance, cached per state (0.5x weight bytes)."""
        cached = self._w_abs
        if (
            cached is None
            or cached.shape != w.shape
            or cached.device != w.device
            or self._w_abs_src is not w
        ):
            cached = w.abs().to(torch.bfloat16)
            self._w_abs = cached
            self._w_abs_src = w
        return cached


def layer_summary(layer: AnalogLayer) -> dict[str, Any]:
    """Facts about one analog layer for reports."""
    return {
        "name": layer.name,
        "kind": layer.kind,
        "in_features": layer.in_features,
        "out_features": layer.out_features,
        "device": layer.device_model.name,
        "tiles": layer.tiles_count(),
        "state_bytes": layer.state_bytes(),
    }
