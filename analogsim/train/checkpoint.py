"""Checkpoints: weights in safetensors, the deployment they were trained for beside them.

A checkpoint is a folder::

    model.safetensors     weights only (tied weights stored once)
    config.json           Hugging Face models: the config (``save_pretrained``), so
                          ``AutoModelForCausalLM.from_pretrained(folder)`` loads it
    tokenizer.json ...    Hugging Face models with a tokenizer
    analogsim.json        the sidecar: method, seed, metrics, training settings, the
                          mapping file's text, the device cards' contents
                          (``analogsim.devices.card_dict``), data source, versions

Loading back:

* into analogsim: :func:`load_checkpoint` gives a :class:`~analogsim.models.LoadedModel`
  (with its evaluation data rebuilt from the recorded source), ready for ``convert``;
* into plain torch: ``safetensors.torch.load_file(folder/"model.safetensors")`` and
  ``load_state_dict`` on the same architecture (an MLP's layer sizes are in the sidecar);
* into Hugging Face: ``from_pretrained(folder)``.

Weights are read with safetensors only (no pickle).
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

from analogsim.errors import ConfigError
from analogsim.mapping.rules import cards_of, load_mapping
from analogsim.models._cache import atomic_dir
from analogsim.models.base import LoadedModel
from analogsim.models.digits import make_digits_mlp
from analogsim.progress import quiet_transformers
from analogsim.provenance import git_revision, jsonable, versions
from analogsim.train.data import classification_data, text_data

FORMAT = "analogsim-checkpoint"
FORMAT_VERSION = 1
SIDECAR = "analogsim.json"
WEIGHTS = "model.safetensors"


def is_hf(model: nn.Module) -> bool:
    """A Hugging Face ``PreTrainedModel`` (it can ``save_pretrained``)."""
    return hasattr(model, "save_pretrained") and hasattr(model, "config")


def mlp_architecture(model: nn.Module) -> dict[str, Any] | None:
    """``{"type": "mlp", "sizes": [...]}`` for ``Sequential(Linear, ReLU, ..., Linear)``."""
    if not isinstance(model, nn.Sequential):
        return None
    sizes: list[int] = []
    for i, m in enumerate(model):
        if i % 2 == 0:
            if not isinstance(m, nn.Linear) or m.bias is None:
                return None
            if not sizes:
                sizes.append(m.in_features)
            elif sizes[-1] != m.in_features:
                return None
            sizes.append(m.out_features)
        elif not isinstance(m, nn.ReLU):
            return None
    if len(model) % 2 != 1:
        return None
    return {"type": "mlp", "sizes": sizes}


def build_mlp(sizes: list[int]) -> nn.Sequential:
    """The MLP of an ``mlp`` architecture record (weights to be loaded)."""
    return make_digits_mlp(tuple(sizes[1:-1]), n_in=sizes[0], n_out=sizes[-1])


def mapping_record(mapping: Any) -> dict[str, Any]:
    """Name, path and full text of a mapping (its TOML file, or the dict it came from)."""
    m = load_mapping(mapping)
    text = None
    if m.path is not None and Path(m.path).is_file():
        text = Path(m.path).read_text()
    return {
        "name": m.name,
        "path": None if m.path is None else str(m.path),
        "toml": text,
        "raw": None if text is not None else m.raw,
    }


def save_checkpoint(
    model: nn.Module,
    folder: str | Path,
    *,
    name: str,
    kind: str,
    method: str,
    mapping: Any,
    device: str | None,
    seed: int,
    tokenizer: Any = None,
    metrics: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` (a digital torch / HF model) and its sidecar to ``folder``.

    Written to a temporary folder and renamed into place, so an interrupted save never
    leaves a checkpoint that looks complete. Returns the folder.
    """
    folder = Path(folder)
    arch = None
    with atomic_dir(folder) as tmp:
        if is_hf(model):
            with quiet_transformers():
                model.save_pretrained(tmp)
                if tokenizer is not None:
                    tokenizer.save_pretrained(tmp)
            family = "hf"
        else:
            arch = mlp_architecture(model)
            save_model(model, str(tmp / WEIGHTS))  # shared tensors stored once
            family = "torch"
        m = load_mapping(mapping)
        sidecar = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": name,
            "kind": kind,
            "family": family,
            "architecture": arch,
            "method": method,
            "seed": seed,
            "mapping": mapping_record(m),
            "device": device,
            "device_cards": cards_of(m, device),
            "metrics": metrics or {},
            "train": train or {},
            "data": data or {},
            "versions": versions(),
            "git": git_revision(),
            "created": _dt.datetime.now().isoformat(timespec="seconds"),
            **(extra or {}),
        }
        (tmp / SIDECAR).write_text(json.dumps(jsonable(sidecar), indent=2) + "\n")
    return folder


