r"""Temperature profiles: simulated time to temperature, and Arrhenius equivalent time.

A profile maps simulated time ``t`` (seconds since the profile's start, ``t >= 0``) to a
temperature in kelvin. Profiles are frozen dataclasses: pure, no wall clock, no state.

Every profile has

* ``temperature(t)``: kelvin at ``t`` seconds (a float for a float, an array for an
  array);
* ``equivalent_time(t_start, t_end, ea_eV, t_ref_K)``: the Arrhenius-weighted age

  .. math:: t_{eq} = \int_{t_{start}}^{t_{end}}
            \exp\!\Big(-\frac{E_a}{k_B}\Big(\frac{1}{T(t)} - \frac{1}{T_{ref}}\Big)\Big)\,dt,

  i.e. how many seconds at ``t_ref_K`` age a device as much as this stretch of the
  profile. Thermally activated structural relaxation of amorphous Ge2Sb2Te5 follows
  Arrhenius kinetics (Ielmini, Lavizzari, Sharma, Lacaita, Appl. Phys. Lett. 92, 193511,
  2008), which gives this time-temperature mapping. The activation energy for the
  drift rate is NOT a published constant: it is an assumption set in the device card;
* ``breakpoints(t_start, t_end)``: times inside the span where the profile has a kink or
  a jump (callers may step their clock there);
* ``spec()``: the command-line form, so that ``parse_profile(p.spec()) == p``.

Profiles: :class:`Constant`, :class:`Ramp`, :class:`Step`, :class:`Sine`, :class:`Trace`;
composition: :class:`Sequence` (pieces one after the other in time), :class:`Offset`
(a profile shifted by a constant number of kelvin) and :class:`Sum` (a base profile plus
the change of another profile since its start, e.g. thermal cycling on a ramp).
:func:`parse_profile` reads the command-line grammar (see its docstring and
``docs/clock_profiles.md``).

Exact closed forms are used for constant stretches (:class:`Constant`, :class:`Step`,
the hold after a finite :class:`Sequence`); everything else is integrated by adaptive
Gauss-Legendre quadrature on sub-intervals split at the breakpoints, to a relative
accuracy of about 1e-13. :class:`Sine` exploits its periodicity (whole periods times one
period's integral plus the two remainders), so a year of a one-day cycle costs a few
milliseconds.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analogsim.devices.physics import BOLTZMANN_EV_PER_K, arrhenius_factor
from analogsim.errors import ConfigError
from analogsim.units import parse_temperature, parse_time

__all__ = [
    "PROFILE_GRAMMAR",
    "TRACE_COLUMNS",
    "Constant",
    "Offset",
    "Profile",
    "Ramp",
    "Sequence",
    "Sine",
    "Step",
    "Sum",
    "Trace",
    "parse_profile",
]

TRACE_COLUMNS = ("time_s", "temperature_K")
"""Header columns a temperature-trace CSV must have (others are ignored)."""

_TRACE_ALLOWED = (
    "a CSV file with header 'time_s,temperature_K' and one row per sample: "
    "finite numbers, time_s strictly increasing (seconds since the profile start), "
    "temperature_K > 0 (kelvin; K = C + 273.15)"
)

PROFILE_GRAMMAR = (
    "a temperature (300K, 85C), const:T, ramp:T0:T1:DURATION, step:T0:T1:AT, "
    "sine:T_LOW:T_HIGH:PERIOD[:START] (START = up, down, high, low or e.g. 45deg), "
    "csv:PATH; a piece may be followed by ~shift:DK (offset by DK kelvin, e.g. 2K or -2K) or ~TERM "
    "(add TERM's change since its start); pieces joined by '+' run one after the other, "
    "each but the last written DURATION=TERM, e.g. 12h=300K+1d=sine:300K:360K:6h+358K"
)

_GL_ORDER = 16
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(_GL_ORDER)
_QUAD_RTOL = 1e-13
_QUAD_MAX_ROUNDS = 60
_QUAD_CHUNK = 16384  # intervals per vectorised batch (memory: 3 * 16 * chunk floats)

_SINE_STARTS = {"up": 0.0, "high": math.pi / 2, "down": math.pi, "low": -math.pi / 2}


# --------------------------------------------------------------------------------------
# numerics


def _arrhenius_np(temperature_K: np.ndarray, t_ref_K: float, ea_eV: float) -> np.ndarray:
    r"""Vectorised :math:`\exp(-E_a/k_B\,(1/T - 1/T_{ref}))`, as ``physics.arrhenius_factor``."""
    return np.exp(-ea_eV / BOLTZMANN_EV_PER_K * (1.0 / temperature_K - 1.0 / t_ref_K))


def _gauss_legendre(
    f: Callable[[np.ndarray], np.ndarray], a: np.ndarray, b: np.ndarray
) -> np.ndarray:
    """16-point Gauss-Legendre estimate of the integral of ``f`` on each ``[a_i, b_i]``."""
    half = 0.5 * (b - a)  # (M,)
    mid = 0.5 * (a + b)  # (M,)
    nodes = mid[:, None] + half[:, None] * _GL_NODES[None, :]  # (M, 16)
    values = f(nodes.reshape(-1)).reshape(nodes.shape)  # (M, 16)
    return half * (values @ _GL_WEIGHTS)  # (M,)


def _integrate(f: Callable[[np.ndarray], np.ndarray], edges: np.ndarray) -> float:
    """Adaptive Gauss-Legendre integral of a positive, vectorised ``f`` over ``edges``.

    ``f`` must be smooth (analytic) inside each ``[edges[i], edges[i+1]]``. Each interval
    is accepted when the 16-point rule on it and on its two halves agree to
    ``_QUAD_RTOL`` relative (the two-halves value is kept); otherwise it is bisected.
    The pieces are summed with ``math.fsum``.
    """
    a_all = np.asarray(edges[:-1], dtype=float)
    b_all = np.asarray(edges[1:], dtype=float)
    keep = b_all > a_all
    a_all, b_all = a_all[keep], b_all[keep]
    accepted: list[np.ndarray] = []
    for lo in range(0, a_all.size, _QUAD_CHUNK):
        a, b = a_all[lo : lo + _QUAD_CHUNK], b_all[lo : lo + _QUAD_CHUNK]
        for round_ in range(_QUAD_MAX_ROUNDS):
            if a.size == 0:
                break
            m = 0.5 * (a + b)
            both = _gauss_legendre(f, np.concatenate([a, a, m]), np.concatenate([b, m, b]))
            whole, left, right = np.split(both, 3)
            halves = left + right
            ok = np.abs(whole - halves) <= _QUAD_RTOL * np.abs(halves)
            # intervals that floating point can no longer split, or the last round: accept
            ok |= (m <= a) | (m >= b)
            if round_ == _QUAD_MAX_ROUNDS - 1:
                ok[:] = True
            accepted.append(halves[ok])
            bad = ~ok
            a, b = np.concatenate([a[bad], m[bad]]), np.concatenate([m[bad], b[bad]])
    if not accepted:
        return 0.0
    return math.fsum(np.concatenate(accepted).tolist())


def _as_float(value: Any, key: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError("not a number", key=key, value=value) from None
    if not math.isfinite(out):
        raise ConfigError("must be finite", key=key, value=value)
    return out


def _kelvin(value: Any, key: str) -> float:
    out = _as_float(value, key)
    if out <= 0.0:
        raise ConfigError("temperature must be > 0 K", key=key, value=value, allowed="kelvin > 0")
    return out


def _seconds(value: Any, key: str, *, positive: bool) -> float:
    out = _as_float(value, key)
    if out < 0.0 or (positive and out == 0.0):
        raise ConfigError(
            "time must be > 0 s" if positive else "time must be >= 0 s",
            key=key,
            value=value,
            allowed="seconds > 0" if positive else "seconds >= 0",
        )
    return out


def _fmt_K(kelvin: float) -> str:
    return f"{kelvin!r}K"


def _fmt_s(seconds: float) -> str:
    return f"{seconds!r}s"


# --------------------------------------------------------------------------------------
# base class


class Profile(ABC):
    """Base class: a pure map from simulated time (s, >= 0) to temperature (K, > 0)."""

    # -- to implement -------------------------------------------------------------------
    @abstractmethod
    def _temperature(self, t: np.ndarray) -> np.ndarray:
        """Kelvin at the 1-D array ``t`` (seconds, already checked finite and >= 0)."""

    def _breakpoints(self) -> tuple[float, ...]:
        """All times (s) where the profile has a kink or a jump; none by default."""
        return ()

    def _max_step(self) -> float:
        """Longest interval the quadrature may start from (s); shorter for oscillations."""
        return math.inf

    @abstractmethod
    def spec(self) -> str:
        """The command-line form; ``parse_profile(p.spec()) == p``.

        Raises ``ValueError`` when the profile has no command-line form (an in-memory
        :class:`Trace`, nested compositions the grammar cannot express).
        """

    # -- public -------------------------------------------------------------------------
    def temperature(self, t: float | np.ndarray) -> float | np.ndarray:
        """Temperature in kelvin at ``t`` seconds since the profile's start.

        Args:
            t: seconds, finite and >= 0; a float or an array of any shape.

        Returns:
            A float for a scalar ``t``, otherwise an array of the same shape as ``t``.
        """
        arr = np.asarray(t, dtype=float)
        _check_times(arr)
        out = self._temperature(arr.reshape(-1)).reshape(arr.shape)
        if np.ndim(t) == 0:
            return float(out)
        return out

    def breakpoints(self, t_start: float, t_end: float) -> np.ndarray:
        """Sorted times strictly inside ``(t_start, t_end)`` where the profile has a kink
        or a jump (the end of a ramp, a step, a trace sample, a sequence boundary).

        Smooth profiles (constant, sine) have none.
        """
        pts = np.unique(np.asarray(self._breakpoints(), dtype=float))
        return pts[(pts > t_start) & (pts < t_end)]

    def equivalent_time(self, t_start: float, t_end: float, ea_eV: float, t_ref_K: float) -> float:
        r"""Arrhenius-weighted age of the stretch ``[t_start, t_end]``, seconds at ``t_ref_K``.

        .. math:: t_{eq} = \int_{t_{start}}^{t_{end}}
                  \exp\!\Big(-\frac{E_a}{k_B}\Big(\frac{1}{T(t)}
                  - \frac{1}{T_{ref}}\Big)\Big)\,dt

        (Arrhenius acceleration of structural relaxation: Ielmini et al., APL 92, 193511,
        2008.) Hotter than ``t_ref_K`` counts more than one second per second. Additive:
        ``eq(a, c) == eq(a, b) + eq(b, c)``. ``ea_eV == 0`` gives exactly
        ``t_end - t_start``. The drift activation energy is an assumption of the device
        card, not a measured constant.

        Args:
            t_start: start of the stretch, s since the profile's start (>= 0).
            t_end: end of the stretch, s (>= t_start).
            ea_eV: activation energy, eV (>= 0).
            t_ref_K: reference temperature, K (> 0).

        Returns:
            Equivalent seconds at ``t_ref_K`` (>= 0).
        """
        a = _as_time_arg(t_start, "t_start")
        b = _as_time_arg(t_end, "t_end")
        if b < a:
            raise ValueError(f"t_end ({t_end!r} s) must be >= t_start ({t_start!r} s)")
        ea = _as_float(ea_eV, "ea_eV")
        if ea < 0:
            raise ConfigError(
                "activation energy must be >= 0", key="ea_eV", value=ea_eV, allowed="eV >= 0"
            )
        t_ref = _kelvin(t_ref_K, "t_ref_K")
        if ea == 0.0:
            return b - a
        if b == a:
            return 0.0
        return self._equivalent_time(a, b, ea, t_ref)

    # -- shared implementation ------------------------------------------------------------
    def _equivalent_time(self, a: float, b: float, ea: float, t_ref: float) -> float:
        """Default: adaptive Gauss-Legendre between breakpoints (arguments checked)."""
        return self._quadrature(a, b, ea, t_ref)

    def _quadrature(self, a: float, b: float, ea: float, t_ref: float) -> float:
        edges = _edges(a, b, self.breakpoints(a, b), self._max_step())

        def integrand(t: np.ndarray) -> np.ndarray:
            return _arrhenius_np(self._temperature(t), t_ref, ea)

        return _integrate(integrand, edges)


def _check_times(arr: np.ndarray) -> None:
    if not np.all(np.isfinite(arr)):
        raise ValueError("profile time must be finite seconds")
    if np.any(arr < 0):
        raise ValueError(
            f"profile time must be >= 0 s since the profile's start, got {float(arr.min())!r}"
        )


def _as_time_arg(value: float, key: str) -> float:
    out = float(value)
    if not math.isfinite(out) or out < 0:
        raise ValueError(f"{key} must be finite seconds >= 0, got {value!r}")
    return out


def _edges(a: float, b: float, inner: np.ndarray, max_step: float) -> np.ndarray:
    """``[a, *inner, b]``, each gap cut into equal parts no longer than ``max_step``."""
    coarse = np.concatenate([[a], inner, [b]])
    if not math.isfinite(max_step):
        return coarse
    parts = [coarse[:1]]
    for lo, hi in itertools.pairwise(coarse):
        n = max(1, math.ceil((hi - lo) / max_step))
        parts.append(np.linspace(lo, hi, n + 1)[1:])
    return np.concatenate(parts)


# --------------------------------------------------------------------------------------
# simple profiles


@dataclass(frozen=True)
class Constant(Profile):
    r"""Constant temperature: :math:`T(t) = T`.

    Equivalent time (closed form): :math:`t_{eq} = (t_{end} - t_{start})\,
    \exp(-E_a/k_B\,(1/T - 1/T_{ref}))`.

    Args:
        T: temperature, K (> 0).
    """

    T: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "T", _kelvin(self.T, "T"))

    def _temperature(self, t: np.ndarray) -> np.ndarray:
        return np.full(t.shape, self.T)

    def _equivalent_time(self, a: float, b: float, ea: float, t_ref: float) -> float:
        return (b - a) * arrhenius_factor(self.T, t_ref, ea)

    def spec(self) -> str:
        return _fmt_K(self.T)


@dataclass(frozen=True)
class Ramp(Profile):
    r"""Linear ramp from ``T0`` to ``T1`` over ``duration`` seconds, then holds ``T1``.

    :math:`T(t) = T_0 + (T_1 - T_0)\,\min(t/d, 1)`. Breakpoint at ``t = duration``.
    Equivalent time by quadrature (the closed form via the exponential integral loses
    digits to cancellation when ``T0`` is close to ``T1``).

    Args:
        T0: start temperature, K (> 0).
        T1: end temperature, K (> 0); may be below ``T0`` (cooling).
        duration: ramp length, s (> 0).
    """

    T0: float
    T1: float
    duration: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "T0", _kelvin(self.T0, "T0"))
        object.__setattr__(self, "T1", _kelvin(self.T1, "T1"))
        object.__setattr__(self, "duration", _seconds(self.duration, "duration", positive=True))

    def _temperature(self, t: np.ndarray) -> np.ndarray:
        frac = np.minimum(t / self.duration, 1.0)
        return (1.0 - frac) * self.T0 + frac * self.T1

    def _breakpoints(self) -> tuple[float, ...]:
        return (self.duration,)

    def spec(self) -> str:
        return f"ramp:{_fmt_K(self.T0)}:{_fmt_K(self.T1)}:{_fmt_s(self.duration)}"


@dataclass(frozen=True)
class Step(Profile):
    r"""``T0`` before ``at`` seconds, ``T1`` from ``at`` on (a jump, no transition).

    Equivalent time (closed form, piecewise constant):
    :math:`t_{eq} = \ell_0 f(T_0) + \ell_1 f(T_1)` with :math:`\ell_0, \ell_1` the parts
    of the stretch before and after ``at`` and
    :math:`f(T) = \exp(-E_a/k_B\,(1/T - 1/T_{ref}))`.

    Args:
        T0: temperature before the step, K (> 0).
        T1: temperature from the step on, K (> 0).
        at: time of the step, s (>= 0).
    """

    T0: float
    T1: float
    at: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "T0", _kelvin(self.T0, "T0"))
        object.__setattr__(self, "T1", _kelvin(self.T1, "T1"))
        object.__setattr__(self, "at", _seconds(self.at, "at", positive=False))

    def _temperature(self, t: np.ndarray) -> np.ndarray:
        return np.where(t < self.at, self.T0, self.T1)

    def _breakpoints(self) -> tuple[float, ...]:
        return (self.at,)

    def _equivalent_time(self, a: float, b: float, ea: float, t_ref: float) -> float:
        before = max(0.0, min(b, self.at) - a)
        after = max(0.0, b - max(a, self.at))
        return before * arrhenius_factor(self.T0, t_ref, ea) + after * arrhenius_factor(
            self.T1, t_ref, ea
        )

    def spec(self) -> str:
        return f"step:{_fmt_K(self.T0)}:{_fmt_K(self.T1)}:{_fmt_s(self.at)}"


@dataclass(frozen=True)
class Sine(Profile):
    r"""Thermal cycling between ``T_low`` and ``T_high``.

    :math:`T(t) = \bar T + A \sin(2\pi t/P + \varphi)` with
    :math:`\bar T = (T_{low} + T_{high})/2`, :math:`A = (T_{high} - T_{low})/2`.
    With the default ``phase = 0`` the cycle starts at the mean temperature going up;
    ``phase = pi/2`` starts at ``T_high``, ``pi`` at the mean going down, ``-pi/2`` at
    ``T_low``.

    Equivalent time: whole periods count ``n`` times one period's integral (computed by
    adaptive quadrature), plus the two partial periods at the ends.

    Args:
        T_low: lowest temperature, K (> 0).
        T_high: highest temperature, K (>= T_low).
        period: cycle length, s (> 0).
        phase: phase at ``t = 0``, radians.
    """

    T_low: float
    T_high: float
    period: float
    phase: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "T_low", _kelvin(self.T_low, "T_low"))
        object.__setattr__(self, "T_high", _kelvin(self.T_high, "T_high"))
        object.__setattr__(self, "period", _seconds(self.period, "period", positive=True))
        object.__setattr__(self, "phase", _as_float(self.phase, "phase"))
        if self.T_high < self.T_low:
            raise ConfigError(
                "T_high is below T_low",
                key="T_high",
                value=self.T_high,
                allowed=f"T_high >= T_low = {self.T_low!r} K",
            )

    def _temperature(self, t: np.ndarray) -> np.ndarray:
        mean = 0.5 * (self.T_low + self.T_high)
        amp = 0.5 * (self.T_high - self.T_low)
        # reduce t modulo the period first (exact in floating point): T(t + nP) == T(t)
        angle = 2.0 * math.pi * (np.mod(t, self.period) / self.period) + self.phase
        return mean + amp * np.sin(angle)

    def _max_step(self) -> float:
        return self.period / 4.0

    def _equivalent_time(self, a: float, b: float, ea: float, t_ref: float) -> float:
        p = self.period
        if b - a <= 2.0 * p:
            return self._quadrature(a, b, ea, t_ref)
        k0 = math.ceil(a / p)
        while k0 * p < a:
            k0 += 1
        k1 = math.floor(b / p)
        while k1 * p > b:
            k1 -= 1
        one_period = self._quadrature(0.0, p, ea, t_ref)
        return math.fsum(
            [
                self._quadrature(a, k0 * p, ea, t_ref),
                (k1 - k0) * one_period,
                self._quadrature(k1 * p, b, ea, t_ref),
            ]
        )

    def spec(self) -> str:
        base = f"sine:{_fmt_K(self.T_low)}:{_fmt_K(self.T_high)}:{_fmt_s(self.period)}"
        if self.phase == 0.0:
            return base
        for word, value in _SINE_STARTS.items():
            if self.phase == value:
                return f"{base}:{word}"
        return f"{base}:{math.degrees(self.phase)!r}deg"


@dataclass(frozen=True)
class Trace(Profile):
    r"""A measured temperature trace: linear interpolation between samples.

    :math:`T(t) = T_i + (T_{i+1} - T_i)(t - t_i)/(t_{i+1} - t_i)` for
    :math:`t_i \le t \le t_{i+1}`; held at the first sample's temperature before
    ``times[0]`` and at the last one's after ``times[-1]``. Every sample time is a
    breakpoint. Load from a file with :meth:`from_csv`.

    Args:
        times: sample times, s since the profile's start, finite and strictly increasing.
        temps: temperatures, K (> 0), one per time.
        source: the file it was read from (used by :meth:`spec`), or None.
    """

    times: tuple[float, ...]
    temps: tuple[float, ...]
    source: str | None = field(default=None, compare=False)
    _t: np.ndarray = field(init=False, repr=False, compare=False)
    _T: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        times = tuple(_as_float(x, f"times[{i}]") for i, x in enumerate(self.times))
        temps = tuple(_kelvin(x, f"temps[{i}]") for i, x in enumerate(self.temps))
        if len(times) == 0:
            raise ConfigError("a trace needs at least one sample", key="times", value=[])
        if len(times) != len(temps):
            raise ConfigError(
                f"{len(times)} times but {len(temps)} temperatures",
                key="temps",
                allowed="one temperature per time",
            )
        for i in range(1, len(times)):
            if times[i] <= times[i - 1]:
                raise ConfigError(
                    f"times[{i}] does not increase (times[{i - 1}] = {times[i - 1]!r})",
                    key="times",
                    value=times[i],
                    allowed="strictly increasing times",
                )
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "temps", temps)
        object.__setattr__(self, "_t", np.asarray(times, dtype=float))
        object.__setattr__(self, "_T", np.asarray(temps, dtype=float))

    @classmethod
    def from_csv(cls, path: str | Path) -> Trace:
        """Read a trace from a CSV file with header ``time_s,temperature_K``.

        Other columns are ignored; blank lines are skipped. Every problem (missing file,
        missing column, a cell that is not a finite number, a time that does not
        increase, a temperature <= 0 K, no data rows) raises :class:`ConfigError` naming
        the file, the line and column, and what is allowed.
        """
        p = Path(path)
        if not p.exists():
            raise ConfigError("file not found", file=p, allowed=_TRACE_ALLOWED)
        if not p.is_file():
            raise ConfigError("not a file", file=p, allowed=_TRACE_ALLOWED)
        try:
            text = p.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the file ({exc})", file=p) from None
        reader = csv.reader(io.StringIO(text))
        header: list[str] | None = None
        for row in reader:
            if any(cell.strip() for cell in row):
                header = [cell.strip() for cell in row]
                break
        if header is None:
            raise ConfigError("empty file, expected a header line", file=p, allowed=_TRACE_ALLOWED)
        cols = {}
        for name in TRACE_COLUMNS:
            if header.count(name) != 1:
                raise ConfigError(
                    f"line {reader.line_num}: "
                    + (
                        f"missing column '{name}'"
                        if name not in header
                        else f"column '{name}' twice"
                    ),
                    file=p,
                    key="header",
                    value=",".join(header),
                    allowed=_TRACE_ALLOWED,
                )
            cols[name] = header.index(name)
        times: list[float] = []
        temps: list[float] = []
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise ConfigError(
                    f"line {line}: {len(row)} cells, the header has {len(header)}",
                    file=p,
                    key=f"line {line}",
                    value=",".join(row),
                    allowed=_TRACE_ALLOWED,
                )
            values = {}
            for name, idx in cols.items():
                cell = row[idx].strip()
                try:
                    x = float(cell)
                except ValueError:
                    x = math.nan
                    bad = "not a number"
                else:
                    bad = "not finite"
                if not math.isfinite(x):
                    raise ConfigError(
                        f"line {line}, column '{name}': {bad}",
                        file=p,
                        key=name,
                        value=cell,
                        allowed=_TRACE_ALLOWED,
                    )
                values[name] = x
            t, temp = values["time_s"], values["temperature_K"]
            if temp <= 0.0:
                raise ConfigError(
                    f"line {line}, column 'temperature_K': temperature must be > 0 K",
                    file=p,
                    key="temperature_K",
                    value=row[cols["temperature_K"]].strip(),
                    allowed=_TRACE_ALLOWED,
                )
            if times and t <= times[-1]:
                raise ConfigError(
                    f"line {line}, column 'time_s': time does not increase "
                    f"(previous sample at {times[-1]!r} s)",
                    file=p,
                    key="time_s",
                    value=row[cols["time_s"]].strip(),
                    allowed=_TRACE_ALLOWED,
                )
            times.append(t)
            temps.append(temp)
        if not times:
            raise ConfigError("no data rows after the header", file=p, allowed=_TRACE_ALLOWED)
        return cls(tuple(times), tuple(temps), source=str(path))

    def _temperature(self, t: np.ndarray) -> np.ndarray:
        return np.interp(t, self._t, self._T)

    def _breakpoints(self) -> tuple[float, ...]:
        return self.times

    def spec(self) -> str:
        if self.source is None:
            raise ValueError("an in-memory Trace has no command-line form; save it as CSV")
        return f"csv:{self.source}"


# --------------------------------------------------------------------------------------
# composition


@dataclass(frozen=True)
class Sequence(Profile):
    r"""Profiles one after the other in time.

    ``pieces = [(d_1, P_1), ..., (d_n, P_n)]``: piece ``i`` runs on
    :math:`[s_i, s_i + d_i)` with :math:`s_i = d_1 + \dots + d_{i-1}` and sees time
    relative to its own start: :math:`T(t) = P_i(t - s_i)`. The last piece holds: with
    ``d_n = inf`` it runs forever, with a finite ``d_n`` its end temperature
    :math:`P_n(d_n)` is held after it. Equivalent time is the sum of the pieces' own
    (closed form where they have one) plus the constant hold.

    Args:
        pieces: ``(duration_s, profile)`` pairs; durations > 0, finite except the last.
    """

    pieces: tuple[tuple[float, Profile], ...]
    _starts: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pieces = tuple(self.pieces)
        if not pieces:
            raise ConfigError("a sequence needs at least one piece", key="pieces", value=[])
        checked = []
        for i, piece in enumerate(pieces):
            try:
                duration, profile = piece
            except (TypeError, ValueError):
                raise ConfigError(
                    "each piece is a (duration_s, profile) pair",
                    key=f"pieces[{i}]",
                    value=piece,
                ) from None
            if not isinstance(profile, Profile):
                raise ConfigError(
                    "not a Profile", key=f"pieces[{i}]", value=profile, allowed="a Profile"
                )
            d = float(duration)
            last = i == len(pieces) - 1
            if not (d > 0) or (math.isinf(d) and not last) or math.isnan(d):
                raise ConfigError(
                    "piece duration must be > 0 s (and finite, except the last piece's)",
                    key=f"pieces[{i}]",
                    value=duration,
                    allowed="seconds > 0; math.inf for the last piece",
                )
            checked.append((d, profile))
        starts = [0.0]
        for d, _ in checked[:-1]:
            starts.append(starts[-1] + d)
        object.__setattr__(self, "pieces", tuple(checked))
        object.__setattr__(self, "_starts", tuple(starts))

    @property
    def total_duration(self) -> float:
        """Sum of the piece durations, s (inf when the last piece runs forever)."""
        return self._starts[-1] + self.pieces[-1][0]

    def _temperature(self, t: np.ndarray) -> np.ndarray:
        out = np.empty_like(t)
        n = len(self.pieces)
        for i, ((d, profile), s) in enumerate(zip(self.pieces, self._starts, strict=True)):
            if i < n - 1:
                mask = (t >= s) & (t < s + d)
                rel = t[mask] - s
            else:
                mask = t >= s
                rel = np.minimum(t[mask] - s, d)  # the last piece holds its end value
            if mask.any():
                out[mask] = profile._temperature(rel)
        return out

    def _breakpoints(self) -> tuple[float, ...]:
        pts: list[float] = list(self._starts[1:])
        for (d, profile), s in zip(self.pieces, self._starts, strict=True):
            pts.extend(s + x for x in profile._breakpoints() if 0.0 < x < d)
        if math.isfinite(self.total_duration):
            pts.append(self.total_duration)
        return tuple(pts)

    def _equivalent_time(self, a: float, b: float, ea: float, t_ref: float) -> float:
        parts = []
        for (d, profile), s in zip(self.pieces, self._starts, strict=True):
            lo, hi = max(a, s), min(b, s + d)
            if hi > lo:
                parts.append(profile._equivalent_time(lo - s, hi - s, ea, t_ref))
        end = self.total_duration
        if b > end:  # after a finite last piece: its end temperature holds
            d_last, last = self.pieces[-1]
            t_hold = float(last._temperature(np.array([d_last]))[0])
            parts.append((b - max(a, end)) * arrhenius_factor(t_hold, t_ref, ea))
        return math.fsum(parts)

    def spec(self) -> str:
        out = []
        for i, (d, profile) in enumerate(self.pieces):
            if isinstance(profile, Sequence):
                raise ValueError("a Sequence nested in a Sequence has no command-line form")
            term = profile.spec()
            last = i == len(self.pieces) - 1
            out.append(term if (last and math.isinf(d)) else f"{_fmt_s(d)}={term}")
        return "+".join(out)


@dataclass(frozen=True)
class Offset(Profile):
    r"""A profile shifted by a constant: :math:`T(t) = P(t) + \Delta T`.

    Raises :class:`ConfigError` when evaluated where the result is <= 0 K.

    Args:
        profile: the profile to shift.
        dT: shift, K (either sign).
    """

    profile: Profile
    dT: float

    def __post_init__(self) -> None:
        if not isinstance(self.profile, Profile):
            raise ConfigError("not a Profile", key="profile", value=self.profile)
        object.__setattr__(self, "dT", _as_float(self.dT, "dT"))

    def _temperature(self, t: np.ndarray) -> np.ndarray:
        return _positive(self.profile._temperature(t) + self.dT, t, self)

    def _breakpoints(self) -> tuple[float, ...]:
        return self.profile._breakpoints()

    def _max_step(self) -> float:
        return self.profile._max_step()

    def spec(self) -> str:
        base = self.profile
        if isinstance(base, Sequence):
            raise ValueError("an Offset of a Sequence has no command-line form")
        return f"{base.spec()}~shift:{self.dT!r}K"


@dataclass(frozen=True)
class Sum(Profile):
    r"""A base profile plus the change of another since its start.

    :math:`T(t) = B(t) + (S(t) - S(0))`. With ``S = Sine(T_low, T_high, P)`` (phase 0,
    starts at its mean) this adds cycling of amplitude :math:`(T_{high} - T_{low})/2`
    around the base, e.g. daily cycling on a slow ramp:
    ``Sum(Ramp(300, 330, 30 * 86400), Sine(290, 310, 86400))`` swings +-10 K about the
    ramp. Raises :class:`ConfigError` when evaluated where the result is <= 0 K.

    Args:
        base: the profile that sets the level.
        swing: the profile whose change since ``t = 0`` is added.
    """

    base: Profile
    swing: Profile

    def __post_init__(self) -> None:
        for key in ("base", "swing"):
            if not isinstance(getattr(self, key), Profile):
                raise ConfigError("not a Profile", key=key, value=getattr(self, key))

    def _temperature(self, t: np.ndarray) -> np.ndarray:
        s0 = self.swing._temperature(np.zeros(1))[0]
        return _positive(self.base._temperature(t) + (self.swing._temperature(t) - s0), t, self)

    def _breakpoints(self) -> tuple[float, ...]:
        return self.base._breakpoints() + self.swing._breakpoints()

    def _max_step(self) -> float:
        return min(self.base._max_step(), self.swing._max_step())

    def spec(self) -> str:
        if isinstance(self.base, Sequence) or isinstance(self.swing, Sequence | Sum | Offset):
            raise ValueError(
                "this Sum has no command-line form (the swing must be a simple profile "
                "and the base not a Sequence)"
            )
        return f"{self.base.spec()}~{self.swing.spec()}"


def _positive(temps: np.ndarray, t: np.ndarray, profile: Profile) -> np.ndarray:
    bad = ~(temps > 0.0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ConfigError(
            f"profile gives {temps[i]!r} K at t = {t[i]!r} s",
            key="profile",
            value=profile,
            allowed="temperatures > 0 K at every time (reduce the shift or swing)",
        )
    return temps


# --------------------------------------------------------------------------------------
# command-line grammar


def parse_profile(text: str) -> Profile:
    """Read a temperature profile from its command-line form.

    Grammar (whitespace around pieces is ignored)::

        profile  := piece ("+" piece)*
        piece    := [DURATION "="] term ("~" modifier)*
        modifier := "shift:" DK            -> Offset(piece, DK)
                  | term                   -> Sum(piece, term)
        term     := TEMP                   -> Constant        e.g. 300K, 85C
                  | "const:" TEMP          -> Constant
                  | "ramp:" T0 ":" T1 ":" DURATION
                  | "step:" T0 ":" T1 ":" AT
                  | "sine:" T_LOW ":" T_HIGH ":" PERIOD [":" START]
                  | "csv:" PATH            -> Trace.from_csv(PATH)

    Temperatures and times use :func:`analogsim.units.parse_temperature` /
    :func:`~analogsim.units.parse_time` (``300K``, ``85C``; ``90s``, ``12h``, ``1d``,
    ``1y``). ``START`` of a sine is ``up`` (default: the mean, going up), ``down``,
    ``high``, ``low`` or an angle like ``45deg``. ``DK`` is a number of kelvin, e.g.
    ``2K`` or ``-2K`` (no ``+`` sign: ``+`` separates pieces). Several pieces make a
    :class:`Sequence`: every piece but the last needs ``DURATION=``; a last piece
    without one runs forever, with one its end value holds. A single piece without a
    duration is returned as is. A CSV path must not contain ``+``, ``~`` or ``=``.

    Examples: ``85C``; ``ramp:300K:360K:1d``; ``sine:300K:360K:1d:low``;
    ``12h=300K+1d=sine:300K:360K:6h+358K``; ``ramp:300K:330K:30d~sine:290K:310K:1d``.

    Raises:
        ConfigError: naming the bad piece and showing the allowed forms.
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(
            "empty temperature profile", key="profile", value=text, allowed=PROFILE_GRAMMAR
        )
    raw_pieces = text.split("+")
    n = len(raw_pieces)
    for i, raw in enumerate(raw_pieces):
        if not raw.strip():
            raise ConfigError(
                f"piece {i + 1} of {n} is empty (two '+' in a row, or a '+' at an end; "
                "write a positive shift without its sign, ~shift:2K)",
                key="profile",
                value=text,
                allowed=PROFILE_GRAMMAR,
            )
    pieces: list[tuple[float, Profile]] = []
    for i, raw in enumerate(raw_pieces):
        piece = raw.strip()
        where = f"piece {i + 1} of {n}" if n > 1 else "profile"
        duration = math.inf
        if "=" in piece:
            dur_text, _, piece = piece.partition("=")
            duration = _parse_piece_time(dur_text, where, raw, positive=True)
            piece = piece.strip()
        elif i < n - 1:
            raise ConfigError(
                f"{where} needs a duration: every piece but the last is DURATION=TERM",
                key="profile",
                value=raw.strip(),
                allowed=PROFILE_GRAMMAR,
            )
        pieces.append((duration, _parse_modified(piece, where)))
    if n == 1 and math.isinf(pieces[0][0]):
        return pieces[0][1]
    return Sequence(tuple(pieces))


