"""Tests for analogsim.clock.profiles: temperatures, CSV traces, grammar, equivalent time."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special

from analogsim.clock.composition import Offset, Sequence, Sum
from analogsim.clock.profile_spec import parse_profile
from analogsim.clock.profiles import Constant, Profile, Ramp, Sine, Step, Trace
from analogsim.devices.physics import BOLTZMANN_EV_PER_K
from analogsim.errors import ConfigError

DAY = 86400.0
HOUR = 3600.0
YEAR = 365.25 * DAY


def arrhenius(T, t_ref, ea):
    """Independent copy of the integrand, exp(-Ea/kB (1/T - 1/Tref))."""
    return np.exp(-ea / BOLTZMANN_EV_PER_K * (1.0 / np.asarray(T) - 1.0 / t_ref))


def brute_force(profile: Profile, a: float, b: float, ea: float, t_ref: float, n: int) -> float:
    """Composite 20-point Gauss-Legendre on ``n`` equal sub-intervals (no adaptivity)."""
    x, w = np.polynomial.legendre.leggauss(20)
    edges = np.linspace(a, b, n + 1)
    lo, hi = edges[:-1], edges[1:]
    nodes = 0.5 * (lo + hi)[:, None] + 0.5 * (hi - lo)[:, None] * x  # (n, 20)
    f = arrhenius(profile.temperature(nodes), t_ref, ea)
    return math.fsum((0.5 * (hi - lo) * (f @ w)).tolist())


def write(tmp_path, text: str, name: str = "trace.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------
# temperatures


def test_constant_temperature_scalar_and_array():
    p = Constant(300.0)
    assert p.temperature(0.0) == 300.0
    assert isinstance(p.temperature(5), float)
    out = p.temperature(np.zeros((2, 3)))
    assert out.shape == (2, 3)
    assert np.all(out == 300.0)


def test_ramp_hand_values():
    p = Ramp(300.0, 360.0, 100.0)
    t = np.array([0.0, 25.0, 50.0, 100.0, 1e6])
    np.testing.assert_allclose(p.temperature(t), [300.0, 315.0, 330.0, 360.0, 360.0], rtol=1e-15)
    cooling = Ramp(360.0, 300.0, 60.0)
    assert cooling.temperature(30.0) == pytest.approx(330.0, rel=1e-15)
    assert cooling.temperature(600.0) == 300.0


def test_step_hand_values():
    p = Step(300.0, 358.0, 12 * HOUR)
    assert p.temperature(0.0) == 300.0
    assert p.temperature(12 * HOUR - 1e-6) == 300.0
    assert p.temperature(12 * HOUR) == 358.0  # T1 from `at` on
    assert p.temperature(1 * DAY) == 358.0
    assert Step(300.0, 358.0, 0.0).temperature(0.0) == 358.0


def test_sine_hand_values_and_phase():
    p = Sine(300.0, 360.0, DAY)
    quarter = DAY / 4
    t = np.array([0.0, quarter, 2 * quarter, 3 * quarter, DAY])
    # starts at the mean going up
    np.testing.assert_allclose(p.temperature(t), [330, 360, 330, 300, 330], atol=1e-9)
    assert p.temperature(1.0) > 330.0
    assert Sine(300.0, 360.0, DAY, phase=-math.pi / 2).temperature(0.0) == pytest.approx(300.0)
    assert Sine(300.0, 360.0, DAY, phase=math.pi / 2).temperature(0.0) == pytest.approx(360.0)
    assert Sine(300.0, 360.0, DAY, phase=math.pi).temperature(1.0) < 330.0
    # periodic
    assert p.temperature(1000 * DAY + 1234.5) == pytest.approx(p.temperature(1234.5), abs=1e-9)


def test_trace_interpolates_and_holds_outside():
    p = Trace((10.0, 20.0, 40.0), (300.0, 310.0, 290.0))
    t = np.array([0.0, 10.0, 15.0, 20.0, 30.0, 40.0, 1e9])
    np.testing.assert_allclose(p.temperature(t), [300, 300, 305, 310, 300, 290, 290], rtol=1e-15)
    assert list(p.breakpoints(0.0, 100.0)) == [10.0, 20.0, 40.0]
    assert list(p.breakpoints(10.0, 40.0)) == [20.0]  # strictly inside


def test_sequence_pieces_see_relative_time_and_last_holds():
    seq = Sequence(
        [(10.0, Constant(300.0)), (20.0, Ramp(300.0, 320.0, 20.0)), (5.0, Ramp(320.0, 330.0, 10.0))]
    )
    t = np.array([0.0, 9.9, 10.0, 20.0, 30.0, 32.5, 35.0, 100.0])
    # the last ramp is cut after 5 s (at 325 K) and 325 K holds
    np.testing.assert_allclose(
        seq.temperature(t), [300, 300, 300, 310, 320, 322.5, 325, 325], rtol=1e-14
    )
    assert seq.total_duration == 35.0
    assert list(seq.breakpoints(0.0, 100.0)) == [10.0, 30.0, 35.0]
    forever = Sequence([(10.0, Constant(300.0)), (math.inf, Ramp(300.0, 400.0, 100.0))])
    assert forever.temperature(60.0) == pytest.approx(350.0)
    assert forever.temperature(1e6) == 400.0


def test_offset_and_sum():
    assert Offset(Constant(300.0), -5.0).temperature(1.0) == 295.0
    cyc = Sum(Ramp(300.0, 330.0, 30 * DAY), Sine(290.0, 310.0, DAY))
    # ramp value + (sine - sine(0)) = ramp + 10 sin(2 pi t / day)
    t = np.array([0.0, DAY / 4, 15 * DAY + 3 * DAY / 4])
    np.testing.assert_allclose(
        cyc.temperature(t), [300.0, 300.0 + 30 / 120 + 10, 315.75 - 10], rtol=1e-12
    )
    with pytest.raises(ConfigError, match=r"profile gives .* K at t = "):
        Offset(Constant(300.0), -400.0).temperature(0.0)


def test_time_must_be_nonnegative_and_finite():
    with pytest.raises(ValueError, match=">= 0 s"):
        Constant(300.0).temperature(-1.0)
    with pytest.raises(ValueError, match="finite"):
        Constant(300.0).temperature(np.array([0.0, np.nan]))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Constant(0.0), "key 'T': temperature must be > 0 K"),
        (lambda: Constant("hot"), "key 'T': not a number"),
        (lambda: Ramp(300.0, 310.0, 0.0), "key 'duration': time must be > 0 s"),
        (lambda: Step(300.0, 310.0, -1.0), "key 'at': time must be >= 0 s"),
        (lambda: Sine(360.0, 300.0, DAY), "T_high is below T_low"),
        (lambda: Sine(300.0, 360.0, math.inf), "key 'period': must be finite"),
        (lambda: Trace((0.0, 0.0), (300.0, 300.0)), r"times\[1\] does not increase"),
        (lambda: Trace((0.0, 1.0), (300.0,)), "2 times but 1 temperatures"),
        (lambda: Trace((), ()), "at least one sample"),
        (lambda: Sequence([]), "at least one piece"),
        (lambda: Sequence([(math.inf, Constant(300.0)), (1.0, Constant(300.0))]), r"pieces\[0\]"),
        (lambda: Sequence([(0.0, Constant(300.0))]), "duration must be > 0 s"),
        (lambda: Sequence([(1.0, 300.0)]), "not a Profile"),
    ],
)
def test_invalid_parameters_raise_config_error(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


# ------------------------------------------------------------------------------------------
# CSV traces


def test_trace_from_csv_reads_extra_columns_blank_lines_and_bom(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(
        "\ufeffnote,time_s,temperature_K\na,0,300\n\nb,3600,330.5\nc,7200,310\n".encode()
    )
    p = Trace.from_csv(path)
    assert p.times == (0.0, 3600.0, 7200.0)
    assert p.temps == (300.0, 330.5, 310.0)
    assert p.temperature(1800.0) == pytest.approx(315.25)
    assert p.spec() == f"csv:{path}"
    assert parse_profile(f"csv:{path}") == p


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty file"),
        ("time_s,temperature_K\n", "no data rows"),
        ("time_s,temp_K\n0,300\n", "line 1: missing column 'temperature_K'.*got 'time_s,temp_K'"),
        ("time_s,temperature_K,time_s\n0,300,0\n", "column 'time_s' twice"),
        (
            "time_s,temperature_K\n0,300\n1,abc\n",
            "line 3, column 'temperature_K': not a number.*'abc'",
        ),
        ("time_s,temperature_K\nzero,300\n", "line 2, column 'time_s': not a number"),
        ("time_s,temperature_K\n0,nan\n", "line 2, column 'temperature_K': not finite"),
        (
            "time_s,temperature_K\n0,300\n5,301\n5,302\n",
            "line 4, column 'time_s': time does not increase",
        ),
        (
            "time_s,temperature_K\n0,300\n5,301\n4,302\n",
            "line 4, column 'time_s': time does not increase",
        ),
        (
            "time_s,temperature_K\n0,300\n1,0\n",
            "line 3, column 'temperature_K': temperature must be > 0 K",
        ),
        (
            "time_s,temperature_K\n0,-5\n",
            "line 2, column 'temperature_K': temperature must be > 0 K",
        ),
        ("time_s,temperature_K\n0,300\n1\n", "line 3: 1 cells, the header has 2"),
    ],
)
def test_trace_csv_errors_name_file_line_column_and_allowed(tmp_path, text, match):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as info:
        Trace.from_csv(path)
    message = str(info.value)
    assert str(path) in message
    assert "allowed: a CSV file with header 'time_s,temperature_K'" in message


def test_trace_csv_missing_file_and_directory(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.csv: file not found; allowed: a CSV file"):
        Trace.from_csv(tmp_path / "nope.csv")
    with pytest.raises(ConfigError, match="not a file"):
        Trace.from_csv(tmp_path)


def test_in_memory_trace_has_no_spec():
    with pytest.raises(ValueError, match="in-memory Trace"):
        Trace((0.0,), (300.0,)).spec()


# ------------------------------------------------------------------------------------------
# command-line grammar


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("300K", Constant(300.0)),
        ("85C", Constant(358.15)),
        (" 300K ", Constant(300.0)),
        ("const:300K", Constant(300.0)),
        ("ramp:300K:360K:1d", Ramp(300.0, 360.0, DAY)),
        ("step:300K:358K:12h", Step(300.0, 358.0, 12 * HOUR)),
        ("step:300K:358K:0s", Step(300.0, 358.0, 0.0)),
        ("sine:300K:360K:1d", Sine(300.0, 360.0, DAY)),
        ("sine:300K:360K:1d:low", Sine(300.0, 360.0, DAY, -math.pi / 2)),
        ("sine:300K:360K:1d:HIGH", Sine(300.0, 360.0, DAY, math.pi / 2)),
        ("sine:300K:360K:1d:90deg", Sine(300.0, 360.0, DAY, math.radians(90.0))),
        (
            "12h=300K+1d=sine:300K:360K:6h+358K",
            Sequence(
                [
                    (12 * HOUR, Constant(300.0)),
                    (DAY, Sine(300.0, 360.0, 6 * HOUR)),
                    (math.inf, Constant(358.0)),
                ]
            ),
        ),
        ("1d=ramp:300K:330K:2d", Sequence([(DAY, Ramp(300.0, 330.0, 2 * DAY))])),
        (
            "ramp:300K:330K:30d~sine:290K:310K:1d",
            Sum(Ramp(300.0, 330.0, 30 * DAY), Sine(290.0, 310.0, DAY)),
        ),
        ("85C~shift:-2K", Offset(Constant(358.15), -2.0)),
        (
            "1h=300K~shift:1.5K + 1h=ramp:300K:310K:1h~sine:300K:302K:10m~shift:-1K",
            Sequence(
                [
                    (HOUR, Offset(Constant(300.0), 1.5)),
                    (HOUR, Offset(Sum(Ramp(300.0, 310.0, HOUR), Sine(300.0, 302.0, 600.0)), -1.0)),
                ]
            ),
        ),
    ],
)
def test_parse_profile_forms(text, expected):
    assert parse_profile(text) == expected


@pytest.mark.parametrize(
    "profile",
    [
        Constant(358.15),
        Ramp(300.0, 360.0, 1.5 * DAY),
        Step(300.1, 358.7, 0.1),
        Sine(300.0, 360.0, DAY),
        Sine(300.0, 360.0, DAY, -math.pi / 2),
        Sine(300.0, 360.0, DAY, math.pi),
        Sequence([(12 * HOUR, Constant(300.0)), (math.inf, Sine(300.0, 360.0, 6 * HOUR))]),
        Sequence([(12 * HOUR, Constant(300.0)), (1.0, Step(300.0, 310.0, 0.5))]),
        Offset(Sum(Ramp(300.0, 330.0, 30 * DAY), Sine(290.0, 310.0, DAY)), 0.25),
    ],
)
def test_spec_round_trips(profile):
    assert parse_profile(profile.spec()) == profile


def test_spec_of_arbitrary_sine_phase_round_trips_to_rounding():
    p = Sine(300.0, 360.0, DAY, 0.3)
    q = parse_profile(p.spec())
    assert q.phase == pytest.approx(0.3, rel=1e-15)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty temperature profile"),
        ("300K++358K", "piece 2 of 3 is empty"),
        ("300K+", "piece 2 of 2 is empty"),
        ("300K+358K", "piece 1 of 2 needs a duration"),
        ("1x=300K+358K", "piece 1 of 2: bad time '1x'"),
        ("0s=300K+358K", "piece 1 of 2: time '0s' must be > 0"),
        ("hot", "profile: bad temperature 'hot'"),
        ("-5K", "bad temperature '-5K'"),
        ("300", "bad temperature '300'.*needs a unit"),
        ("warm:300K", "unknown profile kind 'warm'"),
        ("ramp:300K:360K", r"ramp takes 3 fields, got 2; write ramp:T0:T1:DURATION"),
        ("sine:300K:360K:1d:up:x", "sine takes 3 or 4 fields, got 5"),
        ("sine:360K:300K:1d", "T_high is below T_low"),
        ("sine:300K:360K:0s", "time '0s' must be > 0"),
        ("sine:300K:360K:1d:sideways", "bad sine start 'sideways'"),
        ("ramp:300K:360K:1d~shift:warm", "bad shift 'warm'"),
        ("1d=", "missing profile after '=' or '~'"),
        ("300K~", "missing profile after"),
        ("csv:", "csv: needs a file path"),
        ("12h=300K+1d=ramp:300K:3x0K:1d+358K", "piece 2 of 3: bad temperature '3x0K'"),
    ],
)
def test_parse_profile_errors_name_the_piece_and_allowed_forms(text, match):
    with pytest.raises(ConfigError, match=match) as info:
        parse_profile(text)
    assert "allowed:" in str(info.value)
    if text:
        assert "ramp:T0:T1:DURATION" in str(info.value)


def test_parse_profile_csv_error_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"missing\.csv: file not found"):
        parse_profile(f"12h=300K+csv:{tmp_path / 'missing.csv'}")


# ------------------------------------------------------------------------------------------
# equivalent time


EA = 0.6
T_REF = 300.0


def test_constant_closed_form():
    got = Constant(358.15).equivalent_time(0.0, HOUR, EA, T_REF)
    expected = HOUR * math.exp(-EA / BOLTZMANN_EV_PER_K * (1 / 358.15 - 1 / 300.0))
    assert got == pytest.approx(expected, rel=1e-14)
    assert got > 40 * HOUR  # one hour at 85 C ages like tens of hours at 27 C


def test_equivalent_time_at_reference_is_elapsed_time():
    assert Constant(T_REF).equivalent_time(5.0, 5.0 + DAY, EA, T_REF) == DAY
    # quadrature path: an Offset by zero is integrated numerically
    assert Offset(Constant(T_REF), 0.0).equivalent_time(5.0, 5.0 + DAY, EA, T_REF) == pytest.approx(
        DAY, rel=1e-13
    )


def test_quadrature_agrees_with_closed_form():
    closed = Constant(340.0).equivalent_time(3.0, 3.0 + YEAR, 1.1, T_REF)
    numeric = Offset(Constant(340.0), 0.0).equivalent_time(3.0, 3.0 + YEAR, 1.1, T_REF)
    assert numeric == pytest.approx(closed, rel=1e-12)


@pytest.mark.parametrize(
    "profile",
    [
        Constant(400.0),
        Ramp(250.0, 400.0, DAY),
        Step(250.0, 400.0, HOUR),
        Sine(250.0, 400.0, HOUR),
        Trace((0.0, 10.0), (250.0, 400.0)),
        Sequence([(HOUR, Constant(260.0)), (math.inf, Sine(250.0, 400.0, 60.0))]),
        Sum(Constant(300.0), Sine(250.0, 400.0, HOUR)),
    ],
)
def test_zero_activation_energy_gives_exact_duration(profile):
    assert profile.equivalent_time(1.25, 1.25 + 7 * DAY, 0.0, T_REF) == (1.25 + 7 * DAY) - 1.25
    assert profile.equivalent_time(4.0, 4.0, EA, T_REF) == 0.0


@settings(max_examples=50, deadline=None)
@given(
    t1=st.floats(150.0, 900.0),
    dt=st.floats(0.01, 100.0),
    ea=st.floats(0.01, 2.0),
    t_ref=st.floats(200.0, 400.0),
)
def test_hotter_constant_profile_ages_more(t1, dt, ea, t_ref):
    cold = Constant(t1).equivalent_time(0.0, DAY, ea, t_ref)
    hot = Constant(t1 + dt).equivalent_time(0.0, DAY, ea, t_ref)
    assert hot > cold


def test_step_closed_form():
    p = Step(300.0, 358.0, 12 * HOUR)
    f0, f1 = arrhenius([300.0, 358.0], T_REF, EA)
    assert p.equivalent_time(0.0, DAY, EA, T_REF) == pytest.approx(
        12 * HOUR * f0 + 12 * HOUR * f1, rel=1e-14
    )
    assert p.equivalent_time(HOUR, 2 * HOUR, EA, T_REF) == pytest.approx(HOUR * f0, rel=1e-14)
    assert p.equivalent_time(13 * HOUR, 14 * HOUR, EA, T_REF) == pytest.approx(HOUR * f1, rel=1e-14)


def test_ramp_against_exponential_integral_closed_form():
    # For T = T0 + s t: integral exp(-c/T) dt = [T exp(-c/T) - c E1(c/T)] / s (c = Ea/kB).
    t0, t1, d, ea = 300.0, 360.0, DAY, 0.5
    c = ea / BOLTZMANN_EV_PER_K
    slope = (t1 - t0) / d

    def antiderivative(T):
        return (T * math.exp(-c / T) - c * special.exp1(c / T)) / slope

    expected = (antiderivative(t1) - antiderivative(t0)) * math.exp(c / T_REF)
    got = Ramp(t0, t1, d).equivalent_time(0.0, d, ea, T_REF)
    assert got == pytest.approx(expected, rel=1e-9)  # closed form itself loses a few digits


def test_trace_and_sequence_against_scipy_quad():
    trace = Trace((0.0, 100.0, 250.0, 400.0), (300.0, 350.0, 320.0, 400.0))

    def f(t):
        return float(arrhenius(trace.temperature(t), T_REF, 0.9))

    expected, _ = integrate.quad(
        f, 0.0, 500.0, points=[100.0, 250.0, 400.0], epsabs=0, epsrel=1e-13
    )
    assert trace.equivalent_time(0.0, 500.0, 0.9, T_REF) == pytest.approx(expected, rel=1e-11)

    seq = Sequence([(50.0, Constant(310.0)), (100.0, Ramp(310.0, 360.0, 200.0))])
    parts = (
        50.0 * arrhenius(310.0, T_REF, 0.9)
        + integrate.quad(
            lambda t: arrhenius(310.0 + 50.0 * t / 200.0, T_REF, 0.9),
            0.0,
            100.0,
            epsabs=0,
            epsrel=1e-13,
        )[0]
        + 25.0 * arrhenius(335.0, T_REF, 0.9)  # the end value of the cut ramp holds
    )
    assert seq.equivalent_time(0.0, 175.0, 0.9, T_REF) == pytest.approx(parts, rel=1e-11)


def test_year_of_daily_sine_matches_brute_force_and_is_fast():
    p = Sine(290.0, 350.0, DAY)
    a = 0.3 * DAY
    b = a + YEAR  # 365.25 periods, neither end aligned to a period
    p.equivalent_time(a, b, 1.0, T_REF)  # warm up
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        got = p.equivalent_time(a, b, 1.0, T_REF)
        timings.append(time.perf_counter() - start)
    reference = brute_force(p, a, b, 1.0, T_REF, n=int(YEAR / HOUR))  # 20 nodes per hour
    assert abs(got / reference - 1.0) < 1e-6
    assert min(timings) < 0.05


def test_periodic_shortcut_agrees_with_plain_quadrature():
    # Sum(Constant(mean), Sine) has the same temperature but no periodic shortcut.
    sine = Sine(290.0, 350.0, DAY, phase=0.7)
    plain = Sum(Constant(290.0 + 30.0 + 30.0 * math.sin(0.7)), sine)
    np.testing.assert_allclose(
        sine.temperature(np.linspace(0, 3 * DAY, 50)),
        plain.temperature(np.linspace(0, 3 * DAY, 50)),
        rtol=1e-13,
    )
    a, b = 1234.5, 1234.5 + 40.6 * DAY
    assert sine.equivalent_time(a, b, 0.8, T_REF) == pytest.approx(
        plain.equivalent_time(a, b, 0.8, T_REF), rel=1e-11
    )


PROFILES = [
    Constant(330.0),
    Ramp(280.0, 380.0, 5 * DAY),
    Step(290.0, 370.0, 2.5 * DAY),
    Sine(290.0, 360.0, DAY, 0.4),
    Trace((0.0, DAY, 3 * DAY, 4 * DAY), (300.0, 380.0, 250.0, 320.0)),
    Sequence(
        [
            (DAY, Constant(300.0)),
            (2 * DAY, Sine(300.0, 360.0, 6 * HOUR)),
            (DAY, Ramp(358.0, 300.0, 2 * DAY)),
        ]
    ),
    Sum(Ramp(300.0, 340.0, 10 * DAY), Sine(290.0, 310.0, DAY)),
]


@settings(max_examples=60, deadline=None)
@given(
    idx=st.integers(0, len(PROFILES) - 1),
    cuts=st.lists(st.floats(0.0, 20 * DAY), min_size=3, max_size=3),
    ea=st.floats(0.05, 1.5),
)
def test_equivalent_time_is_additive(idx, cuts, ea):
    a, b, c = sorted(cuts)
    p = PROFILES[idx]
    whole = p.equivalent_time(a, c, ea, T_REF)
    split = p.equivalent_time(a, b, ea, T_REF) + p.equivalent_time(b, c, ea, T_REF)
    assert split == pytest.approx(whole, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("profile", PROFILES)
def test_equivalent_time_matches_brute_force(profile):
    got = profile.equivalent_time(0.1 * DAY, 6.3 * DAY, 0.7, T_REF)
    # 8.64 s intervals: every jump and kink of these profiles (whole or half days) is an edge
    reference = brute_force(profile, 0.1 * DAY, 6.3 * DAY, 0.7, T_REF, n=62000)
    assert got == pytest.approx(reference, rel=1e-6)


def test_equivalent_time_argument_errors():
    p = Constant(300.0)
    with pytest.raises(ValueError, match="must be >= t_start"):
        p.equivalent_time(2.0, 1.0, EA, T_REF)
    with pytest.raises(ValueError, match="t_start must be finite seconds >= 0"):
        p.equivalent_time(-1.0, 1.0, EA, T_REF)
    with pytest.raises(ConfigError, match="key 'ea_eV': activation energy must be >= 0"):
        p.equivalent_time(0.0, 1.0, -0.1, T_REF)
    with pytest.raises(ConfigError, match="key 't_ref_K'"):
        p.equivalent_time(0.0, 1.0, EA, 0.0)
