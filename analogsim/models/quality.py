"""How a built-in model kind is scored: the default quality metric of a loaded model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
DEFAULT_MAX_TOKENS = 4096
"""Held-out tokens a language model is scored on by default (the first 4,096)."""
CAUSAL_WINDOW = 256
"""Tokens per sliding window of the causal-lm perplexity (stride half of it)."""


@dataclass
class Quality:
    """How a model kind is scored: ``name``, direction and the scoring function."""

    name: str
    higher_is_better: bool
    score: Callable[[nn.Module], float]


def quality_metric(
    loaded: LoadedModel,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    text: str | Path | None = None,
) -> Quality:
    """The default quality metric of a loaded model.

    classifier: test accuracy; causal-lm: held-out perplexity (sliding windows of 256
    tokens, stride 128, over the first ``max_tokens`` tokens of the held-out text: by
    default the built-in models' held-out part of Python's help text,
    ``pydoc_data.topics``; ``text``, a file path or the text itself, replaces it, see
    :func:`evaluation_text`); seq2seq-lm: held-out teacher-forced decoder
    perplexity (each window of 128 tokens predicted from the previous one in the encoder,
    first ``max_tokens`` held-out tokens); encoder: mean cosine of sentence embeddings to
    the digital model's.
    """
    if max_tokens < 2:
        raise ConfigError(
            "the evaluation needs at least 2 tokens", key="--max-tokens", value=max_tokens
        )
    if text is not None and loaded.kind not in ("causal-lm", "seq2seq-lm"):
        raise ConfigError(
            f"--text applies to language models; '{loaded.name}' is a {loaded.kind} "
            "scored on its own data",
            key="--text",
            value=str(text),
        )
    if loaded.kind == "classifier":
        x, y = loaded.data["x_test"], loaded.data["y_test"]
        return Quality("accuracy", True, lambda m: accuracy(m, x, y))
    if loaded.kind == "causal-lm":
        ids = _heldout_ids(loaded, text)[:max_tokens]
        n_ctx = context_length(loaded.model)
        max_len = min(n_ctx, CAUSAL_WINDOW)
        return Quality(
            "perplexity",
            False,
            lambda m: perplexity(m, ids, max_length=max_len, stride=max_len // 2),
        )
    if loaded.kind == "seq2seq-lm":
        ids = _heldout_ids(loaded, text)[:max_tokens]
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


def evaluation_text(text: str | Path, *, key: str = "--text") -> str:
    """The evaluation text: the contents of the file ``text`` names, else ``text`` itself.

    A ``Path`` is always a file. A string is a file when it names one, a missing file
    when it is one word that looks like a path (a ``/`` or a text-file suffix), and
    otherwise the text itself. A missing, empty, binary (a NUL byte, or not UTF-8) or
    blank file, or a blank text, raises one ConfigError naming ``key`` and the file.
    """
    if isinstance(text, str) and not _is_file(text):
        word = bool(text) and not any(c.isspace() for c in text)
        if word and ("/" in text or Path(text).suffix in _TEXT_SUFFIXES):
            raise ConfigError("no such file", key=key, value=text, file=text)
        if not text.strip():
            raise ConfigError("the evaluation text is empty", key=key, value=text)
        return text
    path = Path(text)
    if not path.is_file():
        raise ConfigError("no such file", key=key, value=str(path), file=str(path))
    data = path.read_bytes()
    if b"\0" in data:
        raise ConfigError("a binary file, not text", key=key, value=str(path), file=str(path))
    try:
        out = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", key=key, value=str(path), file=str(path)) from None
    if not out.strip():
        raise ConfigError("the file is empty", key=key, value=str(path), file=str(path))
    return out


_TEXT_SUFFIXES = frozenset({".txt", ".md", ".rst", ".py", ".text", ".csv", ".json"})


def _is_file(name: str) -> bool:
    try:
        return Path(name).is_file()
    except (OSError, ValueError):  # a name too long, or with a NUL: not a file
        return False


def _heldout_ids(loaded: LoadedModel, text: str | Path | None = None) -> torch.Tensor:
    data = loaded.data
    if text is not None:
        _need_tokenizer(loaded, "perplexity")
        ids = loaded.tokenizer(evaluation_text(text), return_tensors="pt")["input_ids"][0]
        if ids.numel() < 2:
            raise ConfigError(
                "the evaluation text is shorter than 2 tokens", key="--text", value=str(text)
            )
        return ids
    if isinstance(data, dict) and "heldout_ids" in data:
        return data["heldout_ids"]
    _need_tokenizer(loaded, "perplexity")
    text = data["heldout_text"] if isinstance(data, dict) else str(data)
    return loaded.tokenizer(text, return_tensors="pt")["input_ids"][0]


__all__ = [
    "CAUSAL_WINDOW",
    "DEFAULT_MAX_TOKENS",
    "Quality",
    "evaluation_text",
    "quality_metric",
]
