"""The object every model loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

KINDS = ("classifier", "causal-lm", "seq2seq-lm", "encoder")
BUILTIN_MODELS = ("digits-mlp", "minilm", "tiny-gpt2")


@dataclass
class LoadedModel:
    """A model ready for evaluation, with its tokenizer, evaluation data and provenance.

    Attributes:
        name: ``"digits-mlp"``, ``"tiny-gpt2"``, ``"minilm"`` or the Hugging Face
            name / local path that was loaded.
        kind: ``"classifier"``, ``"causal-lm"``, ``"seq2seq-lm"`` (an encoder-decoder
            language model: T5, BART) or ``"encoder"``.
        model: the torch module, in eval mode, float32, on the CPU.
        tokenizer: a Hugging Face tokenizer for text models, None for ``digits-mlp``
            (and for a local HF model folder without tokenizer files).
        data: evaluation data; its form depends on ``kind`` (see ``docs/models.md``):
            a :class:`~analogsim.models.digits.DigitsData` for ``digits-mlp``, a dict
            with ``train_ids``, ``heldout_ids`` and ``heldout_text`` for ``tiny-gpt2``
            (``heldout_text`` and, with a tokenizer, ``heldout_ids`` for other causal and
            seq2seq LMs), a list of sentences for encoders.
        info: provenance: parameter count, training steps, held-out metric, cache path,
            seconds spent building or loading, and the recipe.
    """

    name: str
    kind: str
    model: torch.nn.Module
    tokenizer: Any | None
    data: Any
    info: dict[str, Any] = field(default_factory=dict)
