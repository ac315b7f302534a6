"""Tests for analogsim.bench.split: the time split of an analog forward, and bench helpers."""

from __future__ import annotations

import math

import torch

from analogsim.bench.regimes import mapping_for
from analogsim.bench.run import machine
from analogsim.bench.split import STAGES, split_rows, split_times
from analogsim.mapping.convert import convert
from analogsim.tiles.io import get_epilogue
from tests.conftest import make_mlp


def test_split_times_every_stage_and_leaves_the_model_as_it_was() -> None:
    """The stages add up to the analog forward, every timed variant puts each layer's tile
    settings and the epilogue back, and the converted model still computes the same."""
    model = make_mlp(sizes=(64, 600, 32))  # 2 tiles in the second layer
    am = convert(model, mapping_for("io+read", device="ideal")).program(0)
    tiles = {name: layer.tile for name, layer in am.analog_layers()}
    x = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    before = get_epilogue()
    times = split_times(am, lambda: model(x), lambda: am(x), rounds=1)
    assert set(times) == {"fused", "torch"}
    for s in times.values():
        assert all(math.isfinite(v) for v in s.values())
        assert math.isclose(sum(s[k] for k in STAGES), s["analog"], rel_tol=1e-9, abs_tol=1e-12)
        assert s["product"] > 0 and s["dac"] > 0 and s["digital"] > 0
    assert {name: layer.tile for name, layer in am.analog_layers()} == tiles
    assert all(a is tiles[n] for n, a in ((n, la.tile) for n, la in am.analog_layers()))
    assert get_epilogue() == before
    rows = split_rows("mlp", "io+read", times, 1)
    assert len(rows) == 2 * (len(STAGES) + 1)
    assert len({r["engine"] for r in rows}) == len(rows)  # unique keys of the run directory


def test_machine_names_threads_cpu_flags_and_epilogue() -> None:
    info = machine()
    assert info["threads"] == torch.get_num_threads()
    assert info["epilogue"] == get_epilogue()
    assert isinstance(info["cpu_vector_flags"], str)
