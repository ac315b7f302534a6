"""A real Ray cluster on this machine: a head and two worker nodes, one removed mid-run.

The cluster runs inside a network namespace that has only ``lo`` (Ray binds the
machine's external interface even when told 127.0.0.1): the test re-executes this module
as a script under ``unshare -n`` (util-linux; root, or user namespaces, needed: the test
is skipped, saying so, where that is not permitted), which brings ``lo`` up itself
(:func:`loopback_up`, no iproute2 needed). The script starts the head (no CPUs: points run
on worker nodes) and two worker nodes with 2 CPUs each (``ray.cluster_utils.Cluster``),
joins it through ``RAY_ADDRESS`` like ``--cluster auto``, runs the quick
layer_sensitivity experiment on a tiny random GPT-2 folder with two 1-CPU actors spread
over the nodes, and kills one worker node (no graceful shutdown) once three points are
in; its point in flight is retried on the other node. The test then checks that every
point came back exactly once, without error, and that results.csv is byte for byte the
one of the inline executor.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "experiments" / "layer_sensitivity.toml"
REMOVE_AFTER = 3  # results in before the node is killed
TIMEOUT_S = 600


def gpt2_folder(folder: Path) -> Path:
    """A tiny random GPT-2 with a small BPE tokenizer, saved HF-style."""
    from analogsim.models.tiny_gpt2 import train_tokenizer
    from analogsim.progress import quiet_transformers
    from tests.conftest import make_gpt2

    text = "\n\n".join(["the return statement returns a value from a function"] * 20)
    tok = train_tokenizer(text, 300, 128)
    with quiet_transformers():
        make_gpt2(0, vocab=len(tok), n_positions=128).save_pretrained(folder)
        tok.save_pretrained(folder)
    return folder


def loopback_up() -> None:
    """Bring ``lo`` up in this (new) network namespace: ``ip link set lo up`` without
    needing iproute2 (SIOCGIFFLAGS / SIOCSIFFLAGS on a datagram socket)."""
    import fcntl
    import socket
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(s.fileno(), siocgifflags, req))[1]
        fcntl.ioctl(s.fileno(), siocsifflags, struct.pack("16sh14x", b"lo", flags | iff_up))


def _unshare_problem() -> str | None:
    """Why a loopback-only network namespace cannot be made here (None: it can)."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", PROBE],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0 or probe.stdout.strip() != "ok":
        return f"unshare -n is not permitted here: {(probe.stderr or probe.stdout).strip()[-300:]}"
    return None


PROBE = """
import socket
from tests.runner.test_ray_cluster import loopback_up
loopback_up()
with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); s.listen()
    with socket.create_connection(s.getsockname(), timeout=5):
        print("ok")
"""


@pytest.mark.cluster
def test_ray_cluster_loses_a_node_and_no_point(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    problem = _unshare_problem()
    if problem is not None:
        pytest.skip(f"needs a loopback-only network namespace for the Ray cluster; {problem}")
    from analogsim.runner.executor import InlineExecutor
    from analogsim.runner.run import run_experiment

    model = gpt2_folder(tmp_path / "gpt2")
    inline = run_experiment(
        CONFIG,
        out=tmp_path / "inline",
        quick=True,
        executor=InlineExecutor(),
        models=[str(model)],
        progress=False,
        report=False,
    )
    assert inline["failed"] == 0
    out = tmp_path / "ray"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(REPO))
    t0 = time.monotonic()
    proc = subprocess.run(
        [
            "unshare",
            "-n",
            sys.executable,
            "-m",
            "tests.runner.test_ray_cluster",
            str(out),
            str(model),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    log = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, log
    summary = json.loads((out / "cluster_summary.json").read_text())
    # all on loopback: head and both workers
    assert set(summary["node_ips"]) == {"127.0.0.1"} and len(summary["node_ips"]) == 3, summary
    # the node was removed while points were still to come, and it hosted a worker
    assert summary["removed_after"] == REMOVE_AFTER < inline["points"]
    assert summary["victim_hosted_a_worker"]
    # every point came back exactly once, none failed
    indices = [i for i, _, _ in summary["results"]]
    assert sorted(indices) == list(range(inline["points"])), indices
    assert all(ok for _, _, ok in summary["results"])
    # its point in flight ran again elsewhere: on an actor Ray restarted (a new process)
    # or resubmitted by the executor
    # (the victim's actor may not have finished a point before the removal, so what
    # shows is a worker process that first appears after it)
    before = {w for _, w, _ in summary["results"][: summary["removed_after"]]}
    after = {w for _, w, _ in summary["results"][summary["removed_after"] :]}
    workers = before | after
    rerun = len(workers) >= 3 or bool(after - before)
    assert rerun or summary["resubmitted"] + summary["backups"] >= 1, summary
    # written once each, and the same numbers as in this process
    assert summary["done"] == inline["points"] and summary["failed"] == 0
    assert (out / "results.csv").read_bytes() == (tmp_path / "inline" / "results.csv").read_bytes()
    print(f"cluster run: {time.monotonic() - t0:.0f} s", summary["timeline"])


def main(out: str, model: str) -> None:
    """The part that runs inside the namespace (``python -m tests.runner.test_ray_cluster``)."""
    loopback_up()  # the namespace starts with lo down
    t0 = time.monotonic()
    timeline: dict[str, float] = {}

    def mark(what: str) -> None:
        timeline[what] = round(time.monotonic() - t0, 1)

    import ray
    from ray.cluster_utils import Cluster

    from analogsim.runner.ray_executor import RayExecutor, wait_for_nodes
    from analogsim.runner.run import run_experiment

    loopback = {"node_ip_address": "127.0.0.1"}
    fast_death = {  # a killed node is declared dead in about a second, not 30
        "health_check_initial_delay_ms": 0,
        "health_check_period_ms": 500,
        "health_check_failure_threshold": 2,
    }
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            **loopback,
            "num_cpus": 0,
            "include_dashboard": False,
            "_system_config": fast_death,
        },
    )
    mark("head")
    for _ in range(2):
        cluster.add_node(num_cpus=2, **loopback)
    mark("workers")
    os.environ["RAY_ADDRESS"] = cluster.address  # joined like --cluster auto
    ex = RayExecutor(2, address="auto", cpus_per_worker=1)
    ex.connect()
    wait_for_nodes(3)
    node_ips = [n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]]
    results: list[tuple[int, str, bool]] = []
    victim_hosted = False
    run_points = ex.run

    def run_and_remove(tasks):
        nonlocal victim_hosted
        for res in run_points(tasks):
            results.append((res.point.index, res.worker, res.error is None))
            if len(results) == REMOVE_AFTER:
                node = ex.worker_info()[0]["node"]
                victims = [n for n in cluster.worker_nodes if n.node_id == node]
                victim_hosted = bool(victims)
                mark("remove")
                cluster.remove_node(victims[0], allow_graceful=False)
            yield res

    ex.run = run_and_remove  # type: ignore[method-assign]
    mark("run")
    try:
        res = run_experiment(
            CONFIG,
            out=out,
            quick=True,
            executor=ex,
            models=[model],
            progress=False,
            report=False,
        )
        mark("done")
    finally:
        ex.close()
        ray.shutdown()
        cluster.shutdown()
    summary = {
        "node_ips": node_ips,
        "removed_after": REMOVE_AFTER,
        "victim_hosted_a_worker": victim_hosted,
        "results": results,
        "resubmitted": ex.resubmitted,
        "backups": ex.backups,
        "replaced": ex.replaced,
        "done": res["done"],
        "failed": res["failed"],
        "timeline": timeline,
    }
    (Path(out) / "cluster_summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
