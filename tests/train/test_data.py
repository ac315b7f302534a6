"""Tests for analogsim.train.data: offline datasets and batches."""

from __future__ import annotations

import pytest
import torch

from analogsim.errors import ConfigError
from analogsim.train.data import (
    classification_data,
    classifier_batches,
    image_folder,
    lm_batches,
    split_text,
    text_data,
)


def _image_folder(root, classes=("cat", "dog"), n=6, size=(4, 5)) -> None:
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for ci, c in enumerate(classes):
        (root / c).mkdir(parents=True)
        for i in range(n):
            px = (torch.rand(size[1], size[0], 3, generator=g) * 60 + 100 * ci).to(torch.uint8)
            Image.fromarray(px.numpy()).save(root / c / f"{i}.png")


def test_digits_is_the_builtin_split() -> None:
    d = classification_data("digits")
    assert d.x_train.shape == (1347, 64) and d.x_test.shape == (450, 64)
    assert d.n_classes == 10 and float(d.x_train.max()) <= 1.0


def test_image_folder_flat_tensors_and_stratified_split(tmp_path) -> None:
    _image_folder(tmp_path / "ds", n=8)
    d = image_folder(tmp_path / "ds")
    assert d.classes == ["cat", "dog"] and d.n_features == 3 * 5 * 4
    assert d.x_train.shape[0] == 12 and d.x_test.shape[0] == 4
    assert sorted(d.y_test.tolist()) == [0, 0, 1, 1]  # stratified
    assert float(d.x_train.min()) >= 0.0 and float(d.x_train.max()) <= 1.0


def test_image_folder_with_train_and_test_subfolders_and_resize(tmp_path) -> None:
    _image_folder(tmp_path / "ds" / "train", n=3)
    _image_folder(tmp_path / "ds" / "test", n=2)
    d = image_folder(tmp_path / "ds", image_size=2)
    assert d.x_train.shape == (6, 12) and d.x_test.shape == (4, 12)


def test_missing_folder_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="dataset folder not found"):
        image_folder(tmp_path / "nope")


def test_batches_cover_the_epoch_once() -> None:
    x = torch.arange(10.0).unsqueeze(1)
    y = torch.arange(10)
    seen = torch.cat(
        [yb for _, yb in classifier_batches(x, y, 4, torch.Generator().manual_seed(0))]
    )
    assert sorted(seen.tolist()) == list(range(10))


def test_text_split_and_windows(text_file, tiny_gpt2_folder) -> None:
    from transformers import AutoTokenizer

    train, held = split_text("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n", 0.25)
    assert train + held == "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n" and held.startswith("i")
    tok = AutoTokenizer.from_pretrained(tiny_gpt2_folder)
    td = text_data(tok, text_file)
    assert td.train_ids.numel() > td.heldout_ids.numel() > 1
    xb, yb = next(lm_batches(td.train_ids, 3, 16, 1, torch.Generator().manual_seed(0)))
    assert xb.shape == yb.shape == (3, 16) and torch.equal(xb[:, 1:], yb[:, :-1])
    with pytest.raises(ConfigError, match="text file not found"):
        text_data(tok, text_file.parent / "missing.txt")
