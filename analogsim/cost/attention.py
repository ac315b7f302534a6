"""Attention work of a transformer per token that no weight layer does: activation x
activation MACs and KV-cache bytes, counted from the model's config.

Both feed :func:`analogsim.cost.estimate.estimate_cost` (``attention_macs_per_token``,
``kv_cache_bytes_per_token``). See ``docs/cost.md``.
"""

from __future__ import annotations

from typing import Any

from analogsim.cost.table import bytes_per_weight, parse_precision
from analogsim.errors import ConfigError

__all__ = ["attention_macs_per_token", "kv_cache_bytes_per_token"]

# ---------------------------------------------------------------------------- attention
_LAYER_KEYS = ("n_layer", "num_hidden_layers", "num_layers")
_HIDDEN_KEYS = ("n_embd", "hidden_size", "d_model")
_HEAD_KEYS = ("n_head", "num_attention_heads")


def _config_of(obj: Any) -> Any:
    """The config itself, or a model's ``.config`` (a config has a ``model_type``)."""
    if obj is not None and not hasattr(obj, "model_type") and hasattr(obj, "config"):
        return obj.config
    return obj


def _first_int(config: Any, keys: tuple[str, ...]) -> int | None:
    for k in keys:
        v = getattr(config, k, None)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None


def _check_context(context_tokens: Any) -> None:
    if (
        isinstance(context_tokens, bool)
        or not isinstance(context_tokens, int)
        or context_tokens < 0
    ):
        raise ConfigError(
            "must be a non-negative integer", key="context_tokens", value=context_tokens
        )


def attention_macs_per_token(config: Any, context_tokens: int) -> int:
    """Activation x activation MACs of self-attention for one token over ``context_tokens``.

    ``2 * n_layers * context_tokens * d_attn``: per layer, the token's query is dotted with
    ``context_tokens`` keys (``QK^T``, ``context * d_attn`` MACs summed over heads) and the
    attention weights combine as many values (``AV``, as many again). ``d_attn`` is
    ``num_heads * head_dim`` when the config sets ``head_dim``, else the hidden size
    (``n_embd`` / ``hidden_size`` / ``d_model``). Grouped-query attention shares keys and
    values but not this work, so it does not change the count. ``context_tokens`` is the
    number of positions attended to, the current one included (a KV cache of that length
    when generating). Full attention is assumed: for a sliding-window model pass
    ``min(context, window)``. Softmax, scaling and KV-cache reads are not counted.

    Args:
        config: a Hugging Face config, or a model with a ``.config``; anything without a
            layer count and hidden size (a plain torch model, ``None``) gives 0.
        context_tokens: positions attended to, >= 0.

    Returns:
        MACs per token (int).
    """
    _check_context(context_tokens)
    config = _config_of(config)
    if config is None:
        return 0
    n_layers = _first_int(config, _LAYER_KEYS)
    hidden = _first_int(config, _HIDDEN_KEYS)
    heads = _first_int(config, _HEAD_KEYS)
    head_dim = _first_int(config, ("head_dim",))
    if heads is not None and head_dim is not None:
        d_attn = heads * head_dim
    else:
        d_attn = hidden
    if n_layers is None or d_attn is None:
        return 0
    return 2 * n_layers * context_tokens * d_attn


def kv_cache_bytes_per_token(config: Any, context_tokens: int, precision: str = "fp16") -> float:
    """Bytes of cached keys and values one generated token reads: ``2 n_layers context d_kv b``.

    Each layer reads ``context_tokens`` keys and as many values of ``d_kv`` numbers, at
    ``b`` bytes each (``precision``: ``fp16`` = 2 B, ``int8`` = 1 B). ``d_kv`` is
    ``num_key_value_heads * head_dim`` (grouped-query attention stores fewer heads), with
    ``head_dim`` from the config or ``hidden / num_heads``; without head counts, the hidden
    size. A plain torch model or ``None`` gives 0. Full attention is assumed.
    """
    parse_precision(precision, key="precision")
    _check_context(context_tokens)
    config = _config_of(config)
    if config is None:
        return 0.0
    n_layers = _first_int(config, _LAYER_KEYS)
    hidden = _first_int(config, _HIDDEN_KEYS)
    heads = _first_int(config, _HEAD_KEYS)
    kv_heads = _first_int(config, ("num_key_value_heads", "n_head_kv", "num_kv_heads")) or heads
    head_dim = _first_int(config, ("head_dim",))
    if head_dim is None and heads is not None and hidden is not None:
        head_dim = hidden // heads
    d_kv = kv_heads * head_dim if kv_heads is not None and head_dim is not None else hidden
    if n_layers is None or d_kv is None:
        return 0.0
    return 2.0 * n_layers * context_tokens * d_kv * bytes_per_weight(precision)
