"""The chip (``analogsim/mapping/analog_model.py``): deployment time through one
DeploymentAge, the time cache estimate, and the probes the clock reads."""

from __future__ import annotations

import math

import pytest
import torch

from analogsim.devices import load_device
from analogsim.devices.age import DeploymentAge
from analogsim.mapping.analog_model import (
    count_faults,
    effective_matrix,
    effective_state,
    inner_layer,
    squared_error,
    target_matrix,
    weight_count,
)
from analogsim.mapping.convert import convert
from analogsim.mapping.rules import mapping_from_dict
from tests.conftest import make_mlp

HOUR = 3600.0
PCM = load_device("pcm")


def _mapping(device: str = "pcm", **tile):
    return mapping_from_dict(
        {"name": "t", "default": {"placement": "analog", "device": device, "tile": tile}}
    )


def test_age_is_one_deployment_age_held_at_and_advanced():
    am = convert(make_mlp(), "all_analog", seed=0)
    am.at(HOUR, 358.0)
    key = PCM.temperature.age_key
    assert isinstance(am.age, DeploymentAge)
    hot = PCM.temperature.drift_age_after(0.0, HOUR, 358.0)
    assert am.age.equivalent_s == {key: hot}
    am.advance(HOUR, 300.0)
    assert am.time_s == 2 * HOUR
    assert am.equivalent_time(PCM) == hot + HOUR  # exact: a stretch at T_ref adds its length
    assert am.age_keys() == [key]
    am.program(1)
    assert am.time_s == 0.0 and am.age.equivalent_s == {}


def test_set_time_takes_given_equivalent_ages_and_fills_the_rest():
    am = convert(make_mlp(), "all_analog", seed=0)
    key = PCM.temperature.age_key
    am.set_time(HOUR, 330.0, {key: 123.0})
    assert am.equivalent_time(PCM) == 123.0 and am.model[0].time_s == 123.0
    with pytest.raises(ValueError, match="must be finite seconds >= 0"):
        am.set_time(-1.0, 300.0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda am: am.at(10, temperature_K=-3), "temperature_K must be kelvin"),
        (lambda am: am.at(10, temperature_K=1e308), "temperature_K must be kelvin"),
        (lambda am: am.at(10, temperature_K=float("nan")), "temperature_K must be kelvin"),
        (lambda am: am.at(10, temperature_K=500.0), "temperature_K must be kelvin"),
        (lambda am: am.at(float("inf"), 300.0), "time_s must be finite"),
        (lambda am: am.at(-5.0, 300.0), "time_s must be finite"),
        (lambda am: am.advance(-1.0, 300.0), "dt_s must be finite"),
        (lambda am: am.advance(1.0, 100.0), "temperature_K must be kelvin"),
        (lambda am: am.program(0, temperature_K=0.0), "temperature_K must be kelvin"),
        (lambda am: am.program(1.5), "seed must be an integer"),
        (lambda am: am.set_time(1.0, 300.0, {PCM.temperature.age_key: -1.0}), "equivalent"),
    ],
)
def test_times_and_temperatures_are_validated_naming_the_argument(call, match):
    am = convert(make_mlp(), "all_analog", seed=0)
    with pytest.raises(ValueError, match=match):
        call(am)


def test_programming_temperature_is_where_targets_are_verified():
    """A chip programmed at 330 K reads its targets at 330 K (t = 0); read at 300 K it
    differs; programmed at 300 K it is the default chip."""
    am = convert(make_mlp(), _mapping(drift_compensation="none"), seed=0)
    ref = am.program(3).at(0.0, 300.0).model[0].w_eff.clone()
    hot = am.program(3, temperature_K=330.0).at(0.0, 330.0).model[0].w_eff.clone()
    torch.testing.assert_close(hot, ref)  # same targets, same draws, verified at T_prog
    cold_read = am.at(0.0, 300.0).model[0].w_eff.clone()
    assert not torch.equal(cold_read, ref)
    assert float(cold_read.abs().mean()) < float(ref.abs().mean())  # read below T_prog


def test_time_cache_is_on_only_within_its_estimate():
    """The time cache holds nothing (every update regenerates the devices in one pass): its
    estimate is 0 bytes and turning it on changes no number."""
    am = convert(make_mlp(), "all_analog", seed=0)
    estimate = am.time_cache_estimate()
    assert estimate == 0
    before = am.at(86400.0).model[0].w_eff.clone()
    assert am.enable_time_cache(True, max_bytes=estimate) is True
    assert all(inner_layer(layer).time_cache for _, layer in am.analog_layers())
    assert torch.equal(am.at(86400.0).model[0].w_eff, before)
    assert am.enable_time_cache(True, max_bytes=estimate - 1) is False
    assert not any(inner_layer(layer).time_cache for _, layer in am.analog_layers())


def test_probes_read_the_effective_weights():
    am = convert(make_mlp(), _mapping("ideal"), seed=0).at(HOUR)
    for _, layer in am.analog_layers():
        w = target_matrix(layer)
        eff = effective_matrix(layer)
        assert eff.shape == w.shape and weight_count(layer) == w.numel()
        torch.testing.assert_close(eff, w, rtol=1e-5, atol=1e-6)  # an ideal device
        err = float(torch.linalg.vector_norm((eff - w).double()) ** 2)
        assert squared_error(layer) == pytest.approx(err, rel=1e-6, abs=1e-18)
        w_eff, _ = effective_state(layer)
        assert w_eff is inner_layer(layer).w_eff
        assert count_faults(layer, HOUR) == 0


def test_squared_errors_by_role_match_the_probes():
    am = convert(make_mlp(), "all_analog", seed=2).at(30 * 86400.0, 330.0)
    errs = am.squared_errors_by_role()
    norms = am.squared_norms_by_role()
    assert set(errs) == set(norms) and errs
    total = sum(squared_error(layer) for _, layer in am.analog_layers())
    assert math.fsum(errs.values()) == pytest.approx(total, rel=1e-12)
    assert all(e > 0 for e in errs.values())


def test_fault_counts_follow_the_card():
    dev = "rram"
    am = convert(make_mlp(), _mapping(dev), seed=3).at(HOUR)
    rates = load_device(dev).faults
    n = sum(2 * weight_count(layer) for _, layer in am.analog_layers())
    got = sum(count_faults(layer, HOUR) for _, layer in am.analog_layers())
    p = rates.stuck_at_gmin_rate + rates.stuck_at_gmax_rate + rates.outlier_rate
    assert abs(got - n * p) <= 5 * math.sqrt(n * p * (1 - p)) + 1
