r"""Temperature profiles built from others: one after the other, shifted, or summed.

:class:`Sequence` (pieces one after the other in time), :class:`Offset` (a profile
shifted by a constant number of kelvin) and :class:`Sum` (a base profile plus the change
of another profile since its start, e.g. thermal cycling on a ramp). Each is a
:class:`~analogsim.clock.profiles.Profile`; equivalent time sums the pieces' own (closed
forms where they have one); the drift age of a :class:`Sequence` is carried through its
pieces in order (the demarcation-energy law is not additive).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from analogsim.clock.profiles import Profile, fmt_s
from analogsim.devices.physics import arrhenius_factor, relaxed_age
from analogsim.errors import ConfigError
from analogsim.units import parse_float

__all__ = ["Offset", "Sequence", "Sum"]


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

    def _drift_age(
        self, a: float, b: float, te: float, t_ref: float, tau0: float, t0: float
    ) -> float:
        for (d, profile), s in zip(self.pieces, self._starts, strict=True):
            lo, hi = max(a, s), min(b, s + d)
            if hi > lo:
                te = profile._drift_age(lo - s, hi - s, te, t_ref, tau0, t0)
        end = self.total_duration
        if b > end:  # after a finite last piece: its end temperature holds
            d_last, last = self.pieces[-1]
            t_hold = float(last._temperature(np.array([d_last]))[0])
            te = relaxed_age(te, b - max(a, end), t_hold, t_ref, tau0, t0)
        return te

    def spec(self) -> str:
        out = []
        for i, (d, profile) in enumerate(self.pieces):
            if isinstance(profile, Sequence):
                raise ValueError("a Sequence nested in a Sequence has no command-line form")
            term = profile.spec()
            last = i == len(self.pieces) - 1
            out.append(term if (last and math.isinf(d)) else f"{fmt_s(d)}={term}")
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
        object.__setattr__(self, "dT", parse_float(self.dT, key="dT"))

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
