"""Reading configuration data: one TOML loader and one range check for numbers.

Device cards, mapping files and temperature profiles all read user data; they share
these two helpers so that every malformed file and every out-of-range number raises the
same kind of :class:`~analogsim.errors.ConfigError` (file, key, value, what is allowed).
Plain finite floats are checked by :func:`analogsim.units.parse_float`.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

from analogsim.errors import ConfigError

__all__ = ["check_number", "load_toml", "range_text"]


def load_toml(path: str | Path, *, missing: str = "file not found") -> dict[str, Any]:
    """The parsed TOML table of ``path``.

    Raises:
        ConfigError: ``missing`` (naming the file) when it is not a file, or
            ``not valid TOML: ...`` with the parser's message.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(missing, file=path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=path) from None


def range_text(lo: Any, hi: Any, lo_inclusive: bool, hi_inclusive: bool) -> str:
    """``'a number in [0, inf)'``: an interval as the error messages write it."""
    left = "[" if lo_inclusive else "("
    right = "]" if hi_inclusive else ")"
    return f"a number in {left}{lo:g}, {hi:g}{right}"


def check_number(
    value: Any,
    *,
    key: str,
    lo: float,
    hi: float,
    lo_inclusive: bool = True,
    hi_inclusive: bool = True,
    integer: bool = False,
    file: Any = None,
) -> float | int:
    """A number from a data file, checked: an ``int`` (``integer``) or a finite float in the
    interval between ``lo`` and ``hi`` (inclusive or not at each end). Booleans and
    strings are rejected (TOML ``true`` is not a number).

    Returns:
        ``float(value)``, or the ``int`` itself with ``integer``.
    """
    allowed = range_text(lo, hi, lo_inclusive, hi_inclusive)
    if integer:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError("must be an integer", file=file, key=key, value=value)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError("must be a number", file=file, key=key, value=value, allowed=allowed)
    v = value if integer else float(value)
    ok_lo = v >= lo if lo_inclusive else v > lo
    ok_hi = v <= hi if hi_inclusive else v < hi
    if not (ok_lo and ok_hi) or (not integer and not math.isfinite(v)):
        raise ConfigError(
            "value out of physical range", file=file, key=key, value=value, allowed=allowed
        )
    return v
