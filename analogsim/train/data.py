"""Offline training data: scikit-learn digits, a local image-folder dataset, text.

* classifiers: ``"digits"`` (scikit-learn's bundled 8x8 digits, the split of
  :func:`analogsim.models.digits_data`) or a path to a torchvision ``ImageFolder``-style
  folder (one sub-folder per class; with ``train/`` and ``test/`` (or ``val/``) sub-folders
  their split is used, else a stratified 75/25 split with a fixed seed). Images become
  flat float vectors in [0, 1] (``C*H*W``), resized when ``image_size`` is given.
* language models: the tiny-gpt2 corpus (Python's ``pydoc_data.topics``, the split of
  :func:`analogsim.models.pydoc_corpus`) or a user's UTF-8 text file, tokenized with the
  model's tokenizer and split at the first line break after ``1 - heldout_fraction`` of
  the characters.

Batches are drawn with an explicit ``torch.Generator``; nothing touches the global RNG.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from sklearn.model_selection import train_test_split
from torch import Tensor
from torchvision import datasets, transforms

from analogsim.errors import ConfigError
from analogsim.models.digits import digits_data
from analogsim.models.tiny_gpt2 import encode_text, pydoc_corpus


@dataclass
class ClassificationData:
    """Flat features ``x_* (N, D)`` float32 and labels ``y_* (N,)`` int64."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    classes: list[str]
    source: str

    def __getitem__(self, key: str) -> Tensor:
        if key not in {"x_train", "y_train", "x_test", "y_test"}:
            raise KeyError(key)
        return getattr(self, key)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)


@dataclass
class TextData:
    """Token ids for training and held-out perplexity, and where they came from."""

    train_ids: Tensor
    heldout_ids: Tensor
    heldout_text: str
    source: str

    def as_dict(self) -> dict[str, Any]:
        """The ``LoadedModel.data`` form for causal LMs."""
        return {
            "train_ids": self.train_ids,
            "heldout_ids": self.heldout_ids,
            "heldout_text": self.heldout_text,
        }


# ---------------------------------------------------------------------------- classifiers
def digits() -> ClassificationData:
    """scikit-learn's digits with the split of the built-in ``digits-mlp``."""
    d = digits_data()
    return ClassificationData(
        d.x_train, d.y_train, d.x_test, d.y_test, [str(i) for i in range(10)], "digits"
    )


def image_folder(
    path: str | Path,
    *,
    image_size: int | tuple[int, int] | None = None,
    test_fraction: float = 0.25,
    seed: int = 0,
) -> ClassificationData:
    """A torchvision ``ImageFolder`` dataset as flat tensors (module docstring)."""
    root = Path(path)
    if not root.is_dir():
        raise ConfigError(
            "dataset folder not found", key="data", value=str(path), allowed="a folder"
        )
    steps: list[Any] = []
    if image_size is not None:
        steps.append(transforms.Resize(image_size))
    steps.append(transforms.ToTensor())
    tf = transforms.Compose(steps)

    def load(folder: Path) -> tuple[Tensor, Tensor, list[str]]:
        try:
            ds = datasets.ImageFolder(str(folder), transform=tf)
        except (FileNotFoundError, RuntimeError) as exc:
            raise ConfigError(
                f"not an image-folder dataset: {exc}",
                key="data",
                value=str(folder),
                allowed="one sub-folder of images per class",
            ) from None
        xs, ys = [], []
        for img, label in ds:
            xs.append(img.reshape(-1))
            ys.append(label)
        shapes = {x.numel() for x in xs}
        if len(shapes) != 1:
            raise ConfigError(
                "images differ in size; give image_size to resize them",
                key="data",
                value=str(folder),
            )
        return torch.stack(xs).float(), torch.tensor(ys, dtype=torch.long), list(ds.classes)

    train_dir = root / "train"
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if train_dir.is_dir() and test_dir is not None:
        x_tr, y_tr, classes = load(train_dir)
        x_te, y_te, classes_te = load(test_dir)
        if classes_te != classes:
            raise ConfigError(
                "train and test folders have different classes",
                key="data",
                value=(classes, classes_te),
            )
    else:
        x, y, classes = load(root)
        idx = torch.arange(len(y)).numpy()
        tr, te = train_test_split(
            idx, test_size=test_fraction, random_state=seed, stratify=y.numpy()
        )
        x_tr, y_tr, x_te, y_te = x[tr], y[tr], x[te], y[te]
    return ClassificationData(x_tr, y_tr, x_te, y_te, classes, str(root.resolve()))


