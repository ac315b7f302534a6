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
* ``drift_age(t_start, t_end, t_eq_start, key)``: the drift-equivalent age at ``t_end``
  of a device of age key ``key`` (``Temperature.age_key``) that had ``t_eq_start`` at
  ``t_start``. With an attempt time ``tau0 > 0`` it follows the demarcation-energy law of
  distributed activation energies (Ielmini et al. 2008):
  :math:`dt_{eq}/dt = (T/T_{ref})((t_{eq}+t_0)/\tau_0)^{1 - T_{ref}/T}`, exact for constant
  stretches, integrated with error control (:func:`~analogsim.clock.quadrature.evolve`,
  about 1e-11 relative) elsewhere; it is not additive in time like the Arrhenius integral,
  so it carries the age along. Without an attempt time it is ``t_eq_start`` plus the
  Arrhenius integral above with the card's ``drift_ea_eV``;
* ``breakpoints(t_start, t_end)``: times inside the span where the profile has a kink or
  a jump (callers may step their clock there);
* ``spec()``: the command-line form, so that ``parse_profile(p.spec()) == p``.

Profiles: :class:`Constant`, :class:`Ramp`, :class:`Step`, :class:`Sine`, :class:`Trace`;
composition: :class:`Sequence` (pieces one after the other in time), :class:`Offset`
(a profile shifted by a constant number of kelvin) and :class:`Sum` (a base profile plus
the change of another profile since its start, e.g. thermal cycling on a ramp).
The compositions are in :mod:`analogsim.clock.composition`;
:func:`analogsim.clock.profile_spec.parse_profile` reads the command-line grammar (see
its docstring and ``docs/clock_profiles.md``).

