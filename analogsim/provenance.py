"""Provenance of a result: package versions, git revision, JSON-safe values.

Ground layer (standard library only): used by run directories (``report.rundir``) and
checkpoint sidecars (``train.checkpoint``) alike.
"""

from __future__ import annotations

import math
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

_PKG_ROOT = Path(__file__).resolve().parents[1]


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that decide the numbers."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("analogsim", "torch", "transformers", "numpy", "scipy", "simpy", "aihwkit"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_revision() -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the analogsim checkout, or None outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=_PKG_ROOT, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=_PKG_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return {"commit": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def jsonable(x: Any) -> Any:
    """``x`` with only JSON types: dict keys as strings, tuples as lists, paths as strings,
    non-finite floats as ``"nan"`` / ``"inf"`` / ``"-inf"``, anything else as its ``repr``."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, str | int | float | bool) or x is None:
        return x
    return repr(x)


__all__ = ["git_revision", "jsonable", "versions"]
