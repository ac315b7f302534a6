"""Piecewise functions of relative conductance, the form in which cards state fitted statistics.

A fitted statistic (drift-exponent mean and spread, read-noise amplitude ...) is a
function of ``g = |G| / g_max``. Cards write it as one segment or a list of segments:

.. code-block:: toml

    nu_mean = { form = "log", c = [0.0244, -0.0155], min = 0.049, max = 0.1 }
    q_s = [
      { below = 0.16, form = "log", c = [-0.0069, -0.0117], min = 0.015, max = 0.04 },
      { form = "poly", c = [0.0123, 0.0211, -0.0280, 0.0069] },
    ]

Forms (``g`` is clamped to at least 1e-7 first):

* ``const``: ``c0``
* ``poly``: ``c0 + c1 g + c2 g^2 + ...``
* ``log``: ``c0 + c1 ln g``
* ``inverse_power``: ``c0 / max(g^p, floor)``

then clipped to ``[min, max]``. A segment with ``below = b`` applies where ``g < b``;
segments are listed with increasing ``below`` and the last one has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from analogsim.devices.physics import G_REL_FLOOR, polynomial
from analogsim.errors import ConfigError

FORMS = ("const", "poly", "log", "inverse_power")
_SEGMENT_KEYS = ("form", "c", "below", "p", "floor", "min", "max")


@dataclass(frozen=True)
class Segment:
    """One analytic piece of a fitted statistic (see module docstring)."""

    form: str
    c: tuple[float, ...]
    below: float | None = None
    p: float = 1.0
    floor: float = 0.0
    min: float = -math.inf
    max: float = math.inf

    def __call__(self, g: Tensor) -> Tensor:
        if self.form == "const":
            out = torch.full_like(g, self.c[0])
        elif self.form == "poly":
            out = polynomial(g, self.c)
        elif self.form == "log":
            out = torch.log(g).mul_(self.c[1]).add_(self.c[0])
        else:  # inverse_power
            out = torch.pow(g, self.p).clamp_(min=self.floor).reciprocal_().mul_(self.c[0])
        if self.min > -math.inf or self.max < math.inf:
            out.clamp_(min=self.min, max=self.max)
        return out


@dataclass(frozen=True)
class Piecewise:
    """A function of relative conductance made of :class:`Segment` pieces."""

    segments: tuple[Segment, ...]

    def __call__(self, g_rel: Tensor) -> Tensor:
        g = g_rel.clamp(min=G_REL_FLOOR)
        out = self.segments[-1](g)
        for seg in reversed(self.segments[:-1]):
            out = torch.where(g < seg.below, seg(g), out)
        return out

    def scalar(self, g_rel: float) -> float:
        """Value at one relative conductance (for datasheets and tests)."""
        return float(self(torch.tensor([g_rel], dtype=torch.float64))[0])

    def to_toml(self) -> Any:
        """The card form of this function (inverse of :func:`parse_piecewise`)."""
        items = []
        for s in self.segments:
            d: dict[str, Any] = {"form": s.form, "c": list(s.c)}
            if s.below is not None:
                d["below"] = s.below
            if s.form == "inverse_power":
                d["p"] = s.p
                d["floor"] = s.floor
            if s.min > -math.inf:
                d["min"] = s.min
            if s.max < math.inf:
                d["max"] = s.max
            items.append(d)
        return items[0] if len(items) == 1 else items


def _number(value: Any, *, file: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError("must be a number", file=file, key=key, value=value)
    if not math.isfinite(float(value)):
        raise ConfigError("must be finite", file=file, key=key, value=value)
    return float(value)


def parse_piecewise(value: Any, *, file: Any, key: str) -> Piecewise:
    """Validate the card form of a piecewise function; errors name the file and key."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ConfigError("needs at least one segment", file=file, key=key, value=value)
    segments = []
    last_below = -math.inf
    for i, item in enumerate(items):
        where = f"{key}[{i}]" if isinstance(value, list) else key
        if not isinstance(item, dict):
            raise ConfigError(
                "each segment is a table",
                file=file,
                key=where,
                value=item,
                allowed="{ form = ..., c = [...] }",
            )
        unknown = sorted(set(item) - set(_SEGMENT_KEYS))
        if unknown:
            raise ConfigError(
                f"unknown key '{unknown[0]}' in segment",
                file=file,
                key=where,
                allowed=", ".join(_SEGMENT_KEYS),
            )
        form = item.get("form")
        if form not in FORMS:
            raise ConfigError(
                "unknown form", file=file, key=f"{where}.form", value=form, allowed=", ".join(FORMS)
            )
        c = item.get("c")
        if not isinstance(c, list) or not c:
            raise ConfigError(
                "coefficients must be a non-empty list of numbers",
                file=file,
                key=f"{where}.c",
                value=c,
            )
        coeffs = tuple(_number(x, file=file, key=f"{where}.c") for x in c)
        need = {"const": 1, "log": 2, "inverse_power": 1, "poly": 1}[form]
        exact = {"const": 1, "log": 2, "inverse_power": 1}.get(form)
        if len(coeffs) < need or (exact is not None and len(coeffs) != exact):
            raise ConfigError(
                f"form '{form}' takes {exact} coefficient(s)",
                file=file,
                key=f"{where}.c",
                value=list(coeffs),
            )
        below = item.get("below")
        is_last = i == len(items) - 1
        if is_last and below is not None:
            raise ConfigError(
                "the last segment applies to all larger g and has no 'below'",
                file=file,
                key=f"{where}.below",
                value=below,
            )
        if not is_last:
            if below is None:
                raise ConfigError(
                    "every segment but the last needs 'below'", file=file, key=f"{where}.below"
                )
            below = _number(below, file=file, key=f"{where}.below")
            if not (below > 0.0) or below <= last_below:
                raise ConfigError(
                    "'below' must be > 0 and increase from segment to segment",
                    file=file,
                    key=f"{where}.below",
                    value=below,
                )
            last_below = below
        lo = (
            _number(item.get("min", -math.inf), file=file, key=f"{where}.min")
            if "min" in item
            else -math.inf
        )
        hi = (
            _number(item.get("max", math.inf), file=file, key=f"{where}.max")
            if "max" in item
            else math.inf
        )
        if lo > hi:
            raise ConfigError("min must be <= max", file=file, key=f"{where}.min", value=lo)
        p = _number(item.get("p", 1.0), file=file, key=f"{where}.p")
        floor = _number(item.get("floor", 0.0), file=file, key=f"{where}.floor")
        if form == "inverse_power" and floor <= 0:
            raise ConfigError(
                "inverse_power needs floor > 0 (it divides)",
                file=file,
                key=f"{where}.floor",
                value=floor,
            )
        segments.append(Segment(form, coeffs, below, p, floor, lo, hi))
    return Piecewise(tuple(segments))
