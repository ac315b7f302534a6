"""Quality metrics: pure functions of a torch model and data, no global RNG.

- :func:`perplexity` (sliding window), :func:`next_token_entropy_bits`,
  :func:`generate_samples` for causal language models;
- :func:`seq2seq_perplexity` (teacher-forced decoder) for encoder-decoder models;
- :func:`distinct_n`, :func:`repetition_rate` for generated text;
- :func:`accuracy` for classifiers;
- :func:`encode`, :func:`embedding_cosine` for sentence encoders.

Formulas and units are in each docstring and in ``docs/metrics.md``.
"""

from __future__ import annotations

from analogsim.metrics.classification import accuracy
from analogsim.metrics.embedding import embedding_cosine, encode, mean_pool
from analogsim.metrics.language import (
    generate_samples,
    next_token_entropy_bits,
    perplexity,
    perplexity_windows,
    seq2seq_perplexity,
    seq2seq_windows,
)
from analogsim.metrics.text import distinct_n, repetition_rate

__all__ = [
    "accuracy",
    "distinct_n",
    "embedding_cosine",
    "encode",
    "generate_samples",
    "mean_pool",
    "next_token_entropy_bits",
    "perplexity",
    "perplexity_windows",
    "repetition_rate",
    "seq2seq_perplexity",
    "seq2seq_windows",
]
