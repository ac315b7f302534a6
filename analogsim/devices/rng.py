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
