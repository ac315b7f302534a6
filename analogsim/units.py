"""Parsing and checking of times, temperatures and value lists given on the command line,
in files or to the API: one place for their units and their ranges.

Units are never guessed. A time given as text needs a unit: ``ms``, ``s``, ``m``
(minutes), ``min``, ``h``, ``d``, ``w``, ``y`` (365.25 days), ``us``, ``ns``; only ``0``
may stand alone. A temperature given as text needs ``K`` or ``C``. Numbers given to the
API carry their unit in the argument's name (``time_s``, ``temperature_K``) and are
checked by :func:`check_time_s` and :func:`check_temperature_K`, the same ranges as the
command line. Lists are comma separated, with no empty items. Ranges
``start:stop:count`` give ``count`` evenly spaced values including both ends.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TypeVar

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
T = TypeVar("T")


TEMPERATURE_RANGE_K = (233.0, 398.15)
"""Temperatures (K) analogsim accepts, inclusive: -40 C (233.15 K, rounded down to 233 K)
to 125 C (398.15 K), the automotive operating range the device physics is valid in. The
command line, temperature profiles, :func:`check_temperature_K`, the device physics and
AnalogModel's checks all use this one constant."""

TEMPERATURE_RANGE_TEXT = (
    f"{TEMPERATURE_RANGE_K[0]:g} K to {TEMPERATURE_RANGE_K[1]:g} K (-40 C to 125 C), inclusive"
)
""":data:`TEMPERATURE_RANGE_K` as the ``allowed`` text of an error."""

TIME_UNITS_TEXT = "a number with a unit: " + ", ".join(SECONDS) + " (e.g. 1h, 90s, 2.5d, 1y)"
"""What a time given as text looks like, the ``allowed`` text of an error."""


def _number(value: object) -> float | None:
    """``value`` as a float if it is a real number (numpy and 0-d torch scalars too; not a
    bool, not text), else None."""
    if isinstance(value, bool | str | bytes) or not hasattr(value, "__float__"):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, RuntimeError):
        return None


def check_time_s(value: object, key: str) -> float:
    """``value`` as seconds: a real number, finite and >= 0.

    Raises:
        ConfigError (a ``ValueError``): naming ``key``, the value and what is allowed.
    """
    out = _number(value)
    if out is None:
        raise ConfigError(
            "a time must be a number of seconds", key=key, value=value, allowed="e.g. 3600.0"
        )
    if not math.isfinite(out) or out < 0:
        raise ConfigError(
            "time must be finite and >= 0", key=key, value=value, allowed="seconds >= 0"
        )
    return out


def check_temperature_K(value: object, key: str, *, allow_none: bool = False) -> float | None:
    """``value`` as kelvin in :data:`TEMPERATURE_RANGE_K` (``None`` passes when allowed).

    Raises:
        ConfigError (a ``ValueError``): naming ``key``, the value and the range.
    """
    if value is None and allow_none:
        return None
    out = _number(value)
    if out is None:
        raise ConfigError(
            "a temperature must be a number of kelvin",
            key=key,
            value=value,
            allowed=TEMPERATURE_RANGE_TEXT,
        )
    lo, hi = TEMPERATURE_RANGE_K
    if not (math.isfinite(out) and lo <= out <= hi):
        raise ConfigError(
            "temperature out of range", key=key, value=value, allowed=TEMPERATURE_RANGE_TEXT
        )
    return out


def parse_time(text: str | float | int, *, key: str = "time") -> float:
    """Seconds from ``"1h"``, ``"2.5d"``, ``"90s"``, ``"1y"`` or ``"0"``; a number is seconds.

    Text needs a unit (only ``0`` may stand alone); the value must be finite and >= 0.
    """
    if not isinstance(text, str):
        return check_time_s(text, key)
    m = _TIME_RE.match(text.lower())
    if not m or (m.group(2) not in SECONDS and m.group(2) != ""):
        raise ConfigError("not a time", key=key, value=text, allowed=TIME_UNITS_TEXT)
    number = float(m.group(1))
    if m.group(2) == "" and number != 0.0:
        raise ConfigError(
            "a time needs a unit",
            key=key,
            value=text,
            allowed=f"e.g. {m.group(1)}s or {m.group(1)}h; units " + ", ".join(SECONDS),
        )
    value = number * SECONDS[m.group(2) or "s"]
    if not math.isfinite(value) or value < 0:
        raise ConfigError("time must be finite and >= 0", key=key, value=text)
    return value


def _temperature_example(number: float, text: str) -> str:
    """How to write the bare number ``text`` with a unit, for an error message."""
    lo, hi = TEMPERATURE_RANGE_K
    if lo <= number + ZERO_CELSIUS_K <= hi:
        return f"{text}C or {number + ZERO_CELSIUS_K:g}K"
    if lo <= number <= hi:
        return f"{text}K or {number - ZERO_CELSIUS_K:g}C"
    return "85C or 358K"


def parse_temperature(text: str | float | int, *, key: str = "temperature") -> float:
    """Kelvin from ``"300K"`` or ``"85C"``; a number is kelvin. Text needs its unit.

    The value must lie in :data:`TEMPERATURE_RANGE_K`.
    """
    if not isinstance(text, str):
        return check_temperature_K(text, key)  # type: ignore[return-value]
    m = _TEMP_RE.match(text)
    if not m:
        raise ConfigError(
            "not a temperature",
            key=key,
            value=text,
            allowed="a number with unit K or C, e.g. 300K or 85C",
        )
    number = float(m.group(1))
    unit = m.group(2).upper()
    if not unit:
        raise ConfigError(
            "a temperature needs a unit, K or C",
            key=key,
            value=text,
            allowed=f"e.g. {_temperature_example(number, m.group(1))}",
        )
    value = number + ZERO_CELSIUS_K if unit == "C" else number
    lo, hi = TEMPERATURE_RANGE_K
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ConfigError(
            "temperature out of range",
            key=key,
            value=text,
            allowed=TEMPERATURE_RANGE_TEXT + ", e.g. 300K or 85C",
        )
    return value


def parse_list(text: str | list | tuple, parse: Callable[..., T], *, key: str) -> list[T]:
    """Comma separated list, each item parsed by ``parse(item, key=key)``; an empty item
    (``1h,,1d`` or a trailing comma) is an error, not skipped."""
    if isinstance(text, list | tuple):
        items = list(text)
    else:
        items = str(text).split(",")
        if not any(t.strip() for t in items):
            raise ConfigError("empty list", key=key, value=text)
        for i, t in enumerate(items):
            if not t.strip():
                raise ConfigError(
                    f"item {i + 1} of {len(items)} is empty",
                    key=key,
                    value=text,
                    allowed="comma-separated values without empty items, e.g. 1h,1d",
                )
    if not items:
        raise ConfigError("empty list", key=key, value=text)
    return [parse(item, key=key) for item in items]


def parse_times(text: str | list, *, key: str = "times") -> list[float]:
    """``"1s,1h,1d,1y"`` to seconds."""
    return parse_list(text, parse_time, key=key)


def parse_temperatures(text: str | list, *, key: str = "temperature") -> list[float]:
    """``"300K,85C"`` to kelvin."""
    return parse_list(text, parse_temperature, key=key)


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
