"""The worker side of the runner: what runs inside a worker process (or a Ray actor).

A worker is set up once (:func:`setup`: torch threads, quiet logs) and then runs many
points (:func:`execute`); its models stay loaded between points
(:mod:`analogsim.runner.cache`). Nothing here depends on which worker runs a point: a
point's numbers come from its task alone.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback

from analogsim.runner.points import PointResult, Task

__all__ = ["execute", "setup"]


def setup(threads: int) -> None:
    """Prepare this process to run points: ``threads`` torch intra-op threads (the local
    executor uses 1, so N workers on N cores do not oversubscribe them and the numbers
    do not depend on N: see :class:`analogsim.runner.executor.LocalExecutor`), one
    inter-op thread, transformers' bars and info logs off. Called once per worker
    (the process pool's initializer; a Ray actor's constructor)."""
    import torch  # lazy: the runner's parent process imports this module to configure

    torch.set_num_threads(max(1, int(threads)))
    with contextlib.suppress(RuntimeError):  # already set in this process (inline runs)
        torch.set_num_interop_threads(1)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def execute(task: Task) -> PointResult:
    """Run one point: look up the study's point function, call it as
    ``fn(settings, point) -> list of rows``, time it. An exception becomes the result's
    ``error`` (the point is retried on the next run), never a dead worker."""
    from analogsim.runner.pointfns import POINT_FUNCTIONS

    t0 = time.perf_counter()
    worker = f"pid {os.getpid()}"
    try:
        fn = POINT_FUNCTIONS[task.study]
        rows = fn(task.settings, task.point)
    except Exception as exc:  # reported by the runner with the point's coordinates
        tb = traceback.format_exc(limit=6)
        return PointResult(
            task.point,
            seconds=time.perf_counter() - t0,
            worker=worker,
            error=f"{type(exc).__name__}: {exc}\n{tb}",
        )
    return PointResult(task.point, rows=list(rows), seconds=time.perf_counter() - t0, worker=worker)
