"""Model specs of experiment configs: built-in names, hub names, local folders, and
tiny-gpt2 at other sizes.

``tiny-gpt2@n_embd=64,n_layer=2`` is tiny-gpt2 built with those recipe fields changed
(:class:`~analogsim.models.TinyGPT2Recipe`), cached in its own folder under
``cache_dir()/tiny-gpt2-sizes/`` so the built-in model is never replaced. A hub name is
looked for in the local Hugging Face cache first; when it is not there and the hub does
not answer within :data:`HUB_TIMEOUT_S`, :func:`availability` says why and the runner
skips that model's points with a note (instead of transformers' retries).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from analogsim.errors import ConfigError

__all__ = ["HUB_TIMEOUT_S", "availability", "load_spec", "parse_spec", "prepare"]

HUB_TIMEOUT_S = 3.0
TINY = "tiny-gpt2"


def parse_spec(
    spec: str, *, file: Any = None, key: str = "grid.model"
) -> tuple[str, dict[str, Any]]:
    """``(name, recipe overrides)`` of a model spec; overrides only for ``tiny-gpt2@...``.

    Raises:
        ConfigError: an ``@`` on another model, a malformed ``k=v`` list, an unknown
            recipe field or a value that is not an integer/float.
    """
    if "@" not in spec:
        return spec, {}
    name, _, rest = spec.partition("@")
    if name != TINY:
        raise ConfigError(
            "recipe overrides ('@k=v') exist only for tiny-gpt2",
            file=file,
            key=key,
            value=spec,
            allowed="tiny-gpt2@n_embd=64,n_layer=2 (TinyGPT2Recipe fields), or a plain name",
        )
    from analogsim.models import TinyGPT2Recipe

    overrides: dict[str, Any] = {}
    for part in rest.split(","):
        k, eq, v = part.partition("=")
        k, v = k.strip(), v.strip()
        if not eq or not k or not v:
            raise ConfigError(
                "malformed recipe override", file=file, key=key, value=spec, allowed="k=v,k=v"
            )
        try:
            overrides[k] = int(v)
        except ValueError:
            try:
                overrides[k] = float(v)
            except ValueError:
                raise ConfigError(
                    "recipe values are numbers", file=file, key=key, value=spec
                ) from None
    try:
        TinyGPT2Recipe().replace(**overrides)
    except ConfigError as exc:
        raise ConfigError(str(exc), file=file, key=key, value=spec) from None
    return name, overrides


def _sized_root(overrides: dict[str, Any]) -> Path:
    from analogsim.paths import cache_dir

    tag = "-".join(f"{k}{v}" for k, v in sorted(overrides.items()))
    return cache_dir() / "tiny-gpt2-sizes" / tag


def load_spec(spec: str, *, progress: bool = False) -> Any:
    """The :class:`~analogsim.models.LoadedModel` of a spec (builds a sized tiny-gpt2
    once; its ``name`` is the spec, so results keep the size)."""
    from analogsim.models import TinyGPT2Recipe, load_model, load_tiny_gpt2

    name, overrides = parse_spec(spec)
    if not overrides:
        return load_model(name, progress=progress)
    recipe = TinyGPT2Recipe().replace(**overrides)
    loaded = load_tiny_gpt2(_sized_root(overrides), progress=progress, recipe=recipe)
    loaded.name = spec
    return loaded


def _hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip() not in ("", "0"):
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def availability(spec: str) -> str | None:
    """None when the model can be loaded here; else one line saying why not (a hub name
    that is neither in the local Hugging Face cache nor reachable). Built-ins, sized
    tiny-gpt2 and existing folders are always available (built on first use)."""
    from analogsim.models import builtin_models

    name, _ = parse_spec(spec)
    if name in builtin_models() or Path(name).expanduser().exists():
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        if isinstance(try_to_load_from_cache(name, "config.json"), str):
            return None
    except Exception:  # an invalid repo id: let the hub check below decide
        pass
    if _hub_reachable():
        return None
    return (
        f"skipped '{spec}': not in the local Hugging Face cache and the hub is not "
        f"reachable (no answer from huggingface.co within {HUB_TIMEOUT_S:g} s, or "
        "HF_HUB_OFFLINE is set); download it once with network access to include it"
    )


def prepare(spec: str, *, progress: bool = True, say: Any = None) -> bool:
    """Build ``spec`` once in this process when loading it would build it (tiny-gpt2,
    smollm2 on first use, a sized tiny-gpt2), so that N workers do not all build it at the
    same time. Returns True when something was built."""
    from analogsim.models import TinyGPT2Recipe, pending_build
    from analogsim.models.tiny_gpt2 import build_notice, cached_build_is_valid

    name, overrides = parse_spec(spec)
    if overrides:
        recipe = TinyGPT2Recipe().replace(**overrides)
        folder = _sized_root(overrides) / TINY
        if cached_build_is_valid(folder, recipe):
            return False
        notice = build_notice(folder, recipe)
    else:
        notice = pending_build(name)
        if notice is None:
            return False
    if say is not None:
        say(notice)
    load_spec(spec, progress=progress)
    return True
