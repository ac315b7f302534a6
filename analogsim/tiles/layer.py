"""An analog layer: a torch weight layer mapped onto crossbar tiles of a device.

:class:`AnalogLayer` wraps an ``nn.Linear``, a GPT-2 ``Conv1D`` (weight stored
transposed) or an ``nn.Conv2d`` *in place of* the original module, which it keeps
untouched as ``.digital`` (so restoring gives the original weights bit for bit).

State, time and memory
----------------------
``program(seed)`` fixes the layer's device seed; every per-device random quantity is
regenerated from it in one pass per state (counter-based draws inside one fused kernel:
:mod:`analogsim.devices.state`), so the only
weight-sized tensor the layer keeps is ``w_eff``, the effective weights at the current
(equivalent time, temperature): extra memory = 1x the weight bytes. ``set_state(t, T)``
recomputes ``w_eff`` from the programmed state; the answer never depends on earlier calls.

Forward
-------
* every tile non-ideality off: the digital forward on ``w_eff`` (``F.linear`` /
  ``F.conv2d``) with compensation and scales folded into ``w_eff`` (the digital cost);
* otherwise the tile's IO kernel :func:`analogsim.tiles.io.tile_mvm` (DAC, per-tile MVM
  with output noise and per-MVM read noise folded into one Gaussian per output, ADC, digital
  sum over tiles, output scale), with this layer's per-state forward noise stream, a cached
  bfloat16 ``|w_eff|`` for the read-noise variance, and scratch buffers shared by all layers
  of a thread (:func:`shared_workspace_bytes`).
"""

from __future__ import annotations

import math
import threading
from typing import Any

import torch
from torch import Tensor, nn

