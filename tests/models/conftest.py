"""Fixtures for the model tests: an isolated cache, a seconds-scale tiny-gpt2 recipe,
tiny random encoder-decoder folders (T5, BART) and a tiny LLaMA GGUF file (smollm2)."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, pre_tokenizers, trainers
from tokenizers import models as bpe_models
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


# The shape of SmolLM2's GGUF at toy size: a LLaMA with grouped-query attention (4 query
# heads, 2 key/value heads), a gated MLP, a tied embedding (no output.weight tensor),
# matrices in Q4_1 (the embedding in Q8_0, norms in F32), a byte-level BPE tokenizer
# ("gpt2") with ChatML special tokens and a ChatML chat template.
TINY_GGUF = {"vocab": 320, "hidden": 32, "ffn": 64, "layers": 2, "heads": 4, "kv_heads": 2}
CHAT_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _tiny_bpe(vocab_size: int) -> tuple[list[str], list[str]]:
    """Tokens (by id) and merges of a byte-level BPE trained on a little pydoc text."""
    tok = Tokenizer(bpe_models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(CHAT_SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(pydoc_corpus()[0][:20_000].split("\n\n"), trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    tokens = [""] * len(model["vocab"])
    for text, i in model["vocab"].items():
        tokens[i] = text
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return tokens, merges


def write_tiny_gguf(path: Path, *, chat_template: str | None = CHATML_TEMPLATE) -> Path:
    """Write a tiny random LLaMA GGUF as llama.cpp lays one out (tensor names, llama.*
    hyper-parameters, tokenizer.ggml.* metadata) to ``path``; seeded, so two calls
    write the same weights. ``chat_template=None`` leaves the template out."""
    c = TINY_GGUF
    tokens, merges = _tiny_bpe(c["vocab"])
    head_dim = c["hidden"] // c["heads"]
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny llama for tests")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_1)
    w.add_context_length(128)
    w.add_embedding_length(c["hidden"])
    w.add_block_count(c["layers"])
    w.add_feed_forward_length(c["ffn"])
    w.add_head_count(c["heads"])
    w.add_head_count_kv(c["kv_heads"])
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_merges(merges)
    w.add_token_types([3 if t in CHAT_SPECIALS else 1 for t in tokens])  # 3: control
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    if chat_template is not None:
        w.add_chat_template(chat_template)
    rng = np.random.default_rng(0)
    q4, q8 = gguf.GGMLQuantizationType.Q4_1, gguf.GGMLQuantizationType.Q8_0

    def matrix(name: str, rows: int, cols: int, qtype: gguf.GGMLQuantizationType) -> None:
        data = (rng.standard_normal((rows, cols)) * 0.2).astype(np.float32)  # (out, in)
        w.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)

    def norm(name: str) -> None:
        w.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(c["hidden"])).astype(np.float32))

    kv = c["kv_heads"] * head_dim
    matrix("token_embd.weight", len(tokens), c["hidden"], q8)
    for b in range(c["layers"]):
        norm(f"blk.{b}.attn_norm.weight")
        matrix(f"blk.{b}.attn_q.weight", c["hidden"], c["hidden"], q4)
        matrix(f"blk.{b}.attn_k.weight", kv, c["hidden"], q4)
        matrix(f"blk.{b}.attn_v.weight", kv, c["hidden"], q4)
        matrix(f"blk.{b}.attn_output.weight", c["hidden"], c["hidden"], q4)
        norm(f"blk.{b}.ffn_norm.weight")
        matrix(f"blk.{b}.ffn_gate.weight", c["ffn"], c["hidden"], q4)
        matrix(f"blk.{b}.ffn_up.weight", c["ffn"], c["hidden"], q4)
        matrix(f"blk.{b}.ffn_down.weight", c["hidden"], c["ffn"], q4)
    norm("output_norm.weight")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory) -> Path:
    """A tiny LLaMA GGUF with a ChatML chat template (written once per session)."""
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-llama.Q4_1.gguf")
