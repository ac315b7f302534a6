"""Any other model: a Hugging Face hub name or a local ``save_pretrained`` folder.

``AutoConfig.from_pretrained`` reads the config; models whose architecture is a causal
LM (``*ForCausalLM``, ``*LMHeadModel``) load with ``AutoModelForCausalLM`` (kind
``causal-lm``); encoder-decoder models (``config.is_encoder_decoder``: T5, BART, ...)
with ``AutoModelForSeq2SeqLM`` (kind ``seq2seq-lm``, scored by teacher-forced decoder
perplexity), or as their encoder alone when the checkpoint is one (``T5EncoderModel``,
kind ``encoder``); an encoder-decoder checkpoint without a language-model head is refused
before any work; everything else loads with ``AutoModel`` (an encoder). Before a hub
name is asked for, one TCP connection to the hub's host (3 s timeout) tells whether the
hub is reachable; when it is not (or ``HF_HUB_OFFLINE`` is set) the model is read from
the local Hugging Face cache only, so an offline machine answers in well under a second
instead of after the hub client's retries (~25 s). A name that cannot be loaded is a
:class:`~analogsim.errors.ConfigError` naming the model, the built-ins and the reason.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import time
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
)
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
)

from analogsim.errors import ConfigError
from analogsim.models._cache import count_params
from analogsim.models.base import BUILTIN_MODELS, LoadedModel
from analogsim.models.minilm import minilm_sentences
from analogsim.models.tiny_gpt2 import encode_text, pydoc_corpus
from analogsim.progress import quiet_transformers

_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "vocab.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)


def is_causal_config(config: Any) -> bool:
    """Whether a transformers config describes a causal (decoder-only) language model.

    Uses ``config.architectures`` when present; otherwise the model type must be a
    causal-LM type that is not also a masked-LM (encoder) type.
    """
    archs = getattr(config, "architectures", None) or []
    if archs:
        return any(a.endswith(_CAUSAL_SUFFIXES) for a in archs)
    mtype = getattr(config, "model_type", "")
    return mtype in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and mtype not in (
        MODEL_FOR_MASKED_LM_MAPPING_NAMES
    )


def model_kind_of(config: Any, name: str = "") -> tuple[str, Any]:
    """``(kind, loader)`` for a transformers config: how analogsim loads and scores it.

    causal LM -> ``("causal-lm", AutoModelForCausalLM)``; an encoder-decoder whose
    checkpoint is an encoder alone (``architectures`` ``*EncoderModel``, e.g.
    ``T5EncoderModel``) -> ``("encoder", that class)``; another encoder-decoder with a
    seq2seq LM in transformers -> ``("seq2seq-lm", AutoModelForSeq2SeqLM)``; else
    ``("encoder", AutoModel)``. An encoder-decoder checkpoint whose weights have no LM
    head (``T5Model``, ``BartModel``: architectures without ``*ForConditionalGeneration``)
    or whose family has no seq2seq LM raises :class:`ConfigError`: scoring it would need
    an LM head that is not in the checkpoint.
    """
    if is_causal_config(config):
        return "causal-lm", AutoModelForCausalLM
    archs = list(getattr(config, "architectures", None) or [])
    encoders = [getattr(transformers, a, None) for a in archs if a.endswith("EncoderModel")]
    if encoders and encoders[0] is not None:  # AutoModel would add a random decoder
        return "encoder", encoders[0]
    if not getattr(config, "is_encoder_decoder", False):
        return "encoder", AutoModel
    mtype = getattr(config, "model_type", "")
    has_head = not archs or any(a.endswith("ForConditionalGeneration") for a in archs)
    if mtype in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES and has_head:
        return "seq2seq-lm", AutoModelForSeq2SeqLM
    raise ConfigError(
        f"model '{name}' is an encoder-decoder ({mtype or 'unknown type'}, architectures "
        f"{', '.join(archs) or 'none'}) without a language-model head analogsim can score",
        key="model",
        value=name,
        allowed="a *ForConditionalGeneration checkpoint (scored by teacher-forced decoder "
        "perplexity), a *EncoderModel checkpoint (scored by encoder embeddings), a causal "
        "LM or an encoder; see docs/models.md",
    )


def _looks_like_path(name: str) -> bool:
    """A name that can only be a filesystem path (hub ids are ``name`` or ``org/name``)."""
    return name.startswith(("/", "./", "../", "~", ".\\")) or "\\" in name or name.count("/") > 1


@functools.cache
def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the Hugging Face hub's host accepts a TCP connection (asked once per
    process); ``False`` when ``HF_HUB_OFFLINE`` is set."""
    import huggingface_hub.constants as hub

    if hub.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    host = hub.ENDPOINT.split("://", 1)[-1].split("/", 1)[0]
    name, _, port = host.partition(":")
    try:
        with socket.create_connection((name, int(port or 443)), timeout=timeout_s):
            return True
    except OSError:
        return False


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= 400 else text[:397] + "..."
    return f"{type(exc).__name__}: {text}"


