"""Device statistics for hardware-aware training: the surrogate's tables and lookups, the
per-device samplers and the pool of standard normals (:mod:`analogsim.train.hwa` uses them).

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

The samplers are pure functions of a device card, the normalised weights and a generator
or seed: :func:`sample_faulty` (the surrogate with faults, per device) and
:func:`sample_device` (the full device model).
"""

from __future__ import annotations

import math
import random

import torch
from torch import Tensor

from analogsim.devices.age import DeviceTime, as_device_time
from analogsim.devices.model import DeviceModel
from analogsim.devices.rng import CHUNK, NoiseStream, derive_seed


def fault_free(device: DeviceModel) -> DeviceModel:
    """``device`` without stuck-at faults, outliers or fault onsets (itself if it has none)."""
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
        self.clean = fault_free(device)
        self.levels = int(levels)
        self.samples = int(samples)
        self.seed = derive_seed(seed, "hwa-table", device.name)
        k = torch.arange(self.levels, dtype=torch.float64)
        self.grid = (k / (self.levels - 1)) ** 2  # (L,)
        self._cache: dict[tuple[float, float | None], Tensor] = {}

    def raw(self, t_eq: float | DeviceTime, temperature_K: float | None) -> Tensor:
        """``(L, 5)`` float64: mean, std, abs, dev_mean, dev_std at (t_eq, T); ``t_eq`` the
        device's ages (:class:`~analogsim.devices.age.DeviceTime`) or one float for all."""
        key = (as_device_time(t_eq), None if temperature_K is None else float(temperature_K))
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

    def fill_(self, out: Tensor) -> Tensor:
        """Fill ``out`` (``(M, N)`` or ``(T, M, N)``: the partials of ``T`` tiles) with iid
        N(0, 1) in place, one :meth:`normal` draw of ``(M, N)`` per tile, in tile order."""
        for part in out.view(-1, *out.shape[-2:]):  # (M, N) each
            part.copy_(self.normal(tuple(part.shape), part.device))
        return out


# ---------------------------------------------------------------------------- samplers
def fault_rates(
    device: DeviceModel,
    t_eq: float | DeviceTime,
    stuck_at_gmin_rate: float | None = None,
    stuck_at_gmax_rate: float | None = None,
) -> tuple[float, float, float]:
    """Per-device probabilities (stuck at g_min, at g_max, stuck-on outlier) at age ``t_eq``.

    Static rates from the card (or the given overrides) plus, for healthy devices, the
    onset probability ``1 - exp(-lambda t_eq)`` split by hazard.
    """
    f = device.faults
    p_min = f.stuck_at_gmin_rate if stuck_at_gmin_rate is None else stuck_at_gmin_rate
    p_max = f.stuck_at_gmax_rate if stuck_at_gmax_rate is None else stuck_at_gmax_rate
    p_out = f.outlier_rate
    if f.dynamic:
        healthy = max(0.0, 1.0 - p_min - p_max - p_out)
        p_on = healthy * f.onset_probability(as_device_time(t_eq).fault_s)
        lam = f.onset_hazard
        p_min += p_on * f.onset_gmin_per_s / lam
        p_max += p_on * f.onset_gmax_per_s / lam
        p_out += p_on * f.onset_outlier_per_s / lam
    return p_min, p_max, p_out


def sample_faulty(
    device: DeviceModel,
    now: Lookup,
    ref: Lookup,
    a: Tensor,
    sign: Tensor,
    rates: tuple[float, float, float],
    gen: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """Per-device surrogate draws with faults: ``(w_dev at (t, T), w_dev at (0, T_ref))``.

    ``now`` and ``ref`` look up the single-device ``(mean, std)`` at (t, T) and at
    (0, T_ref); ``a (N, K)`` are the normalised magnitudes, ``sign (N, K)`` the signs of
    the weights, ``rates`` the per-device fault probabilities (stuck at g_min, at g_max,
    stuck-on outlier) and ``gen`` the CPU generator of the draws.

    A weight is a pair: the active device at level ``a`` (G+ for w >= 0, else G-) and the
    idle one at level 0. Each device is ``N(dev_mean, dev_std^2)`` unless a uniform draw
    ``u`` makes it stuck: at g_min (``u < p_min``), at g_max (next ``p_max``), or stuck on
    at ``g_max X``, ``X = x_m U^(-1/alpha)`` capped (next ``p_out``). The reference state
    (t = 0) uses the same draws and faults, as a chip's reference readout does.
    """
    span = device.g_max - device.g_min
    shape = a.shape
    # drawn on the CPU generator (same numbers on every device), then moved
    xi = torch.randn((2, *shape), generator=gen).to(a.device)  # (2, N, K)
    u = torch.rand((2, *shape), generator=gen).to(a.device)  # (2, N, K)
    p_min, p_max, p_out = rates
    lo_v, hi_v = device.g_min / span, device.g_max / span
    f = device.faults
    out = []
    for lk in (now, ref):
        act = lk(a.reshape(-1)).view(*shape, 2)  # (N, K, 2): mean, std of the active device
        idle = lk(torch.zeros(1, device=a.device))[0]  # (2,): of the idle device
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


def sample_device(
    dev: DeviceModel,
    w_norm: Tensor,
    seed: int,
    t_eq: float | DeviceTime,
    temperature_K: float,
) -> tuple[Tensor, Tensor]:
    """The full device model on normalised targets ``w_norm (N, K)``: ``(w at (t_eq, T),
    w at t = 0)``, both ``(N, K)``.

    Chunked like :meth:`AnalogLayer.effective_normalized`, from device seed ``seed`` (the
    caller draws a fresh one per draw).
    """
    span = dev.g_max - dev.g_min
    outs = []
    for t, temp in ((t_eq, temperature_K), (0.0, None)):
        out = torch.empty_like(w_norm)  # (N, K)
        flat_w, flat_o = w_norm.reshape(-1), out.view(-1)
        for i, start in enumerate(range(0, flat_w.numel(), CHUNK)):
            wc = flat_w[start : start + CHUNK]
            g = dev.conductances(dev.targets(wc), seed, t, temp, chunk=i)
            torch.sub(g[0], g[1], out=flat_o[start : start + CHUNK]).div_(span)
        outs.append(out)
    return outs[0], outs[1]


__all__ = [
    "DeviceStats",
    "Lookup",
    "NoiseSource",
    "RatioLookup",
    "fault_free",
    "fault_rates",
    "sample_device",
    "sample_faulty",
]
