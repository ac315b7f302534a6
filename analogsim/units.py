"""Parsing of times, temperatures and value lists given on the command line or in files.

Times accept a number of seconds or a suffix: ``ms``, ``s``, ``m`` (minutes), ``h``,
``d``, ``w``, ``y`` (365.25 days). Temperatures accept ``K`` or ``C`` suffixes (a bare
number is kelvin). Lists are comma separated. Ranges ``start:stop:count`` give
``count`` evenly spaced values including both ends.
"""

from __future__ import annotations

import math
import re

from analogsim.errors import ConfigError

SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
    "y": 365.25 * 86400.0,
}
ZERO_CELSIUS_K = 273.15
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TIME_RE = re.compile(rf"^\s*({_NUM})\s*([a-z]*)\s*$")
_TEMP_RE = re.compile(rf"^\s*({_NUM})\s*([KkCc]?)\s*$")


def parse_time(text: str | float | int, *, key: str = "time") -> float:
    """Seconds from ``"3600"``, ``"1h"``, ``"2.5d"``, ``"1y"``; must be finite and >= 0."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        m = _TIME_RE.match(str(text).lower())
        if not m or (m.group(2) not in SECONDS and m.group(2) != ""):
            raise ConfigError(
                "not a time",
                key=key,
                value=text,
                allowed="a number of seconds or a number with suffix " + ", ".join(SECONDS),
            )
        value = float(m.group(1)) * SECONDS[m.group(2) or "s"]
    if not math.isfinite(value) or value < 0:
        raise ConfigError("time must be finite and >= 0", key=key, value=text)
    return value


def parse_temperature(text: str | float | int, *, key: str = "temperature") -> float:
    """Kelvin from ``"300K"``, ``"85C"`` or ``"300"``; must be above 0 K and below 1000 K."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        m = _TEMP_RE.match(str(text))
        if not m:
            raise ConfigError(
                "not a temperature",
                key=key,
                value=text,
                allowed="a number with suffix K or C, e.g. 300K or 85C",
            )
        value = float(m.group(1))
        if m.group(2).upper() == "C":
            value += ZERO_CELSIUS_K
    if not (0.0 < value < 1000.0):
        raise ConfigError(
            "temperature out of range", key=key, value=text, allowed="0 K < T < 1000 K"
        )
    return value


def parse_list(text: str | list | tuple, parse, *, key: str) -> list:
    """Comma separated list, each item parsed by ``parse(item, key=key)``."""
    if isinstance(text, list | tuple):
        items = list(text)
    else:
        items = [t for t in str(text).split(",") if t.strip()]
    if not items:
        raise ConfigError("empty list", key=key, value=text)
    return [parse(item, key=key) for item in items]


def parse_times(text: str | list) -> list[float]:
    """``"1s,1h,1d,1y"`` to seconds."""
    return parse_list(text, parse_time, key="times")


def parse_temperatures(text: str | list) -> list[float]:
    """``"300K,85C"`` to kelvin."""
    return parse_list(text, parse_temperature, key="temperature")


def parse_float(text: str | float, *, key: str = "value") -> float:
    """A finite float."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ConfigError("not a number", key=key, value=text) from None
    if not math.isfinite(value):
        raise ConfigError("must be finite", key=key, value=text)
    return value


def parse_range(text: str, *, key: str = "range") -> list[float]:
    """``"0:0.05:6"`` gives 6 values from 0 to 0.05; a comma list is taken as is."""
    text = str(text)
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ConfigError("a range is start:stop:count", key=key, value=text)
        start, stop = parse_float(parts[0], key=key), parse_float(parts[1], key=key)
        try:
            count = int(parts[2])
        except ValueError:
            raise ConfigError("count must be an integer", key=key, value=parts[2]) from None
        if count < 1:
            raise ConfigError("count must be >= 1", key=key, value=count)
        if count == 1:
            return [start]
        return [start + (stop - start) * i / (count - 1) for i in range(count)]
    return parse_list(text, parse_float, key=key)


def format_time(seconds: float) -> str:
    """Short human form: ``3600 -> '1h'``, ``31557600 -> '1y'``, ``90 -> '1.5m'``."""
    if seconds == 0:
        return "0s"
    for suffix in ("y", "w", "d", "h", "m", "s", "ms", "us", "ns"):
        unit = SECONDS[suffix]
        if seconds >= unit * 0.999:
            value = seconds / unit
            text = f"{value:.3g}"
            return f"{text}{suffix}"
    return f"{seconds:.3g}s"


def format_temperature(kelvin: float) -> str:
    """``358.15 -> '358.15K (85C)'``."""
    return f"{kelvin:g}K ({kelvin - ZERO_CELSIUS_K:.4g}C)"
