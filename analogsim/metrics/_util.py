"""Helpers shared by the metrics: eval mode, model device, logits extraction."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch


@contextlib.contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Put ``model`` in eval mode and no-grad inside the block; restore its mode after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def model_device(model: torch.nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU for a parameter-less module)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def is_hf_model(model: torch.nn.Module) -> bool:
    """True for Hugging Face ``PreTrainedModel``-like modules (they carry a ``config``)."""
    return hasattr(model, "config") and hasattr(model.config, "to_dict")


def logits_of(output: Any) -> torch.Tensor:
    """The logits of a model output: a tensor, an object with ``.logits``, or a tuple."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"cannot find logits in model output of type {type(output).__name__}")


def context_length(model: torch.nn.Module, default: int = 1024) -> int:
    """Longest input the model accepts, from its config (``n_positions`` or
    ``max_position_embeddings``), else ``default``."""
    config = getattr(model, "config", None)
    for key in ("n_positions", "max_position_embeddings", "n_ctx", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return default
