"""Fixtures for the training tests: tiny models, fast hwa settings, a tiny GPT-2 folder.

Nothing is downloaded and nothing needs the cached built-in models except the digits
MLP (trained in seconds on first use). Statistical tolerances are Z = 5 standard errors
of the samples drawn (tests/devices/_stats.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from analogsim.mapping.rules import load_mapping
from analogsim.models.tiny_gpt2 import train_tokenizer
from analogsim.progress import quiet_transformers
from analogsim.studies.train import train
from analogsim.train import TrainConfig, fit, load_base
from analogsim.train.hwa_config import HWAConfig
from tests.conftest import make_gpt2, make_mlp

# small surrogate tables and a coarse time grid keep table building in milliseconds
FAST_HWA = dict(levels=17, table_samples=256, times_per_decade=1)


def fast_hwa(**kw) -> HWAConfig:
    return HWAConfig(**{**FAST_HWA, **kw})


def mlp(sizes: tuple[int, ...] = (12, 24, 5), seed: int = 0) -> nn.Sequential:
    """:func:`~tests.conftest.make_mlp` in training mode."""
    return make_mlp(seed, sizes).train()


def tiny_gpt2(seed: int = 0, vocab: int = 300) -> nn.Module:
    """The training tests' GPT-2: 32 wide, 64 positions, tied head, no dropout."""
    return make_gpt2(seed, vocab=vocab, n_positions=64, dropout=0.0)


@pytest.fixture(scope="session")
def tiny_gpt2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-initialised GPT-2 with a 300-entry byte-level BPE, saved HF-style."""
    folder = tmp_path_factory.mktemp("tiny-gpt2-hf")
    text = "The quick brown fox jumps over the lazy dog.\n" * 50
    tok = train_tokenizer(text, 300, model_max_length=64)
    model = tiny_gpt2(vocab=len(tok))
    with quiet_transformers():
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def text_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("text") / "corpus.txt"
    lines = [f"line {i}: the analog chip drifts a little every hour." for i in range(200)]
    p.write_text("\n".join(lines) + "\n")
    return p


@pytest.fixture(scope="session")
def digits_fits() -> dict:
    """One-epoch trainings of each method on digits-mlp (seconds), nothing written:
    ``{method: TrainResult}``."""
    base, _ = load_base("digits-mlp", progress=False)
    m = load_mapping("all_analog").with_device("pcm")
    return {
        meth: fit(base, m, TrainConfig(method=meth, epochs=1, hwa=fast_hwa()), progress=False)
        for meth in ("plain", "hwa", "learned-noise")
    }


@pytest.fixture(scope="session")
def digits_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One-epoch runs of each method on digits-mlp (seconds), each with its run directory
    and checkpoint: ``{method: TrainResult}``."""
    root = tmp_path_factory.mktemp("digits-runs")
    out = {}
    for meth in ("plain", "hwa", "learned-noise"):
        out[meth] = train(
            "digits-mlp",
            "all_analog",
            "pcm",
            meth,
            epochs=1,
            out=root / meth,
            hwa=fast_hwa(),
            progress=False,
        )
    return out
