"""RayExecutor without a cluster: the missing extra, the ``--cluster`` forms, resources.

The real cluster (head + two worker nodes, one removed mid-run) is
tests/runner/test_ray_cluster.py.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from analogsim.errors import ConfigError, MissingDependencyError
from analogsim.runner.clusters import make_executor
from analogsim.runner.executor import LocalExecutor
from analogsim.runner.points import Point, Task
from analogsim.runner.ray_executor import RayExecutor, import_ray, wants_gpu


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import ray`` fails as it does where the extra is not installed."""
    monkeypatch.setitem(sys.modules, "ray", None)


def test_missing_ray_names_the_extra(no_ray: None) -> None:
    with pytest.raises(MissingDependencyError, match=r'pip install "analogsim\[ray\]"'):
        import_ray()
    for cluster in ("ray", "auto", "ray://10.0.0.1:10001"):
        with pytest.raises(MissingDependencyError, match=r"analogsim\[ray\]"):
            make_executor(cluster, 2)
    assert isinstance(make_executor("local", 1), LocalExecutor)  # the default needs no Ray


def test_cli_without_ray_says_which_extra(no_ray: None, tmp_path) -> None:
    from analogsim.cli import app

    out = tmp_path / "run"
    res = CliRunner().invoke(
        app,
        [
            "run",
            "experiments/layer_sensitivity.toml",
            "--quick",
            "--cluster",
            "ray",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code != 0
    assert isinstance(res.exception, MissingDependencyError) or "analogsim[ray]" in res.output
    text = str(res.exception) + res.output
    assert "analogsim[ray]" in text
    assert not out.exists()  # refused before any work


@pytest.mark.parametrize(
    ("cluster", "address", "want_address", "where"),
    [
        ("ray", None, None, "local runtime"),
        ("ray", "10.0.0.1:6379", "10.0.0.1:6379", "10.0.0.1:6379"),
        ("auto", None, "auto", "RAY_ADDRESS"),
        ("ray://head.example:10001", None, "ray://head.example:10001", "ray://head.example"),
    ],
)
def test_cluster_forms(cluster, address, want_address, where) -> None:
    ex = make_executor(cluster, 3, address=address)  # builds, does not connect
    assert isinstance(ex, RayExecutor)
    assert ex.address == want_address and ex.workers == 3
    assert ex.name.startswith("ray, 3 workers") and where in ex.name


@pytest.mark.parametrize(
    ("cluster", "address", "key"),
    [
        ("slurm", None, "--cluster"),
        ("ray://head-without-port", None, "--cluster"),
        ("ray://:10001", None, "--cluster"),
        ("auto", "10.0.0.1:6379", "--address"),
        ("ray://h:10001", "10.0.0.1:6379", "--address"),
        ("local", "10.0.0.1:6379", "--address"),
    ],
)
def test_bad_cluster_forms_are_one_config_error(cluster, address, key) -> None:
    with pytest.raises(ConfigError) as err:
        make_executor(cluster, 2, address=address)
    assert err.value.key == key
    assert "ray://HOST:PORT" in str(err.value)


def test_wants_gpu_reads_cuda_settings() -> None:
    assert wants_gpu({"device": "cuda"}) and wants_gpu({"torch_device": "CUDA:1"})
    assert not wants_gpu({}) and not wants_gpu({"device": "cpu", "max_tokens": 5})


def _task(settings: dict) -> Task:
    return Task("noise", settings, Point(0, (("sigma", 0.1),), 7))


def test_resources_per_worker() -> None:
    ex = RayExecutor(2, cpus_per_worker=3)
    assert ex._resources_for([_task({"device": "cuda"})]) == {"num_cpus": 3.0, "num_gpus": 1.0}
    ex = RayExecutor(2, cpus_per_worker=1)
    assert ex._resources_for([_task({})]) == {"num_cpus": 1.0, "num_gpus": 0.0}
    ex = RayExecutor(2, cpus_per_worker=1, gpus_per_worker=0.5)
    assert ex._resources_for([_task({})])["num_gpus"] == 0.5


@pytest.mark.parametrize(
    ("workers", "nodes", "want"),
    [
        (2, [2, 2], 2.0),  # 4 CPUs shared by 2
        (1, [4, 4], 4.0),  # at most one node's worth: an actor lives on one node
        (4, [2], 0.5),  # more workers than CPUs: fractional, all four fit
        (3, [0], 1.0),  # an autoscaling cluster with no worker node yet
    ],
)
def test_default_cpus(workers, nodes, want) -> None:
    ex = RayExecutor(workers)
    fake = SimpleNamespace(
        cluster_resources=lambda: {"CPU": float(sum(nodes))},
        nodes=lambda: (
            [{"Alive": True, "Resources": {"CPU": float(c)}} for c in nodes]
            + [{"Alive": False, "Resources": {"CPU": 64.0}}]
        ),  # a dead node does not count
    )
    ex._ray = fake
    assert ex._default_cpus() == want


# ------------------------------------------------------------------ the driver loop, on a fake Ray
class _Ref:
    def __init__(self, fn, ready: bool = True) -> None:
        self.fn, self.ready = fn, ready


class _Method:
    def __init__(self, actor: _Actor, name: str) -> None:
        self.actor, self.name = actor, name

    def remote(self, *args):
        return self.actor.fake.call(self.actor, self.name, *args)


class _Actor:
    def __init__(self, fake: FakeRay, n: int) -> None:
        self.fake, self.n = fake, n
        self.info, self.execute = _Method(self, "info"), _Method(self, "execute")


class _ActorClass:
    def __init__(self, fake: FakeRay) -> None:
        self.fake = fake

    def options(self, **kw):
        self.fake.options = kw
        return self

    def remote(self) -> _Actor:
        self.fake.actors.append(_Actor(self.fake, len(self.fake.actors)))
        return self.fake.actors[-1]


class FakeRay:
    """The few calls RayExecutor makes; ``behaviour(actor, task, calls)`` gives each
    execute's reference (a result, an exception, or never ready)."""

    def __init__(self, behaviour) -> None:
        self.behaviour, self.actors, self.killed, self.cancelled = behaviour, [], [], []
        self.calls: dict[int, int] = {}
        self.waits = 0

    def is_initialized(self) -> bool:
        return True

    def remote(self, cls) -> _ActorClass:
        return _ActorClass(self)

    def call(self, actor: _Actor, name: str, *args) -> _Ref:
        import analogsim

        if name == "info":
            return _Ref(lambda: {"version": analogsim.__version__, "node": f"n{actor.n}"})
        task = args[0]
        i = task.point.index
        self.calls[i] = self.calls.get(i, 0) + 1
        return self.behaviour(actor, task, self.calls[i])

    def get(self, ref):
        return [self.get(r) for r in ref] if isinstance(ref, list) else ref.fn()

    def wait(self, refs, num_returns=1, timeout=None):
        self.waits += 1
        assert self.waits < 1000, "the driver loop does not end"
        ready = [r for r in refs if r.ready][:num_returns]
        return ready, [r for r in refs if r not in ready]

    def kill(self, actor, no_restart=True) -> None:
        self.killed.append(actor)

    def cancel(self, ref) -> None:
        self.cancelled.append(ref)


def _done(actor: _Actor, task: Task) -> _Ref:
    from analogsim.runner.points import PointResult

    rows = [{"metric": "seed", "value": float(task.point.seed)}]
    return _Ref(lambda: PointResult(task.point, rows=rows, seconds=0.01, worker=f"a{actor.n}"))


def _died() -> _Ref:
    from ray.exceptions import ActorDiedError

    def boom():
        raise ActorDiedError()

    return _Ref(boom)


def _tasks(n: int) -> list[Task]:
    return [Task("noise", {}, Point(i, (("sigma", i / 10),), 100 + i)) for i in range(n)]


def _run(fake: FakeRay, n: int, **kw) -> tuple[RayExecutor, list]:
    pytest.importorskip("ray")
    ex = RayExecutor(2, cpus_per_worker=1, **kw)
    ex._ray = fake
    return ex, list(ex.run(_tasks(n)))


def test_a_point_whose_actor_died_is_resubmitted_and_comes_back_once() -> None:
    fake = FakeRay(lambda a, t, k: _died() if (a.n, t.point.index) == (0, 0) else _done(a, t))
    ex, out = _run(fake, 6)
    assert sorted(r.point.index for r in out) == list(range(6))  # each once
    assert all(r.error is None for r in out)
    assert [r.rows[0]["value"] for r in sorted(out, key=lambda r: r.point.index)] == [
        100.0 + i for i in range(6)
    ]
    assert ex.resubmitted == 1 and ex.replaced == 1
    assert fake.actors[0] in fake.killed and len(fake.actors) == 3  # a new actor took slot 0
    assert fake.calls[0] == 2


def test_a_point_that_always_kills_its_worker_fails_after_the_retries() -> None:
    fake = FakeRay(lambda a, t, k: _died() if t.point.index == 2 else _done(a, t))
    ex, out = _run(fake, 5, retries=2)
    assert sorted(r.point.index for r in out) == list(range(5))
    failed = [r for r in out if r.error is not None]
    assert [r.point.index for r in failed] == [2] and "died 3 times" in failed[0].error
    assert fake.calls[2] == 3 and ex.resubmitted == 2


def test_a_straggler_gets_a_backup_and_the_first_result_wins() -> None:
    stuck = _Ref(lambda: pytest.fail("the stuck copy was read"), ready=False)
    fake = FakeRay(lambda a, t, k: stuck if (t.point.index, k) == (0, 1) else _done(a, t))
    ex, out = _run(fake, 4, straggler_s=0.0)
    assert sorted(r.point.index for r in out) == list(range(4))  # 0 once, from the backup
    assert all(r.error is None for r in out)
    assert ex.backups == 1 and fake.calls[0] == 2
    assert fake.cancelled == [stuck]  # not waited for
