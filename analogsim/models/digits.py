"""``digits-mlp``: a small MLP trained in seconds on scikit-learn's bundled digits.

Data: ``sklearn.datasets.load_digits`` (1797 images of 8x8 pixels with values 0..16,
shipped inside scikit-learn, no download), features divided by 16 so they lie in
[0, 1], split 75/25 stratified with ``random_state=0`` (1347 train / 450 test).

Model: ``nn.Sequential(Linear(64,128), ReLU, Linear(128,64), ReLU, Linear(64,10))``
trained with Adam and cross-entropy. Every random choice (initialisation, shuffling)
uses one explicit ``torch.Generator``; the global RNG is never touched.

The trained weights are cached as safetensors in ``cache_dir()/digits-mlp/`` with a
``meta.json`` holding the recipe; a cache written by another recipe is rebuilt.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from analogsim.metrics import accuracy
from analogsim.models._cache import atomic_dir, count_params, read_meta, write_meta
from analogsim.models.base import LoadedModel
from analogsim.paths import cache_dir

NAME = "digits-mlp"
WEIGHTS_FILE = "model.safetensors"

# Bump when anything below changes the trained weights; cached copies are then rebuilt.
RECIPE_VERSION = 1
DEFAULT_RECIPE: dict[str, Any] = {
    "version": RECIPE_VERSION,
    "hidden": [128, 64],
    "epochs": 60,
    "batch_size": 32,
    "lr": 1e-3,
    "seed": 0,
    "test_size": 0.25,
    "split_random_state": 0,
    "pixel_scale": 16.0,
}


@dataclass(frozen=True)
class DigitsData:
    """The digits split as tensors.

    ``x_*`` are float32 of shape (N, 64) in [0, 1]; ``y_*`` are int64 class labels
    0..9 of shape (N,).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def __getitem__(self, key: str) -> torch.Tensor:
        """Dict-style access: ``data["x_test"]``."""
        if key not in {"x_train", "y_train", "x_test", "y_test"}:
            raise KeyError(key)
        return getattr(self, key)

    def as_dict(self) -> dict[str, torch.Tensor]:
        """The four tensors as a dict."""
        return asdict(self)


def digits_data(
    *, test_size: float = 0.25, random_state: int = 0, pixel_scale: float = 16.0
) -> DigitsData:
    """Load scikit-learn's bundled digits, scale pixels to [0, 1] and split them.

    The split is stratified by class and fixed by ``random_state``.
    """
    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_size, random_state=random_state, stratify=y
    )

    def _x(a: Any) -> torch.Tensor:
        return torch.as_tensor(a / pixel_scale, dtype=torch.float32)  # (N, 64)

    def _y(a: Any) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.long)  # (N,)

    return DigitsData(_x(x_tr), _y(y_tr), _x(x_te), _y(y_te))


def init_linear_(layer: nn.Linear, generator: torch.Generator) -> nn.Linear:
    """Initialise ``layer`` like ``nn.Linear.reset_parameters`` but from ``generator``.

    Weight ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming-uniform with a=sqrt(5)), bias
    ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    """
    bound = 1.0 / math.sqrt(layer.in_features)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        if layer.bias is not None:
            layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


