"""The command-line form of temperature profiles: :func:`parse_profile` and its grammar.

``parse_profile(p.spec()) == p`` for every profile with a command-line form (see
:meth:`analogsim.clock.profiles.Profile.spec`); the grammar is documented in
``docs/clock_profiles.md``.
"""

from __future__ import annotations

import math

from analogsim.clock.composition import Offset, Sequence, Sum
from analogsim.clock.profiles import SINE_STARTS, Constant, Profile, Ramp, Sine, Step, Trace
from analogsim.errors import ConfigError
from analogsim.units import parse_temperature, parse_time

__all__ = ["PROFILE_GRAMMAR", "parse_profile"]

PROFILE_GRAMMAR = (
    "a temperature (300K, 85C), const:T, ramp:T0:T1:DURATION, step:T0:T1:AT, "
    "sine:T_LOW:T_HIGH:PERIOD[:START] (START = up, down, high, low or e.g. 45deg), "
    "csv:PATH; a piece may be followed by ~shift:DK (offset by DK kelvin, e.g. 2K or -2K) or ~TERM "
    "(add TERM's change since its start); pieces joined by '+' run one after the other, "
    "each but the last written DURATION=TERM, e.g. 12h=300K+1d=sine:300K:360K:6h+358K"
)


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
    if s in SINE_STARTS:
        return SINE_STARTS[s]
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
