"""Fixtures for the metrics tests: a tiny random GPT-2 and a small byte-level tokenizer."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from torch import nn
from transformers import PreTrainedTokenizerFast

from tests.conftest import make_gpt2 as _make_gpt2

VOCAB = 300
TEXT = (
    "The quick brown fox jumps over the lazy dog. A cat sat on the mat. "
    "Python is a programming language. The for statement iterates over a sequence. "
) * 20


def make_gpt2(vocab_size: int = VOCAB, n_positions: int = 32, seed: int = 0) -> nn.Module:
    """The metrics tests' GPT-2: width 16, 32 positions, vocab 300, tied head, no dropout."""
    return _make_gpt2(seed, vocab=vocab_size, n_positions=n_positions, n_embd=16, dropout=0.0)


@pytest.fixture
def gpt2() -> nn.Module:
    return make_gpt2()


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE with 300 entries; token 0 is <|endoftext|> (BOS/EOS)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([TEXT], trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )


@pytest.fixture
def ids() -> torch.Tensor:
    """40 fixed random token ids (longer than the 32-token context)."""
    gen = torch.Generator().manual_seed(1)
    return torch.randint(0, VOCAB, (40,), generator=gen)


class ConstantLogits(torch.nn.Module):
    """A 'language model' whose logits ignore the input: (B, T) -> (B, T, V)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("row", logits.float())  # (V,)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        b, t = input_ids.shape
        return self.row.expand(b, t, -1).clone()  # (B, T, V)