from analogsim.devices.age import DeviceTime, as_device_time
from analogsim.devices.model import DeviceModel
from analogsim.devices.rng import NoiseStream, derive_seed
from analogsim.tiles.config import TileConfig
from analogsim.tiles.io import IOPlan, drift_compensation, drift_readout, tile_mvm
from analogsim.tiles.kinds import (
    MVM_KINDS,
    conv2d_columns,
    forward_with,
    module_kind,
    weight_matrix,
)


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
        if kind not in MVM_KINDS:
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
        self.device_time: DeviceTime = DeviceTime.same(0.0)
        self.temperature_K: float | None = None
        self.t_prog_K: float | None = None
        self.register_buffer("w_eff", None, persistent=False)
        self.register_buffer("out_mult", None, persistent=False)
        self.register_buffer("_ref_readout", None, persistent=False)
        self.register_buffer("_w_scale", None, persistent=False)
        self._noise = NoiseStream(0)
        self._w_abs: Tensor | None = None
        self._w_abs_src: Tensor | None = None
        self.time_cache = False
        self._comp: Tensor | None = None
        self.frozen_compensation = False
        # Training hook: a callable (layer, x) -> y used instead of the inference forward
        # when the module is in training mode with gradients on (noise-aware training).
        self.hwa: Any = None
        # True when a wrapper holds this layer as part of itself (an embedding table's
        # shim): then it is not a layer of its own (see tiles.embedding.analog_layers)
        self.inner = False
        self._plan: IOPlan | None = None
        self._plan_tile: TileConfig | None = None

    # ------------------------------------------------------------------ info
    @property
    def bias(self) -> Tensor | None:
        return self.digital.bias

    @property
    def weight(self) -> Tensor:
        """The digital layer's weight, for Hugging Face code that reads it (T5's
        feed-forward checks ``self.wo.weight.dtype``); the analog forward never uses it."""
        return self.digital.weight

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
    def program(self, seed: int, temperature_K: float | None = None) -> AnalogLayer:
        """Fix the device seed (sampling all per-device quantities) and go to t = 0, read at
        the programming temperature ``temperature_K`` (the targets are verified there;
        ``None``: the card's ``t_ref_K``)."""
        self.seed = int(seed)
        self.t_prog_K = None if temperature_K is None else float(temperature_K)
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
    def effective_normalized(
        self, time_s: float | DeviceTime, temperature_K: float | None
    ) -> Tensor:
        """Normalised effective weights ``(G+ - G-)/(g_max - g_min)`` at (t, T), fresh tensor:
        one pass over the weights that regenerates every device from the seed
        (:meth:`DeviceModel.pair_state <analogsim.devices.model.DeviceModel.pair_state>`)."""
        if self.seed is None:
            raise RuntimeError(f"{self.name}: call program(seed) before reading device state")
        w_norm = self.normalized_target()
        dev = self.device_model
        if dev.is_ideal:
            return w_norm
        return dev.pair_state(w_norm, self.seed, time_s, temperature_K, t_prog_K=self.t_prog_K)

    # ------------------------------------------------------------------ time cache
    def enable_time_cache(self, enabled: bool = True) -> None:
        """Accepted for callers of the earlier cached update path; nothing is cached now.

        A state update is one pass that regenerates every device from the seed (no
        per-device tensor is kept), which is what the cache used to buy, without its memory.
        """
        self.time_cache = bool(enabled)

    def time_cache_bytes(self) -> int:
        """Bytes the time cache holds: always 0 (see :meth:`enable_time_cache`)."""
        return 0

    @torch.no_grad()
    def set_state(self, time_s: float | DeviceTime, temperature_K: float | None) -> None:
        """Recompute ``w_eff`` at the device ages ``time_s`` (a
        :class:`~analogsim.devices.age.DeviceTime`, or one float for all three) and read
        temperature ``temperature_K`` (``None``: the programming temperature)."""
        w = self.effective_normalized(time_s, temperature_K)
        tt = as_device_time(time_s)
        self.device_time = tt
        self.time_s = float(tt.drift_s)
        self.temperature_K = temperature_K
        # fresh per-forward noise restarts from (seed, t, T): a measurement at a state does
        # not depend on which states were read before it (resumable runs are bit-exact)
        same = tt.drift_s == tt.noise_s == tt.fault_s
        t_key = repr(float(tt.drift_s)) if same else repr(tt)
        self._noise.reseed(derive_seed(self.seed, "forward", t_key, repr(temperature_K)))
        comp = self._compensation(w)
        mult = self._w_scale if comp is None else self._w_scale * comp
        if self.tile.io_enabled:
            self.w_eff = w
            self.out_mult = mult
        else:
            self.w_eff = w.mul_(mult[:, None])
            self.out_mult = None

    def _compensation(self, w: Tensor) -> Tensor | None:
        """The drift-compensation factor ``(N,)`` at the state ``w`` (None when off); the
        reference readout is the one at the first state after :meth:`program` (t = 0)."""
        mode = self.tile.drift_compensation
        if mode == "none":
            return None
        readout = drift_readout(w, mode)  # (1,) or (N,)
        if self._ref_readout is None:
            self._ref_readout = readout.clone()
        if self.frozen_compensation and self._comp is not None:
            return self._comp
        comp = drift_compensation(self._ref_readout, readout, self.out_features).clone()  # (N,)
        self._comp = comp
        return comp

    def recalibrate(self) -> None:
        """Recompute the drift-compensation factor now (when it is frozen between calibrations)."""
        frozen = self.frozen_compensation
        self.frozen_compensation = False
        self.set_state(self.device_time, self.temperature_K)
        self.frozen_compensation = frozen

    # ------------------------------------------------------------------ forward
    @property
    def io_plan(self) -> IOPlan:
        """The IO constants of :attr:`tile` (computed once per tile config)."""
        plan = self._plan
        if plan is None or self._plan_tile is not self.tile:
            plan = self._plan = IOPlan.of(self.tile)
            self._plan_tile = self.tile
        return plan

    def forward(self, x: Tensor) -> Tensor:
        if self.hwa is not None and self.training and torch.is_grad_enabled():
            return self.hwa(self, x)
        if self.w_eff is None:
            raise RuntimeError(
                f"analog layer '{self.name}' is not programmed: call program(seed) first"
            )
        if not self.tile.io_enabled:
            # compensation and scales are folded into w_eff: the digital layer's cost
            return forward_with(self.digital, x, self.w_eff)
        if self.kind == "conv2d":
            return self._forward_conv2d(x)
        lead = x.shape[:-1]
        y = self.mvm(
            x.reshape(-1, self.in_features), self.w_eff, out_scale=self.out_mult, bias=self.bias
        )  # (M, N)
        return y.view(*lead, self.out_features)

    def _forward_conv2d(self, x: Tensor) -> Tensor:
        conv: nn.Conv2d = self.digital
        cols, unflatten = conv2d_columns(conv, x)  # (B*L, C*kh*kw)
        g = self.groups
        kg, og = self.in_features, self.out_features // g
        outs = []
        for gi in range(g):
            xg = cols[:, gi * kg : (gi + 1) * kg]  # (B*L, K)
            wg = self.w_eff[gi * og : (gi + 1) * og]  # (N/g, K)
            outs.append(self.mvm(xg.contiguous() if g > 1 else xg, wg, key=f"g{gi}"))
        y = outs[0] if g == 1 else torch.cat(outs, dim=1)  # (B*L, N)
        y.mul_(self.out_mult)
        if conv.bias is not None:
            y.add_(conv.bias)
        return unflatten(y)  # (B, N, H_out, W_out)

    def mvm(
        self,
        x2: Tensor,
        w: Tensor,
        key: str = "",
        out_scale: Tensor | None = None,
        bias: Tensor | None = None,
    ) -> Tensor:
        """Tiled analog MVM of ``x2 (M, K)`` with normalised weights ``w (N, K)``: the IO
        kernel :func:`~analogsim.tiles.io.tile_mvm` with this layer's tile, forward noise and
        cached ``|w|``. Returns a fresh ``(M, N)`` tensor in weight units, times
        ``out_scale`` (per output) and plus ``bias`` if given. Scratch buffers are shared by
        all layers of the thread (see :func:`shared_workspace_bytes`).
        """
        plan = self.io_plan
        y, _ = tile_mvm(
            x2,
            w,
            plan,
            normals=self._noise.fill_,
            var=self._abs_weight(w) if self.tile.read_noise > 0 else None,
            var_scale=plan.read2_u2,
            out_scale=out_scale,
            bias=bias,
            buffer=_WORKSPACE.get,
            key=key,
        )
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
