r"""Sigma schedules: the standard deviation of statistical weight noise per generated token.

A schedule gives :math:`\sigma(k)` for token index ``k = 0, 1, ..., n-1`` (vectorised
over ``k``). The perturbation applied at token ``k`` is

.. math:: \Delta W(k) = \sigma(k)\,\xi, \qquad \xi \sim \mathcal N(0, 1)
          \text{ drawn once per weight from a seeded generator,}

so its standard deviation is *exactly* :math:`\sigma(k)` at every token, it changes
continuously with ``k`` (the same draw, rescaled) and it shrinks when the schedule goes
down. This is the "state is sampled once, time is recomputed" rule of the house style.

The construction to avoid (a public study of weight noise in GPT-2 did this) adds a
fresh independent increment at every token,
:math:`W_k = W_{k-1} + \delta_k`, :math:`\delta_k \sim \mathcal N(0, s_k^2)`: the
accumulated standard deviation is then :math:`\sqrt{\sum_j s_j^2}`, e.g.
:math:`\sigma_{end}/\sqrt{n}` for ``n`` equal increments of size
:math:`\sigma_{end}/n`, never the scheduled value, and it can never go down.

Schedules: :class:`Constant`, :class:`Linear`, :class:`Exponential`, :class:`Step`,
:class:`StepSchedule`, :class:`Sine`; :func:`parse_schedule` reads the command-line
form (``linear:0:0.02`` etc.). Sigmas are in the units of the weights they scale
(absolute) or relative to each layer's weight std, as the caller decides.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from analogsim.errors import ConfigError

__all__ = [
    "SCHEDULE_GRAMMAR",
    "Constant",
    "Exponential",
    "Linear",
    "Schedule",
    "Sine",
    "Step",
    "StepSchedule",
    "parse_schedule",
    "standard_draw",
]

SCHEDULE_GRAMMAR = (
    "SIGMA or const:SIGMA, linear:START:END, exp:START:END[:FLOOR], "
    "step:BEFORE:AFTER:AT_TOKEN, steps:V1,V2,...:EVERY_TOKENS, sine:LOW:HIGH:PERIOD_TOKENS "
    "(sigmas finite and >= 0; linear and exp run from token 0 to token n_tokens-1)"
)


def _sigma_value(value: Any, key: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError("not a number", key=key, value=value, allowed="sigma >= 0") from None
    if not math.isfinite(out) or out < 0.0:
        raise ConfigError("sigma must be finite and >= 0", key=key, value=value)
    return out


def _count(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError("not an integer", key=key, value=value, allowed=f"integer >= {minimum}")
    if value < minimum:
        raise ConfigError(f"must be >= {minimum}", key=key, value=value)
    return int(value)


def standard_draw(
    shape: torch.Size | tuple[int, ...],
    *,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """One fixed standard-normal draw per weight, :math:`\\xi \\sim N(0, 1)`, shape ``shape``.

    Sample it once (per layer, from the run's seeded generator) and pass it to
    :meth:`Schedule.noise_at` for every token. The generator must live on ``device``.
    """
    if not isinstance(generator, torch.Generator):
        raise TypeError("standard_draw needs a torch.Generator (seeded by the caller)")
    return torch.randn(shape, generator=generator, dtype=dtype, device=device)


class Schedule(ABC):
    """Base class: sigma as a function of the token index ``k >= 0``."""

    @abstractmethod
    def _sigma(self, k: np.ndarray) -> np.ndarray:
        """Sigma at the float array ``k`` (already checked finite and >= 0)."""

    @abstractmethod
    def spec(self) -> str:
        """The command-line form (the token count, where it matters, is given apart)."""

    def sigma(self, k: int | float | np.ndarray) -> float | np.ndarray:
        """Standard deviation of the perturbation at token ``k``.

        Args:
            k: token index (0-based), finite and >= 0; a scalar or an array of any shape.
                Fractional ``k`` evaluates the same formula between tokens.

        Returns:
            A float for a scalar ``k``, else an array of the shape of ``k``.
        """
        arr = np.asarray(k, dtype=float)
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError(f"token index must be finite and >= 0, got {k!r}")
        out = self._sigma(arr.reshape(-1)).reshape(arr.shape)
        if np.ndim(k) == 0:
            return float(out)
        return out

    def noise_at(self, k: int, base_noise: Tensor) -> Tensor:
        r"""The perturbation at token ``k``: :math:`\sigma(k)\,\xi` (a new tensor).

        Args:
            k: token index (0-based, >= 0), a scalar.
            base_noise: the fixed standard draw :math:`\xi`, one per weight (any shape,
                floating point), e.g. from :func:`standard_draw`. Never modified.

        Returns:
            ``sigma(k) * base_noise``: same shape, dtype and device as ``base_noise``;
            elementwise std exactly ``sigma(k)`` when ``base_noise`` is N(0, 1).
        """
        if np.ndim(k) != 0:
            raise ValueError("noise_at takes one token index; use sigma() for many")
        if not isinstance(base_noise, Tensor) or not base_noise.is_floating_point():
            raise TypeError("base_noise must be a floating-point torch.Tensor")
        return base_noise * self.sigma(k)


def _fraction(k: np.ndarray, n: int) -> np.ndarray:
    """``k / (n - 1)`` clipped to [0, 1] (0 when ``n == 1``): progress through the run."""
    if n == 1:
        return np.zeros_like(k)
    return np.clip(k / (n - 1), 0.0, 1.0)


@dataclass(frozen=True)
class Constant(Schedule):
    r""":math:`\sigma(k) = \sigma` for every token.

    Args:
        value: sigma (>= 0).
    """

    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _sigma_value(self.value, "value"))

    def _sigma(self, k: np.ndarray) -> np.ndarray:
        return np.full(k.shape, self.value)

    def spec(self) -> str:
        return f"const:{self.value!r}"


@dataclass(frozen=True)
class Linear(Schedule):
    r"""Linear from ``start`` at token 0 to ``end`` at token ``n - 1``, then holds ``end``.

    :math:`\sigma(k) = (1 - r)\,\sigma_{start} + r\,\sigma_{end}`,
    :math:`r = \min(k/(n-1), 1)` (``r = 0`` when ``n = 1``). Exactly ``start`` at
    ``k = 0`` and ``end`` at ``k = n - 1``.

    Args:
        start: sigma at token 0 (>= 0).
        end: sigma at token n - 1 (>= 0).
        n: number of tokens (>= 1).
    """

    start: float
    end: float
    n: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _sigma_value(self.start, "start"))
        object.__setattr__(self, "end", _sigma_value(self.end, "end"))
        object.__setattr__(self, "n", _count(self.n, "n", 1))

    def _sigma(self, k: np.ndarray) -> np.ndarray:
        r = _fraction(k, self.n)
        return (1.0 - r) * self.start + r * self.end

    def spec(self) -> str:
        return f"linear:{self.start!r}:{self.end!r}"


@dataclass(frozen=True)
class Exponential(Schedule):
    r"""Geometric interpolation from ``start`` (token 0) to ``end`` (token n - 1).

    With ``start, end > 0``:
    :math:`\sigma(k) = \sigma_{start}\,(\sigma_{end}/\sigma_{start})^{r}`,
    :math:`r = \min(k/(n-1), 1)`: a constant ratio between successive tokens.

    A zero end point has no geometric path to it, so it is handled by a ``floor``:
    with ``start == 0`` the curve is the geometric one from ``floor`` to ``end``, except
    exactly 0 at ``k = 0``; with ``end == 0`` it is the geometric one from ``start`` to
    ``floor``, except exactly 0 at ``k = n - 1``. ``floor`` defaults to 1e-3 times the
    non-zero end point (three decades). Both zero: sigma is 0 throughout. The end
    points are always exact.

    Args:
        start: sigma at token 0 (>= 0).
        end: sigma at token n - 1 (>= 0).
        n: number of tokens (>= 1).
        floor: stand-in for a zero end point (> 0), or None for the default.
    """

    start: float
    end: float
    n: int
    floor: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _sigma_value(self.start, "start"))
        object.__setattr__(self, "end", _sigma_value(self.end, "end"))
        object.__setattr__(self, "n", _count(self.n, "n", 1))
        if self.floor is not None:
            floor = _sigma_value(self.floor, "floor")
            if floor == 0.0:
                raise ConfigError("floor must be > 0", key="floor", value=self.floor)
            object.__setattr__(self, "floor", floor)

    def _effective_floor(self) -> float:
        if self.floor is not None:
            return self.floor
        return 1e-3 * max(self.start, self.end)

    def _sigma(self, k: np.ndarray) -> np.ndarray:
        r = _fraction(k, self.n)
        if self.start == 0.0 and self.end == 0.0:
            return np.zeros_like(r)
        lo = self.start if self.start > 0.0 else self._effective_floor()
        hi = self.end if self.end > 0.0 else self._effective_floor()
        # in log space: hi / lo may overflow for subnormal sigmas
        out = np.exp((1.0 - r) * math.log(lo) + r * math.log(hi))
        out = np.where(r == 0.0, self.start, out)
        return np.where(r == 1.0, self.end, out)

    def spec(self) -> str:
        base = f"exp:{self.start!r}:{self.end!r}"
        return base if self.floor is None else f"{base}:{self.floor!r}"


@dataclass(frozen=True)
class Step(Schedule):
    r""":math:`\sigma(k) = \sigma_{before}` for ``k < at``, :math:`\sigma_{after}` from ``at``.

    Either may be the larger (a step up or down).

    Args:
        before: sigma before token ``at`` (>= 0).
        after: sigma from token ``at`` on (>= 0).
        at: first token with ``after`` (>= 0).
    """

    before: float
    after: float
    at: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "before", _sigma_value(self.before, "before"))
        object.__setattr__(self, "after", _sigma_value(self.after, "after"))
        object.__setattr__(self, "at", _count(self.at, "at", 0))

    def _sigma(self, k: np.ndarray) -> np.ndarray:
        return np.where(k < self.at, self.before, self.after)

    def spec(self) -> str:
        return f"step:{self.before!r}:{self.after!r}:{self.at}"


@dataclass(frozen=True)
class StepSchedule(Schedule):
    r"""A staircase: :math:`\sigma(k) = v_{\min(\lfloor k/e \rfloor,\, m-1)}`.

    ``values[0]`` for tokens ``0 .. every-1``, ``values[1]`` for the next ``every``
    tokens, and so on; the last value holds.

    Args:
        values: sigmas (each >= 0), at least one.
        every: tokens per stair (>= 1).
    """

    values: tuple[float, ...]
    every: int

    def __post_init__(self) -> None:
        values = tuple(_sigma_value(v, f"values[{i}]") for i, v in enumerate(self.values))
        if not values:
            raise ConfigError("needs at least one value", key="values", value=[])
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "every", _count(self.every, "every", 1))

    def _sigma(self, k: np.ndarray) -> np.ndarray:
        idx = np.minimum(np.floor(k / self.every).astype(np.int64), len(self.values) - 1)
        return np.asarray(self.values, dtype=float)[idx]

    def spec(self) -> str:
        return f"steps:{','.join(repr(v) for v in self.values)}:{self.every}"


@dataclass(frozen=True)
class Sine(Schedule):
    r"""Periodic between ``low`` and ``high``, starting at ``low``.

    :math:`\sigma(k) = \sigma_{low} + (\sigma_{high} - \sigma_{low})\,
    \tfrac{1}{2}\big(1 - \cos(2\pi k / P)\big)`: ``low`` at ``k = 0, P, 2P, ...``,
    ``high`` at ``k = P/2, 3P/2, ...``. (Unlike the temperature profile
    :class:`analogsim.clock.profiles.Sine`, which starts at its mean, a noise schedule
    starts at its low value, so generation begins with the least noise.)

    Args:
        low: smallest sigma (>= 0).
        high: largest sigma (>= low).
        period_tokens: tokens per cycle (> 0; need not be an integer).
    """

    low: float
    high: float
    period_tokens: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", _sigma_value(self.low, "low"))
        object.__setattr__(self, "high", _sigma_value(self.high, "high"))
        if self.high < self.low:
            raise ConfigError(
                "high is below low", key="high", value=self.high, allowed=f">= {self.low!r}"
            )
        try:
            period = float(self.period_tokens)
        except (TypeError, ValueError):
            period = math.nan
        if not (math.isfinite(period) and period > 0):
            raise ConfigError(
                "period must be > 0 tokens", key="period_tokens", value=self.period_tokens
            )
        object.__setattr__(self, "period_tokens", period)

    def _sigma(self, k: np.ndarray) -> np.ndarray:
        phase = 2.0 * math.pi * (np.mod(k, self.period_tokens) / self.period_tokens)
        return self.low + (self.high - self.low) * 0.5 * (1.0 - np.cos(phase))

    def spec(self) -> str:
        return f"sine:{self.low!r}:{self.high!r}:{self.period_tokens!r}"


# --------------------------------------------------------------------------------------
# command-line grammar

_Fail = Callable[[str], ConfigError]

_FORMS = {
    "const": ("const:SIGMA", 1),
    "linear": ("linear:START:END", 2),
    "exp": ("exp:START:END[:FLOOR]", (2, 3)),
    "exponential": ("exponential:START:END[:FLOOR]", (2, 3)),
    "step": ("step:BEFORE:AFTER:AT_TOKEN", 3),
    "steps": ("steps:V1,V2,...:EVERY_TOKENS", 2),
    "sine": ("sine:LOW:HIGH:PERIOD_TOKENS", 3),
}


def parse_schedule(text: str, n_tokens: int) -> Schedule:
    """Read a sigma schedule from its command-line form.

    Forms (sigmas are plain numbers >= 0; ``n_tokens`` sets where ``linear`` and ``exp``
    end)::

        0.01 | const:0.01          Constant
        linear:START:END           Linear(START, END, n_tokens)
        exp:START:END[:FLOOR]      Exponential(START, END, n_tokens, FLOOR)
        step:BEFORE:AFTER:AT       Step(BEFORE, AFTER, AT)        AT a token index
        steps:V1,V2,...:EVERY      StepSchedule((V1, V2, ...), EVERY)
        sine:LOW:HIGH:PERIOD       Sine(LOW, HIGH, PERIOD)        PERIOD in tokens

    Args:
        text: the schedule.
        n_tokens: number of generated tokens (>= 1).

    Raises:
        ConfigError: naming the bad part and listing the allowed forms.
    """
    n = _count(n_tokens, "n_tokens", 1)
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(
            "empty sigma schedule", key="schedule", value=text, allowed=SCHEDULE_GRAMMAR
        )
    spec = text.strip()

    def fail(message: str) -> ConfigError:
        return ConfigError(message, key="schedule", value=spec, allowed=SCHEDULE_GRAMMAR)

    if ":" not in spec:
        return Constant(_parse_sigma(spec, fail))
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in _FORMS:
        raise fail(f"unknown schedule kind {kind!r}")
    form, want = _FORMS[kind]
    fields = rest.split(":")
    counts = want if isinstance(want, tuple) else (want,)
    if len(fields) not in counts:
        raise fail(
            f"{kind} takes {' or '.join(map(str, counts))} fields, got {len(fields)}; write {form}"
        )
    try:
        if kind == "const":
            return Constant(_parse_sigma(fields[0], fail))
        if kind == "linear":
            return Linear(_parse_sigma(fields[0], fail), _parse_sigma(fields[1], fail), n)
        if kind in ("exp", "exponential"):
            floor = _parse_sigma(fields[2], fail) if len(fields) == 3 else None
            return Exponential(
                _parse_sigma(fields[0], fail), _parse_sigma(fields[1], fail), n, floor
            )
        if kind == "step":
            return Step(
                _parse_sigma(fields[0], fail),
                _parse_sigma(fields[1], fail),
                _parse_int(fields[2], fail, "AT_TOKEN", 0),
            )
        if kind == "steps":
            values = [v for v in fields[0].split(",") if v.strip()]
            if not values:
                raise fail("steps needs at least one value before ':EVERY'")
            return StepSchedule(
                tuple(_parse_sigma(v, fail) for v in values),
                _parse_int(fields[1], fail, "EVERY_TOKENS", 1),
            )
        period = _parse_number(fields[2], fail, "PERIOD_TOKENS")
        if period <= 0:
            raise fail(f"PERIOD_TOKENS must be > 0, got {fields[2].strip()!r}")
        return Sine(_parse_sigma(fields[0], fail), _parse_sigma(fields[1], fail), period)
    except ConfigError as exc:
        if exc.allowed == SCHEDULE_GRAMMAR:
            raise
        raise fail(str(exc)) from None


def _parse_number(text: str, fail: _Fail, what: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise fail(f"{what} {text.strip()!r} is not a finite number")
    return value


def _parse_sigma(text: str, fail: _Fail) -> float:
    value = _parse_number(text, fail, "sigma")
    if value < 0:
        raise fail(f"sigma {text.strip()!r} is negative")
    return value


def _parse_int(text: str, fail: _Fail, what: str, minimum: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise fail(f"{what} {text.strip()!r} is not an integer") from None
    if value < minimum:
        raise fail(f"{what} must be >= {minimum}, got {value}")
    return value
