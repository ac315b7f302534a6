"""Hardware-aware (HWA) training: the differentiable forward of an analog layer.

Installed as ``AnalogLayer.hwa`` (the layer calls it instead of its no-grad inference
path when it is in training mode with gradients on). Every analog-placed layer -
``nn.Linear``, GPT-2 ``Conv1D`` and ``nn.Conv2d`` - then sees, at every training step:

1. **A deployment condition** ``(t, T)``: a time since programming drawn log-uniformly
   from a grid between ``t_min_s`` and ``t_max_s`` (``times_per_decade`` points per decade)
   and a read temperature drawn uniformly from a grid between ``temperature_min_K`` and
   ``temperature_max_K``. The chip is taken as held at ``T`` since programming, so the
   device age is the equivalent time ``t_eq = t A(T)`` (Arrhenius, the card's drift
   activation energy), exactly as ``AnalogModel.at(t, T)`` does at inference.
2. **The device model at (t_eq, T)**: programming noise, drift, accumulated read noise and
   conductance at temperature, from the layer's device card (engine ``surrogate`` or
   ``device``, below), and optionally stuck-at faults.
3. **Global (or per-column) drift compensation**, as the inference tile does it:
   ``c = readout(0) / readout(t)``, ``readout = mean |w|`` of the normalised weights,
   applied digitally after the ADC.
4. **The tile's IO**: 8-bit DAC on a per-row dynamic range, per-tile output noise and
   per-MVM read noise ``y_i += r sqrt(sum_j |W_ij| x_j^2) xi_i``, 8-bit ADC with bound,
   digital sum over tiles - the settings of the layer's :class:`TileConfig`.

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
``device`` (exact): the layer's device model itself regenerates every per-device quantity
(``DeviceModel.conductances`` on the current targets, a fresh device seed per draw),
including faults and their correlations; the perturbation ``w_dev - w`` (normalised
units) and the compensation factor are kept for ``resample_every`` steps and added to the
current masters in between. Exact statistics, but regenerating a device costs about
twenty Gaussian draws per device (the log-time Brownian read noise), far more than a
small layer's training step.

``surrogate`` (default, fast): a Gaussian matched to the device's spread. For each device
card and each grid point ``(t, T)`` a table is built once by sampling the full device
model: for ``L`` normalised weight magnitudes ``a_k = (k/(L-1))^2`` (denser near 0, where
the statistics change fastest), ``S`` weights each, the mean ``m(a)``, standard deviation
``s(a)`` and mean absolute value of ``w_dev = (G+ - G-)/(g_max - g_min)``, and the same for
a single device (for faults). A weight (normalised ``w_n``, ``a = |w_n|``) is then drawn as
``w_n r(a_k) + s(a_k) xi`` with ``r = m/a`` at the nearest level ``k``
(:class:`RatioLookup`). What is approximated: the shape of the distribution (Gaussian with
the exact mean and variance; the true one is skewed where conductances clip at 0), the
correlation between a device's states over time (each draw is a fresh chip) and between
the two devices of a pair (their difference is matched), and the statistics between
table levels (nearest level; ``r`` and ``s`` vary slowly with ``a``). Faults are not
approximated: they are drawn per device from the card's rates (plus onsets by ``t_eq``)
as a mixture.

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

import math
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from analogsim.devices.age import DeploymentAge
from analogsim.devices.model import DeviceModel
from analogsim.devices.physics import levels_for_bits
from analogsim.devices.rng import CHUNK, NoiseStream, derive_seed
from analogsim.errors import ConfigError
from analogsim.tiles.config import TileConfig
from analogsim.tiles.layer import AnalogLayer, conv2d_columns

YEAR_S = 365.25 * 86400.0
BF16_MIN_WEIGHTS = 1 << 16
"""Layers with at least this many weights compute the output-noise variance product
``c^2 @ V^T`` in bfloat16 (float32 accumulation); smaller ones in float32."""
ENGINES = ("surrogate", "device")
NOISE_SIDES = ("auto", "weight", "output")


# ---------------------------------------------------------------------------- config
@dataclass(frozen=True)
class HWAConfig:
    """Settings of hardware-aware training (see the module docstring for the model).

    Attributes:
        t_min_s, t_max_s: range of deployment times since programming, seconds
            (default 1 s .. 1 year), drawn log-uniformly from a grid.
        times_per_decade: grid points per decade of time.
        temperature_min_K, temperature_max_K: range of read temperatures (the chip is held
            at T since programming); drawn uniformly from a grid.
        temperature_step_K: spacing of the temperature grid.
        engine: ``"surrogate"`` (Gaussian matched to the device's spread) or
            ``"device"`` (the full device model).
        resample_every: draw a new device perturbation every k steps per layer (between
            draws the perturbation ``w_dev - w`` is reused on the current masters).
        noise_side: ``"auto"``, ``"weight"`` or ``"output"`` (module docstring).
        io: apply the tile's DAC, ADC, output noise and read noise (else only the device).
        faults: apply the card's stuck-at faults, outliers and fault onsets.
        stuck_at_gmin_rate, stuck_at_gmax_rate: override the card's static rates
            (per device) during training; ``None`` keeps the card's.
        levels, table_samples: surrogate table size (weight levels, weights per level).
        clip_sigma: after every optimizer step clip each analog layer's weights to
            ``+-clip_sigma * std(W)`` (aihwkit ``WeightClipType.LAYER_GAUSSIAN``); ``None``
            disables. Applied by the training loop.
        fresh_noise: draw every output/read-noise sample fresh (exact, slower) instead of
            from a reused pool (:class:`NoiseSource`).
        noise_scale: multiply the device perturbation ``w_dev - w`` (and the output-side
            weight-noise std) by this factor during training (1 = the device as it is; > 1
            trains for a noisier chip than the card's).
    """

    t_min_s: float = 1.0
    t_max_s: float = YEAR_S
    times_per_decade: int = 4
    temperature_min_K: float = 300.0
    temperature_max_K: float = 360.0
    temperature_step_K: float = 10.0
    engine: str = "surrogate"
    resample_every: int = 4
    noise_side: str = "auto"
    io: bool = True
    faults: bool = True
    stuck_at_gmin_rate: float | None = None
    stuck_at_gmax_rate: float | None = None
    levels: int = 33
    table_samples: int = 1024
    clip_sigma: float | None = None
    fresh_noise: bool = False
    noise_scale: float = 1.0

    def __post_init__(self) -> None:
        def bad(key: str, allowed: str) -> ConfigError:
            return ConfigError(
                "invalid hardware-aware training setting",
                key=f"hwa.{key}",
                value=getattr(self, key),
                allowed=allowed,
            )

        if not (0.0 <= self.t_min_s <= self.t_max_s and math.isfinite(self.t_max_s)):
            raise bad("t_min_s", "0 <= t_min_s <= t_max_s, finite")
        if self.times_per_decade < 1:
            raise bad("times_per_decade", ">= 1")
        if not (0.0 < self.temperature_min_K <= self.temperature_max_K < 1000.0):
            raise bad("temperature_min_K", "0 < min <= max < 1000 K")
        if self.temperature_step_K <= 0:
            raise bad("temperature_step_K", "> 0")
        if self.engine not in ENGINES:
            raise bad("engine", ", ".join(ENGINES))
        if self.noise_side not in NOISE_SIDES:
            raise bad("noise_side", ", ".join(NOISE_SIDES))
        if self.resample_every < 1:
            raise bad("resample_every", ">= 1")
        if self.levels < 3 or self.table_samples < 16:
            raise bad("levels", "levels >= 3 and table_samples >= 16")
        for key in ("stuck_at_gmin_rate", "stuck_at_gmax_rate"):
            v = getattr(self, key)
            if v is not None and not 0.0 <= v <= 1.0:
                raise bad(key, "a fraction in [0, 1] or None")
        if self.clip_sigma is not None and self.clip_sigma <= 0:
            raise bad("clip_sigma", "> 0 or None")
        if not (self.noise_scale >= 0 and math.isfinite(self.noise_scale)):
            raise bad("noise_scale", ">= 0")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> HWAConfig:
        valid = {f.name for f in fields(self)}
        for k in changes:
            if k not in valid:
                raise ConfigError("unknown hwa setting", key=k, allowed=", ".join(sorted(valid)))
        return HWAConfig(**{**asdict(self), **changes})

    # ---------------------------------------------------------------- grids
    def time_grid(self) -> list[float]:
        """Deployment times (s): ``times_per_decade`` log-spaced points per decade, both ends."""
        lo = max(self.t_min_s, 1e-9)
        hi = max(self.t_max_s, lo)
        if hi == lo:
            return [self.t_max_s]
        n = max(2, math.ceil(math.log10(hi / lo) * self.times_per_decade) + 1)
        return [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]

    def temperature_grid(self) -> list[float]:
        """Read temperatures (K) from min to max in steps of ``temperature_step_K``."""
        lo, hi = self.temperature_min_K, self.temperature_max_K
        n = max(1, math.floor((hi - lo) / self.temperature_step_K + 1e-9) + 1)
        grid = [lo + i * self.temperature_step_K for i in range(n)]
        if hi - grid[-1] > 1e-9:
            grid.append(hi)
        return grid


# ---------------------------------------------------------------------------- surrogate
def _fault_free(device: DeviceModel) -> DeviceModel:
    f = device.faults
    if not (f.static or f.dynamic):
        return device
    return device.with_overrides(
        {
            "faults.stuck_at_gmin_rate": 0.0,
            "faults.stuck_at_gmax_rate": 0.0,
            "faults.outlier_rate": 0.0,
            "faults.onset_gmin_per_s": 0.0,
            "faults.onset_gmax_per_s": 0.0,
            "faults.onset_outlier_per_s": 0.0,
        }
    )


class DeviceStats:
    r"""Statistics of a device card's normalised weights at (t_eq, T), by weight magnitude.

    For normalised magnitudes ``a_k = (k/(L-1))^2``, ``k = 0..L-1``, the table holds, over
    ``S`` sampled weights ``w = +a_k`` (G+ at level ``a_k``, G- at level 0) of the
    fault-free device:

    * ``mean``  :math:`E[w_{dev}]`, ``std`` :math:`\sqrt{Var[w_{dev}]}`,
      ``abs`` :math:`E|w_{dev}|` with :math:`w_{dev} = (G^+ - G^-)/(g_{max} - g_{min})`;
    * ``dev_mean``, ``dev_std``: mean and std of a single device ``G+/(g_max - g_min)``.

    Draws use the seed ``derive_seed(seed, "hwa-table")`` for every grid point (common
    random numbers: tables at neighbouring (t, T) differ by the physics, not the draws).
    Tables are computed on first use and cached.
    """

    def __init__(
        self, device: DeviceModel, *, levels: int = 65, samples: int = 1024, seed: int = 0
    ) -> None:
        self.device = device
        self.clean = _fault_free(device)
        self.levels = int(levels)
        self.samples = int(samples)
        self.seed = derive_seed(seed, "hwa-table", device.name)
        k = torch.arange(self.levels, dtype=torch.float64)
        self.grid = (k / (self.levels - 1)) ** 2  # (L,)
        self._cache: dict[tuple[float, float | None], Tensor] = {}

    def raw(self, t_eq: float, temperature_K: float | None) -> Tensor:
        """``(L, 5)`` float64: mean, std, abs, dev_mean, dev_std at (t_eq, T)."""
        key = (float(t_eq), None if temperature_K is None else float(temperature_K))
        tab = self._cache.get(key)
        if tab is not None:
            return tab
        dev = self.clean
        span = dev.g_max - dev.g_min
        w = self.grid.float().repeat_interleave(self.samples)  # (L*S,)
        g = dev.conductances(dev.targets(w), self.seed, t_eq, temperature_K).double()  # (2, L*S)
        wd = ((g[0] - g[1]) / span).view(self.levels, self.samples)  # (L, S)
        gp = (g[0] / span).view(self.levels, self.samples)
        tab = torch.stack(
            (wd.mean(1), wd.std(1), wd.abs().mean(1), gp.mean(1), gp.std(1)), dim=1
        )  # (L, 5)
        self._cache[key] = tab
        return tab


def _on_device(cache: dict[torch.device, Tensor], table: Tensor, device: torch.device) -> Tensor:
    """``table`` on ``device`` (a copy made once per device and kept in ``cache``)."""
    if table.device == device:
        return table
    t = cache.get(device)
    if t is None:
        t = cache[device] = table.to(device)
    return t


class Lookup:
    """Piecewise-linear lookup of table columns at normalised magnitudes ``a`` in [0, 1].

    The levels are ``a_k = (k/(L-1))^2``, so ``pos = sqrt(a) (L-1)``, ``k = floor(pos)``,
    ``f = pos - k`` and ``value = T[k] + (T[k+1] - T[k]) f``. Base and slope are packed in
    one ``(L, 2C)`` table so that one ``index_select`` fetches both.
    """

    def __init__(self, table: Tensor) -> None:
        self.levels, self.cols = int(table.shape[0]), int(table.shape[1])
        slope = torch.zeros_like(table)
        slope[:-1] = table[1:] - table[:-1]
        self.packed = torch.cat((table, slope), dim=1).contiguous()  # (L, 2C)
        self._on: dict[torch.device, Tensor] = {}

    def __call__(self, a: Tensor) -> Tensor:
        """``(n, C)`` interpolated columns at ``a`` of shape ``(n,)``."""
        pos = a.sqrt().mul_(self.levels - 1)
        idx = pos.to(torch.long).clamp_(max=self.levels - 2)
        frac = pos.sub_(idx).unsqueeze_(1)  # (n, 1)
        g = _on_device(self._on, self.packed, a.device).index_select(0, idx)  # (n, 2C)
        return torch.addcmul(g[:, : self.cols], g[:, self.cols :], frac)


class RatioLookup:
    """Nearest-level lookup of the weight statistics used at every draw (cheap).

    Per weight: ``r(a) = m(a)/a`` (so the mean weight is ``w r(a)``, sign included, with no
    rounding of ``w`` itself) and ``s(a)``; the level is ``k = round(sqrt(a) (L-1))``. The
    ratio ``r`` varies slowly with ``a`` (drift and clipping factors), so taking the nearest
    level changes the mean by at most ``a |r(a_k) - r(a)|``, far below the device spread
    ``s(a)`` at every level. The drift-compensation readouts ``sum_j E|w_dev|`` at (t, T)
    and at t = 0 only need the number of weights per level: ``counts @ abs_table``.
    """

    def __init__(self, weight_table: Tensor, grid: Tensor) -> None:
        tab = weight_table.clone().double()  # (L, 4): mean, std, abs_t, abs_0
        ratio = torch.zeros_like(tab[:, 0])
        ratio[1:] = tab[1:, 0] / grid[1:]
        ratio[0] = ratio[1]
        self.levels = int(tab.shape[0])
        self.ratio_std = torch.stack((ratio, tab[:, 1]), dim=1).float().contiguous()  # (L, 2)
        self.abs_table = tab[:, 2:4].float().contiguous()  # (L, 2)
        self._ratio_on: dict[torch.device, Tensor] = {}
        self._abs_on: dict[torch.device, Tensor] = {}

    def index(self, a: Tensor) -> Tensor:
        """Nearest level of each magnitude ``a`` (in place on ``a``), int64."""
        return a.sqrt_().mul_(self.levels - 1).round_().to(torch.long)

    def __call__(self, idx: Tensor) -> Tensor:
        """``(n, 2)``: ratio and std at levels ``idx`` (n,)."""
        return _on_device(self._ratio_on, self.ratio_std, idx.device).index_select(0, idx)

    def readouts(self, idx: Tensor, rows: int | None = None) -> Tensor:
        """Expected ``sum |w_dev|`` at (t, T) and at t = 0: ``(2,)``, or ``(rows, 2)`` per
        row when ``rows`` is given (``idx`` then holds ``rows`` equal consecutive blocks)."""
        table = _on_device(self._abs_on, self.abs_table, idx.device)
        if rows is None:
            counts = torch.bincount(idx, minlength=self.levels).to(table.dtype)
            return counts @ table
        k = idx.numel() // rows
        offs = torch.arange(rows, device=idx.device).repeat_interleave(k) * self.levels
        counts = torch.bincount(idx + offs, minlength=rows * self.levels)
        return counts.view(rows, self.levels).to(table.dtype) @ table


# ---------------------------------------------------------------------------- noise
class NoiseSource:
    """Standard-normal noise for the training forward.

    ``fresh=True``: every call draws new normals (a seeded :class:`NoiseStream`).
    ``fresh=False`` (default, fast): a window at a random offset of a pool of seeded
    normals, ``pool[o : o + n]``. Within one call the values are independent N(0, 1)
    (distinct pool entries); across calls entries are reused at other positions, and the
    pool is redrawn once ``reuse`` pool-lengths have been handed out (each entry serves
    about ``reuse`` calls). This is an approximation of fresh noise made for speed: torch's
    CPU normal sampler costs more than the rest of a small layer's training forward.
    """

    def __init__(self, seed: int, *, fresh: bool = False, min_pool: int = 1 << 18, reuse: int = 8):
        self.seed = int(seed)
        self.fresh = fresh
        self.min_pool = int(min_pool)
        self.reuse = int(reuse)
        self._stream = NoiseStream(derive_seed(self.seed, "stream"))
        self._offsets = random.Random(derive_seed(self.seed, "offsets"))
        self._pool: Tensor | None = None
        self._served = 0
        self._refills = 0

    def normal(self, shape: tuple[int, ...], device: torch.device | str | None = None) -> Tensor:
        """A tensor of iid N(0, 1) of ``shape`` on ``device`` (default CPU; a view of the
        pool: do not write to it). The pool lives on the device last asked for."""
        n = math.prod(shape)
        device = torch.device("cpu") if device is None else torch.device(device)
        if self._stream.device != device:
            self._stream = self._stream.to(device)
            self._pool = None
        if self.fresh:
            return self._stream.fill_(torch.empty(shape, device=device))
        pool = self._pool
        if pool is None or pool.numel() < 2 * n or self._served >= self.reuse * pool.numel():
            size = max(self.min_pool, 2 * n, 0 if pool is None else pool.numel())
            self._stream.reseed(derive_seed(self.seed, "pool", self._refills))
            self._refills += 1
            pool = self._stream.fill_(torch.empty(size, device=device))
            self._pool = pool
            self._served = 0
        off = self._offsets.randrange(0, pool.numel() - n + 1)
        self._served += n
        return pool[off : off + n].view(shape)


# ---------------------------------------------------------------------------- the MVM
@dataclass(frozen=True)
class IOPlan:
    """Constants of a tile's IO for the training forward (see :func:`analog_mvm`)."""

    io: bool
    rows: int
    dac_static: float | None  # static input range, or None for dynamic
    dac_levels: int  # 0 = ideal DAC
    in_unit: float  # 1/dac_levels or 1
    step: float  # ADC step (1 with an ideal ADC)
    adc_round: bool
    clip: float  # ADC clip in steps (0 = none)
    out_noise: float
    read2_u2: float  # read_noise^2 * in_unit^2
    o2: Tensor | None = None  # out_noise^2 as a (1,) tensor for addmm

    @property
    def out_factor(self) -> float:
        """``L_in * step``: DAC codes times ADC steps back to input x weight units."""
        return (self.dac_levels or 1.0) * self.step if self.io else 1.0

    @classmethod
    def of(cls, tile: TileConfig, io: bool = True) -> IOPlan:
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
            torch.full((1,), tile.out_noise**2),
        )


class _AnalogMVM(torch.autograd.Function):
    """Tiled analog MVM forward (no graph, in place) with a straight-through backward.

    ``apply(x2 (M, K), w (N, K) float master view, bias (N,) | None, w_dev (N, K)
    normalised device weights, vmat (N, K) | None per-weight output-noise variance in DAC
    code units, out_scale (N,) digital output scale, plan, noise)`` -> ``(M, N)``.
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
            y, clip_mask = analog_mvm(x2.detach(), w_dev, vmat, out_scale, plan, noise, b, out_step)
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


def analog_mvm(
    x: Tensor,
    w_dev: Tensor,
    vmat: Tensor | None,
    out_scale: Tensor,
    plan: IOPlan,
    noise: NoiseSource,
    bias: Tensor | None = None,
    out_step: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    r"""The analog MVM with the tile's IO, as the inference tile computes it.

    Per tile of ``rows`` inputs: DAC codes ``c = round(x L_in / alpha)`` (``alpha`` = max|x|
    per row, or the static range with clipping; ``u = 1/L_in``); the partial output in ADC
    steps ``(u c w^T + sigma z)/step``, ``z ~ N(0, 1)``, with
    :math:`\sigma_i^2 = o^2 + \sum_j c_j^2 V_{ij}`,
    :math:`V_{ij} = u^2 (r^2 |w_{ij}| + v_{ij})` (``o`` output noise, ``r`` read noise,
    ``v`` output-side weight variance; ``vmat`` holds ``V``), rounded and clipped at the
    ADC bound; partials summed digitally; the sum times ``alpha * step * out_scale``.
    ``out_step = out_scale * L_in * step`` may be passed precomputed; ``bias`` is added.
    Returns ``(y (M, N), DAC clip mask (M, K) or None)``.
    """
    m, k = x.shape
    n = w_dev.shape[0]
    if not plan.io:
        y = x @ w_dev.t()
        if vmat is not None:
            std = (x * x) @ vmat.t()
            y.addcmul_(std.sqrt_(), noise.normal((m, n), x.device))
        if bias is not None:
            return torch.addcmul(bias, y, out_scale), None
        return y.mul_(out_scale), None
    if out_step is None:
        out_step = out_scale * plan.out_factor
    clip_mask = None
    lv = plan.dac_levels or 1.0
    if plan.dac_static is None:
        # alpha / L_in per row: codes = round(x / (alpha / L_in)), alpha = max|x|
        alpha = torch.maximum(x.amax(dim=1, keepdim=True), x.amin(dim=1, keepdim=True).neg_())
        alpha.clamp_(min=1e-30).div_(lv)  # (M, 1); no |x| temporary
        xs = torch.div(x, alpha)
    else:
        alpha = torch.full((m, 1), plan.dac_static / lv, dtype=x.dtype, device=x.device)
        xs = x * (lv / plan.dac_static)
        clip_mask = (xs.abs() <= lv).to(x.dtype)
        xs.clamp_(-lv, lv)
    if plan.dac_levels:
        xs.round_()
    u, step = plan.in_unit, plan.step
    n_tiles = math.ceil(k / plan.rows)
    o2 = plan.o2
    if o2 is not None and (o2.dtype != x.dtype or o2.device != x.device):
        o2 = o2.to(x)
    acc: Tensor | None = None
    for t in range(n_tiles):
        k0, k1 = t * plan.rows, min(k, (t + 1) * plan.rows)
        xt = xs[:, k0:k1] if n_tiles > 1 else xs
        wt = w_dev[:, k0:k1] if n_tiles > 1 else w_dev
        if vmat is not None:
            vt = vmat[:, k0:k1] if n_tiles > 1 else vmat
            if vt.dtype == torch.bfloat16:
                # the variance product in bfloat16 with float32 accumulation (as the
                # inference tile): ~0.4 % relative error on a noise variance
                buf = torch.mm(xt.square().to(torch.bfloat16), vt.t()).float()
                buf.add_(o2).sqrt_()  # (M, N) noise std
            else:
                buf = torch.addmm(o2, xt.square(), vt.t()).sqrt_()  # (M, N) noise std
            buf.mul_(noise.normal((m, n), x.device)).addmm_(
                xt, wt.t(), beta=1.0 / step, alpha=u / step
            )
        elif plan.out_noise > 0:
            z = noise.normal((m, n), x.device)
            buf = torch.addmm(z, xt, wt.t(), beta=plan.out_noise / step, alpha=u / step)
        else:
            buf = torch.mm(xt, wt.t())
            if u / step != 1.0:
                buf.mul_(u / step)
        if plan.adc_round:
            buf.round_()
        if plan.clip > 0:
            buf.clamp_(-plan.clip, plan.clip)
        acc = buf if acc is None else acc.add_(buf)
    assert acc is not None
    acc.mul_(alpha)  # now in units of (input x weight) / (L_in * step)
    if bias is not None:
        return torch.addcmul(bias, acc, out_step), clip_mask
    return acc.mul_(out_step), clip_mask


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
    out_step: Tensor | None = None  # (N,): out_scale x L_in x ADC step
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

    def equivalent_time(self, device: DeviceModel) -> float:
        """Device age at the reference temperature: ``t * A(T)`` (held at T all along)."""
        key = device.temperature.age_key
        return DeploymentAge.held(self.time_s, self.temperature_K, (key,)).equivalent(key)

    def device_for_engine(self, device: DeviceModel) -> DeviceModel:
        """The card the ``device`` engine samples: as is, fault-free (``faults=False``) or
        with the configured stuck-at rates (cached per card)."""
        key = id(device)
        dev = self._engine_devices.get(key)
        if dev is None:
            cfg = self.config
            dev = device if cfg.faults else _fault_free(device)
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

    def prepare(self, devices: list[DeviceModel]) -> None:
        """Build the surrogate tables of every grid point for ``devices`` now (else they are
        built on first use), so that training steps cost the same from the first one."""
        saved = (self.time_s, self.temperature_K)
        for dev in devices:
            if dev.is_ideal:
                continue
            for temp in self.temperatures:
                for t in self.times:
                    self.time_s, self.temperature_K = t, temp
                    self.lookups(dev)
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
        """Per-device probabilities (stuck at g_min, at g_max, stuck-on outlier) at t_eq.

        Static rates from the card (or the configured overrides) plus, for healthy
        devices, the onset probability ``1 - exp(-lambda t_eq)`` split by hazard.
        """
        if not self.config.faults:
            return 0.0, 0.0, 0.0
        f = device.faults
        p_min = f.stuck_at_gmin_rate
        p_max = f.stuck_at_gmax_rate
        if self.config.stuck_at_gmin_rate is not None:
            p_min = self.config.stuck_at_gmin_rate
        if self.config.stuck_at_gmax_rate is not None:
            p_max = self.config.stuck_at_gmax_rate
        p_out = f.outlier_rate
        if f.dynamic:
            healthy = max(0.0, 1.0 - p_min - p_max - p_out)
            p_on = healthy * f.onset_probability(self.equivalent_time(device))
            lam = f.onset_hazard
            p_min += p_on * f.onset_gmin_per_s / lam
            p_max += p_on * f.onset_gmax_per_s / lam
            p_out += p_on * f.onset_outlier_per_s / lam
        return p_min, p_max, p_out


# ---------------------------------------------------------------------------- perturbations
def _compensation(tile: TileConfig, now: Tensor, ref: Tensor) -> Tensor | None:
    """``readout(0) / readout(t)`` from ``|w|`` at t (``now``) and at 0 (``ref``), (N, K):
    one factor for the layer (``global``) or per output row (``column``), shape ``(N,)``."""
    mode = tile.drift_compensation
    if mode == "none":
        return None
    n = now.shape[0]
    if mode == "global":
        return (ref.mean() / now.mean().clamp(min=1e-12)).expand(n)
    return ref.mean(1) / now.mean(1).clamp(min=1e-12)


def _sample_faulty(
    ctx: HWAContext, device: DeviceModel, a: Tensor, sign: Tensor, rates: tuple[float, float, float]
) -> tuple[Tensor, Tensor]:
    """Per-device surrogate draws with faults: ``(w_dev at (t, T), w_dev at (0, T_ref))``.

    A weight is a pair: the active device at level ``a`` (G+ for w >= 0, else G-) and the
    idle one at level 0. Each device is ``N(dev_mean, dev_std^2)`` unless a uniform draw
    ``u`` makes it stuck: at g_min (``u < p_min``), at g_max (next ``p_max``), or stuck on
    at ``g_max X``, ``X = x_m U^(-1/alpha)`` capped (next ``p_out``). The reference state
    (t = 0) uses the same draws and faults, as a chip's reference readout does.
    """
    _, dev_now, dev_ref = ctx.lookups(device)
    span = device.g_max - device.g_min
    shape = a.shape
    # drawn on the CPU generator (same numbers on every device), then moved
    xi = torch.randn((2, *shape), generator=ctx.gen).to(a.device)
    u = torch.rand((2, *shape), generator=ctx.gen).to(a.device)
    p_min, p_max, p_out = rates
    lo_v, hi_v = device.g_min / span, device.g_max / span
    f = device.faults
    out = []
    for lk in (dev_now, dev_ref):
        act = lk(a.reshape(-1)).view(*shape, 2)
        idle = lk(torch.zeros(1, device=a.device))[0]
        pair = [torch.addcmul(act[..., 0], act[..., 1], xi[0]), xi[1] * idle[1] + idle[0]]
        for i in range(2):
            d, uu = pair[i], u[i]
            d = torch.where(uu < p_min, torch.full_like(d, lo_v), d)
            d = torch.where((uu >= p_min) & (uu < p_min + p_max), torch.full_like(d, hi_v), d)
            if p_out > 0:
                v = ((uu - p_min - p_max) / p_out).clamp_(min=1e-12)
                x = v.pow(-1.0 / f.outlier_alpha).mul_(f.outlier_min_factor)
                x.clamp_(max=f.outlier_max_factor).mul_(hi_v)
                sel = (uu >= p_min + p_max) & (uu < p_min + p_max + p_out)
                d = torch.where(sel, x, d)
            pair[i] = d
        out.append((pair[0] - pair[1]).mul_(sign))
    return out[0], out[1]


def _device_sample(
    ctx: HWAContext, dev: DeviceModel, w_norm: Tensor, name: str
) -> tuple[Tensor, Tensor]:
    """The full device model on the current normalised targets: ``(w at (t, T), w at t=0)``.

    Chunked like :meth:`AnalogLayer.effective_normalized`, with a fresh device seed per
    draw (``derive_seed(seed, "hwa-device", layer, step)``).
    """
    seed = derive_seed(ctx.seed, "hwa-device", name, ctx.step_count)
    t_eq = ctx.equivalent_time(dev)
    span = dev.g_max - dev.g_min
    outs = []
    for t, temp in ((t_eq, ctx.temperature_K), (0.0, None)):
        out = torch.empty_like(w_norm)
        flat_w, flat_o = w_norm.reshape(-1), out.view(-1)
        for i, start in enumerate(range(0, flat_w.numel(), CHUNK)):
            wc = flat_w[start : start + CHUNK]
            g = dev.conductances(dev.targets(wc), seed, t, temp, chunk=i)
            torch.sub(g[0], g[1], out=flat_o[start : start + CHUNK]).div_(span)
        outs.append(out)
    return outs[0], outs[1]


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
        w_dev, w_0 = _device_sample(ctx, ctx.device_for_engine(dev), w * inv, name)
        comp = _compensation(tile, w_dev.abs(), w_0.abs())
        side = "weight"
    else:
        rates = ctx.fault_rates(dev)
        if any(r > 0 for r in rates):
            sign = torch.where(w >= 0, 1.0, -1.0)
            w_dev, w_0 = _sample_faulty(ctx, dev, a, sign, rates)
            comp = _compensation(tile, w_dev.abs(), w_0.abs())
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
                comp = (ro[1] / ro[0].clamp(min=1e-12)).expand(n)
            elif tile.drift_compensation == "column":
                ro = lk.readouts(idx, rows=n)  # (N, 2)
                comp = ro[:, 1] / ro[:, 0].clamp(min=1e-12)
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
    st.out_step = st.out_scale * plan.out_factor
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
def digital_forward(module: nn.Module, x: Tensor, w_mat: Tensor) -> Tensor:
    """Forward of a weight layer with its ``(out, in)`` matrix replaced by ``w_mat``."""
    from analogsim.tiles.layer import module_kind

    if isinstance(module, nn.Embedding):
        return F.embedding(
            x,
            w_mat,
            module.padding_idx,
            module.max_norm,
            module.norm_type,
            module.scale_grad_by_freq,
            module.sparse,
        )
    kind = module_kind(module)
    if kind == "linear":
        return F.linear(x, w_mat, module.bias)
    if kind == "conv1d":
        y = x.reshape(-1, x.shape[-1]) @ w_mat.t()
        if module.bias is not None:
            y = y + module.bias
        return y.view(*x.shape[:-1], w_mat.shape[0])
    if kind == "conv2d":
        padding = module.padding
        if module.padding_mode != "zeros":
            x = F.pad(x, module._reversed_padding_repeated_twice, mode=module.padding_mode)
            padding = 0
        return F.conv2d(
            x,
            w_mat.view_as(module.weight),
            module.bias,
            module.stride,
            padding,
            module.dilation,
            module.groups,
        )
    raise TypeError(f"cannot run {type(module).__name__}")


def matrix_of(module: nn.Module) -> Tensor:
    """The ``(out, in)`` weight matrix of a weight layer or embedding (a view)."""
    from analogsim.tiles.layer import weight_matrix

    if isinstance(module, nn.Embedding):
        return module.weight
    return weight_matrix(module)


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
        w = matrix_of(self.digital)
        q = self.quantizer(w.detach())
        return digital_forward(self.digital, x, w + (q - w.detach()))


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
        self._fwd = HWAForward(ctx, name)

    def forward(self, ids: Tensor) -> Tensor:
        if not (self.training and torch.is_grad_enabled()):
            return self.digital(ids)
        w_dev, _, out_scale = self._fwd.prepare(self._shim, False)
        w = self.digital.weight
        used = w + (w_dev * out_scale[:, None] - w.detach())
        return digital_forward(self.digital, ids, used)


# ---------------------------------------------------------------------------- install
def analog_layers(model: nn.Module) -> Iterator[tuple[str, AnalogLayer]]:
    """``(name, layer)`` of every :class:`AnalogLayer` in ``model`` (not embedding shims)."""
    from analogsim.tiles.embedding import AnalogEmbedding

    inner = {id(m._layer) for m in model.modules() if isinstance(m, AnalogEmbedding)}
    for name, mod in model.named_modules():
        if isinstance(mod, AnalogLayer) and id(mod) not in inner and not name.endswith("_shim"):
            yield name, mod


def install_hwa(model: nn.Module, config: HWAConfig | None = None, seed: int = 0) -> HWAContext:
    """Make a converted model hardware-aware for training, in place; return the context.

    * every :class:`AnalogLayer` gets ``layer.hwa = HWAForward(ctx, name)``;
    * every analog embedding becomes an :class:`HWAEmbedding`;
    * every digital int-quantized layer (``DigitalQuantized``) becomes a :class:`QATLayer`.

    ``model`` is the ``.model`` of an :class:`~analogsim.mapping.convert.AnalogModel` (or
    the AnalogModel itself). :func:`unwrap` gives the trained digital model back.
    """
    from analogsim.mapping.analog_model import set_submodule
    from analogsim.mapping.convert import DigitalQuantized
    from analogsim.tiles.embedding import AnalogEmbedding

    root = getattr(model, "model", model)
    ctx = HWAContext(config or HWAConfig(), seed)
    for name, mod in list(root.named_modules()):
        if isinstance(mod, AnalogEmbedding):
            set_submodule(root, name, HWAEmbedding(mod.digital, mod.device_model, ctx, name))
        elif isinstance(mod, DigitalQuantized):
            set_submodule(root, name, QATLayer(mod.digital, mod.quantizer, name))
    for name, layer in analog_layers(root):
        layer.hwa = HWAForward(ctx, name)
    if ctx.config.engine == "surrogate":
        devices = {id(la.device_model): la.device_model for _, la in analog_layers(root)}
        for mod in root.modules():
            if isinstance(mod, HWAEmbedding):
                devices[id(mod._shim.device_model)] = mod._shim.device_model
        ctx.prepare(list(devices.values()))
    return ctx


WRAPPERS: tuple[type, ...] = (QATLayer, HWAEmbedding)


def unwrap(model: nn.Module) -> nn.Module:
    """Put every wrapped layer's ``.digital`` module back in place; return the digital model.

    Works on anything :func:`~analogsim.mapping.convert.convert` or the training wrappers
    produced (AnalogLayer, AnalogEmbedding, DigitalQuantized, QATLayer, HWAEmbedding, the
    learned-noise layers); the parameters are the trained masters, not copies.
    """
    from analogsim.mapping.analog_model import set_submodule
    from analogsim.mapping.convert import DigitalQuantized
    from analogsim.tiles.embedding import AnalogEmbedding

    root = getattr(model, "model", model)
    kinds = (AnalogLayer, AnalogEmbedding, DigitalQuantized, *WRAPPERS)
    changed = True
    while changed:
        changed = False
        for name, mod in list(root.named_modules()):
            if name and isinstance(mod, kinds) and not name.endswith("_shim"):
                set_submodule(root, name, mod.digital)
                changed = True
                break
    return root


@torch.no_grad()
def clip_weights(model: nn.Module, clip_sigma: float) -> None:
    """Clip each analog layer's master weights to ``+-clip_sigma * std(W)`` (in place)."""
    for _, layer in analog_layers(getattr(model, "model", model)):
        w = layer.digital.weight
        bound = clip_sigma * float(w.std())
        if bound > 0:
            w.clamp_(-bound, bound)


__all__ = [
    "ENGINES",
    "NOISE_SIDES",
    "DeviceStats",
    "HWAConfig",
    "HWAContext",
    "HWAEmbedding",
    "HWAForward",
    "Lookup",
    "QATLayer",
    "RatioLookup",
    "analog_layers",
    "analog_mvm",
    "clip_weights",
    "digital_forward",
    "install_hwa",
    "matrix_of",
    "unwrap",
]