def read_sidecar(folder: str | Path) -> dict[str, Any]:
    """The sidecar of a checkpoint folder; a clear error if it is not one."""
    p = Path(folder) / SIDECAR
    try:
        meta = json.loads(p.read_text())
    except (OSError, ValueError):
        raise ConfigError(
            "not an analogsim checkpoint (missing or unreadable analogsim.json)",
            file=p,
            allowed="a folder written by `analogsim train`",
        ) from None
    if meta.get("format") != FORMAT:
        raise ConfigError(
            "not an analogsim checkpoint", file=p, key="format", value=meta.get("format")
        )
    return meta


def load_checkpoint(
    folder: str | Path, *, model: nn.Module | None = None, with_data: bool = True
) -> LoadedModel:
    """Load a checkpoint for evaluation (eval mode, float32, CPU).

    ``model``: an instance of the architecture for torch checkpoints whose architecture
    is not recorded (anything but an MLP). The evaluation data are rebuilt from the
    recorded source (digits, image folder, tiny-gpt2 corpus or text file).
    """
    folder = Path(folder)
    meta = read_sidecar(folder)
    tokenizer = None
    if meta["family"] == "hf":
        with quiet_transformers():
            Auto = AutoModelForCausalLM if meta["kind"] == "causal-lm" else AutoModel
            net = Auto.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
            if (folder / "tokenizer_config.json").is_file() or (
                folder / "tokenizer.json"
            ).is_file():
                tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    else:
        if model is not None:
            net = model
        elif meta.get("architecture") and meta["architecture"].get("type") == "mlp":
            net = build_mlp(meta["architecture"]["sizes"])
        else:
            raise ConfigError(
                "this torch checkpoint records no architecture; pass model=<an instance>",
                file=folder / SIDECAR,
                key="architecture",
            )
        load_model(net, str(folder / WEIGHTS), strict=True)
    net.eval()
    data: Any = None
    if with_data:
        data = _data_for(meta, tokenizer)
    info = {"checkpoint": str(folder), "sidecar": meta, "method": meta.get("method")}
    return LoadedModel(
        name=meta["model"], kind=meta["kind"], model=net, tokenizer=tokenizer, data=data, info=info
    )


def _data_for(meta: dict[str, Any], tokenizer: Any) -> Any:
    src = (meta.get("data") or {}).get("source")
    if meta["kind"] == "classifier":
        size = (meta.get("data") or {}).get("image_size")
        return classification_data(src, image_size=size)
    if meta["kind"] == "causal-lm":
        text_file = None if src in (None, "pydoc") else src
        frac = (meta.get("data") or {}).get("heldout_fraction", 0.1)
        return text_data(tokenizer, text_file, heldout_fraction=frac).as_dict()
    return None


__all__ = [
    "SIDECAR",
    "WEIGHTS",
    "build_mlp",
    "is_hf",
    "load_checkpoint",
    "mapping_record",
    "mlp_architecture",
    "read_sidecar",
    "save_checkpoint",
]
