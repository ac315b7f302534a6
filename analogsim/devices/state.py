r"""Device state in one fused pass: every conductance of a layer at (t, T) from its seeds.

A device's state is a pure function of its target, its layer seed and its ages
(:class:`~analogsim.devices.model.DeviceModel` states the physics). This module evaluates
that function for all devices of a layer in **one elementwise pass** with nothing kept
between calls: each random quantity is drawn *inside* the pass from a counter-based
generator (:func:`~analogsim.devices.rng.counter_bits`, keyed by ``derive_seed(layer seed,
stream, ...)`` and counted by the device's index), so programming a chip, moving it to a
new age or temperature, and every clock update cost the same single pass, and no device
quantity is stored. Large layers run the pass as one compiled kernel (torch inductor,
vectorised, threads over elements); small ones run the same torch operations eagerly.

Draws per device
----------------
* programming error and drift exponent: one Box-Muller pair (``S_PROG``);
* accumulated noise: the Brownian motion ``B`` in the variance clock ``v`` of
  docs/physics.md, on the grid ``v_k = v_0 + k dv``, written so that its value at any ``v``
  takes a fixed number of draws: ``B(v_0) = sqrt(v_0) xi_0`` (``S_READ``), the walk
  ``W(k) = (B(v_k) - B(v_0))/sqrt(dv)`` by the Levy (dyadic midpoint) construction on
  ``0..K`` (``K = 32``: ``W(K) = sqrt(K) eta_0``, each midpoint ``m`` of a level with
  half-width ``h`` is ``(W(m-h) + W(m+h))/2 + sqrt(h/2) eta``, ``S_WALK``), plain increments
  beyond ``K`` (``S_WALK``, "ext"), and inside an interval the bridge
  ``B(v) = (1-f) B(v_k) + f B(v_k+1) + sqrt(f (1-f) dv) z_k`` (``S_BRIDGE``). The grid
  values form exactly the random walk of the sequential construction (same joint law), so
  the variance is exactly ``v`` at every ``v``, the path is continuous and one jump equals
  many small steps; the cost is at most ``log2(K) + 4`` normals per device at any age
  instead of ``k + 4``;
* static faults: one uniform (``S_FAULT``), the outlier level one more (``S_OUTLIER``);
  fault onsets: two uniforms from one draw (``S_ONSET``), the onset is the event
  ``v < 1 - exp(-lambda t_fault)``.

Device ``d`` (0: ``G+``, 1: ``G-``) of element ``j`` of a layer with ``n`` weights has
counter ``d n + j``: the layer's pair of ``(2, n)`` targets read as one flat tensor.
:meth:`DeviceModel.conductances` on ``targets(w)`` of the same flat weights gives the same
devices.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import types
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from analogsim.devices import physics
from analogsim.devices.age import DeviceTime, as_device_time
from analogsim.devices.rng import counter_bits, counter_normal, counter_normal_pair, derive_seed

DeviceModel = Any
"""A :class:`analogsim.devices.model.DeviceModel` (which imports this module)."""

# Stream identifiers (part of every derived seed; never renumber).
S_PROG = 1
S_NU = 2
S_READ = 3
S_BRIDGE = 4
S_FAULT = 5
S_OUTLIER = 6
S_ONSET = 7
S_WALK = 8

WALK_LEVELS = 5
"""Levels of the dyadic walk: ``K = 2**WALK_LEVELS`` grid intervals (v up to ``v_0 + 32 dv``:
5e7 years for PCM, 2.5e6 years for RRAM) before plain increments take over."""

COMPILE_MIN_ELEMENTS = 1 << 16
"""Layers with at least this many weights run the pass as one compiled kernel (when
inductor works on this machine and ``ANALOGSIM_COMPILE`` is not ``0``); smaller ones run
the same operations eagerly. The choice depends on the layer's size only, so a layer's
numbers never depend on what ran before; compiled and eager passes agree to float
rounding (an ulp of the transcendentals), not bit for bit."""


# --------------------------------------------------------------------------------------
# the Brownian motion in v: which draws, with which weights


def _walk(k: int, cache: dict[int, dict[tuple, float]]) -> dict[tuple, float]:
    """``W(k)`` as ``{draw id: coefficient}`` (dyadic construction on 0..K, increments beyond)."""
    if k in cache:
        return cache[k]
    big = 1 << WALK_LEVELS
    if k == 0:
        out: dict[tuple, float] = {}
    elif k == big:
        out = {(0, 0): math.sqrt(big)}
    elif k > big:
        out = dict(_walk(k - 1, cache))
        out[("ext", k)] = 1.0
    else:
        tz = (k & -k).bit_length() - 1  # trailing zeros: k is a midpoint of half-width 2^tz
        h = 1 << tz
        level = WALK_LEVELS - tz
        out = {}
        for side in (k - h, k + h):
            for node, c in _walk(side, cache).items():
                out[node] = out.get(node, 0.0) + 0.5 * c
        node = (level, (k - h) // (2 * h))
        out[node] = out.get(node, 0.0) + math.sqrt(h / 2.0)
    cache[k] = out
    return out


def noise_draws(v0: float, dv: float, v: float) -> tuple[int, float, list[tuple[tuple, float]]]:
    r"""``B(v)`` as a weighted sum of standard normals: ``(k, f, [(draw id, weight)])``.

    ``k`` is the grid interval holding ``v`` and ``f`` the position in it; draw ids are
    ``("root",)`` (``xi_0``), ``(level, index)`` and ``("ext", i)`` (walk) and
    ``("bridge", k)``.
    """
    x = max(v, v0) - v0
    k = math.floor(x / dv + 1e-12)
    f = min(max(x / dv - k, 0.0), 1.0)
    if f < 1e-12:
        f = 0.0
    cache: dict[int, dict[tuple, float]] = {}
    terms: dict[tuple, float] = {}
    if v0 > 0:
        terms[("root",)] = math.sqrt(v0)
    s = math.sqrt(dv)
    for weight, kk in ((1.0 - f, k), (f, k + 1)):
        if weight == 0.0:
            continue
        for node, c in _walk(kk, cache).items():
            terms[node] = terms.get(node, 0.0) + weight * s * c
    if f > 0.0:
        terms[("bridge", k)] = math.sqrt(f * (1.0 - f) * dv)
    return k, f, [(node, c) for node, c in terms.items() if c != 0.0]


def _draw_key(seed: int, node: tuple) -> int:
    if node == ("root",):
        return derive_seed(seed, S_READ, 0)
    if node[0] == "bridge":
        return derive_seed(seed, S_BRIDGE, node[1])
    if node[0] == "ext":
        return derive_seed(seed, S_WALK, "ext", node[1])
    return derive_seed(seed, S_WALK, node[0], node[1])


# --------------------------------------------------------------------------------------
# one call: the static shape of the pass and its runtime numbers


@dataclass(frozen=True)
class Variant:
    """What the pass computes (fixed per compiled kernel)."""

    prog: bool
    drift: bool
    slots: int  # accumulated-noise draws (0: none)
    temp: bool  # a per-device conduction factor exp(-ea * t_scale)
    static_faults: bool
    onsets: bool


@dataclass
class Call:
    """The runtime numbers of one pass: stream keys (int64) and scalars."""

    variant: Variant
    keys: list[int]
    scalars: list[float]  # [drift exponent factor, t_scale, onset probability, noise weights...]


def plan_call(
    dev: DeviceModel,
    seed: int,
    t_s: float | DeviceTime,
    temperature_K: float | None,
    t_prog_K: float | None,
) -> Call:
    """Keys, scalars and the variant of the pass for ``dev`` at ages ``t_s``, read at
    ``temperature_K`` (``None``: ``t_prog_K``; ``t_prog_K = None``: the card's ``t_ref_K``)."""
    tt = as_device_time(t_s)
    p, d, r, tm, fl = dev.programming, dev.drift, dev.read_noise, dev.temperature, dev.faults
    prog = p is not None and p.scale != 0.0
    drift = d is not None and d.scale != 0.0 and tt.drift_s > 0.0
    t_prog = tm.t_ref_K if t_prog_K is None else t_prog_K
    t_read = t_prog if temperature_K is None else temperature_K
    log_ratio = math.log((tt.drift_s + d.t0_s) / d.t0_s) if drift else 0.0
    if log_ratio and tm.affects_conduction:
        log_ratio *= tm.drift_multiplier(t_read)
    temp = tm.affects_conduction and t_read != t_prog
    t_scale = tm.conduction_exponent_per_eV(t_read, t_prog) if temp else 0.0
    draws: list[tuple[tuple, float]] = []
    if r is not None and r.scale != 0.0:
        t_n = tt.drift_s if r.clock == "drift" else tt.noise_s
        _, _, draws = noise_draws(r.v(0.0), r.dv, r.v(t_n))
    onsets = fl.dynamic and tt.fault_s > 0.0
    keys = [
        derive_seed(seed, S_PROG),
        derive_seed(seed, S_FAULT),
        derive_seed(seed, S_OUTLIER),
        derive_seed(seed, S_ONSET),
    ] + [_draw_key(seed, node) for node, _ in draws]
    scalars = [
        -log_ratio,
        -t_scale,
        fl.onset_probability(tt.fault_s) if onsets else 0.0,
    ] + [c for _, c in draws]
    variant = Variant(prog, drift, len(draws), temp, fl.static, onsets)
    return Call(variant, keys, scalars)


# --------------------------------------------------------------------------------------
# the pass


def device_conductance(
    dev: DeviceModel, v: Variant, g_t: Tensor, ctr: Tensor, keys: Tensor, sc: Tensor
) -> Tensor:
    """Conductances (uS) of devices with targets ``g_t`` and counters ``ctr`` (same shape).

    ``keys`` (int64) and ``sc`` (the dtype of ``g_t``) hold :class:`Call`'s numbers. Only
    elementwise torch operations: fused into one kernel when compiled.
    """
    dtype = g_t.dtype
    g_max = dev.g_max
    g_rel_t = (g_t.abs() / g_max).clamp(min=physics.G_REL_FLOOR)
    pg = dev.programming
    d = dev.drift
    if v.prog or v.drift:
        xi_p, xi_nu = counter_normal_pair(keys[0], ctr, dtype)
    if v.prog:
        sigma = physics.polynomial(g_t / g_max, pg.coeffs_uS) * (g_max / pg.g_max_ref_uS * pg.scale)
        g_p = (g_t + sigma * xi_p).clamp(min=0.0)
    else:
        g_p = g_t
    expo = None
    if v.drift:
        nu = (d.nu_mean(g_rel_t) + d.nu_std(g_rel_t) * xi_nu).abs()
        expo = nu * (sc[0] * d.scale)
    r = dev.read_noise
    tm = dev.temperature
    ea_term = None
    if v.temp:
        ea_term = tm.conduction_ea(g_rel_t.clamp(max=1.0)) * sc[1]
    absolute = v.slots > 0 and r.kind == "absolute"
    if not absolute and ea_term is not None:
        expo = ea_term if expo is None else expo + ea_term
    g = g_p if expo is None else g_p * torch.exp(expo)
    if v.slots > 0:
        b = counter_normal(keys[4], ctr, dtype) * sc[3]
        for s in range(1, v.slots):
            b = b + counter_normal(keys[4 + s], ctr, dtype) * sc[3 + s]
        if r.kind == "relative":
            amp = r.amplitude((g_p.abs() / g_max).clamp(min=physics.G_REL_FLOOR))
        else:
            amp = r.amplitude(g_rel_t)
        if r.scale != 1.0:
            amp = amp * r.scale
        if r.kind == "relative":
            g = g * (amp * b + 1.0).clamp(min=0.0)
        else:
            g = (g + amp * b).clamp(min=0.0)
            if ea_term is not None:
                g = g * torch.exp(ea_term)
    f = dev.faults
    if v.static_faults or v.onsets:
        u = _uniform(keys[1], ctr)
        lo = f.stuck_at_gmin_rate
        hi = lo + f.stuck_at_gmax_rate
        out_hi = hi + f.outlier_rate
        level = None
        if f.outlier_rate > 0 or (v.onsets and f.onset_outlier_per_s > 0):
            # Pareto(x_m, alpha) by inversion: x_m U^(-1/alpha), capped
            level = (
                (_uniform(keys[2], ctr).pow(-1.0 / f.outlier_alpha) * f.outlier_min_factor)
                .clamp(max=f.outlier_max_factor)
                .mul(g_max)
                .to(dtype)
            )
        if v.static_faults:
            g = torch.where(u < lo, dev.g_min, g)
            g = torch.where((u >= lo) & (u < hi), g_max, g)
            if f.outlier_rate > 0:
                g = torch.where((u >= hi) & (u < out_hi), level, g)
        if v.onsets:
            von, won = _onset_uniforms(keys[3], ctr)
            lam = f.onset_hazard
            c_min = f.onset_gmin_per_s / lam
            c_max = c_min + f.onset_gmax_per_s / lam
            lev = torch.where(won < c_min, dev.g_min, g_max).to(dtype)
            if f.onset_outlier_per_s > 0:
                lev = torch.where(won >= c_max, level, lev)
            g = torch.where((u >= out_hi) & (von < sc[2].double()), lev, g)
    return g


def _uniform(key: Tensor, ctr: Tensor) -> Tensor:
    """Fault uniform in (0, 1), float64 (24 bits, exact): compared with rates."""
    z = counter_bits(key, ctr)
    return (((z >> 40) & 0xFFFFFF).to(torch.float64) + 0.5) * 2.0**-24


def _onset_uniforms(key: Tensor, ctr: Tensor) -> tuple[Tensor, Tensor]:
    """Onset time and kind uniforms of one draw, float64 in (0, 1)."""
    z = counter_bits(key, ctr)
    von = (((z >> 40) & 0xFFFFFF).to(torch.float64) + 0.5) * 2.0**-24
    won = (((z >> 16) & 0xFFFFFF).to(torch.float64) + 0.5) * 2.0**-24
    return von, won


def _pair_difference(dev: DeviceModel, v: Variant, w: Tensor, keys: Tensor, sc: Tensor) -> Tensor:
    """``(G+ - G-)/(g_max - g_min)`` of flat normalised weights ``w`` (one pass)."""
    n = w.shape[0]
    j = torch.arange(n, device=w.device)
    span = dev.g_max - dev.g_min
    g_pos = device_conductance(dev, v, w.clamp(min=0.0) * span + dev.g_min, j, keys, sc)
    g_neg = device_conductance(dev, v, (-w).clamp(min=0.0) * span + dev.g_min, j + n, keys, sc)
    return (g_pos - g_neg) * (1.0 / span)


def _conductances(
    dev: DeviceModel, v: Variant, g: Tensor, base: Tensor, keys: Tensor, sc: Tensor
) -> Tensor:
    ctr = torch.arange(g.shape[0], device=g.device) + base
    return device_conductance(dev, v, g, ctr, keys, sc)


# --------------------------------------------------------------------------------------
# compiled kernels (one per card and variant), eager below the size threshold

_KERNELS: dict[tuple, Callable[..., Tensor]] = {}
_COMPILE_BROKEN: list[str] = []


def _compile_wanted(n: int, device: torch.device) -> bool:
    if n < COMPILE_MIN_ELEMENTS or _COMPILE_BROKEN:
        return False
    if os.environ.get("ANALOGSIM_COMPILE", "1") == "0":
        return False
    return device.type in ("cpu", "cuda")


@contextlib.contextmanager
def _quiet_build() -> Iterator[None]:
    """A CPU-only machine's first compile logs "No CUDA runtime is found" from torch's
    extension builder: true and of no use to a user of a CPU run, so it is held back."""
    log = logging.getLogger("torch.utils.cpp_extension")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


@contextlib.contextmanager
def _parallel_codegen() -> Iterator[None]:
    """Compile the pass as inductor's OpenMP loop even when torch runs one thread.

    With one torch thread (``torch.set_num_threads(1)``, as in the runner's worker
    processes) inductor emits a serial C++ loop for this kernel, and that loop returns wrong
    values (65,020 of 65,536 weights of a tiny-gpt2 MLP layer differed from the eager pass,
    some not finite, different from run to run; torch 2.14.1, AVX-512 CPU). The
    OpenMP form of the same kernel agrees with the eager pass to float rounding at any
    thread count, so the kernel is always generated in that form, for at least two
    threads (``tests/devices/test_state_threads.py``).
    """
    import torch._inductor.config as inductor_config

    with inductor_config.patch({"cpp.threads": max(2, torch.get_num_threads())}):
        yield


def _kernel(fn: Callable[..., Tensor], dev: DeviceModel, v: Variant) -> Callable[..., Tensor]:
    """``fn`` compiled for one (card, variant): its own code object, so the variants of many
    cards never share (and exhaust) one dynamo cache."""
    key = (fn.__name__, dev, v)
    k = _KERNELS.get(key)
    if k is None:
        tag = f"{fn.__name__}_{len(_KERNELS)}"
        code = fn.__code__.replace(co_name=tag)
        fresh = types.FunctionType(code, fn.__globals__, tag, fn.__defaults__, fn.__closure__)
        compiled = torch.compile(fresh, dynamic=True)

        def k(*args: Any) -> Tensor:
            with _parallel_codegen():
                return compiled(dev, v, *args)

        _KERNELS[key] = k
    return k


def _run(
    fn: Callable[..., Tensor], dev: DeviceModel, call: Call, x: Tensor, *extra: Tensor
) -> Tensor:
    keys = torch.tensor(call.keys, dtype=torch.int64, device=x.device)
    sc = torch.tensor(call.scalars, dtype=x.dtype, device=x.device)
    if _compile_wanted(x.numel(), x.device):
        try:
            with _quiet_build():
                return _kernel(fn, dev, call.variant)(x, *extra, keys, sc)
        except Exception as err:  # no C++ compiler, an inductor bug: the eager pass is exact too
            _COMPILE_BROKEN.append(repr(err))
            warnings.warn(
                f"analogsim: compiled device-state kernel unavailable ({type(err).__name__}); "
                "using the eager pass (same formulas, slower)",
                RuntimeWarning,
                stacklevel=3,
            )
    return fn(dev, call.variant, x, *extra, keys, sc)


@torch.no_grad()
def pair_state(
    dev: DeviceModel,
    w_norm: Tensor,
    seed: int,
    t_s: float | DeviceTime,
    temperature_K: float | None = None,
    *,
    t_prog_K: float | None = None,
) -> Tensor:
    """Normalised effective weights ``(G+ - G-)/(g_max - g_min)`` of normalised targets
    ``w_norm`` (any shape, values in [-1, 1]) at ages ``t_s`` read at ``temperature_K``:
    one pass, a fresh tensor of ``w_norm``'s shape."""
    call = plan_call(dev, seed, t_s, temperature_K, t_prog_K)
    flat = w_norm.reshape(-1).detach()  # no view base: the kernel's guards see a plain 1-D tensor
    return _run(_pair_difference, dev, call, flat).view(w_norm.shape)


@torch.no_grad()
def conductances(
    dev: DeviceModel,
    g_target: Tensor,
    seed: int,
    t_s: float | DeviceTime,
    temperature_K: float | None = None,
    *,
    counter_base: int = 0,
    t_prog_K: float | None = None,
) -> Tensor:
    """Conductances (uS) of devices with targets ``g_target`` (any shape); device ``i`` of
    the flattened tensor has counter ``counter_base + i``."""
    call = plan_call(dev, seed, t_s, temperature_K, t_prog_K)
    flat = g_target.reshape(-1).detach()
    base = torch.tensor(counter_base, dtype=torch.int64, device=flat.device)
    return _run(_conductances, dev, call, flat, base).view(g_target.shape)


def fault_draws(shape: tuple[int, ...], seed: int, *, counter_base: int = 0) -> dict[str, Tensor]:
    """The fault uniforms of devices ``counter_base + i`` (flattened ``shape``): ``u``
    (static kind), ``v`` and ``w`` (onset time and kind), float64 of ``shape``."""
    n = math.prod(shape)
    ctr = torch.arange(n, dtype=torch.int64) + counter_base
    u = _uniform(torch.tensor(derive_seed(seed, S_FAULT)), ctr)
    von, won = _onset_uniforms(torch.tensor(derive_seed(seed, S_ONSET)), ctr)
    return {"u": u.view(shape), "v": von.view(shape), "w": won.view(shape)}
