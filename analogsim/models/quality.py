"""How a built-in model kind is scored: the default quality metric of a loaded model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from analogsim.errors import ConfigError
from analogsim.metrics._util import context_length
from analogsim.metrics.classification import accuracy
from analogsim.metrics.embedding import embedding_cosine, encode
from analogsim.metrics.language import perplexity, seq2seq_perplexity
from analogsim.models.base import LoadedModel

SEQ2SEQ_WINDOW = 128
"""Tokens per encoder input and per decoder target of the seq2seq-lm quality metric."""


@dataclass
class Quality:
    """How a model kind is scored: ``name``, direction and the scoring function."""

    name: str
    higher_is_better: bool
    score: Callable[[nn.Module], float]


def quality_metric(loaded: LoadedModel, *, max_tokens: int = 4096) -> Quality:
    """The default quality metric of a loaded model.

    classifier: test accuracy; causal-lm: held-out perplexity (sliding window, first
    ``max_tokens`` held-out tokens); seq2seq-lm: held-out teacher-forced decoder
    perplexity (each window of 128 tokens predicted from the previous one in the encoder,
    first ``max_tokens`` held-out tokens); encoder: mean cosine of sentence embeddings to
    the digital model's.
    """
    if loaded.kind == "classifier":
        x, y = loaded.data["x_test"], loaded.data["y_test"]
        return Quality("accuracy", True, lambda m: accuracy(m, x, y))
    if loaded.kind == "causal-lm":
        ids = _heldout_ids(loaded)[:max_tokens]
        n_ctx = context_length(loaded.model)
        max_len = min(n_ctx, 256)
        return Quality(
            "perplexity",
            False,
            lambda m: perplexity(m, ids, max_length=max_len, stride=max_len // 2),
        )
    if loaded.kind == "seq2seq-lm":
        ids = _heldout_ids(loaded)[:max_tokens]
        window = min(context_length(loaded.model, default=SEQ2SEQ_WINDOW), SEQ2SEQ_WINDOW)
        return Quality("perplexity", False, lambda m: seq2seq_perplexity(m, ids, window=window))
    if loaded.kind == "encoder":
        _need_tokenizer(loaded, "embedding cosine")
        sentences = list(loaded.data)
        ref = encode(loaded.model, loaded.tokenizer, sentences)
        return Quality(
            "embedding_cosine",
            True,
            lambda m: embedding_cosine(m, ref, loaded.tokenizer, sentences),
        )
    raise ValueError(f"unknown model kind {loaded.kind!r}")


def _need_tokenizer(loaded: LoadedModel, metric: str) -> None:
    """Raise ConfigError (before any work) when a text model came without a tokenizer."""
    if loaded.tokenizer is None:
        reason = loaded.info.get("tokenizer_error", "no tokenizer")
        raise ConfigError(
            f"model '{loaded.name}' has no usable tokenizer, so its {metric} cannot be "
            f"measured ({reason})",
            key="model",
            value=loaded.name,
            allowed="a model folder with its tokenizer files (save_pretrained both)",
        )


def _heldout_ids(loaded: LoadedModel) -> torch.Tensor:
    data = loaded.data
    if isinstance(data, dict) and "heldout_ids" in data:
        return data["heldout_ids"]
    _need_tokenizer(loaded, "perplexity")
    text = data["heldout_text"] if isinstance(data, dict) else str(data)
    return loaded.tokenizer(text, return_tensors="pt")["input_ids"][0]


__all__ = ["Quality", "quality_metric"]
