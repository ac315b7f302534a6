"""Parsing and formatting of times, temperatures and value lists (``analogsim/units.py``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analogsim.devices.physics import TEMPERATURE_RANGE_K as DEVICE_RANGE_K
from analogsim.errors import ConfigError
from analogsim.units import (
    TEMPERATURE_RANGE_K,
    check_temperature_K,
    check_time_s,
    format_temperature,
    format_time,
    parse_float,
    parse_range,
    parse_temperature,
    parse_temperatures,
    parse_time,
    parse_times,
)

DAY = 86400.0
YEAR = 365.25 * DAY


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("0.0", 0.0),
        ("1s", 1.0),
        ("250ms", 0.25),
        ("1m", 60.0),
        ("2min", 120.0),
        ("1h", 3600.0),
        ("1.5h", 5400.0),
        ("1H", 3600.0),
        (" 2 d ", 2 * DAY),
        ("1w", 7 * DAY),
        ("1y", YEAR),
        ("1e3s", 1000.0),
        (".5h", 1800.0),
        (7, 7.0),
        (0.5, 0.5),
    ],
)
def test_parse_time_values(text, seconds):
    assert parse_time(text) == pytest.approx(seconds, rel=1e-15)


@pytest.mark.parametrize("text", ["", "h", "1x", "1 hour", "abc", "1h2", "inf", "nan", "1,2"])
def test_parse_time_rejects_garbage(text):
    with pytest.raises(ConfigError, match="not a time"):
        parse_time(text)


@pytest.mark.parametrize("text", ["3600", "2.5", "1e3", "-5"])
def test_parse_time_text_needs_a_unit(text):
    """A bare number is never taken as seconds: the error names the key and shows units."""
    with pytest.raises(ConfigError, match="needs a unit") as info:
        parse_time(text, key="--times")
    assert "--times" in str(info.value) and f"{text}s" in str(info.value)


@pytest.mark.parametrize("text", ["-1s", -1.0, float("inf"), float("nan")])
def test_parse_time_rejects_negative_and_non_finite(text):
    with pytest.raises(ConfigError, match="finite and >= 0"):
        parse_time(text)


def test_parse_time_error_names_key_value_and_suffixes():
    with pytest.raises(ConfigError) as info:
        parse_time("3 fortnights", key="times")
    msg = str(info.value)
    assert "times" in msg and "3 fortnights" in msg
    for suffix in ("s", "m", "h", "d", "y"):
        assert suffix in info.value.allowed


def test_parse_times_list():
    assert parse_times("1s,1h,1d,1y") == [1.0, 3600.0, DAY, YEAR]
    assert parse_times(["1h", 60]) == [3600.0, 60.0]
    with pytest.raises(ConfigError, match="empty list"):
        parse_times(" , ")
    with pytest.raises(ConfigError, match="empty list"):
        parse_times([])
    with pytest.raises(ConfigError, match="not a time"):
        parse_times("1h,tomorrow")


@pytest.mark.parametrize(
    ("text", "kelvin"),
    [
        ("300K", 300.0),
        ("300k", 300.0),
        ("358 K", 358.0),
        ("85C", 358.15),
        ("85c", 358.15),
        ("0C", 273.15),
        ("-40C", 233.15),
        ("125C", 398.15),
        ("233K", 233.0),
        ("27.5C", 300.65),
        (310, 310.0),
        (398.15, 398.15),
    ],
)
def test_parse_temperature_values(text, kelvin):
    assert parse_temperature(text) == pytest.approx(kelvin, abs=1e-12)


@pytest.mark.parametrize("text", ["hot", "300F", "K", "", "300 KC", "1e400K"])
def test_parse_temperature_rejects_garbage(text):
    with pytest.raises(ConfigError, match="temperature"):
        parse_temperature(text)


@pytest.mark.parametrize(
    "text", ["0K", "5K", "232.9K", "-41C", "126C", "1000K", "800C", 0.0, 5000, -3, math.nan]
)
def test_parse_temperature_range(text):
    """Outside -40 C..125 C is refused, and the error shows the range."""
    with pytest.raises(ConfigError, match="out of range") as info:
        parse_temperature(text, key="--temperature")
    assert "--temperature" in str(info.value) and "233 K to 398.15 K" in str(info.value)


@pytest.mark.parametrize(
    ("text", "example"), [("85", "85C or 358.15K"), ("300", "300K or 26.85C"), ("5", "5C or")]
)
def test_parse_temperature_text_needs_a_unit(text, example):
    """A bare number is never taken as kelvin: the error names the key and shows the number
    with units."""
    with pytest.raises(ConfigError, match="needs a unit") as info:
        parse_temperature(text, key="--temperature")
    assert "--temperature" in str(info.value) and example in str(info.value)


@pytest.mark.parametrize("value", [-3, 5000, math.inf, math.nan, "300", None, True])
def test_check_temperature_K_refuses_what_the_cli_refuses(value):
    """The API check: a number of kelvin in TEMPERATURE_RANGE_K, a ValueError naming the key."""
    with pytest.raises(ValueError, match="temperature_K"):
        check_temperature_K(value, "temperature_K")


def test_check_temperature_K_accepts_the_range_and_none_where_allowed():
    lo, hi = TEMPERATURE_RANGE_K
    assert check_temperature_K(lo, "t") == lo and check_temperature_K(hi, "t") == hi
    assert check_temperature_K(np.float32(300.0), "t") == 300.0
    assert check_temperature_K(None, "t", allow_none=True) is None


@pytest.mark.parametrize("value", [-1, -1e-9, math.inf, math.nan, "1h", None, False])
def test_check_time_s_refuses(value):
    with pytest.raises(ValueError, match="time_s"):
        check_time_s(value, "time_s")


def test_check_time_s_accepts():
    assert check_time_s(0, "t") == 0.0 and check_time_s(np.int64(3600), "t") == 3600.0


@pytest.mark.parametrize(("text", "item"), [("1h,,1d", "item 2 of 3"), ("1h,", "item 2 of 2")])
def test_parse_list_refuses_empty_items(text, item):
    """``--times 1h,,1d`` is a typo, not two times."""
    with pytest.raises(ConfigError, match=item):
        parse_times(text)


def test_parse_temperatures_list():
    assert parse_temperatures("300K,85C") == pytest.approx([300.0, 358.15])


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("0:0.05:6", [0.0, 0.01, 0.02, 0.03, 0.04, 0.05]),
        ("0:0.1:3", [0.0, 0.05, 0.1]),
        ("1:0:3", [1.0, 0.5, 0.0]),
        ("0.2:0.9:1", [0.2]),
        ("0,0.01,0.5", [0.0, 0.01, 0.5]),
        ("0.3", [0.3]),
    ],
)
def test_parse_range_values(text, values):
    got = parse_range(text)
    assert len(got) == len(values)
    assert got == pytest.approx(values, abs=1e-15)
    if ":" in text:
        assert got[0] == values[0]  # the start is exact


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("0:1", "start:stop:count"),
        ("0:1:2:3", "start:stop:count"),
        ("0:1:x", "count must be an integer"),
        ("0:1:2.5", "count must be an integer"),
        ("0:1:0", "count must be >= 1"),
        ("0:1:-3", "count must be >= 1"),
        ("a:1:3", "not a number"),
        ("0:inf:3", "must be finite"),
        ("0.1,x", "not a number"),
        ("", "empty list"),
    ],
)
def test_parse_range_errors(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_range(text, key="sigma")


def test_parse_float():
    assert parse_float("2.5") == 2.5
    with pytest.raises(ConfigError, match="not a number"):
        parse_float("two")
    with pytest.raises(ConfigError, match="must be finite"):
        parse_float("nan")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (1.0, "1s"),
        (0.5, "500ms"),
        (90.0, "1.5m"),
        (3600.0, "1h"),
        (DAY, "1d"),
        (7 * DAY, "1w"),
        (YEAR, "1y"),
        (2 * YEAR, "2y"),
        (30 * DAY, "4.29w"),
    ],
)
def test_format_time(seconds, text):
    assert format_time(seconds) == text


@given(st.sampled_from(["s", "m", "h", "d", "w", "y"]), st.integers(1, 9))
def test_format_then_parse_round_trip(suffix, n):
    """A whole number of a unit below the next unit prints as that unit and parses back."""
    text = f"{n}{suffix}"
    seconds = parse_time(text)
    back = parse_time(format_time(seconds))
    assert math.isclose(back, seconds, rel_tol=5e-3)  # 3 significant digits


def test_format_temperature():
    assert format_temperature(358.15) == "358.15K (85C)"


def test_the_device_layer_uses_the_same_temperature_range():
    """The CLI's range and the API's (AnalogModel checks through the device layer) are one
    object, defined in units.py."""
    assert DEVICE_RANGE_K is TEMPERATURE_RANGE_K
