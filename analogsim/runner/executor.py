"""Executors: where the points of a run are computed.

The protocol (:class:`Executor`) is small so that a cluster backend fits it:

* the runner calls :meth:`Executor.run` once with every task still to do, in grid order
  (tasks of one model are consecutive, so a worker's model cache is reused);
* ``run`` yields one :class:`~analogsim.runner.points.PointResult` per task as each
  finishes, in any order; the runner writes each to the run directory as it arrives
  (the parent process is the only writer, so workers never touch the journal);
* in the worker, each task runs through :func:`analogsim.runner.worker.execute`, after
  :func:`analogsim.runner.worker.setup` ran once in that worker (torch threads);
* a point that raises comes back with ``error`` set (not written; a rerun retries it);
  a worker that dies (``kill -9``, out of memory) must not lose other points: the
  executor restarts its workers and resubmits the tasks that were in flight, up to
  ``retries`` times per run, then yields those tasks with ``error`` set.

:class:`LocalExecutor` runs a pool of ``spawn``-ed processes on this machine;
:class:`InlineExecutor` runs the tasks in the calling process (debugging, tests).
"""

from __future__ import annotations

import multiprocessing
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from analogsim.runner import worker
from analogsim.runner.points import PointResult, Task

__all__ = [
    "Executor",
    "InlineExecutor",
    "LocalExecutor",
    "threads_per_worker",
]


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch intra-op threads per worker so that ``workers`` processes share the cores
    without oversubscribing them: ``max(1, cores // workers)``."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, workers))


class Executor(ABC):
    """Runs tasks and streams their results back as they finish.

    Attributes:
        workers: how many points run at the same time (for the progress line and ETA).
        name: a short description (``local, 2 processes``) for the manifest and report.
    """

    workers: int = 1
    name: str = "executor"

    @abstractmethod
    def run(self, tasks: Sequence[Task]) -> Iterator[PointResult]:
        """Yield one result per task, each as soon as it is finished (any order)."""

    def close(self) -> None:  # noqa: B027 (optional: executors without workers keep it)
        """Release workers (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class InlineExecutor(Executor):
    """Every task in the calling process, one after the other (no parallelism)."""

    def __init__(self, threads: int | None = None) -> None:
        self.workers = 1
        self.name = "inline (this process)"
        self._threads = threads

    def run(self, tasks: Sequence[Task]) -> Iterator[PointResult]:
        if self._threads is not None:
            worker.setup(self._threads)
        for task in tasks:
            yield worker.execute(task)


class LocalExecutor(Executor):
    """A pool of ``workers`` spawned processes on this machine.

    Each process runs :func:`worker.setup` with ``threads`` torch threads and keeps its
    models loaded between points. The default is one thread per worker, whatever
    ``workers``: a reduction split over several threads sums in another order, so with
    ``cores // workers`` threads one worker (2 threads) and two workers (1 thread each)
    gave entropies that differed in the 8th digit; with one thread each, the numbers are
    bit-identical for any worker count, and parallelism comes from ``workers`` (use as
    many as cores). At most
    ``workers`` tasks are in flight at a time, so a killed worker loses only its own
    point(s), which are resubmitted to a fresh pool (at most ``retries`` pool restarts
    per run; after that the tasks in flight come back as errors).
    """

    def __init__(self, workers: int = 1, *, threads: int | None = None, retries: int = 3) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = int(workers)
        self.threads = threads if threads is not None else 1
        self.retries = retries
        self.restarts = 0
        self.name = f"local, {self.workers} process{'es' if self.workers > 1 else ''}"
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=worker.setup,
            initargs=(self.threads,),
        )

    def pids(self) -> list[int]:
        """Process ids of the live workers (tests kill one)."""
        procs = getattr(self._pool, "_processes", None) or {}
        return [p.pid for p in procs.values() if p.is_alive()]

    def run(self, tasks: Sequence[Task]) -> Iterator[PointResult]:
        todo = list(reversed(tasks))  # pop() from the end: grid order
        running: dict[Future, Task] = {}
        if self._pool is None:
            self._pool = self._new_pool()
        while todo or running:
            while todo and len(running) < self.workers:
                task = todo.pop()
                try:
                    running[self._pool.submit(worker.execute, task)] = task
                except BrokenProcessPool:
                    todo.append(task)
                    break
            if not running:  # the pool broke before anything was submitted
                yield from self._restart(todo, [])
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            broken: list[Task] = []
            for fut in done:
                task = running.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    broken.append(task)
            if broken:
                # every task in flight is lost with the pool: wait for them, resubmit
                for fut in list(running):
                    task = running.pop(fut)
                    try:
                        yield fut.result()
                    except BrokenProcessPool:
                        broken.append(task)
                yield from self._restart(todo, broken)

    def _restart(self, todo: list[Task], lost: list[Task]) -> Iterator[PointResult]:
        """A worker died: a new pool, the lost tasks first again; or, after ``retries``
        restarts, the lost tasks as errors."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None
        self.restarts += 1
        if self.restarts > self.retries:
            for task in lost:
                yield PointResult(
                    task.point,
                    error=f"a worker process died {self.restarts} times in this run "
                    "(killed, or out of memory); the point was not measured",
                )
            lost = []
        todo.extend(reversed(sorted(lost, key=lambda t: t.point.index)))
        self._pool = self._new_pool()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
