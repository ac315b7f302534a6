"""``--cluster``: which executor computes the points of a run.

One place that knows every executor: :mod:`analogsim.runner.executor` (the protocol, the
local process pool, inline) and :mod:`analogsim.runner.ray_executor` (Ray; imports ray
only when built, so the default needs no Ray).
"""

from __future__ import annotations

from analogsim.errors import ConfigError
from analogsim.runner.executor import Executor, LocalExecutor
from analogsim.runner.ray_executor import RayExecutor

__all__ = ["CLUSTERS", "make_executor"]

CLUSTERS = ("local", "ray", "auto")  # and ray://HOST:PORT


def make_executor(
    cluster: str = "local", workers: int = 1, *, address: str | None = None
) -> Executor:
    """The executor of ``--cluster``: ``local`` (:class:`LocalExecutor` with ``workers``
    processes); ``ray`` (start a Ray runtime here, or join the one ``RAY_ADDRESS`` or
    ``--address`` names); ``auto`` (join an existing Ray cluster: ``RAY_ADDRESS``);
    ``ray://HOST:PORT`` (join through Ray Client). The Ray forms build
    ``analogsim.runner.ray_executor.RayExecutor(workers, address=...)`` (``ray`` extra).

    Raises:
        ConfigError: an unknown cluster kind, a malformed ``ray://`` address, or
            ``--address`` without ``--cluster ray``.
    """
    allowed = (
        "local, ray (start Ray here or join RAY_ADDRESS), auto (join RAY_ADDRESS), "
        "ray://HOST:PORT (Ray Client)"
    )
    client = cluster.startswith("ray://")
    if cluster not in CLUSTERS and not client:
        raise ConfigError("unknown cluster", key="--cluster", value=cluster, allowed=allowed)
    if client:
        host, _, port = cluster.removeprefix("ray://").rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(
                "malformed Ray Client address", key="--cluster", value=cluster, allowed=allowed
            )
    if cluster != "ray" and address is not None:
        raise ConfigError(
            "--address goes with --cluster ray",
            key="--address",
            value=address,
            allowed="--cluster ray --address HOST:PORT, or --cluster ray://HOST:PORT alone",
        )
    if cluster == "local":
        return LocalExecutor(workers)
    return RayExecutor(workers, address=address if cluster == "ray" else cluster)