def _parse_modified(piece: str, where: str) -> Profile:
    parts = piece.split("~")
    profile = _parse_term(parts[0].strip(), where)
    for mod in parts[1:]:
        mod = mod.strip()
        if mod.lower().startswith("shift:"):
            profile = Offset(profile, _parse_delta(mod[len("shift:") :], where, mod))
        else:
            profile = Sum(profile, _parse_term(mod, where))
    return profile


def _fail(message: str, where: str, term: str) -> ConfigError:
    return ConfigError(f"{where}: {message}", key="profile", value=term, allowed=PROFILE_GRAMMAR)


def _parse_piece_temp(text: str, where: str, term: str) -> float:
    try:
        return parse_temperature(text.strip())
    except ConfigError as exc:
        raise _fail(f"bad temperature {text.strip()!r} ({exc})", where, term) from None


def _parse_piece_time(text: str, where: str, term: str, *, positive: bool) -> float:
    try:
        value = parse_time(text.strip())
    except ConfigError as exc:
        raise _fail(f"bad time {text.strip()!r} ({exc})", where, term) from None
    if positive and value == 0.0:
        raise _fail(f"time {text.strip()!r} must be > 0", where, term)
    return value


def _parse_delta(text: str, where: str, term: str) -> float:
    s = text.strip()
    if s[-1:] in ("K", "k"):
        s = s[:-1]
    try:
        value = float(s)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise _fail(
            f"bad shift {text.strip()!r}, expected kelvin like 2K or -2K (no '+' sign)",
            where,
            term,
        )
    return value