Exact closed forms are used for constant stretches (:class:`Constant`, :class:`Step`,
the hold after a finite :class:`Sequence`); everything else is integrated by adaptive
Gauss-Legendre quadrature on sub-intervals split at the breakpoints, to a relative
accuracy of about 1e-13 (:mod:`analogsim.clock.quadrature`). :class:`Sine` exploits its periodicity (whole periods times one
period's integral plus the two remainders), so a year of a one-day cycle costs a few
milliseconds.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analogsim.clock.quadrature import edges, evolve, integrate
from analogsim.devices.physics import arrhenius_factor, relaxed_age
from analogsim.errors import ConfigError
from analogsim.units import parse_float

__all__ = [
    "SINE_STARTS",
    "TRACE_COLUMNS",
    "Constant",
    "Profile",
    "Ramp",
    "Sine",
    "Step",
    "Trace",
]

TRACE_COLUMNS = ("time_s", "temperature_K")
"""Header columns a temperature-trace CSV must have (others are ignored)."""

_TRACE_ALLOWED = (
    "a CSV file with header 'time_s,temperature_K' and one row per sample: "
    "finite numbers, time_s strictly increasing (seconds since the profile start), "
    "temperature_K > 0 (kelvin; K = C + 273.15)"
)

SINE_STARTS = {"up": 0.0, "high": math.pi / 2, "down": math.pi, "low": -math.pi / 2}
"""Sine start words of the command-line form and their phases, radians."""


# --------------------------------------------------------------------------------------
# checks and formats


def _kelvin(value: Any, key: str) -> float:
    out = parse_float(value, key=key)
    if out <= 0.0:
        raise ConfigError("temperature must be > 0 K", key=key, value=value, allowed="kelvin > 0")
    return out


def _seconds(value: Any, key: str, *, positive: bool) -> float:
    out = parse_float(value, key=key)
    if out < 0.0 or (positive and out == 0.0):
        raise ConfigError(
            "time must be > 0 s" if positive else "time must be >= 0 s",
            key=key,
            value=value,
            allowed="seconds > 0" if positive else "seconds >= 0",
        )
    return out


def fmt_K(kelvin: float) -> str:
    """Exact kelvin for a command-line form: ``300.0 -> "300.0K"``."""
    return f"{kelvin!r}K"


def fmt_s(seconds: float) -> str:
    """Exact seconds for a command-line form: ``60.0 -> "60.0s"``."""
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
        ea = parse_float(ea_eV, key="ea_eV")
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

    def drift_age(
        self, t_start: float, t_end: float, t_eq_start: float, key: tuple[float, ...]
    ) -> float:
        r"""Drift-equivalent age at ``t_end`` of a device with age ``t_eq_start`` at
        ``t_start`` (seconds at the key's reference temperature).

        ``key = (t_ref_K, tau0_s, t0_s, drift_ea_eV, fault_ea_eV)``
        (:attr:`analogsim.devices.sections.Temperature.age_key`). With ``tau0_s > 0``:
        the demarcation-energy law (Ielmini et al., APL 92, 193511, 2008),
        :math:`dt_{eq}/dt = (T/T_{ref})((t_{eq} + t_0)/\tau_0)^{1 - T_{ref}/T}`; with
        ``tau0_s == 0``: ``t_eq_start`` plus the Arrhenius integral with ``drift_ea_eV``.
        A constant stretch at ``T_ref`` adds exactly ``t_end - t_start``.
        """
        a = _as_time_arg(t_start, "t_start")
        b = _as_time_arg(t_end, "t_end")
        te = _as_time_arg(t_eq_start, "t_eq_start")
        if b < a:
            raise ValueError(f"t_end ({t_end!r} s) must be >= t_start ({t_start!r} s)")
        t_ref, tau0, t0, ea = (float(x) for x in key[:4])
        if tau0 <= 0.0:
            return te + self.equivalent_time(a, b, ea, t_ref)
        if b == a:
            return te
        return self._drift_age(a, b, te, t_ref, tau0, t0)

    # -- shared implementation ------------------------------------------------------------
    def _drift_age(
        self, a: float, b: float, te: float, t_ref: float, tau0: float, t0: float
    ) -> float:
        """Default: the age ODE integrated between breakpoints (arguments checked), steps
        no longer than ``_max_step``."""
        cuts = edges(a, b, self.breakpoints(a, b), math.inf)

        def flow(y: float, dt: float, T: float) -> float:
            return relaxed_age(y, dt, T, t_ref, tau0, t0)

        for lo, hi in itertools.pairwise(cuts):
            te = evolve(
                self._temperature, float(lo), float(hi), te, flow, max_step=self._max_step()
            )
        return te

    def _equivalent_time(self, a: float, b: float, ea: float, t_ref: float) -> float:
        """Default: adaptive Gauss-Legendre between breakpoints (arguments checked)."""
        return self._quadrature(a, b, ea, t_ref)

    def _quadrature(self, a: float, b: float, ea: float, t_ref: float) -> float:
        cuts = edges(a, b, self.breakpoints(a, b), self._max_step())

        def integrand(t: np.ndarray) -> np.ndarray:
            return arrhenius_factor(self._temperature(t), t_ref, ea)

        return integrate(integrand, cuts)


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

    def _drift_age(
        self, a: float, b: float, te: float, t_ref: float, tau0: float, t0: float
    ) -> float:
        return relaxed_age(te, b - a, self.T, t_ref, tau0, t0)

    def spec(self) -> str:
        return fmt_K(self.T)


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
        return f"ramp:{fmt_K(self.T0)}:{fmt_K(self.T1)}:{fmt_s(self.duration)}"


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

    def _drift_age(
        self, a: float, b: float, te: float, t_ref: float, tau0: float, t0: float
    ) -> float:
        before = max(0.0, min(b, self.at) - a)
        after = max(0.0, b - max(a, self.at))
        te = relaxed_age(te, before, self.T0, t_ref, tau0, t0)
        return relaxed_age(te, after, self.T1, t_ref, tau0, t0)

    def spec(self) -> str:
        return f"step:{fmt_K(self.T0)}:{fmt_K(self.T1)}:{fmt_s(self.at)}"


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
        object.__setattr__(self, "phase", parse_float(self.phase, key="phase"))
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
        base = f"sine:{fmt_K(self.T_low)}:{fmt_K(self.T_high)}:{fmt_s(self.period)}"
        if self.phase == 0.0:
            return base
        for word, value in SINE_STARTS.items():
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
        times = tuple(parse_float(x, key=f"times[{i}]") for i, x in enumerate(self.times))
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
