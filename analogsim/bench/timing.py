"""Timing helper of the benchmarks: functions timed round-robin, median of each.

Interleaving the functions round by round (rather than timing one, then the other) makes
a busy machine slow them all alike, so their ratio stays meaningful.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def interleaved(
    fns: dict[str, Callable[[], Any]], rounds: int = 7, warmup: int = 2
) -> dict[str, float]:
    """Median seconds of each function, timed round-robin."""
    for _ in range(warmup):
        for f in fns.values():
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


__all__ = ["interleaved"]
