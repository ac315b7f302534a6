"""Tests for analogsim.train.device_stats: the noise pool and the fault rates of training."""

from __future__ import annotations

import pytest
import torch

from analogsim.devices import load_device
from analogsim.train.device_stats import NoiseSource, fault_rates


@pytest.mark.parametrize("fresh", [False, True])
def test_fill_draws_one_window_per_tile_in_order(fresh: bool) -> None:
    out = NoiseSource(3, fresh=fresh).fill_(torch.empty(3, 4, 5))
    src = NoiseSource(3, fresh=fresh)
    expected = torch.stack([src.normal((4, 5)).clone() for _ in range(3)])
    assert torch.equal(out, expected)


def test_fault_rates_take_the_overrides_and_the_card() -> None:
    pcm = load_device("pcm")
    f = pcm.faults
    p_min, p_max, _ = fault_rates(pcm, 0.0, 0.25, None)
    assert p_min == pytest.approx(0.25) and p_max >= f.stuck_at_gmax_rate
    assert fault_rates(load_device("ideal"), 1e6) == (0.0, 0.0, 0.0)
