r"""The fused tile epilogue: noise, ADC, clipping and the digital sum in one pass (CPU).

:func:`analogsim.tiles.io.tile_mvm` leaves the products of every tile in a ``(T, M, N)``
buffer ``P`` (raw ``c @ w^T`` per tile, DAC codes times normalised weights). The epilogue
turns them into the layer output in one pass over ``P``, for every output ``(m, n)``:

.. math::

    y_{mn} = \alpha_m g_n \sum_t \mathrm{clip}\big(\mathrm{round}(a P_{tmn} + s_{tmn}
             z_{tmn}), \pm b\big) + \beta_n,
    \qquad s_{tmn} = \sqrt{o^2 + v V_{tmn}} / \Delta

with ``a = u / Delta`` (DAC unit over ADC step), ``o`` the output noise, ``V`` the optional
read-noise variance sums ``sum_j c_j^2 |w_ij|`` per tile (bfloat16 or float32), ``v`` their
scale, ``g`` the per-output scale (``out_step``), ``beta`` the bias, and ``z`` standard
normals generated *inside* the pass.

Random numbers (the same on every thread count and on the GPU kernel,
:mod:`analogsim.tiles.triton_epilogue`): Philox4x32-10 (Salmon et al., SC'11, "Parallel random
numbers: as easy as 1, 2, 3"), keyed by a 63-bit key drawn once per call from the caller's
noise stream (so a layer's seed replays the same sequence of calls, and two calls share a
key with probability ``~2^-63``). The normal ``z`` of tile ``t``, row ``m``, column ``n``
comes from counter ``(16 (n // 64) + n % 16, t M + m, 0, 0)``, word ``j = (n % 64) // 16``:
words 0 and 1 (2 and 3) are one Box-Muller pair, ``r = sqrt(-2 ln u1)`` with
``u1 = (w + 1) 2^-32`` in ``(0, 1]`` and angle ``2 pi w' 2^-32``; even ``j`` takes the cosine
(computed as the sine of the angle plus ``pi / 2``), odd ``j`` the sine. Box-Muller is exact;
what is approximated is float32 arithmetic (the logarithm and sine are glibc's vector math,
at most 4 ulp) and the tail: ``|z|`` never exceeds ``sqrt(64 ln 2) = 6.66``
(probability ``2.7e-11`` per normal of a true Gaussian). Each output is computed by one
thread from its own counters, so the result does not depend on the number of threads.

Why a compiled kernel (measured, ``docs/benchmarks.md``): inductor's in-kernel ``randn`` on
CPU runs one scalar Philox per element (``randn_cpu`` in its C++ prelude: a fresh engine per
element, one of its four words used) with a 32-bit seed; the same epilogue compiled by
``torch.compile`` took 508 ms against 260 ms for the eager chain on the wide MLP's partials
(8 x 256 x 4096). This kernel is plain C (no torch headers, about 0.4 s to build with the
C compiler torch's own inductor needs), vectorised by the compiler (16 lanes; glibc's
``libmvec`` for ``log`` and ``sin``), built on first use into the cache
(``~/.cache/analogsim/kernels``, keyed by its source, compiler and CPU flags) and called
through ``ctypes`` (which releases the GIL, so row blocks run in parallel on the shared
pool). Without a compiler, :func:`available` is False and ``tile_mvm`` keeps the torch path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from analogsim.devices.rng import NoiseStream, pool

GROUP = 64
"""Columns per counter group: 16 Philox blocks x 4 words."""

MIN_PARALLEL = 1 << 16
"""Outputs x tiles from which the epilogue splits its rows over the worker pool."""

_SOURCE = r"""
#include <stdint.h>
#include <math.h>
#include <string.h>
#define L 16
#define G 64
static inline void philox16(const uint32_t *c0, uint32_t c1, uint32_t k0, uint32_t k1,
                            uint32_t *o0, uint32_t *o1, uint32_t *o2, uint32_t *o3) {
#pragma omp simd
  for (int i = 0; i < L; i++) {
    uint32_t x0 = c0[i], x1 = c1, x2 = 0, x3 = 0, a = k0, b = k1;
#pragma GCC unroll 10
    for (int r = 0; r < 10; r++) {
      uint64_t p0 = (uint64_t)0xD2511F53u * x0, p1 = (uint64_t)0xCD9E8D57u * x2;
      uint32_t y0 = (uint32_t)(p1 >> 32) ^ x1 ^ a, y2 = (uint32_t)(p0 >> 32) ^ x3 ^ b;
      x1 = (uint32_t)p1; x3 = (uint32_t)p0; x0 = y0; x2 = y2;
      a += 0x9E3779B9u; b += 0xBB67AE85u;
    }
    o0[i] = x0; o1[i] = x1; o2[i] = x2; o3[i] = x3;
  }
}
static inline void normals64(uint64_t g, uint32_t row, uint32_t k0, uint32_t k1, float *z) {
  uint32_t c0[L], w0[L], w1[L], w2[L], w3[L];
  for (int i = 0; i < L; i++) c0[i] = (uint32_t)(g * L + i);
  philox16(c0, row, k0, k1, w0, w1, w2, w3);
  const float s = 2.3283064365386963e-10f, tp = 6.283185307179586f, hp = 1.5707963267948966f;
#pragma omp simd
  for (int i = 0; i < L; i++) {
    float ra = sqrtf(-2.0f * logf(((float)w0[i] + 1.0f) * s));
    float ta = tp * ((float)w1[i] * s);
    float rb = sqrtf(-2.0f * logf(((float)w2[i] + 1.0f) * s));
    float tb = tp * ((float)w3[i] * s);
    z[i] = ra * sinf(ta + hp); z[L + i] = ra * sinf(ta);
    z[2 * L + i] = rb * sinf(tb + hp); z[3 * L + i] = rb * sinf(tb);
  }
}
/* DAC, dynamic range: alpha[m] = max(max_k |x[m,k]|, 1e-30); xs = x * ((1 / alpha) * lv),
   rounded (the torch path's operations in its order, so the same codes). */