def model_not_found_error(name: str, reason: str) -> ConfigError:
    """The error for a model name that is neither built in nor loadable."""
    builtins = BUILTIN_MODELS
    return ConfigError(
        f"model '{name}' is not a built-in model ({', '.join(builtins)}) and could not be "
        f"loaded from a local path or the Hugging Face hub ({reason})",
        key="model",
        allowed=f"one of {', '.join(builtins)}, a local save_pretrained folder, or a hub "
        "name (needs network access or a copy in the local Hugging Face cache)",
    )


def load_hf_model(name_or_path: str, *, progress: bool = True) -> LoadedModel:
    """Load a Hugging Face model by hub name or local folder, float32, CPU, eval mode.

    ``data`` is, for a causal or seq2seq LM, a dict with the held-out pydoc text
    (``heldout_text``, the same text tiny-gpt2 is evaluated on) and its ids under the
    model's tokenizer (``heldout_ids``, when the tokenizer loads); for an encoder, the
    fixed sentence list of ``minilm``. The kind is :func:`model_kind_of`'s. With ``progress=False`` transformers' loading bars are hidden.
    """
    t0 = time.perf_counter()
    local = Path(name_or_path).expanduser()
    if local.exists():
        source = str(local)
    elif _looks_like_path(name_or_path):
        raise model_not_found_error(name_or_path, f"no such folder: {local}")
    else:
        source = name_or_path
    quiet = contextlib.nullcontext() if progress else quiet_transformers()
    with quiet:
        return _load(name_or_path, source, local.exists(), t0)


def _load(name: str, source: str, is_local: bool, t0: float) -> LoadedModel:
    offline = not is_local and not hub_reachable()
    where = {"local_files_only": True} if offline else {}
    try:
        config = AutoConfig.from_pretrained(source, **where)
    except Exception as exc:  # hub unreachable, bad repo id, bad folder: all user input
        reason = _reason(exc)
        if offline:
            reason = f"the hub is not reachable from this machine and no copy is in the local cache; {reason}"
        raise model_not_found_error(name, reason) from exc
    kind, cls = model_kind_of(config, name)
    try:
        model = cls.from_pretrained(source, dtype=torch.float32, **where)
    except Exception as exc:
        raise model_not_found_error(name, _reason(exc)) from exc
    model = model.to("cpu").float().eval()
    info: dict[str, Any] = {"source": source, "model_type": getattr(config, "model_type", None)}
    tokenizer = None
    if is_local and not any((Path(source) / f).is_file() for f in _TOKENIZER_FILES):
        # transformers 5 would build an empty tokenizer of the model's type here
        info["tokenizer_error"] = f"no tokenizer files in {source}"
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, **where)
        except Exception as exc:  # a model without a usable tokenizer is still a model
            info["tokenizer_error"] = _reason(exc)
    if kind in ("causal-lm", "seq2seq-lm"):
        heldout_text = pydoc_corpus()[1]
        data: Any = {"heldout_text": heldout_text}
        if tokenizer is not None:
            data["heldout_ids"] = encode_text(tokenizer, heldout_text)
    else:
        data = minilm_sentences()
    info.update(
        params=count_params(model),
        cache_path=source if is_local else None,
        build_seconds=0.0,
        load_seconds=time.perf_counter() - t0,
    )
    return LoadedModel(
        name=name,
        kind=kind,
        model=model,
        tokenizer=tokenizer,
        data=data,
        info=info,
    )
