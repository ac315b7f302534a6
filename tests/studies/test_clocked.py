"""Tests of the setup shared by the clocked studies (``analogsim/studies/clocked.py``)."""

from __future__ import annotations

import pytest

from analogsim.clock.schedules import parse_schedule
from analogsim.errors import ConfigError
from analogsim.studies.clocked import (
    ChipOptions,
    chip_mapping,
    parse_fault_rates,
    parse_noise_schedule,
    profile_spec,
    resolve_chip,
    with_settings,
)


def test_parse_fault_rates():
    with pytest.raises(ConfigError, match="fault"):
        parse_fault_rates("gmid=1e-9")
    assert parse_fault_rates("gmin=1e-9, outlier=2e-10") == {
        "faults.onset_gmin_per_s": 1e-9,
        "faults.onset_outlier_per_s": 2e-10,
    }
    assert parse_fault_rates(None) == {} and parse_fault_rates("") == {}
    assert parse_fault_rates({"gmax": "1e-9"}) == {"faults.onset_gmax_per_s": 1e-9}
    with pytest.raises(ConfigError, match="KIND=RATE"):
        parse_fault_rates("gmin")
    with pytest.raises(ConfigError, match=">= 0"):
        parse_fault_rates("gmin=-1")


def test_with_settings_replaces_fields_and_names_the_valid_ones():
    opts = with_settings(ChipOptions(seed=3), {"device": "pcm"})
    assert (opts.seed, opts.device) == (3, "pcm")
    with pytest.raises(TypeError, match=r"devise.*valid: .*device"):
        with_settings(ChipOptions(), {"devise": "pcm"})


def test_resolve_chip_parses_times_profile_and_overrides():
    opts = ChipOptions(
        start_age="1d",
        temperature="85C",
        device="pcm",
        fault_rate="gmin=1e-9",
        device_overrides={"drift.scale": 2},
        recalibrate_every="2h",
        noise="gaussian",
        schedule="linear:0:0.02",
    )
    setup, sched = resolve_chip(opts, "1h", "token_time", schedule_steps=5)
    assert (setup.step_s, setup.start_age_s, setup.recalibrate_every_s) == (3600, 86400, 7200)
    assert setup.profile.temperature(0.0) == pytest.approx(358.15)
    assert setup.overrides == {"faults.onset_gmin_per_s": 1e-9, "drift.scale": 2}
    assert sched is not None and sched.spec() == parse_schedule("linear:0:0.02", 5).spec()
    _, later = resolve_chip(opts, 1.0, "input_time")
    assert later is None  # parsed once the length is known
    assert parse_noise_schedule("gaussian", "linear:0:0.02", 5).spec() == sched.spec()
    assert profile_spec(setup.profile) == "358.15K"


@pytest.mark.parametrize(
    ("opts", "step", "match"),
    [
        (ChipOptions(), 0, "token_time"),
        (ChipOptions(noise="gaussian"), 1, "schedule"),
        (ChipOptions(schedule="linear:0:0.02"), 1, "noise"),
        (ChipOptions(recalibrate_every="1h"), 1, "analog mapping"),
        (ChipOptions(fault_rate="gmid=1"), 1, "fault"),
    ],
)
def test_resolve_chip_errors(opts, step, match):
    with pytest.raises(ConfigError, match=match):
        resolve_chip(opts, step, "token_time", schedule_steps=4)


def test_chip_mapping_digital_and_default():
    assert chip_mapping(None, None) == (None, "digital", {})
    m, name, cards = chip_mapping(None, "pcm")
    assert name == m.name == "all_analog" and "pcm" in cards