void analogsim_dac(const float *x, float *xs, float *alpha, int64_t m0, int64_t m1,
                   int64_t K, float lv, int do_round) {
  for (int64_t m = m0; m < m1; m++) {
    const float *xr = x + m * K;
    float *o = xs + m * K;
    float a = 0.0f;
#pragma omp simd reduction(max : a)
    for (int64_t k = 0; k < K; k++) a = fmaxf(a, fabsf(xr[k]));
    a = fmaxf(a, 1e-30f);
    alpha[m] = a;
    volatile float r = 1.0f / a; /* not folded into lv / a by -ffast-math */
    const float s = r * lv;
    if (do_round) {
#pragma omp simd
      for (int64_t k = 0; k < K; k++) o[k] = rintf(xr[k] * s);
    } else {
#pragma omp simd
      for (int64_t k = 0; k < K; k++) o[k] = xr[k] * s;
    }
  }
}
/* var_kind: 0 none, 1 bfloat16, 2 float32 */
void analogsim_epilogue(const float *parts, const void *var, int var_kind, float *out,
    const float *alpha, const float *ostep, const float *bias, int64_t T, int64_t M,
    int64_t N, int64_t m0, int64_t m1, float pscale, float onoise2, float vscale,
    float inv_step, float yscale, float clip, int do_round, int noisy, uint64_t key) {
  const uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  const float lo = clip > 0 ? -clip : -INFINITY, hi = clip > 0 ? clip : INFINITY;
  const float sd0 = sqrtf(onoise2) * inv_step;
  float z[G], acc[G], p[G], sd[G];
  for (int64_t m = m0; m < m1; m++) {
    const float am = alpha ? alpha[m] * yscale : yscale;
    for (int64_t n0 = 0; n0 < N; n0 += G) {
      const int64_t nn = N - n0 < G ? N - n0 : G;
      for (int l = 0; l < G; l++) acc[l] = 0.0f;
      for (int64_t t = 0; t < T; t++) {
        const int64_t off = (t * M + m) * N + n0;
        memset(p, 0, sizeof p);
        memcpy(p, parts + off, nn * sizeof(float));
        if (noisy) {
          normals64((uint64_t)(n0 / G), (uint32_t)(t * M + m), k0, k1, z);
          if (var_kind == 1) {
            const uint16_t *vb = (const uint16_t *)var + off;
            for (int l = 0; l < G; l++) {
              uint32_t bits = l < nn ? ((uint32_t)vb[l]) << 16 : 0u;
              float v; memcpy(&v, &bits, 4);
              sd[l] = sqrtf(onoise2 + vscale * v) * inv_step;
            }
          } else if (var_kind == 2) {
            const float *vf = (const float *)var + off;
            for (int l = 0; l < G; l++) {
              float v = l < nn ? vf[l] : 0.0f;
              sd[l] = sqrtf(onoise2 + vscale * v) * inv_step;
            }
          } else {
            for (int l = 0; l < G; l++) sd[l] = sd0;
          }
          if (do_round) {
#pragma omp simd
            for (int l = 0; l < G; l++)
              acc[l] += fminf(fmaxf(rintf(p[l] * pscale + sd[l] * z[l]), lo), hi);
          } else {
#pragma omp simd
            for (int l = 0; l < G; l++)
              acc[l] += fminf(fmaxf(p[l] * pscale + sd[l] * z[l], lo), hi);
          }
        } else if (do_round) {
#pragma omp simd
          for (int l = 0; l < G; l++) acc[l] += fminf(fmaxf(rintf(p[l] * pscale), lo), hi);
        } else {
#pragma omp simd
          for (int l = 0; l < G; l++) acc[l] += fminf(fmaxf(p[l] * pscale, lo), hi);
        }
      }
      float *o = out + m * N + n0;
      if (ostep && bias) {
        for (int l = 0; l < nn; l++) o[l] = acc[l] * am * ostep[n0 + l] + bias[n0 + l];
      } else if (ostep) {
        for (int l = 0; l < nn; l++) o[l] = acc[l] * am * ostep[n0 + l];
      } else if (bias) {
        for (int l = 0; l < nn; l++) o[l] = acc[l] * am + bias[n0 + l];
      } else {
        for (int l = 0; l < nn; l++) o[l] = acc[l] * am;
      }
    }
  }
}
"""

_FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp-simd", "-fPIC"]
# Linked in a second step without the math flags: gcc before 13 links crtfastmath.o into
# a shared library built with -ffast-math, which sets flush-to-zero for the whole process
# on load (every later float op of the user's program would lose subnormals).
_LINK = ["-shared"]
_LOCK = threading.Lock()
_LIB: Any = None
_DAC: Any = None
_TRIED = False
_ERROR: str | None = None


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return platform.processor()


def _kernel_dir() -> Path:
    from analogsim.paths import cache_dir  # lazy: paths is ground, a cheap import

    path = cache_dir() / "kernels"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _build() -> Any:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeError("no C compiler (cc or gcc) on PATH")
    tag = hashlib.sha256(
        "\0".join([_SOURCE, cc, " ".join(_FLAGS), " ".join(_LINK), _cpu_flags()]).encode()
    ).hexdigest()[:16]
    lib_path = _kernel_dir() / f"epilogue-{tag}.so"
    if not lib_path.exists():
        with tempfile.TemporaryDirectory(dir=lib_path.parent) as tmp:
            src = Path(tmp) / "epilogue.c"
            src.write_text(_SOURCE)
            tmp_obj, tmp_lib = Path(tmp) / "epilogue.o", Path(tmp) / "epilogue.so"
            for step in (
                [cc, *_FLAGS, "-c", "-o", str(tmp_obj), str(src)],
                [cc, *_LINK, "-o", str(tmp_lib), str(tmp_obj), "-lm"],
            ):
                res = subprocess.run(step, capture_output=True, text=True, timeout=120)
                if res.returncode != 0:
                    raise RuntimeError(f"building the epilogue kernel failed: {res.stderr[-500:]}")
            os.replace(tmp_lib, lib_path)  # atomic: concurrent builders agree
    lib = ctypes.CDLL(str(lib_path))
    fn = lib.analogsim_epilogue
    p, i64, f32, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_int
    fn.argtypes = [p, p, i32, p, p, p, p, i64, i64, i64, i64, i64]
    fn.argtypes += [f32] * 6 + [i32, i32, ctypes.c_uint64]
    fn.restype = None
    dac = lib.analogsim_dac
    dac.argtypes = [p, p, p, i64, i64, i64, f32, i32]
    dac.restype = None
    return fn, dac


def available() -> bool:
    """True when the CPU kernel is built (or builds now) and loads."""
    global _LIB, _DAC, _TRIED, _ERROR
    if _TRIED:
        return _LIB is not None
    with _LOCK:
        if not _TRIED:
            try:
                _LIB, _DAC = _build()
            except Exception as exc:  # no compiler, no libmvec, read-only cache, ...
                _ERROR = str(exc)
            _TRIED = True
    return _LIB is not None


def unavailable_reason() -> str | None:
    """Why :func:`available` is False (None when it is True or was not tried)."""
    return _ERROR


# ---------------------------------------------------------------------------- keys
def keyed_stream(normals: Any) -> NoiseStream | None:
    """The :class:`~analogsim.devices.rng.NoiseStream` whose ``fill_`` ``normals`` is, or None.

    Only such calls are fused: a key can be drawn from the stream. Any other ``normals``
    (training's pooled noise source, a test's fixed normals) keeps the values it fills, so
    those calls take the torch epilogue.
    """
    owner = getattr(normals, "__self__", None)
    return owner if isinstance(owner, NoiseStream) else None


def call_key(normals: Any, device: torch.device) -> Tensor:
    """One Philox key for one call, drawn from the caller's noise stream (``normals`` is a
    :class:`~analogsim.devices.rng.NoiseStream`'s ``fill_``): 63 random bits from the
    stream's first generator (so reseeding replays the keys), a one-element int64 tensor on
    ``device`` (the stream's device: nothing waits on a GPU)."""
    stream = keyed_stream(normals)
    if stream is None:
        raise TypeError("the fused epilogue draws its key from a NoiseStream's fill_")
    gen = stream._gens[0]  # 63 random bits: random_ on int64 spans [0, 2^63)
    return torch.empty(1, dtype=torch.int64, device=device).random_(generator=gen)


# ---------------------------------------------------------------------------- the call
def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def epilogue_cpu(
    parts: Tensor,
    out: Tensor,
    *,
    alpha: Tensor | None,
    out_step: Tensor | None,
    bias: Tensor | None,
    var: Tensor | None,
    pscale: float,
    out_noise: float,
    var_scale: float,
    step: float,
    yscale: float,
    clip: float,
    do_round: bool,
    key: int | None,
) -> Tensor:
    """Run the fused epilogue (module docstring) into ``out (M, N)``.

    Args:
        parts: ``(T, M, N)`` float32 tile products, contiguous.
        out: ``(M, N)`` float32, contiguous (written).
        alpha: ``(M,)`` float32 DAC scale per row, or None (1).
        out_step: ``(N,)`` float32 per-output factor, or None (1).
        bias: ``(N,)`` float32, or None.
        var: ``(T, M, N)`` bfloat16 or float32 read-noise variance sums, or None.
        pscale, out_noise, var_scale, step, yscale, clip, do_round: the constants of the
            module docstring (``yscale`` multiplies every output; ``clip`` 0 = none).
        key: the call's Philox key; None: no noise.
    """
    if not available():
        raise RuntimeError(f"the fused CPU epilogue is not available: {_ERROR}")
    t_, m, n = parts.shape
    var_kind = 0 if var is None else (1 if var.dtype == torch.bfloat16 else 2)
    noisy = key is not None and (out_noise > 0 or var is not None)
    ukey = 0 if key is None else key & ((1 << 64) - 1)
    args = (
        _ptr(parts),
        _ptr(var),
        var_kind,
        _ptr(out),
        _ptr(alpha),
        _ptr(out_step),
        _ptr(bias),
        t_,
        m,
        n,
    )
    consts = (
        pscale,
        out_noise * out_noise,
        var_scale,
        1.0 / step,
        yscale,
        clip,
        int(do_round),
        int(noisy),
        ukey,
    )
    _split_rows(_LIB, m, t_ * m * n, args, consts)
    return out


def _split_rows(fn: Any, m: int, work: int, *args: Any) -> None:
    """``fn(*args[:k], m0, m1, *args[k:])`` over row blocks, on the pool when it pays;
    ``args`` is ``(head, tail)``."""
    head, tail = args
    workers = min(torch.get_num_threads(), m)
    if workers <= 1 or work < MIN_PARALLEL:
        fn(*head, 0, m, *tail)
        return
    bounds = [m * i // workers for i in range(workers + 1)]
    futures = [pool().submit(fn, *head, bounds[i], bounds[i + 1], *tail) for i in range(1, workers)]
    fn(*head, bounds[0], bounds[1], *tail)
    for f in futures:
        f.result()


def dac_cpu(x: Tensor, xs: Tensor, alpha: Tensor, levels: int, do_round: bool) -> None:
    """The dynamic-range DAC in one pass per row: ``alpha (M,)`` the row's max ``|x|`` (at
    least 1e-30), ``xs (M, K) = round(x * ((1 / alpha) * levels))`` (the torch path's
    operations, so the same codes). All float32, contiguous."""
    if not available():
        raise RuntimeError(f"the fused CPU epilogue is not available: {_ERROR}")
    m, k = x.shape
    head = (x.data_ptr(), xs.data_ptr(), alpha.data_ptr())
    _split_rows(_DAC, m, m * k, head, (k, float(levels), int(do_round)))


# ---------------------------------------------------------------------------- reference
_M0, _M1, _W0, _W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85


def philox4x32(ctr: np.ndarray, key: tuple[int, int], rounds: int = 10) -> np.ndarray:
    """Reference Philox4x32 in numpy: ``ctr (..., 4)`` uint32 counters -> ``(..., 4)`` words."""
    c = [ctr[..., i].astype(np.uint64) for i in range(4)]
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    mask = np.uint64(0xFFFFFFFF)
    for _ in range(rounds):
        p0 = np.uint64(_M0) * c[0]
        p1 = np.uint64(_M1) * c[2]
        c = [
            ((p1 >> np.uint64(32)) ^ c[1] ^ k0) & mask,
            p1 & mask,
            ((p0 >> np.uint64(32)) ^ c[3] ^ k1) & mask,
            p0 & mask,
        ]
        k0 = (k0 + np.uint64(_W0)) & mask
        k1 = (k1 + np.uint64(_W1)) & mask
    return np.stack(c, axis=-1).astype(np.uint32)


def reference_normals(key: int, t: int, m: int, n: int) -> np.ndarray:
    """The epilogue's normals ``z (t, m, n)`` for ``key``, in float64 (module docstring)."""
    key &= (1 << 64) - 1
    cols = np.arange(n)
    row = np.arange(t * m, dtype=np.uint64)
    ctr = np.zeros((t * m, n, 4), dtype=np.uint32)
    ctr[..., 0] = (16 * (cols // GROUP) + cols % 16).astype(np.uint32)
    ctr[..., 1] = row[:, None].astype(np.uint32)
    words = philox4x32(ctr, (key & 0xFFFFFFFF, key >> 32)).astype(np.float64)
    j = (cols % GROUP) // 16
    first = np.where(j < 2, 0, 2)
    w_u = np.take_along_axis(words, np.broadcast_to(first[None, :, None], (t * m, n, 1)), -1)
    w_a = np.take_along_axis(words, np.broadcast_to(first[None, :, None] + 1, (t * m, n, 1)), -1)
    r = np.sqrt(-2.0 * np.log((w_u[..., 0] + 1.0) * 2.0**-32))
    theta = 2 * np.pi * w_a[..., 0] * 2.0**-32
    z = np.where(j % 2 == 0, r * np.cos(theta), r * np.sin(theta))
    return z.reshape(t, m, n)


__all__ = [
    "GROUP",
    "available",
    "call_key",
    "dac_cpu",
    "epilogue_cpu",
    "keyed_stream",
    "philox4x32",
    "reference_normals",
    "unavailable_reason",
]
