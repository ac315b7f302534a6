"""Cache helpers for built-in models: atomic directory writes, metadata, seeded RNG.

A built model lives in one folder ``cache_dir()/<name>/`` with a ``meta.json`` that
records the recipe it was built from. The folder is written under a temporary name and
renamed into place when complete, so an interrupted build never leaves a half-written
folder that looks valid; a folder whose recipe differs from the current one is rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

META_FILE = "meta.json"


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``final``; on success it replaces ``final``.

    On an exception (including KeyboardInterrupt) the temporary folder is removed and
    ``final`` is left as it was. The swap is two renames on the same filesystem, so at
    any moment ``final`` is either the old complete folder, absent, or the new one.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = final.parent / f".{final.name}.tmp-{tag}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.parent / f".{final.name}.old-{tag}"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    """Write ``meta`` as pretty JSON to ``folder/meta.json``."""
    (Path(folder) / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def read_meta(folder: Path) -> dict[str, Any] | None:
    """Return the metadata of a cached model folder, or None if missing or unreadable."""
    path = Path(folder) / META_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


@contextlib.contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """Seed torch's global CPU RNG inside the block and restore its state afterwards.

    Only for code we cannot hand a ``torch.Generator`` to (module constructors that
    initialise weights, dropout layers); the caller's RNG state is unchanged on exit.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def count_params(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total
