"""Fixtures for the model tests: an isolated cache, a seconds-scale tiny-gpt2 recipe and
tiny random encoder-decoder folders (T5, BART)."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    BartConfig,
    BartForConditionalGeneration,
    BartModel,
    T5Config,
    T5EncoderModel,
    T5ForConditionalGeneration,
    T5Model,
)

from analogsim.models.tiny_gpt2 import TinyGPT2Recipe, pydoc_corpus, train_tokenizer

# A tiny-gpt2 that builds in a few seconds (the real recipe takes minutes).
SMALL_GPT2 = TinyGPT2Recipe(
    vocab_size=512,
    n_positions=64,
    n_embd=32,
    n_layer=1,
    n_head=2,
    steps=30,
    batch_size=8,
    block_size=64,
    warmup_steps=5,
    eval_stride=32,
)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Point ``cache_dir()`` at a fresh temporary folder."""
    root = tmp_path / "cache"
    monkeypatch.setenv("ANALOGSIM_CACHE", str(root))
    return root


@pytest.fixture
def hub_offline(monkeypatch):
    """Make the Hugging Face hub client fail at once instead of retrying for ~30 s."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def no_network(monkeypatch, hub_offline):
    """Any attempt to open a network connection fails the test."""
    import socket

    def _refuse(*args, **kwargs):
        raise AssertionError("tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)


def save_tiny_seq2seq(family: str, folder, *, head: bool = True):
    """A tiny random T5 or BART (seeded) with a small BPE tokenizer, saved to ``folder``.

    ``head=False`` saves the bare ``T5Model`` / ``BartModel`` (no LM head in the
    architectures); ``family="t5-encoder"`` saves a ``T5EncoderModel``. Returns the model.
    """
    if family.startswith("t5"):
        config = T5Config(
            vocab_size=300, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_decoder_layers=1,
            num_heads=2, decoder_start_token_id=0, pad_token_id=0, eos_token_id=0,
        )  # fmt: skip
        cls = {"t5": T5ForConditionalGeneration if head else T5Model, "t5-encoder": T5EncoderModel}
        cls = cls[family]
    else:
        config = BartConfig(
            vocab_size=300, d_model=16, encoder_layers=1, decoder_layers=1,
            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
            decoder_ffn_dim=32, max_position_embeddings=160, pad_token_id=0, bos_token_id=0,
            eos_token_id=0, decoder_start_token_id=0,
        )  # fmt: skip
        cls = BartForConditionalGeneration if head else BartModel
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = cls(config).eval()
    model.save_pretrained(folder)
    tokenizer = train_tokenizer(pydoc_corpus()[0][:100_000], 300, 160)
    tokenizer.pad_token = tokenizer.eos_token  # id 0 = pad_token_id; sentences are padded
    tokenizer.save_pretrained(folder)
    return model
