"""digits-mlp: accuracy, determinism, caching."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from analogsim.models import digits_data, load_model, train_digits_mlp
from analogsim.models.digits import DEFAULT_RECIPE


def test_data_split_is_fixed_stratified_and_scaled():
    data = digits_data()
    assert data.x_train.shape == (1347, 64) and data.x_test.shape == (450, 64)
    assert data.x_train.dtype == torch.float32 and data.y_test.dtype == torch.long
    assert float(data.x_train.min()) == 0.0 and float(data.x_train.max()) == 1.0
    test_counts = torch.bincount(data.y_test, minlength=10)
    all_counts = test_counts + torch.bincount(data.y_train, minlength=10)
    assert bool(((test_counts - 0.25 * all_counts).abs() <= 1).all())  # stratified 75/25
    assert torch.equal(digits_data().x_test, data.x_test)
    assert torch.equal(data["y_train"], data.as_dict()["y_train"])


def test_training_reaches_accuracy_deterministically_without_global_rng():
    state = torch.get_rng_state()
    model, info = train_digits_mlp(seed=0, epochs=DEFAULT_RECIPE["epochs"])
    assert torch.equal(torch.get_rng_state(), state)
    assert info["test_accuracy"] >= 0.93
    assert not model.training
    sizes = [(m.in_features, m.out_features) for m in model if isinstance(m, torch.nn.Linear)]
    assert sizes == [(64, 128), (128, 64), (64, 10)]
    again, _ = train_digits_mlp(seed=0, epochs=2)
    other, _ = train_digits_mlp(seed=1, epochs=2)
    first, _ = train_digits_mlp(seed=0, epochs=2)
    assert all(
        torch.equal(a, b) for a, b in zip(again.parameters(), first.parameters(), strict=True)
    )
    assert not torch.equal(other[0].weight, first[0].weight)


def test_load_caches_and_reloads_identical_weights(cache):
    built = load_model("digits-mlp", progress=False)
    assert built.kind == "classifier" and built.tokenizer is None
    assert built.info["from_cache"] is False
    assert built.info["test_accuracy"] >= 0.93
    folder = cache / "digits-mlp"
    assert (folder / "model.safetensors").is_file() and (folder / "meta.json").is_file()
    assert [p.name for p in cache.iterdir()] == ["digits-mlp"]  # no temp folders left

    again = load_model("digits-mlp", progress=False)
    assert again.info["from_cache"] is True
    assert again.info["test_accuracy"] == built.info["test_accuracy"]
    for (ka, a), (kb, b) in zip(
        built.model.state_dict().items(), again.model.state_dict().items(), strict=True
    ):
        assert ka == kb and torch.equal(a, b)
    x, y = again.data.x_test, again.data.y_test
    with torch.no_grad():
        acc = float((again.model(x).argmax(-1) == y).float().mean())
    assert acc == pytest.approx(built.info["test_accuracy"])


def test_stale_or_damaged_cache_is_rebuilt(cache):
    load_model("digits-mlp", progress=False)
    folder = cache / "digits-mlp"
    meta = json.loads((folder / "meta.json").read_text())
    meta["recipe"]["version"] = -1  # written by another recipe
    (folder / "meta.json").write_text(json.dumps(meta))
    assert load_model("digits-mlp", progress=False).info["from_cache"] is False

    (folder / "model.safetensors").write_bytes(b"truncated")
    rebuilt = load_model("digits-mlp", progress=False)
    assert rebuilt.info["from_cache"] is False
    assert set(load_file(str(folder / "model.safetensors"))) == set(rebuilt.model.state_dict())
