"""Fixtures for the model tests: an isolated cache and a seconds-scale tiny-gpt2 recipe."""

from __future__ import annotations

import pytest

from analogsim.models.tiny_gpt2 import TinyGPT2Recipe

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
