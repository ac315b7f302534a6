"""Fixtures of the runner tests: a tiny random GPT-2 saved as a local Hugging Face folder
(the ``--model`` the experiment configs are run with), and a config writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from analogsim.models.tiny_gpt2 import train_tokenizer
from analogsim.progress import quiet_transformers
from tests.conftest import make_gpt2


@pytest.fixture(scope="session")
def lm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide random GPT-2 (sharpened logits) with a 300-entry byte-level BPE."""
    folder = tmp_path_factory.mktemp("runner-lm")
    tok = train_tokenizer("The quick brown fox jumps over the lazy dog.\n" * 50, 300, 64)
    model = make_gpt2(vocab=len(tok), n_positions=64, sharpen=4.0)
    with quiet_transformers():
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
    return folder


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str, str], Path]:
    """``write_config(text, name="exp.toml")``: the file path."""

    def write(text: str, name: str = "exp.toml") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p

    return write


def sweep_config(
    model: str, sigmas: str = "[0.0, 0.05, 0.2]", seeds: int = 2, extra: str = ""
) -> str:
    """A small noise-study config on ``model``."""
    return f"""
[experiment]
name = "t"
study = "noise"
report = "layer_sensitivity"

[grid]
model = ["{model}"]
roles = ["attention", "mlp"]
sigma = {sigmas}
seed = {seeds}

[metrics]
names = ["perplexity"]
max_tokens = 128
{extra}
"""