def make_digits_mlp(
    hidden: tuple[int, ...] | list[int] = (128, 64),
    *,
    generator: torch.Generator | None = None,
    n_in: int = 64,
    n_out: int = 10,
) -> nn.Sequential:
    """An MLP ``n_in -> hidden... -> n_out`` of ``nn.Linear`` with ReLU between them.

    Initialised from ``generator`` (seed 0 if None) without touching the global RNG.
    """
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    sizes = [n_in, *hidden, n_out]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(init_linear_(nn.utils.skip_init(nn.Linear, a, b), gen))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def fit_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    generator: torch.Generator,
) -> list[float]:
    """Train ``model`` on (x, y) with Adam and cross-entropy; return the mean loss per epoch.

    Mini-batches are shuffled with ``generator``. ``model`` is left in train mode;
    callers switch it to eval. Reusable for noise-aware training of other classifiers.
    """
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    n = x.shape[0]
    history: list[float] = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            logits = model(x[idx])  # (B, 10)
            loss = loss_fn(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        history.append(total / n)
    return history


def train_digits_mlp(
    *,
    seed: int = 0,
    epochs: int = 60,
    hidden: tuple[int, ...] | list[int] = (128, 64),
    batch_size: int = 32,
    lr: float = 1e-3,
    data: DigitsData | None = None,
) -> tuple[nn.Sequential, dict[str, Any]]:
    """Train the digits MLP from scratch; return ``(model in eval mode, info)``.

    ``info`` has ``params``, ``train_steps``, ``epochs``, ``final_train_loss``,
    ``test_accuracy`` (fraction of the 450 test images) and ``build_seconds``.
    Deterministic for a given ``seed`` on a given machine.
    """
    t0 = time.perf_counter()
    data = data if data is not None else digits_data()
    gen = torch.Generator().manual_seed(seed)
    model = make_digits_mlp(hidden, generator=gen)
    history = fit_classifier(
        model,
        data.x_train,
        data.y_train,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        generator=gen,
    )
    model.eval()
    steps = epochs * math.ceil(data.x_train.shape[0] / batch_size)
    info = {
        "params": count_params(model),
        "train_steps": steps,
        "epochs": epochs,
        "final_train_loss": history[-1] if history else float("nan"),
        "test_accuracy": accuracy(model, data.x_test, data.y_test),
        "build_seconds": time.perf_counter() - t0,
    }
    return model, info


def _load_cached(folder: Path, recipe: dict[str, Any]) -> tuple[nn.Sequential, dict] | None:
    """The cached model if ``folder`` holds a complete build of ``recipe``, else None."""
    meta = read_meta(folder)
    if meta is None or meta.get("recipe") != recipe:
        return None
    model = make_digits_mlp(recipe["hidden"])
    try:
        state = load_file(str(folder / WEIGHTS_FILE))
        model.load_state_dict(state, strict=True)
    except Exception:  # missing, truncated (SafetensorError) or mismatched weights: rebuild
        return None
    return model.eval(), meta


def load_digits_mlp(root: Path | None = None, *, progress: bool = True) -> LoadedModel:
    """Load ``digits-mlp`` from ``root/digits-mlp`` (default ``cache_dir()``), training it
    first (a few seconds) if the cache is missing, stale or damaged."""
    t0 = time.perf_counter()
    folder = Path(root if root is not None else cache_dir()) / NAME
    recipe = dict(DEFAULT_RECIPE)
    data = digits_data(
        test_size=recipe["test_size"],
        random_state=recipe["split_random_state"],
        pixel_scale=recipe["pixel_scale"],
    )
    cached = _load_cached(folder, recipe)
    if cached is not None:
        model, meta = cached
        from_cache = True
    else:
        if progress:
            print(
                f"analogsim: training {NAME} (a few seconds), caching in {folder}", file=sys.stderr
            )
        model, train_info = train_digits_mlp(
            seed=recipe["seed"],
            epochs=recipe["epochs"],
            hidden=tuple(recipe["hidden"]),
            batch_size=recipe["batch_size"],
            lr=recipe["lr"],
            data=data,
        )
        meta = {"name": NAME, "recipe": recipe, **train_info}
        with atomic_dir(folder) as tmp:
            save_file(model.state_dict(), str(tmp / WEIGHTS_FILE))
            write_meta(tmp, meta)
        from_cache = False
    info = {
        "params": meta["params"],
        "train_steps": meta["train_steps"],
        "test_accuracy": meta["test_accuracy"],
        "build_seconds": meta["build_seconds"],
        "cache_path": str(folder),
        "from_cache": from_cache,
        "load_seconds": time.perf_counter() - t0,
        "recipe": recipe,
    }
    return LoadedModel(
        name=NAME, kind="classifier", model=model, tokenizer=None, data=data, info=info
    )
