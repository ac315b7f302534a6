"""Atomic cache folders."""

from __future__ import annotations

import pytest
import torch

from analogsim.models._cache import atomic_dir, read_meta, seeded_global_rng, write_meta


def test_atomic_dir_replaces_only_on_success(tmp_path):
    final = tmp_path / "model"
    with atomic_dir(final) as tmp:
        write_meta(tmp, {"v": 1})
        assert not final.exists()
    assert read_meta(final) == {"v": 1}
    with pytest.raises(RuntimeError), atomic_dir(final) as tmp:
        write_meta(tmp, {"v": 2})
        raise RuntimeError("interrupted")
    assert read_meta(final) == {"v": 1}
    with atomic_dir(final) as tmp:
        write_meta(tmp, {"v": 3})
    assert read_meta(final) == {"v": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_read_meta_of_garbage_is_none(tmp_path):
    assert read_meta(tmp_path) is None
    (tmp_path / "meta.json").write_text("{not json")
    assert read_meta(tmp_path) is None


def test_seeded_global_rng_restores_state():
    state = torch.get_rng_state()
    with seeded_global_rng(5):
        a = torch.rand(3)
    with seeded_global_rng(5):
        b = torch.rand(3)
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), state)
