"""The object every model loader returns, and how a text prompt becomes token ids."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

KINDS = ("classifier", "causal-lm", "seq2seq-lm", "encoder")
BUILTIN_MODELS = ("digits-mlp", "minilm", "smollm2", "tiny-gpt2")


@dataclass
class LoadedModel:
    """A model ready for evaluation, with its tokenizer, evaluation data and provenance.

    Attributes:
        name: ``"digits-mlp"``, ``"tiny-gpt2"``, ``"minilm"``, ``"smollm2"`` or the Hugging Face
            name / local path that was loaded.
        kind: ``"classifier"``, ``"causal-lm"``, ``"seq2seq-lm"`` (an encoder-decoder
            language model: T5, BART) or ``"encoder"``.
        model: the torch module, in eval mode, float32, on the CPU.
        tokenizer: a Hugging Face tokenizer for text models, None for ``digits-mlp``
            (and for a local HF model folder without tokenizer files).
        data: evaluation data; its form depends on ``kind`` (see ``docs/models.md``):
            a :class:`~analogsim.models.digits.DigitsData` for ``digits-mlp``, a dict
            with ``train_ids``, ``heldout_ids`` and ``heldout_text`` for ``tiny-gpt2``
            and ``smollm2``
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


def has_chat_template(tokenizer: Any) -> bool:
    """Whether ``tokenizer`` carries a chat template (instruct models: ``smollm2``)."""
    return bool(getattr(tokenizer, "chat_template", None))


def chat_text(tokenizer: Any, message: str) -> str:
    """``message`` as one user turn through the tokenizer's chat template, ending with the
    assistant's turn opened (``add_generation_prompt``): the text the model continues."""
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": message}], tokenize=False, add_generation_prompt=True
    )


def prompt_ids(tokenizer: Any, prompt: str, *, raw: bool = False) -> torch.Tensor:
    """Token ids of a text prompt, 1-D int64.

    With a chat template (and ``raw=False``) the prompt is a user message formatted by
    :func:`chat_text` (the template writes its own special tokens); otherwise, or with
    ``raw=True``, the text is tokenized as it is, with the tokenizer's usual special
    tokens (GPT-2 adds none; LLaMA-style tokenizers may add BOS).
    """
    if not raw and has_chat_template(tokenizer):
        text = chat_text(tokenizer, prompt)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"][0]
    else:
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"][0]
    return ids.to(torch.long)
