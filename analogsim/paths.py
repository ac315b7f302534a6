"""Where shipped data (device cards, mappings) and caches live."""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(kind: str) -> Path:
    """Folder of shipped data files of ``kind`` (``"devices"`` or ``"mappings"``).

    In a wheel they are inside the package (``analogsim/_data/<kind>``); in a source
    checkout or editable install they are the top-level folders of the repository.
    """
    packaged = _PKG / "_data" / kind
    if packaged.is_dir():
        return packaged
    repo = _PKG.parent / kind
    if repo.is_dir():
        return repo
    raise FileNotFoundError(f"analogsim data folder '{kind}' not found in {packaged} or {repo}")


def cache_dir() -> Path:
    """Cache for built-in models: ``$ANALOGSIM_CACHE`` or ``$XDG_CACHE_HOME/analogsim``."""
    env = os.environ.get("ANALOGSIM_CACHE")
    if env:
        path = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        path = Path(base) / "analogsim"
    path.mkdir(parents=True, exist_ok=True)
    return path
