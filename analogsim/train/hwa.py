"""Hardware-aware (HWA) training: the differentiable forward of an analog layer.

Installed as ``AnalogLayer.hwa`` (the layer calls it instead of its no-grad inference
path when it is in training mode with gradients on). Every analog-placed layer -
``nn.Linear``, GPT-2 ``Conv1D`` and ``nn.Conv2d`` - then sees, at every training step:

1. **A deployment condition** ``(t, T)``: a time since programming drawn log-uniformly
   from a grid between ``t_min_s`` and ``t_max_s`` (``times_per_decade`` points per decade)
   and a read temperature drawn uniformly from a grid between ``temperature_min_K`` and
   ``temperature_max_K``. The chip is taken as held at ``T`` since programming, so the
   device ages (drift age by the demarcation-energy law, held time for 1/f noise, fault
   age; :class:`~analogsim.devices.age.DeviceTime`) are those of
   ``AnalogModel.at(t, T)`` at inference (programmed at the card's reference temperature).
2. **The device model at (t_eq, T)**: programming noise, drift, accumulated read noise and
   conductance at temperature, from the layer's device card (engine ``surrogate`` or
   ``device``, below), and optionally stuck-at faults.
3. **Global (or per-column) drift compensation**, as the inference tile does it:
   ``c = readout(0) / readout(t)``, ``readout = mean |w|`` of the normalised weights,
   applied digitally after the ADC.
4. **The tile's IO**: 8-bit DAC on a per-row dynamic range, per-tile output noise and
   per-MVM read noise ``y_i += r sqrt(sum_j |W_ij| x_j^2) xi_i``, 8-bit ADC with bound,
   digital sum over tiles - the settings of the layer's :class:`TileConfig`, computed by
   the inference tile's own kernel :func:`analogsim.tiles.io.tile_mvm`.

The weights stay digital float masters. The forward uses the perturbed, quantized path;
the backward is a straight-through estimator (STE): the gradient flows to the masters as
if the device perturbation were additive, ``w_used = w + (w_device - w).detach()``, and as
if DAC and ADC were the identity (Bengio et al. 2013; Rasch et al., Nat. Commun. 14, 5282
(2023), hardware-aware training with noise injection, 8-bit IO and output noise)::

    dL/dx = (dL/dy * s) @ w_dev      (s = output scale: weight scale x compensation)
    dL/dW = dL/dy^T @ x              (W the float master, (out, in))

With a static DAC range (``dac_range`` a number) inputs clipped by the DAC get no
gradient; nothing else is masked (ADC saturation passes gradient straight through, as
aihwkit's ideal backward pass does).

Engines
-------
``device`` (exact): the layer's device model itself, a fresh device per draw;
``surrogate`` (default, fast): a Gaussian matched to the device's spread from tables
built once per card and grid point. Both, and what the surrogate approximates, are
described in :mod:`analogsim.train.device_stats`. The perturbation ``w_dev - w``
(normalised units) and the compensation factor are kept for ``resample_every`` steps and
added to the current masters in between.

Noise side
----------
With ``noise_side = "weight"`` one weight sample is drawn per layer and step and shared by
every row of the batch - one simulated chip per mini-batch, as aihwkit's weight modifiers
do ("called once per mini-batch"). With ``"output"`` (surrogate only, 2-D inputs of
independent samples, e.g. an MLP) the Gaussian weight noise is moved to the output, as
the house rule asks (no weight-sized noise tensor when a distribution-equivalent
output-side form exists): for one input vector ``x`` and independent weights
``w_ij ~ N(m_ij, s_ij^2)`` the output ``y_i = sum_j w_ij x_j`` is exactly
``N(sum_j m_ij x_j, sum_j s_ij^2 x_j^2)``, so the variance joins the per-MVM read-noise term
in the same extra product: ``var_i = out_noise^2 + u^2 sum_j (r^2 |m_ij| + s_ij^2) c_j^2``
(``c`` the DAC codes, ``u`` their unit). Each sample then sees its own chip; the expected
loss is the same (linearity of expectation), the gradient estimate has lower variance
(the local reparameterisation of Kingma, Salimans and Welling, NeurIPS 2015). Approximated
there: read noise uses ``|m_ij|`` instead of ``|w_ij|``, and ``dL/dx`` uses the mean
weights. ``"auto"`` picks ``output`` for 2-D inputs without faults, else ``weight``.
Sequences (GPT-2) and convolutions always use ``weight``: the same weights serve every
position, so per-position output noise would not be distribution-equivalent.

Speed
-----
A training step with the surrogate costs 1.2x (tiny-gpt2) to 1.4x (three 1024-wide layers)
a plain step (``analogsim.bench.training``). What makes it so: one device draw per
``resample_every`` steps; the surrogate tables built once; normals for output noise and
weight-side draws read from a reused pool (:class:`NoiseSource`; ``fresh_noise=True``
for fresh ones); the noise-variance product in bfloat16 for layers of at least
:data:`BF16_MIN_WEIGHTS` weights; the MVM forward in place without an autograd graph.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from analogsim.devices.age import DeploymentAge, DeviceTime
from analogsim.devices.model import DeviceModel
from analogsim.devices.rng import derive_seed
from analogsim.mapping.analog_model import AnalogModel
from analogsim.mapping.convert import DigitalQuantized
from analogsim.progress import progress_bar
from analogsim.tiles.config import TileConfig
from analogsim.tiles.embedding import AnalogEmbedding, analog_layers
from analogsim.tiles.io import IOPlan, drift_compensation, drift_readout, tile_mvm
from analogsim.tiles.kinds import conv2d_columns, forward_with, set_submodule, weight_matrix
from analogsim.tiles.layer import AnalogLayer
from analogsim.train.device_stats import (
    DeviceStats,
    Lookup,
    NoiseSource,
    RatioLookup,
    fault_free,
    fault_rates,
    sample_device,
    sample_faulty,
)
from analogsim.train.hwa_config import HWAConfig

BF16_MIN_WEIGHTS = 1 << 16
"""Layers with at least this many weights compute the output-noise variance product
``c^2 @ V^T`` in bfloat16 (float32 accumulation); smaller ones in float32."""


# ---------------------------------------------------------------------------- the MVM
class _AnalogMVM(torch.autograd.Function):
    """The tile's IO kernel (:func:`~analogsim.tiles.io.tile_mvm`, no graph, in place) with
    a straight-through backward.

    ``apply(x2 (M, K), w (N, K) float master view, bias (N,) | None, w_dev (N, K)
    normalised device weights, vmat (N, K) | None per-weight output-noise variance in DAC
    code units, out_scale (N,) digital output scale, plan, noise, out_step (N,) | None
    = plan.out_step(out_scale) precomputed)`` -> ``(M, N)``.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x2: Tensor,
        w: Tensor,
        bias: Tensor | None,
        w_dev: Tensor,
        vmat: Tensor | None,
        out_scale: Tensor,
        plan: IOPlan,
        noise: NoiseSource,
        out_step: Tensor | None = None,
    ) -> Tensor:
        with torch.no_grad():
            b = None if bias is None else bias.detach()
            y, clip_mask = tile_mvm(
                x2.detach(),
                w_dev,
                plan,
                normals=noise.fill_,
                var=vmat,
                out_scale=out_scale,
                out_step=out_step,
                bias=b,
                clip_mask=True,
            )  # (M, N), (M, K) | None
        ctx.save_for_backward(x2, w_dev, out_scale, clip_mask)
        ctx.has_bias = bias is not None
        return y

    @staticmethod
    def backward(ctx: Any, gy: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x2, w_dev, out_scale, clip_mask = ctx.saved_tensors
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = (gy * out_scale) @ w_dev  # (M, K): w_used = w_dev * out_scale
            if clip_mask is not None:
                gx.mul_(clip_mask)
        if ctx.needs_input_grad[1]:
            gw = gy.t() @ x2  # (N, K): dL/dW as if w_used = W + const
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum(0)
        return gx, gw, gb, None, None, None, None, None, None


# ---------------------------------------------------------------------------- context
@dataclass
class _LayerState:
    """What a layer keeps between perturbation draws (``resample_every`` steps).

    The forward weights of a step are ``w_dev = delta + W / scale`` (normalised), so the
    device perturbation drawn at ``drawn_at`` rides on the current masters.
    """

    drawn_at: int = -1
    inv_scale: Tensor | None = None  # (N, 1): 1 / weight scale at the draw
    delta: Tensor | None = None  # (N, K): w_dev - W/scale at the draw (None: ideal device)
    vmat: Tensor | None = None  # (N, K): per-weight output-noise variance, DAC code units
    out_scale: Tensor | None = None  # (N,): weight scale x drift compensation
    out_step: Tensor | None = None  # (N,): out_scale x ADC step (IOPlan.out_step)
    side: str = "weight"


class HWAContext:
    """The state of hardware-aware training for one model: deployment draws, tables, noise.

    Call :meth:`step` once per optimizer step (the training loop does) to draw a new
    deployment condition; every analog layer's hook reads it. All randomness comes from
    generators seeded from ``seed`` (same seed, same training).
    """

    def __init__(self, config: HWAConfig, seed: int = 0) -> None:
        self.config = config
        self.seed = int(seed)
        self.gen = torch.Generator().manual_seed(derive_seed(self.seed, "hwa-draws"))
        self._conditions = random.Random(derive_seed(self.seed, "hwa-conditions"))
        self.times = config.time_grid()
        self.temperatures = config.temperature_grid()
        self.step_count = -1
        self.time_s = self.times[-1]
        self.temperature_K = self.temperatures[0]
        self._stats: dict[int, DeviceStats] = {}
        self._lookups: dict[tuple[int, float, float], tuple[Lookup, Lookup, Lookup]] = {}
        self._layers: dict[str, _LayerState] = {}
        self._noise = NoiseSource(derive_seed(self.seed, "hwa-noise"), fresh=config.fresh_noise)
        self._engine_devices: dict[int, DeviceModel] = {}
        self.step()

    # ---------------------------------------------------------------- draws
    def step(self) -> tuple[float, float]:
        """Draw the deployment condition of the next training step: ``(t_s, T_K)``."""
        self.step_count += 1
        self.time_s = self.times[self._conditions.randrange(len(self.times))]
        self.temperature_K = self.temperatures[self._conditions.randrange(len(self.temperatures))]
        return self.time_s, self.temperature_K

    def set_condition(self, time_s: float, temperature_K: float) -> None:
        """Fix the deployment condition and force new draws (tests, studies); the next
        :meth:`step` draws at random again."""
        self.time_s, self.temperature_K = float(time_s), float(temperature_K)
        self.step_count += 1
        for st in self._layers.values():
            st.drawn_at = -1

    def equivalent_time(self, device: DeviceModel) -> DeviceTime:
        """Device ages of a chip held at T since programming (drift, held, fault)."""
        key = device.temperature.age_key
        return DeploymentAge.held(self.time_s, self.temperature_K, (key,)).device_time(key)

    def device_for_engine(self, device: DeviceModel) -> DeviceModel:
        """The card the ``device`` engine samples: as is, fault-free (``faults=False``) or
        with the configured stuck-at rates (cached per card)."""
        key = id(device)
        dev = self._engine_devices.get(key)
        if dev is None:
            cfg = self.config
            dev = device if cfg.faults else fault_free(device)
            over: dict[str, float] = {}
            if cfg.faults and cfg.stuck_at_gmin_rate is not None:
                over["faults.stuck_at_gmin_rate"] = cfg.stuck_at_gmin_rate
            if cfg.faults and cfg.stuck_at_gmax_rate is not None:
                over["faults.stuck_at_gmax_rate"] = cfg.stuck_at_gmax_rate
            if over:
                dev = dev.with_overrides(over)
            self._engine_devices[key] = dev
        return dev

    def stats(self, device: DeviceModel) -> DeviceStats:
        """The surrogate statistics of a card (built lazily, cached)."""
        s = self._stats.get(id(device))
        if s is None:
            s = DeviceStats(
                device, levels=self.config.levels, samples=self.config.table_samples, seed=self.seed
            )
            self._stats[id(device)] = s
        return s

    def lookups(self, device: DeviceModel) -> tuple[RatioLookup, Lookup, Lookup]:
        """Lookups at the current condition: weight stats (ratio, std, abs, abs at t=0),
        single-device stats ``(mean, std)`` at (t, T) and at (0, T_ref)."""
        t_eq = self.equivalent_time(device)
        key = (id(device), t_eq, self.temperature_K)
        lks = self._lookups.get(key)
        if lks is None:
            st = self.stats(device)
            now, ref = st.raw(t_eq, self.temperature_K), st.raw(0.0, None)
            weight = torch.cat((now[:, :3], ref[:, 2:3]), dim=1)
            lks = (
                RatioLookup(weight, st.grid),
                Lookup(now[:, 3:5].float()),
                Lookup(ref[:, 3:5].float()),
            )
            self._lookups[key] = lks
        return lks

    def prepare(self, devices: list[DeviceModel], *, progress: bool = False) -> None:
        """Build the surrogate tables of every grid point for ``devices`` now (else they are
        built on first use), so that training steps cost the same from the first one.

        This is the same statistics ``device show`` computes, one table per (device, age,
        temperature) of the grid: seconds to minutes; ``progress`` shows a bar (stderr)."""
        saved = (self.time_s, self.temperature_K)
        real = [dev for dev in devices if not dev.is_ideal]
        total = len(real) * len(self.temperatures) * len(self.times)
        with progress_bar("hwa device tables", total, progress and total > 0) as advance:
            for dev in real:
                for temp in self.temperatures:
                    for t in self.times:
                        self.time_s, self.temperature_K = t, temp
                        self.lookups(dev)
                        advance(1)
        self.time_s, self.temperature_K = saved

    def noise(self, name: str = "") -> NoiseSource:
        """The source of fresh per-forward noise (output and read noise), shared by layers."""
        return self._noise

    def layer_state(self, name: str) -> _LayerState:
        st = self._layers.get(name)
        if st is None:
            st = _LayerState()
            self._layers[name] = st
        return st

    # ---------------------------------------------------------------- faults
    def fault_rates(self, device: DeviceModel) -> tuple[float, float, float]:
        """Per-device fault probabilities at the current condition (:func:`fault_rates`),
        with the configured stuck-at overrides; zeros when ``faults`` is off."""
        cfg = self.config
        if not cfg.faults:
            return 0.0, 0.0, 0.0
        return fault_rates(
            device,
            self.equivalent_time(device),
            cfg.stuck_at_gmin_rate,
            cfg.stuck_at_gmax_rate,
        )


# ---------------------------------------------------------------------------- perturbations
def _compensation(tile: TileConfig, now: Tensor, ref: Tensor) -> Tensor | None:
    """Drift compensation ``(N,)`` from normalised device weights at (t, T) (``now``) and at
    t = 0 (``ref``), both ``(N, K)``, as the inference tile computes it (None when off)."""
    mode = tile.drift_compensation
    if mode == "none":
        return None
    return drift_compensation(drift_readout(ref, mode), drift_readout(now, mode), now.shape[0])


def draw(ctx: HWAContext, layer: AnalogLayer, name: str, side: str, plan: IOPlan) -> _LayerState:
    """Draw a device perturbation for ``layer`` at the context's (t, T) (module docstring)."""
    st = ctx.layer_state(name)
    cfg = ctx.config
    tile = layer.tile
    dev = layer.device_model
    w = layer.matrix().detach().contiguous()  # (N, K); Conv1D's matrix is a transposed view
    n, k = w.shape
    absw = w.abs()
    if tile.weight_scale == "column":
        scale = absw.amax(dim=1)
    else:
        scale = absw.amax().expand(n)
    scale = scale.clamp(min=torch.finfo(w.dtype).tiny)
    inv = scale.reciprocal().unsqueeze_(1)  # (N, 1)
    a = absw.mul_(inv)  # (N, K) normalised magnitudes in [0, 1]
    comp: Tensor | None = None
    var_w: Tensor | None = None
    if dev.is_ideal:
        w_dev = None
        side = "weight"
    elif cfg.engine == "device":
        seed = derive_seed(ctx.seed, "hwa-device", name, ctx.step_count)
        engine_dev = ctx.device_for_engine(dev)
        t_eq = ctx.equivalent_time(engine_dev)
        w_dev, w_0 = sample_device(engine_dev, w * inv, seed, t_eq, ctx.temperature_K)
        comp = _compensation(tile, w_dev, w_0)
        side = "weight"
    else:
        rates = ctx.fault_rates(dev)
        if any(r > 0 for r in rates):
            sign = torch.where(w >= 0, 1.0, -1.0)
            _, now, ref = ctx.lookups(dev)
            w_dev, w_0 = sample_faulty(dev, now, ref, a, sign, rates, ctx.gen)
            comp = _compensation(tile, w_dev, w_0)
            side = "weight"
        else:
            lk, _, _ = ctx.lookups(dev)
            w_n = torch.mul(w, inv)  # (N, K) normalised weights
            idx = lk.index(a.view(-1))  # (N*K,) nearest level
            q = lk(idx)  # (N*K, 2): m(a)/a, s(a)
            mean = q[:, 0].view(n, k).mul(w_n)
            std = q[:, 1].view(n, k)
            if tile.drift_compensation == "global":
                ro = lk.readouts(idx)  # (2,): sum E|w| at (t, T), at t = 0
                comp = drift_compensation(ro[1], ro[0].clamp(min=1e-12), n)
            elif tile.drift_compensation == "column":
                ro = lk.readouts(idx, rows=n)  # (N, 2)
                comp = drift_compensation(ro[:, 1], ro[:, 0].clamp(min=1e-12), n)
            if side == "output":
                w_dev, var_w = mean, std.square()
            else:
                w_dev = mean.addcmul_(std, ctx.noise().normal((n, k), w.device))
    gamma = cfg.noise_scale
    if gamma != 1.0 and w_dev is not None:
        w_n = w * inv
        w_dev = w_n.add_(w_dev.sub(w_n).mul_(gamma))  # w + gamma (w_dev - w)
        if var_w is not None:
            var_w.mul_(gamma * gamma)
    base = w_dev if w_dev is not None else w * inv
    vmat = None
    if plan.read2_u2 > 0:
        vmat = base.abs().mul_(plan.read2_u2)
    if var_w is not None:
        var_w.mul_(plan.in_unit**2)
        vmat = var_w if vmat is None else vmat.add_(var_w)
    if vmat is not None and vmat.numel() >= BF16_MIN_WEIGHTS and plan.io:
        vmat = vmat.to(torch.bfloat16)
    st.delta = None if w_dev is None else torch.addcmul(w_dev, w, inv, value=-1.0)
    st.inv_scale = inv
    st.vmat = vmat
    st.out_scale = scale if comp is None else scale * comp
    st.out_step = plan.out_step(st.out_scale)
    st.side = side
    st.drawn_at = ctx.step_count
    return st


# ---------------------------------------------------------------------------- the hook
class HWAForward:
    """The callable installed as ``layer.hwa``: ``(layer, x) -> y`` with the device model.

    One instance per layer (it knows the layer's name for seeds and caches).
    """

    def __init__(self, ctx: HWAContext, name: str) -> None:
        self.ctx = ctx
        self.name = name
        self._plan: IOPlan | None = None
        self._faulty: dict[int, bool] = {}

    def plan(self, layer: AnalogLayer) -> IOPlan:
        if self._plan is None:
            self._plan = IOPlan.of(layer.tile, self.ctx.config.io)
        return self._plan

    def side(self, layer: AnalogLayer, x2d: bool) -> str:
        """``"output"`` or ``"weight"`` for this layer and input (module docstring)."""
        cfg = self.ctx.config
        if cfg.engine == "device" or cfg.noise_side == "weight" or not x2d:
            return "weight"
        if cfg.noise_side == "output":
            return "output"
        dev = layer.device_model
        faulty = self._faulty.get(id(dev))
        if faulty is None:
            f = dev.faults
            faulty = cfg.faults and (
                f.static
                or f.dynamic
                or bool(cfg.stuck_at_gmin_rate)
                or bool(cfg.stuck_at_gmax_rate)
            )
            self._faulty[id(dev)] = faulty
        return "weight" if faulty else "output"

    def prepare(self, layer: AnalogLayer, x2d: bool) -> tuple[Tensor, Tensor | None, Tensor]:
        """``(w_dev, vmat, out_scale)`` of this step: normalised device weights ``(N, K)``,
        per-weight output-noise variance ``(N, K)`` (or None) and output scale ``(N,)``."""
        ctx = self.ctx
        plan = self.plan(layer)
        side = self.side(layer, x2d)
        st = ctx.layer_state(self.name)
        if (
            st.drawn_at < 0
            or ctx.step_count - st.drawn_at >= ctx.config.resample_every
            or st.side != side
        ):
            st = draw(ctx, layer, self.name, side, plan)
        w = layer.matrix().detach()
        assert st.inv_scale is not None and st.out_scale is not None
        if st.delta is None:
            w_dev = w * st.inv_scale
        else:
            w_dev = torch.addcmul(st.delta, w, st.inv_scale)
        return w_dev, st.vmat, st.out_scale

    def __call__(self, layer: AnalogLayer, x: Tensor) -> Tensor:
        if layer.kind == "conv2d":
            return self._conv2d(layer, x)
        lead = x.shape[:-1]
        x2 = x.reshape(-1, layer.in_features)
        w_dev, vmat, out_scale = self.prepare(layer, x.dim() == 2)
        y = _AnalogMVM.apply(
            x2,
            layer.matrix(),
            layer.bias,
            w_dev,
            vmat,
            out_scale,
            self.plan(layer),
            self.ctx.noise(self.name),
            self.ctx.layer_state(self.name).out_step,
        )
        return y.view(*lead, layer.out_features)

    def _conv2d(self, layer: AnalogLayer, x: Tensor) -> Tensor:
        conv: nn.Conv2d = layer.digital
        cols, unflatten = conv2d_columns(conv, x)
        w_dev, vmat, out_scale = self.prepare(layer, False)
        mat = layer.matrix()  # (N, K), K = C/groups * kh * kw
        g = layer.groups
        kg, og = layer.in_features, layer.out_features // g
        outs = []
        for gi in range(g):
            xg = cols[:, gi * kg : (gi + 1) * kg]
            r = slice(gi * og, (gi + 1) * og)
            outs.append(
                _AnalogMVM.apply(
                    xg.contiguous() if g > 1 else xg,
                    mat[r],
                    None if conv.bias is None else conv.bias[r],
                    w_dev[r],
                    None if vmat is None else vmat[r],
                    out_scale[r],
                    self.plan(layer),
                    self.ctx.noise(f"{self.name}/g{gi}"),
                )
            )
        y = outs[0] if g == 1 else torch.cat(outs, dim=1)
        return unflatten(y)


# ---------------------------------------------------------------------------- QAT for digital
class QATLayer(nn.Module):
    """A digital int-quantized layer trained with a straight-through quantizer.

    ``w_used = w + (q(w) - w).detach()``: the forward sees the quantized weights (as the
    deployed ``DigitalQuantized`` layer does), the gradient reaches the float master.
    Holds the original module as ``.digital``.
    """

    def __init__(self, module: nn.Module, quantizer: Any, name: str = "") -> None:
        super().__init__()
        self.digital = module
        self.quantizer = quantizer
        self.name = name

    def forward(self, x: Tensor) -> Tensor:
        w = weight_matrix(self.digital)
        q = self.quantizer(w.detach())
        return forward_with(self.digital, x, w + (q - w.detach()))


class HWAEmbedding(nn.Module):
    """An analog-placed embedding table in training: lookups read perturbed weights (STE).

    Only the device perturbation applies (a lookup is a read, not an MVM: no DAC/ADC).
    """

    def __init__(self, module: nn.Embedding, device: DeviceModel, ctx: HWAContext, name: str):
        super().__init__()
        self.digital = module
        self.ctx = ctx
        self.name = name
        tile = TileConfig.ideal(drift_compensation="global")
        shim = nn.Linear(module.embedding_dim, module.num_embeddings, bias=False)
        shim.weight = module.weight
        self._shim = AnalogLayer(shim, device, tile, name)
        self._shim.inner = True
        self._fwd = HWAForward(ctx, name)

    def forward(self, ids: Tensor) -> Tensor:
        if not (self.training and torch.is_grad_enabled()):
            return self.digital(ids)
        w_dev, _, out_scale = self._fwd.prepare(self._shim, False)
        w = self.digital.weight
        used = w + (w_dev * out_scale[:, None] - w.detach())
        return forward_with(self.digital, ids, used)


# ---------------------------------------------------------------------------- install
def model_root(model: nn.Module) -> nn.Module:
    """The torch model inside an :class:`~analogsim.mapping.analog_model.AnalogModel`, or
    ``model`` itself. (Not ``getattr(model, "model", model)``: a Hugging Face LLaMA's
    ``.model`` is its decoder stack, without ``lm_head``.)"""
    return model.model if isinstance(model, AnalogModel) else model


def install_hwa(
    model: nn.Module, config: HWAConfig | None = None, seed: int = 0, *, progress: bool = False
) -> HWAContext:
    """Make a converted model hardware-aware for training, in place; return the context.

    * every :class:`AnalogLayer` gets ``layer.hwa = HWAForward(ctx, name)``;
    * every analog embedding becomes an :class:`HWAEmbedding`;
    * every digital int-quantized layer (``DigitalQuantized``) becomes a :class:`QATLayer`.

    ``model`` is the ``.model`` of an :class:`~analogsim.mapping.analog_model.AnalogModel` (or
    the AnalogModel itself). :func:`unwrap` gives the trained digital model back.
    """
    root = model_root(model)
    ctx = HWAContext(config or HWAConfig(), seed)
    for name, mod in list(root.named_modules()):
        if isinstance(mod, AnalogEmbedding):
            set_submodule(root, name, HWAEmbedding(mod.digital, mod.device_model, ctx, name))
        elif isinstance(mod, DigitalQuantized):
            set_submodule(root, name, QATLayer(mod.digital, mod.quantizer, name))
    layers = list(analog_layers(root, embeddings=False))
    for name, layer in layers:
        layer.hwa = HWAForward(ctx, name)
    if ctx.config.engine == "surrogate":
        devices = {id(la.device_model): la.device_model for _, la in layers}
        for mod in root.modules():
            if isinstance(mod, HWAEmbedding):
                devices[id(mod._shim.device_model)] = mod._shim.device_model
        ctx.prepare(list(devices.values()), progress=progress)
    return ctx


WRAPPERS: tuple[type, ...] = (QATLayer, HWAEmbedding)


def unwrap(model: nn.Module) -> nn.Module:
    """Put every wrapped layer's ``.digital`` module back in place; return the digital model.

    Works on anything :func:`~analogsim.mapping.convert.convert` or the training wrappers
    produced (AnalogLayer, AnalogEmbedding, DigitalQuantized, QATLayer, HWAEmbedding, the
    learned-noise layers); the parameters are the trained masters, not copies.
    """
    root = model_root(model)
    kinds = (AnalogLayer, AnalogEmbedding, DigitalQuantized, *WRAPPERS)
    changed = True
    while changed:
        changed = False
        for name, mod in list(root.named_modules()):
            if name and isinstance(mod, kinds) and not getattr(mod, "inner", False):
                set_submodule(root, name, mod.digital)
                changed = True
                break
    return root


@torch.no_grad()
def clip_weights(model: nn.Module, clip_sigma: float) -> None:
    """Clip each analog layer's master weights to ``+-clip_sigma * std(W)`` (in place)."""
    for _, layer in analog_layers(model_root(model), embeddings=False):
        w = layer.digital.weight
        bound = clip_sigma * float(w.std())
        if bound > 0:
            w.clamp_(-bound, bound)


__all__ = [
    "HWAConfig",
    "HWAContext",
    "HWAEmbedding",
    "HWAForward",
    "QATLayer",
    "clip_weights",
    "install_hwa",
    "model_root",
    "unwrap",
]
