"""Tests of the cliff detector (``analogsim/studies/detector.py``): CUSUM and rolling mean."""

from __future__ import annotations

import math

import pytest
import torch

from analogsim.studies.detector import detect_cliff, rolling_mean


def test_cliff_detector_finds_a_step_and_ignores_noise():
    g = torch.Generator().manual_seed(0)
    healthy = (torch.randn(200, generator=g) * 0.3).tolist()
    digital = [-2.0] * 200
    quiet = detect_cliff([d + x for d, x in zip(digital, healthy, strict=True)], digital)
    assert quiet["alarm_index"] is None
    broken = [x + (2.5 if i >= 120 else 0.0) for i, x in enumerate(healthy)]
    res = detect_cliff([d + x for d, x in zip(digital, broken, strict=True)], digital)
    assert 120 <= res["alarm_index"] <= 126
    assert 115 <= res["onset_index"] <= 121
    assert res["cusum"][-1] > res["h_nats"]
    # an overflowing model (non-finite gap) alarms at once
    assert detect_cliff([math.nan, 0.0], [0.0, 0.0])["alarm_index"] == 0


def test_rolling_mean_skips_non_finite_values_and_grows_at_the_start():
    assert rolling_mean([1.0, 3.0, math.nan, 5.0], 2) == [1.0, 2.0, 3.0, 5.0]
    assert math.isnan(rolling_mean([math.inf, math.nan], 3)[1])
    with pytest.raises(ValueError, match="window"):
        rolling_mean([1.0], 0)


def test_cliff_detector_settings_and_bad_settings():
    res = detect_cliff([0.0, 3.0, 3.0], [0.0, 0.0, 0.0], k_ref=1.0, h=3.0, window=2)
    assert res["cusum"] == [0.0, 2.0, 4.0]
    assert res["alarm_index"] == 2 and res["onset_index"] == 1
    assert res["gap"] == [0.0, 3.0, 3.0] and res["rolling_gap"] == [0.0, 1.5, 3.0]
    assert (res["k_ref_nats"], res["h_nats"], res["window"]) == (1.0, 3.0, 2)
    with pytest.raises(ValueError, match="CUSUM"):
        detect_cliff([0.0], [0.0], h=0.0)
