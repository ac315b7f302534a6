"""The Ray executor: the points of an experiment on a Ray cluster (``--cluster ray``).

Placement: one long-lived Ray *actor* per worker. Each actor runs
:func:`analogsim.runner.worker.setup` once (torch threads = the CPUs Ray gave it) and then
many points, one at a time, so the per-process model cache
(:mod:`analogsim.runner.cache`) keeps the model loaded between points: a model is loaded
once per worker, not once per point. The driver hands the next task (in grid order, so
one model's points are consecutive) to whichever actor is free, and yields each result as
soon as it arrives; the runner's parent process stays the only writer of the run
directory.

Resources: each actor holds ``cpus_per_worker`` CPUs (default: the cluster's CPUs shared
out, at most one node's worth) and a GPU when the experiment's settings ask for CUDA
(``device = "cuda"`` or ``torch_device = "cuda:0"``), so a point runs with the resources
of the actor that runs it. Actors are spread over the nodes (``SPREAD``).

Faults: an actor whose process or node dies is restarted by Ray (``max_restarts``) and
its point re-executed (``max_task_retries``); if Ray gives up (restarts used up, actor
gone), the executor replaces the actor and resubmits the point itself; a point that
waits far longer than the others while a worker is idle gets a backup copy there (an
actor that Ray cannot place again). Either way the driver yields exactly one result per
task, the first to arrive (a point is written once), and after
``retries`` failed attempts the point comes back with ``error`` set (not written; a
rerun with the same ``--out`` retries it). A point's numbers depend only on its task
(seed from the config and its coordinates), so any worker count, any node, a retry and
the local executor give the same results.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from analogsim.errors import ConfigError, MissingDependencyError
from analogsim.runner import worker
from analogsim.runner.executor import Executor
from analogsim.runner.points import PointResult, Task

__all__ = ["PointWorker", "RayExecutor", "import_ray", "wait_for_nodes", "wants_gpu"]

EXTRA = "ray"
#: settings keys whose value, when it starts with ``cuda``, asks for a GPU per worker
GPU_KEYS = ("device", "torch_device")
POLL_S = 5.0  # the driver looks at stragglers at least this often
#: a point in flight longer than max(STRAGGLER_MIN_S, STRAGGLER_FACTOR x the median point)
#: while a worker is idle and nothing else is left gets a backup copy
STRAGGLER_MIN_S = 60.0
STRAGGLER_FACTOR = 5.0


def import_ray() -> Any:
    """The ``ray`` module, or :class:`MissingDependencyError` naming the pip extra."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError(
            "--cluster ray needs Ray, which is not installed: "
            f'pip install "analogsim[{EXTRA}]" (Ray 2.60; about a minute), '
            "or run without --cluster (the local process pool)"
        ) from exc
    return ray


def wants_gpu(settings: Mapping[str, Any]) -> bool:
    """Whether an experiment's settings ask for CUDA (a GPU per worker)."""
    return any(str(settings.get(k, "")).lower().startswith("cuda") for k in GPU_KEYS)


class PointWorker:
    """The body of one Ray actor: set up once, then run points (see the module doc).

    Plain Python: :class:`RayExecutor` wraps it with ``ray.remote`` (so this module
    imports without Ray)."""

    def __init__(self) -> None:
        import ray

        ctx = ray.get_runtime_context()
        cpus = float(ctx.get_assigned_resources().get("CPU", 1.0))
        self.threads = max(1, int(cpus))
        self.node = ctx.get_node_id()
        worker.setup(self.threads)

    def info(self) -> dict[str, Any]:
        """Who this actor is (the driver waits on it before the first point)."""
        import analogsim

        return {
            "node": self.node,
            "pid": os.getpid(),
            "threads": self.threads,
            "version": analogsim.__version__,
        }

    def execute(self, task: Task) -> PointResult:
        """:func:`analogsim.runner.worker.execute`, labelled with the node."""
        res = worker.execute(task)
        res.worker = f"ray node {self.node[:8]} pid {os.getpid()}"
        return res


