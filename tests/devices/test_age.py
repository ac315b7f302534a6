"""DeploymentAge: wall time, drift ages by the demarcation-energy law, fault ages."""

from __future__ import annotations

import pytest

from analogsim.devices import load_device
from analogsim.devices.age import DeploymentAge, DeviceTime, check_temperature

HOUR = 3600.0


@pytest.fixture(scope="module")
def pcm():
    return load_device("pcm").temperature


def test_temperature_section_gives_the_age_key(pcm):
    assert pcm.age_key == (
        pcm.t_ref_K,
        pcm.relaxation_tau0_s,
        pcm.relaxation_t0_s,
        pcm.drift_ea_eV,
        pcm.fault_ea_eV,
    )
    assert all(isinstance(x, float) for x in pcm.age_key)
    assert DeploymentAge.drift_rate(pcm.age_key, 0.0, None) == 1.0
    assert DeploymentAge.drift_rate(pcm.age_key, 0.0, 300.0) == 1.0


def test_held_gives_the_closed_forms(pcm):
    key = pcm.age_key
    age = DeploymentAge.held(HOUR, 358.0, [key])
    assert age.equivalent(key) == pcm.drift_age_after(0.0, HOUR, 358.0)
    assert age.fault_equivalent(key) == HOUR  # fault_ea 0: held time
    assert age.device_time(key) == DeviceTime(age.equivalent(key), HOUR, HOUR)
    ref = DeploymentAge.held(HOUR, 300.0, [key])
    assert ref.device_time(key) == DeviceTime.same(HOUR)


def test_constant_intervals_carry_the_age(pcm):
    key = pcm.age_key
    age = DeploymentAge(0.0, {key: 0.0}, {key: 0.0})
    age.add_constant(HOUR, 358.0)
    age.add_constant(2 * HOUR, 300.0)
    want = pcm.drift_age_after(pcm.drift_age_after(0.0, HOUR, 358.0), 2 * HOUR, 300.0)
    assert age.time_s == 3 * HOUR and age.equivalent(key) == want
    with pytest.raises(ValueError, match="dt must be finite"):
        age.add_constant(-1.0, 300.0)


def test_integrated_intervals_set_the_age_and_never_go_back(pcm):
    key = pcm.age_key
    age = DeploymentAge(0.0, {key: 0.0}, {key: 0.0})
    age.add_integrated(10.0, {key: 50.0}, {key: 10.0})
    assert age.device_time(key) == DeviceTime(50.0, 10.0, 10.0)
    with pytest.raises(RuntimeError, match="cannot go back"):
        age.add_integrated(5.0, {})


def test_copy_is_independent_and_can_select_keys(pcm):
    key = pcm.age_key
    other = load_device("rram").temperature.age_key
    age = DeploymentAge.held(HOUR, 330.0, [key, other])
    sub = age.copy([key])
    sub.add_constant(1.0, 300.0)
    assert set(sub.equivalent_s) == {key} and age.time_s == HOUR


@pytest.mark.parametrize("bad", [-3, 0.0, 1e308, float("nan"), "hot", 500.0, 200.0])
def test_temperatures_outside_the_range_are_refused(bad):
    with pytest.raises(ValueError, match="T_x must be kelvin in"):
        check_temperature(bad, "T_x")
    assert check_temperature(None, "T_x") is None
    assert check_temperature(233.0, "T_x") == 233.0 and check_temperature(398.15, "T_x") == 398.15
