"""The smollm2 benchmark's parts on a tiny model (the numbers themselves are not tested:
no timed tests; ``analogsim bench --only smollm2`` measures them)."""

from __future__ import annotations

import math

import pytest
import torch

from analogsim.bench.run import run_benchmarks
from analogsim.bench.smollm2 import sweep_point_rows
from analogsim.errors import ConfigError
from analogsim.models import LoadedModel
from tests.conftest import make_gpt2


def test_sweep_point_rows_restore_the_model_and_name_their_parts():
    model = make_gpt2()
    ids = torch.randint(0, 100, (80,), generator=torch.Generator().manual_seed(0))
    loaded = LoadedModel("tiny-lm", "causal-lm", model, None, {"heldout_ids": ids})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = sweep_point_rows(loaded, tokens=64, rounds=1)
    assert [r["engine"] for r in rows] == ["perturb+eval+restore", "perturb", "restore"]
    for r in rows:
        assert r["case"] == "tiny-lm, sweep point, 64 tokens"
        assert r["median_ms"] > 0 and math.isfinite(r["ratio"])
        assert r["ratio"] == pytest.approx(r["median_ms"] / r["digital_ms"])
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_unknown_benchmark_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown benchmark"):
        run_benchmarks(tmp_path / "b", only="nosuch")
    assert not (tmp_path / "b").exists()
