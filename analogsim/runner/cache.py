"""The per-process model cache of the runner's workers.

Models are loaded once per process and kept (:func:`get_model`, at most
:data:`CACHE_MODELS` at a time, least recently used dropped), as are objects derived
from a model that every point reuses (the tokenised evaluation text and its metric):
:func:`cached`. A worker process (or a Ray actor) runs many points, so each model is
loaded once per worker, not once per point. The parent process never fills it (it only
builds models that are not cached on disk yet: :func:`analogsim.runner.models.prepare`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["CACHE_MODELS", "cached", "clear_cache", "get_model"]

CACHE_MODELS = 2  # models kept per worker process (smollm2 is ~0.6 GB in float32)

_MODELS: OrderedDict[str, Any] = OrderedDict()
_DERIVED: dict[tuple[str, Any], Any] = {}


def get_model(spec: str) -> Any:
    """The :class:`~analogsim.models.LoadedModel` of a model spec (a built-in name, a
    hub name or local folder, or ``tiny-gpt2@n_embd=64,n_layer=2``: see
    :func:`analogsim.runner.models.load_spec`), loaded once per process."""
    if spec in _MODELS:
        _MODELS.move_to_end(spec)
        return _MODELS[spec]
    from analogsim.runner.models import load_spec

    while len(_MODELS) >= CACHE_MODELS:
        old, _ = _MODELS.popitem(last=False)
        for key in [k for k in _DERIVED if k[0] == old]:
            del _DERIVED[key]
    loaded = load_spec(spec)
    _MODELS[spec] = loaded
    return loaded


def cached(spec: str, key: Any, factory: Callable[[], Any]) -> Any:
    """A value derived from model ``spec`` (a metric closure, a converted chip), made
    once per process by ``factory`` and dropped with the model."""
    k = (spec, key)
    if k not in _DERIVED:
        _DERIVED[k] = factory()
    return _DERIVED[k]


def clear_cache() -> None:
    """Forget every cached model (tests; a worker that is done)."""
    _MODELS.clear()
    _DERIVED.clear()
