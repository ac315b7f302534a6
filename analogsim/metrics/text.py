"""Diversity and repetition of generated text: distinct-n and repetition rate.

Texts are split into words on whitespace (case and punctuation kept, so "The" and "the"
are different words); token-id sequences are used as they are.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import torch

from analogsim.errors import ConfigError


def _ngrams(seq: Sequence[Hashable], n: int) -> list[tuple[Hashable, ...]]:
    """The ``len(seq) - n + 1`` consecutive n-grams of ``seq`` (none if it is shorter)."""
    return [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]


def _check_n(n: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise ConfigError(
            "n-gram order must be a positive integer", key="n", value=n, allowed=">= 1"
        )


def _as_units(item: str | Sequence[int] | torch.Tensor) -> list[Hashable]:
    """A text as its whitespace words, a token-id sequence or 1-D tensor as ints."""
    if isinstance(item, str):
        return list(item.split())
    if isinstance(item, torch.Tensor):
        return [int(v) for v in item.reshape(-1).tolist()]
    return [int(v) for v in item]


def _as_sequences(
    items: str | Sequence[int] | torch.Tensor | Iterable[str | Sequence[int] | torch.Tensor],
) -> list[list[Hashable]]:
    """Normalise the accepted inputs to a list of sequences of hashable units."""
    if isinstance(items, str):
        return [_as_units(items)]
    if isinstance(items, torch.Tensor):
        if items.dim() <= 1:
            return [_as_units(items)]
        return [_as_units(row) for row in items]  # (B, T): one sequence per row
    items = list(items)
    if items and all(isinstance(v, int) for v in items):
        return [_as_units(items)]  # one flat sequence of token ids
    return [_as_units(v) for v in items]


def distinct_n(texts: str | Sequence[str], n: int) -> float:
    """Distinct-n: unique word n-grams divided by all word n-grams, over all texts.

    ``distinct_n = |U| / T`` where T counts every n-gram of every text (n-grams never
    cross text boundaries) and U is the set of different ones (Li et al., 2016, "A
    Diversity-Promoting Objective Function for Neural Conversation Models"). Range
    (0, 1]: 1 means no n-gram occurs twice. Returns 0.0 when there are no n-grams (all
    texts shorter than n words).
    """
    _check_n(n)
    seqs = [_as_units(texts)] if isinstance(texts, str) else [_as_units(t) for t in texts]
    grams = [g for s in seqs for g in _ngrams(s, n)]
    if not grams:
        return 0.0
    return len(set(grams)) / len(grams)


def repetition_rate(
    texts: str | Sequence[int] | torch.Tensor | Sequence[str | Sequence[int] | torch.Tensor],
    n: int = 4,
) -> float:
    """Fraction of n-grams that repeat an n-gram seen earlier in the same sequence.

    For each sequence (a text split into words, or a token-id sequence) its n-grams are
    read left to right; an n-gram counts as a repetition if it already occurred earlier
    in that sequence. The result pools counts over all sequences:
    ``sum repeated / sum n-grams``. Per sequence this equals ``1 - unique / total``, the
    seq-rep-n of Welleck et al. (2020, "Neural Text Generation with Unlikelihood
    Training"), which reports n = 4. Range [0, 1): 0 means no repetition; a
    degenerate loop of one n-gram tends to 1. Returns 0.0 when there are no n-grams.

    Accepts one text, a list of texts, one token-id sequence (list of ints or 1-D
    tensor), a list of them, or a 2-D tensor (one sequence per row).
    """
    _check_n(n)
    repeated = 0
    total = 0
    for seq in _as_sequences(texts):
        seen: set[tuple[Hashable, ...]] = set()
        for gram in _ngrams(seq, n):
            total += 1
            if gram in seen:
                repeated += 1
            else:
                seen.add(gram)
    return repeated / total if total else 0.0