class RayExecutor(Executor):
    """Points on a Ray cluster: ``workers`` actors, each running one point at a time.

    Args:
        workers: actors (points in flight at once).
        address: ``None`` starts a local Ray runtime when none is running (or joins
            the one ``RAY_ADDRESS`` names); ``"auto"`` joins an existing cluster
            (``RAY_ADDRESS`` or one started on this machine by ``ray start``) and fails
            when there is none; ``"ray://HOST:PORT"`` joins through Ray Client;
            ``"HOST:PORT"`` joins a cluster's GCS directly (from one of its nodes).
        cpus_per_worker: CPUs each actor holds (default: the cluster's CPUs divided
            by ``workers``, at most the largest node's; fractional when there are more
            workers than CPUs). Its torch threads are the whole CPUs it holds (at least 1).
        gpus_per_worker: GPUs each actor holds (default: 1 when the settings ask for
            CUDA, see :func:`wants_gpu`, else 0).
        retries: attempts of a point beyond the first (Ray's ``max_task_retries`` and
            ``max_restarts``, then the executor's own resubmission).
        straggler_s: when nothing is left to hand out and a worker is idle, a point in
            flight longer than this gets a second copy on the idle worker (first result
            wins; default: 5 x the median point, at least 60 s). It keeps a run from
            waiting forever on an actor that Ray cannot place again (its node gone and
            no room elsewhere).
        init_kwargs: extra keyword arguments of ``ray.init`` (``runtime_env`` ...).

    Raises:
        MissingDependencyError: Ray is not installed (names the ``ray`` extra).
    """

    def __init__(
        self,
        workers: int = 1,
        *,
        address: str | None = None,
        cpus_per_worker: float | None = None,
        gpus_per_worker: float | None = None,
        retries: int = 3,
        straggler_s: float | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self._ray = import_ray()
        self.workers = int(workers)
        self.address = address
        self.cpus_per_worker = cpus_per_worker
        self.gpus_per_worker = gpus_per_worker
        self.retries = int(retries)
        self.straggler_s = straggler_s
        self.init_kwargs = dict(init_kwargs or {})
        where = {None: "local runtime", "auto": "RAY_ADDRESS"}.get(address, address)
        self.name = f"ray, {self.workers} worker{'s' if self.workers > 1 else ''} ({where})"
        self.replaced = 0  # actors the executor itself had to replace (Ray gave up)
        self.resubmitted = 0  # points the executor itself resubmitted
        self.backups = 0  # second copies of stragglers (see _back_up)
        self._actors: list[Any] = []
        self._infos: list[dict[str, Any]] = []
        self._connected = False
        self._owns_connection = False
        self._resources: dict[str, float] = {}
        self._actor_class: Any = None

    # ------------------------------------------------------------------ connection
    def connect(self) -> None:
        """Start or join the Ray runtime (once); an error names ``--cluster``."""
        ray = self._ray
        if self._connected:
            return
        if ray.is_initialized():  # the caller connected (tests, notebooks): keep it
            self._connected = True
            return
        kwargs: dict[str, Any] = {"logging_level": logging.WARNING, **self.init_kwargs}
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline, no prompt
        try:
            if self.address is None:
                try:  # join the cluster RAY_ADDRESS names, or one 'ray start'-ed here
                    ray.init(address="auto", **kwargs)
                except ConnectionError:  # none: start a runtime here, no dashboard
                    ray.init(**{"include_dashboard": False, **kwargs})
            else:
                ray.init(address=self.address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ConfigError(
                f"cannot reach the Ray cluster ({type(exc).__name__}: {exc})",
                key="--cluster",
                value=self.address or "ray",
                allowed="ray (start one here), auto (RAY_ADDRESS, or a cluster started "
                "with 'ray start' on this machine), ray://HOST:PORT (Ray Client, port 10001)",
            ) from None
        self._connected = True
        self._owns_connection = True

    def cluster_resources(self) -> dict[str, float]:
        """The cluster's total resources (``CPU``, ``GPU``, memory ...)."""
        self.connect()
        return dict(self._ray.cluster_resources())

    def _default_cpus(self) -> float:
        ray = self._ray
        total = float(ray.cluster_resources().get("CPU", 0.0))
        node_max = max(
            (float(n["Resources"].get("CPU", 0.0)) for n in ray.nodes() if n.get("Alive")),
            default=0.0,
        )
        if total <= 0 or node_max <= 0:
            return 1.0  # an autoscaling cluster with no worker yet: 1 CPU each
        share = total / self.workers
        if share >= 1:
            return float(min(int(share), int(node_max)) or 1)
        return round(share, 2)  # more workers than CPUs: fractional, all fit

    # ------------------------------------------------------------------ actors
    def _resources_for(self, tasks: Sequence[Task]) -> dict[str, float]:
        if not self._resources:
            cpus = self.cpus_per_worker or self._default_cpus()
            gpus = self.gpus_per_worker
            if gpus is None:
                gpus = 1.0 if any(wants_gpu(t.settings) for t in tasks[:1]) else 0.0
            self._resources = {"num_cpus": float(cpus), "num_gpus": float(gpus)}
        return self._resources

    def _new_actor(self) -> Any:
        if self._actor_class is None:
            self._actor_class = self._ray.remote(PointWorker)
        cls = self._actor_class.options(
            **self._resources,
            max_restarts=self.retries,
            max_task_retries=self.retries,
            max_concurrency=1,
            scheduling_strategy="SPREAD",
        )
        return cls.remote()

    def _start(self, tasks: Sequence[Task]) -> None:
        self.connect()
        if self._actors:
            return
        self._resources_for(tasks)
        self._actors = [self._new_actor() for _ in range(self.workers)]
        self._infos = self._ray.get([a.info.remote() for a in self._actors])
        import analogsim

        for info in self._infos:
            if info["version"] != analogsim.__version__:
                raise ConfigError(
                    "the cluster runs another analogsim version than this driver "
                    "(its numbers could differ)",
                    key="--cluster",
                    value=f"worker {info['version']}, driver {analogsim.__version__}",
                    allowed="the same analogsim on the driver and on every node",
                )

    def worker_info(self) -> list[dict[str, Any]]:
        """``{"node", "pid", "threads", "version"}`` of each actor when it started."""
        return list(self._infos)

    def _replace(self, slot: int) -> None:
        ray = self._ray
        with contextlib.suppress(Exception):  # already gone
            ray.kill(self._actors[slot], no_restart=True)
        self._actors[slot] = self._new_actor()
        self.replaced += 1

    # ------------------------------------------------------------------ run
    def run(self, tasks: Sequence[Task]) -> Iterator[PointResult]:
        """Yield one result per task as each finishes (see the module doc)."""
        if not tasks:
            return
        ray = self._ray
        from ray.exceptions import RayError, RayTaskError

        self._start(tasks)
        todo: deque[Task] = deque(tasks)
        idle: deque[int] = deque(range(len(self._actors)))
        running: dict[Any, tuple[Task, int, float]] = {}  # ref -> task, slot, start
        copies: dict[int, int] = {}  # point index -> copies in flight
        attempts: dict[int, int] = {}
        finished: set[int] = set()
        seconds: list[float] = []

        def submit() -> None:
            # before yielding: the runner writes each result between yields, and the
            # actors should not wait for that
            while todo and idle:
                slot, task = idle.popleft(), todo.popleft()
                if task.point.index in finished:
                    idle.appendleft(slot)
                    continue
                running[self._actors[slot].execute.remote(task)] = (
                    task,
                    slot,
                    time.monotonic(),
                )
                copies[task.point.index] = copies.get(task.point.index, 0) + 1

        while todo or running:
            submit()
            if not running:  # every worker idle and nothing to hand out: cannot happen
                break
            ready, rest = ray.wait(list(running), num_returns=1, timeout=POLL_S)
            if ready and rest:  # everything else that is finished too
                ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
            out: list[PointResult] = []
            for ref in ready:
                task, slot, _ = running.pop(ref)
                i = task.point.index
                copies[i] -= 1
                idle.append(slot)
                try:
                    res = ray.get(ref)
                except RayTaskError as exc:  # worker.execute never raises; be safe
                    res = PointResult(task.point, error=f"{type(exc).__name__}: {exc}")
                except RayError as exc:  # the actor (process or node) is gone for good
                    self._replace(slot)
                    if i in finished or copies[i] > 0:
                        continue  # a backup copy has it
                    n = attempts[i] = attempts.get(i, 0) + 1
                    if n <= self.retries:
                        self.resubmitted += 1
                        todo.appendleft(task)
                        continue
                    res = PointResult(
                        task.point,
                        error=f"the Ray worker running this point died {n} times "
                        f"({type(exc).__name__}); the point was not measured",
                    )
                if i in finished:
                    continue  # the other copy of a backed-up point came first
                finished.add(i)
                if res.error is None:
                    seconds.append(res.seconds)
                out.append(res)
                for other in [r for r, (t, _, _) in running.items() if t.point.index == i]:
                    # the straggling copy: not waited for (its actor may never return)
                    del running[other]
                    copies[i] -= 1
                    with contextlib.suppress(Exception):
                        ray.cancel(other)
            if not todo and idle:
                self._back_up(running, copies, seconds, todo, len(idle))
            submit()
            yield from out

    def _back_up(
        self,
        running: dict[Any, tuple[Task, int, float]],
        copies: dict[int, int],
        seconds: list[float],
        todo: deque[Task],
        free: int,
    ) -> None:
        """Nothing left to hand out and a worker idle: a point running much longer than
        the others (its actor waiting for a node that may not come back) gets a second
        copy on the idle worker; the first result wins (the numbers are the same)."""
        if not seconds:
            return
        limit = self.straggler_s
        if limit is None:
            limit = max(STRAGGLER_MIN_S, STRAGGLER_FACTOR * statistics.median(seconds))
        now = time.monotonic()
        for task, _, start in sorted(running.values(), key=lambda r: r[2]):
            if copies[task.point.index] == 1 and now - start > limit:
                self.backups += 1
                todo.append(task)  # submit() counts the copy
                if len(todo) >= free:
                    return

    def close(self) -> None:
        """Stop the actors; disconnect (and stop a runtime started here)."""
        ray = self._ray
        if self._actors and ray.is_initialized():
            for a in self._actors:
                with contextlib.suppress(Exception):  # already gone with its node
                    ray.kill(a, no_restart=True)
        self._actors = []
        if self._owns_connection and ray.is_initialized():
            ray.shutdown()
        self._owns_connection = False
        self._connected = False


def wait_for_nodes(count: int, timeout: float = 60.0) -> None:
    """Block until ``count`` nodes are alive (tests and benchmarks start clusters)."""
    ray = import_ray()
    t0 = time.monotonic()
    while sum(1 for n in ray.nodes() if n.get("Alive")) < count:
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"fewer than {count} Ray nodes alive after {timeout:.0f} s")
        time.sleep(0.2)
