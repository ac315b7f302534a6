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
from analogsim.runner.executor import LocalExecutor, make_executor
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
