"""Explicit, reproducible randomness.

Device state is *regenerated* from seeds instead of stored: every random quantity of a
device (programming error, drift exponent, read-noise increments, fault draws) is a
function of ``(layer seed, stream, index, chunk)``. Weights are processed in fixed-size
chunks of elements; each chunk seeds its own ``torch.Generator`` from a hash of those
keys. The numbers therefore do not depend on how many threads run, on the order of
evaluation, or on how often the clock ticks: same seed, same numbers.

Fresh per-forward noise (output noise, per-MVM read noise) comes from
:class:`NoiseStream`, a pair of seeded generators that fill large buffers from two
threads (torch's CPU normal sampler is single-threaded; two halves filled at once take
about half the time on this 2-core machine).
"""

from __future__ import annotations

import hashlib
import os
import struct
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor

CHUNK = 1 << 18
"""Elements per independently seeded chunk (fixed: changing it changes every number)."""

_POOL: ThreadPoolExecutor | None = None


def derive_seed(*keys: int | str) -> int:
    """A 63-bit seed from a tuple of integers and strings (BLAKE2b; order matters)."""
    h = hashlib.blake2b(digest_size=8)
    for k in keys:
        if isinstance(k, str):
            h.update(b"s" + k.encode())
        else:
            h.update(b"i" + struct.pack("<q", int(k) & 0x7FFFFFFFFFFFFFFF))
    return int.from_bytes(h.digest(), "little") & 0x7FFFFFFFFFFFFFFF


def pool() -> ThreadPoolExecutor:
    """The shared worker pool (one thread per torch intra-op thread, at least 2)."""
    global _POOL
    if _POOL is None:
        workers = max(2, min(torch.get_num_threads(), os.cpu_count() or 2))
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="analogsim")
    return _POOL


def chunk_generator(seed: int, chunk: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of chunk ``chunk`` of a stream whose seed is ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(seed, chunk))
    return gen


class NoiseStream:
    """Fresh standard-normal noise for forward passes, reproducible from one seed.

    Two generators fill the two halves of a buffer in parallel threads (on CPU);
    on other devices one generator fills it at once. Reseeding with the same seed
    replays the same sequence of buffers.
    """

    def __init__(self, seed: int, device: torch.device | str = "cpu") -> None:
        self.seed = int(seed)
        self.device = torch.device(device)
        self._gens = [chunk_generator(self.seed, i, self.device) for i in range(2)]

    def reseed(self, seed: int) -> None:
        """Restart the sequence from ``seed``."""
        self.seed = int(seed)
        for i, g in enumerate(self._gens):
            g.manual_seed(derive_seed(self.seed, i))

    def to(self, device: torch.device | str) -> NoiseStream:
        """The same stream, restarted, on another device."""
        return NoiseStream(self.seed, device)

    def fill_(self, buf: Tensor) -> Tensor:
        """Fill ``buf`` (contiguous) with standard normals in place and return it."""
        n = buf.numel()
        if buf.device.type != "cpu" or n < (1 << 17):
            return buf.normal_(generator=self._gens[0])
        flat = buf.view(-1)
        half = n // 2
        fut = pool().submit(flat[half:].normal_, generator=self._gens[1])
        flat[:half].normal_(generator=self._gens[0])
        fut.result()
        return buf


def run_chunks(work, jobs: list) -> None:
    """Run ``work(job)`` for every job, in parallel on the shared pool when it pays.

    Each job writes its own slice, so the result does not depend on scheduling. Torch
    ops inside release the GIL; with a single job (small tensors) it runs inline.
    """
    if len(jobs) <= 1 or torch.get_num_threads() <= 1:
        for job in jobs:
            work(job)
        return
    futures = [pool().submit(work, job) for job in jobs]
    for f in futures:
        f.result()


# --------------------------------------------------------------------------------------
# counter-based draws: a pure function of (key, counter), computed inside fused kernels


def _signed64(c: int) -> int:
    """An unsigned 64-bit constant as the int64 torch holds it (two's complement)."""
    return c - (1 << 64) if c >= (1 << 63) else c


_GOLDEN = _signed64(0x9E3779B97F4A7C15)
_MIX1 = _signed64(0xBF58476D1CE4E5B9)
_MIX2 = _signed64(0x94D049BB133111EB)
_U24 = 2.0**-24
TWO_PI = 6.283185307179586


def _shr(z: Tensor, s: int) -> Tensor:
    """Logical right shift of int64 bits (torch's ``>>`` is arithmetic)."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def counter_bits(key: Tensor | int, ctr: Tensor) -> Tensor:
    """64 random bits (int64) per counter: SplitMix64's output function at position ``ctr``
    of the stream ``key``.

    ``mix(key + (ctr + 1) * 0x9E3779B97F4A7C15)`` with Stafford's variant-13 finalizer
    (Steele, Lea, Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014):
    the counter-based form of SplitMix64, which passes BigCrush. ``key`` is a 63-bit
    :func:`derive_seed` value (a Python int or an int64 tensor, 0-d or broadcastable);
    integer products wrap modulo 2^64 as the generator needs. Pure tensor operations, so
    the same numbers come from eager torch and from a fused (inductor) kernel, on any
    number of threads.
    """
    z = (ctr + 1) * _GOLDEN + key
    z = (z ^ _shr(z, 30)) * _MIX1
    z = (z ^ _shr(z, 27)) * _MIX2
    return z ^ _shr(z, 31)


def bits_uniforms(z: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Two uniforms from 64 bits: ``(b + 1/2)/2^24`` of the top 24 bits (in (0, 1)) and
    ``b/2^24`` of the next 24 (in [0, 1))."""
    u1 = (_shr(z, 40).to(dtype) + 0.5) * _U24
    u2 = (_shr(z, 16) & 0xFFFFFF).to(dtype) * _U24
    return u1, u2


def counter_normal_pair(
    key: Tensor | int, ctr: Tensor, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """Two independent standard normals per counter (Box-Muller on :func:`bits_uniforms`).

    Exact Box-Muller on 24-bit uniforms: the radius ``sqrt(-2 ln u1)`` is at most 5.9, so
    ``|x| > 5.9`` (probability 3.6e-9 for a true normal) never occurs; every other
    property (mean, variance, independence) is that of the normal distribution up to the
    24-bit resolution of the uniforms.
    """
    u1, u2 = bits_uniforms(counter_bits(key, ctr), dtype)
    r = torch.sqrt(torch.log(u1) * -2.0)
    a = u2 * TWO_PI
    return r * torch.cos(a), r * torch.sin(a)


def counter_normal(key: Tensor | int, ctr: Tensor, dtype: torch.dtype) -> Tensor:
    """One standard normal per counter (the cosine half of :func:`counter_normal_pair`)."""
    u1, u2 = bits_uniforms(counter_bits(key, ctr), dtype)
    return torch.sqrt(torch.log(u1) * -2.0) * torch.cos(u2 * TWO_PI)


def counter_uniform(key: Tensor | int, ctr: Tensor, dtype: torch.dtype) -> Tensor:
    """One uniform in (0, 1) per counter (24-bit resolution)."""
    return bits_uniforms(counter_bits(key, ctr), dtype)[0]
