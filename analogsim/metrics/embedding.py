"""Sentence embeddings (mean pooling + L2 norm) and their cosine to reference embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from analogsim.errors import ConfigError
from analogsim.metrics._util import eval_mode, model_device


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token vectors where ``attention_mask`` is 1.

    ``e = sum_t m_t h_t / max(sum_t m_t, 1e-9)``. hidden: (B, T, H), attention_mask:
    (B, T) -> (B, H).
    """
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    summed = (hidden * mask).sum(dim=1)  # (B, H)
    count = mask.sum(dim=1).clamp_min(1e-9)  # (B, 1)
    return summed / count


def encode(
    model: torch.nn.Module,
    tokenizer: Any,
    sentences: Sequence[str],
    *,
    batch_size: int = 32,
    max_length: int = 256,
) -> torch.Tensor:
    """Sentence embeddings: the encoder's last hidden states, mean-pooled over the real
    (unpadded) tokens and L2-normalised; the sentence-transformers recipe for
    all-MiniLM-L6-v2 (``1_Pooling`` mean tokens, then ``Normalize``, max 256 tokens).

    An encoder-decoder model (``config.is_encoder_decoder``: T5, BART) is embedded by its
    encoder: it runs with a one-token decoder input (``decoder_start_token_id``) and its
    ``encoder_last_hidden_state`` is pooled, the sentence-T5 "mean of encoder outputs".

    Returns a float32 tensor of shape (N, H) with unit rows (a row of a model that
    produced non-finite states is NaN).
    """
    if len(sentences) == 0:
        raise ConfigError("no sentences given", key="sentences", allowed="at least one")
    device = model_device(model)
    start = _decoder_start(model)
    chunks: list[torch.Tensor] = []
    with eval_mode(model):
        for start in range(0, len(sentences), batch_size):
            batch = list(sentences[start : start + batch_size])
            enc = tokenizer(
                batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            enc = {k: v.to(device) for k, v in enc.items()}
            if start is not None:  # encoder-decoder: the decoder gets one start token
                first = torch.full_like(enc["input_ids"][:, :1], start)  # (B, 1)
                out = model(**enc, decoder_input_ids=first, use_cache=False)
            else:
                out = model(**enc)
            hidden = getattr(out, "encoder_last_hidden_state", None)  # (B, T, H)
            if hidden is None:  # an encoder (T5EncoderModel too: its config says enc-dec)
                hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
            pooled = mean_pool(hidden.float(), enc["attention_mask"])  # (B, H)
            chunks.append(F.normalize(pooled, p=2.0, dim=-1).cpu())
    return torch.cat(chunks)  # (N, H)


def _decoder_start(model: torch.nn.Module) -> int | None:
    """The decoder start token of an encoder-decoder model; None for an encoder."""
    config = getattr(model, "config", None)
    if not getattr(config, "is_encoder_decoder", False):
        return None
    start = getattr(config, "decoder_start_token_id", None)
    if start is None:
        start = getattr(config, "pad_token_id", None)
    if start is None:
        raise ConfigError(
            "encoder-decoder model without decoder_start_token_id or pad_token_id",
            key="decoder_start_token_id",
            allowed="a config that sets decoder_start_token_id",
        )
    return int(start)


def embedding_cosine(
    model: torch.nn.Module,
    reference_embeddings: torch.Tensor,
    tokenizer: Any,
    sentences: Sequence[str],
    *,
    batch_size: int = 32,
    max_length: int = 256,
) -> float:
    """Mean cosine similarity between the model's sentence embeddings and reference ones.

    ``mean_i cos(e_i, r_i)`` with ``e_i = encode(model, tokenizer, sentences)[i]`` and
    ``r_i`` the reference (usually the digital model's :func:`encode` output, shape
    (N, H); it is normalised here, so unnormalised references are fine). 1.0 means the
    embeddings point the same way; NaN if the model produced non-finite states.
    """
    ref = torch.as_tensor(reference_embeddings, dtype=torch.float32)
    if ref.dim() != 2 or ref.shape[0] != len(sentences):
        raise ConfigError(
            "reference embeddings must have one row per sentence",
            key="reference_embeddings",
            value=tuple(ref.shape),
            allowed=f"shape ({len(sentences)}, H)",
        )
    emb = encode(model, tokenizer, sentences, batch_size=batch_size, max_length=max_length)
    if emb.shape != ref.shape:
        raise ConfigError(
            "reference embeddings do not match the model's embedding size",
            key="reference_embeddings",
            value=tuple(ref.shape),
            allowed=f"shape {tuple(emb.shape)}",
        )
    cos = (emb.double() * F.normalize(ref.double(), dim=-1)).sum(dim=-1)  # (N,)
    return float(cos.mean())