def _parse_sine_start(text: str, where: str, term: str) -> float:
    s = text.strip().lower()
    if s in _SINE_STARTS:
        return _SINE_STARTS[s]
    if s.endswith("deg"):
        try:
            value = float(s[:-3])
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return math.radians(value)
    raise _fail(
        f"bad sine start {text.strip()!r}, expected up, down, high, low or an angle like 45deg",
        where,
        term,
    )


_TERM_FIELDS = {"const": 1, "ramp": 3, "step": 3, "sine": (3, 4)}
_TERM_FORMS = {
    "const": "const:TEMP",
    "ramp": "ramp:T0:T1:DURATION",
    "step": "step:T0:T1:AT",
    "sine": "sine:T_LOW:T_HIGH:PERIOD[:START]",
}


def _parse_term(term: str, where: str) -> Profile:
    if not term:
        raise _fail("missing profile after '=' or '~'", where, term)
    if ":" not in term:
        return Constant(_parse_piece_temp(term, where, term))
    kind, _, rest = term.partition(":")
    kind = kind.strip().lower()
    if kind == "csv":
        path = rest.strip()
        if not path:
            raise _fail("csv: needs a file path, csv:PATH", where, term)
        return Trace.from_csv(path)
    if kind not in _TERM_FIELDS:
        raise _fail(f"unknown profile kind {kind!r}", where, term)
    fields = rest.split(":")
    want = _TERM_FIELDS[kind]
    counts = want if isinstance(want, tuple) else (want,)
    if len(fields) not in counts:
        raise _fail(
            f"{kind} takes {' or '.join(map(str, counts))} fields, got {len(fields)}; "
            f"write {_TERM_FORMS[kind]}",
            where,
            term,
        )
    try:
        if kind == "const":
            return Constant(_parse_piece_temp(fields[0], where, term))
        t0 = _parse_piece_temp(fields[0], where, term)
        t1 = _parse_piece_temp(fields[1], where, term)
        if kind == "ramp":
            return Ramp(t0, t1, _parse_piece_time(fields[2], where, term, positive=True))
        if kind == "step":
            return Step(t0, t1, _parse_piece_time(fields[2], where, term, positive=False))
        period = _parse_piece_time(fields[2], where, term, positive=True)
        phase = _parse_sine_start(fields[3], where, term) if len(fields) == 4 else 0.0
        return Sine(t0, t1, period, phase)
    except ConfigError as exc:
        if exc.allowed == PROFILE_GRAMMAR:
            raise
        raise _fail(str(exc), where, term) from None