def classification_data(
    source: str | Path | None = None, *, image_size: int | None = None
) -> ClassificationData:
    """``None`` or ``"digits"``: scikit-learn digits; else a path to an image folder."""
    if source is None or str(source) == "digits":
        return digits()
    return image_folder(source, image_size=image_size)


def classifier_batches(
    x: Tensor, y: Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[Tensor, Tensor]]:
    """One epoch of shuffled mini-batches ``(x (B, D), y (B,))``."""
    order = torch.randperm(x.shape[0], generator=generator)
    for start in range(0, x.shape[0], batch_size):
        idx = order[start : start + batch_size]
        yield x[idx], y[idx]


# ---------------------------------------------------------------------------- text
def split_text(text: str, heldout_fraction: float = 0.1) -> tuple[str, str]:
    """``(train, heldout)``: cut at the first line break after ``1 - f`` of the characters."""
    if not 0.0 < heldout_fraction < 0.5:
        raise ConfigError(
            "held-out fraction out of range",
            key="heldout_fraction",
            value=heldout_fraction,
            allowed="0 < f < 0.5",
        )
    cut = text.find("\n", int(len(text) * (1.0 - heldout_fraction)))
    cut = len(text) if cut < 0 else cut + 1
    return text[:cut], text[cut:]


def text_data(
    tokenizer: Any,
    text_file: str | Path | None = None,
    *,
    heldout_fraction: float = 0.1,
) -> TextData:
    """Token ids from a text file, or from the tiny-gpt2 corpus when ``text_file`` is None."""
    if tokenizer is None:
        raise ConfigError(
            "a language model needs its tokenizer to read text",
            key="tokenizer",
            allowed="a model folder with tokenizer files",
        )
    if text_file is None:
        train, heldout = pydoc_corpus(heldout_fraction)
        source = "pydoc"
    else:
        p = Path(text_file)
        if not p.is_file():
            raise ConfigError("text file not found", key="text", value=str(text_file))
        train, heldout = split_text(p.read_text(encoding="utf-8"), heldout_fraction)
        source = str(p.resolve())
    train_ids = encode_text(tokenizer, train)
    heldout_ids = encode_text(tokenizer, heldout)
    if heldout_ids.numel() < 2 or train_ids.numel() < 3:
        raise ConfigError(
            "text too short to train and measure perplexity",
            key="text",
            value=source,
            allowed="a few thousand tokens or more",
        )
    return TextData(train_ids, heldout_ids, heldout, source)


def lm_batches(
    ids: Tensor, batch_size: int, block_size: int, steps: int, generator: torch.Generator
) -> Iterator[tuple[Tensor, Tensor]]:
    """``steps`` batches of random windows: inputs ``(B, T)`` and next-token targets."""
    block = min(block_size, ids.numel() - 1)
    if block < 2:
        raise ConfigError("training text shorter than two tokens", key="text", value=ids.numel())
    offsets = torch.arange(block + 1)  # (T+1,)
    for _ in range(steps):
        starts = torch.randint(0, ids.numel() - block, (batch_size,), generator=generator)
        chunk = ids[starts[:, None] + offsets]  # (B, T+1)
        yield chunk[:, :-1], chunk[:, 1:]


__all__ = [
    "ClassificationData",
    "TextData",
    "classification_data",
    "classifier_batches",
    "digits",
    "image_folder",
    "lm_batches",
    "split_text",
    "text_data",
]
