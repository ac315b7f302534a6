"""Deployment age (``analogsim/devices/age.py``): held, constant and integrated intervals."""

from __future__ import annotations

import math

import pytest

from analogsim.clock.profile_spec import parse_profile
from analogsim.devices import load_device
from analogsim.devices.age import DeploymentAge
from analogsim.devices.physics import BOLTZMANN_EV_PER_K

KEY = (300.0, 0.6)


def _acc(T: float, key=KEY) -> float:
    return math.exp(-key[1] / BOLTZMANN_EV_PER_K * (1.0 / T - 1.0 / key[0]))


def test_temperature_section_gives_the_age_key():
    pcm = load_device("pcm").temperature
    assert pcm.age_key == (pcm.t_ref_K, pcm.drift_ea_eV)
    assert all(isinstance(x, float) for x in pcm.age_key)
    assert DeploymentAge.acceleration(pcm.age_key, 358.0) == pcm.acceleration(358.0)
    assert DeploymentAge.acceleration(pcm.age_key, None) == 1.0


def test_held_is_time_times_the_arrhenius_factor():
    age = DeploymentAge.held(3600.0, 358.0, [KEY, (300.0, 0.0)])
    assert age.time_s == 3600.0
    assert age.equivalent(KEY) == pytest.approx(3600.0 * _acc(358.0), rel=1e-12)
    assert age.equivalent((300.0, 0.0)) == 3600.0
    assert age.equivalent((320.0, 1.0)) == 3600.0  # an unknown key ages like wall time


def test_constant_intervals_add_up():
    age = DeploymentAge(0.0, {KEY: 0.0})
    age.add_constant(3600.0, 358.0)
    age.add_constant(7200.0, 300.0)
    assert age.time_s == 3 * 3600.0
    assert age.equivalent(KEY) == pytest.approx(3600.0 * _acc(358.0) + 7200.0, rel=1e-12)
    with pytest.raises(ValueError, match="dt must be finite"):
        age.add_constant(-1.0, 300.0)


def test_integrated_intervals_equal_one_integral_and_never_go_back():
    prof = parse_profile("sine:300K:360K:1d")
    age = DeploymentAge(0.0, {KEY: 0.0})
    for a, b in ((0.0, 5e4), (5e4, 2e5), (2e5, 3e5)):
        age.add_integrated(b, {KEY: prof.equivalent_time(a, b, KEY[1], KEY[0])})
    assert age.time_s == 3e5
    whole = prof.equivalent_time(0.0, 3e5, KEY[1], KEY[0])
    assert age.equivalent(KEY) == pytest.approx(whole, rel=1e-11)
    with pytest.raises(RuntimeError, match="cannot go back"):
        age.add_integrated(1.0, {})


def test_copy_is_independent_and_can_select_keys():
    age = DeploymentAge(10.0, {KEY: 50.0})
    other = age.copy([KEY, (300.0, 0.0)])
    other.add_constant(1.0, None)
    assert age.equivalent(KEY) == 50.0 and age.time_s == 10.0
    assert other.equivalent_s == {KEY: 51.0, (300.0, 0.0): 11.0}
