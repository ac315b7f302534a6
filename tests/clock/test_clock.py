"""Tests for analogsim.clock.core: time, temperature, Arrhenius age, skipping, faults, noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from analogsim.clock.core import Clock
from analogsim.clock.profile_spec import parse_profile
from analogsim.clock.profiles import Sine
from analogsim.clock.schedules import parse_schedule
from analogsim.devices.physics import BOLTZMANN_EV_PER_K
from analogsim.errors import ConfigError
from analogsim.mapping.analog_model import effective_matrix
from analogsim.mapping.convert import convert
from analogsim.mapping.perturb import WeightNoise
from tests.clock.conftest import tiny_gpt2
from tests.conftest import IDEAL_TILE, analog_mapping

HOUR, DAY = 3600.0, 86400.0


def _states(am) -> dict[str, torch.Tensor]:
    return {name: effective_matrix(layer).clone() for name, layer in am.analog_layers()}


def _run(clock: Clock, n: int) -> list:
    return [clock.next_step() for _ in range(n)]


# ------------------------------------------------------------------ time and temperature


@pytest.mark.parametrize(
    "spec",
    [
        "300K",
        "ramp:300K:360K:10h",
        "step:300K:358K:5h",
        "sine:300K:360K:1d",
        "6h=300K+sine:310K:350K:8h",
    ],
)
def test_step_times_and_temperatures_follow_the_profile(spec):
    clock = Clock(None, step_time_s=1800.0, start_age_s=2 * HOUR, profile=spec)
    states = _run(clock, 30)
    prof = parse_profile(spec)
    for k, s in enumerate(states):
        assert s.index == k
        assert s.time_s == 2 * HOUR + k * 1800.0
        assert s.temperature_K == pytest.approx(float(prof.temperature(s.time_s)), abs=1e-9)
        assert not s.updated and s.sigma is None and s.faults is None


def test_csv_trace_is_interpolated_by_the_clock(tmp_path):
    path = tmp_path / "oven.csv"
    path.write_text("time_s,temperature_K\n0,300\n3600,330\n7200,310\n")
    clock = Clock(None, step_time_s=900.0, start_age_s=0.0, profile=f"csv:{path}")
    temps = [s.temperature_K for s in _run(clock, 12)]
    # hand-computed linear interpolation; held at 310 K after the last sample
    want = [300, 307.5, 315, 322.5, 330, 325, 320, 315, 310, 310, 310, 310]
    assert temps == pytest.approx(want, abs=1e-12)
    kinds = [e.kind for e in clock.events]
    assert kinds.count("temperature_breakpoint") == 2  # at 3600 s and 7200 s


def test_bad_clock_settings_are_config_errors(gpt2):
    with pytest.raises(ConfigError, match="token_time"):
        Clock(None, step_time_s=0.0)
    with pytest.raises(ConfigError, match="tolerance"):
        Clock(None, step_time_s=1.0, tolerance=-1.0)
    with pytest.raises(ConfigError, match="sine"):
        Clock(None, step_time_s=1.0, profile="sine:300K")
    with pytest.raises(ConfigError, match="recalibrat"):
        Clock(gpt2, step_time_s=1.0, recalibrate_every_s=3600.0)
    am = convert(tiny_gpt2(), analog_mapping("pcm"))
    with pytest.raises(ConfigError, match="not programmed"):
        Clock(am, step_time_s=1.0)


# ------------------------------------------------------------------ Arrhenius age


def _quad_age(profile, t_end: float, ea: float, t_ref: float) -> float:
    def f(t: float) -> float:
        return math.exp(-ea / BOLTZMANN_EV_PER_K * (1 / float(profile.temperature(t)) - 1 / t_ref))

    pts = np.arange(0.0, t_end, 1800.0)[1:]
    return integrate.quad(f, 0.0, t_end, points=pts, limit=2000, epsabs=0, epsrel=1e-12)[0]


def _ode_age(profile, t_end: float, key) -> float:
    """Reference: scipy LSODA on dt_eq/dt = (T/T_ref)((t_eq + t0)/tau0)^(1 - T_ref/T)."""
    t_ref, tau0, t0 = key[:3]

    def f(t: float, y: np.ndarray) -> list[float]:
        T = float(profile.temperature(t))
        return [T / t_ref * ((y[0] + t0) / tau0) ** (1.0 - t_ref / T)]

    sol = integrate.solve_ivp(f, (0.0, t_end), [0.0], method="LSODA", rtol=1e-12, atol=1e-9)
    return float(sol.y[0, -1])


def test_equivalent_age_integrates_the_profile():
    """The clock's drift age is the demarcation-energy ODE integrated over the profile
    (against scipy), its fault age the Arrhenius integral, and 1/f noise the deployment time."""
    am = convert(tiny_gpt2(), analog_mapping("pcm")).program(0)
    dev = next(layer.device_model for _, layer in am.analog_layers())
    key = dev.temperature.age_key
    assert key[1] > 0  # the card's relaxation has an attempt time
    prof = Sine(300.0, 360.0, DAY)
    clock = Clock(am, step_time_s=HOUR, start_age_s=5 * HOUR, profile=prof, tolerance=0.0)
    states = _run(clock, 30)
    for s in states[::7]:
        want = _ode_age(prof, s.time_s, key)
        assert s.equivalent_s[key] == pytest.approx(want, rel=1e-8)
        # hotter than T_ref half the time: ages much faster than wall time
        assert s.equivalent_s[key] > s.time_s
    # the converted model was put at exactly that age; its 1/f noise runs on held time
    assert am.equivalent_time(dev) == pytest.approx(states[-1].equivalent_s[key], rel=1e-12)
    assert am.device_time(dev).noise_s == states[-1].time_s
    # constant profile: the closed form
    c = Clock(am, step_time_s=HOUR, start_age_s=0.0, profile="330K", tolerance=0.0)
    last = _run(c, 5)[-1]
    want = dev.temperature.drift_age_after(0.0, 4 * HOUR, 330.0)
    assert last.equivalent_s[key] == pytest.approx(want, rel=1e-12)


# ------------------------------------------------------------------ step-size independence


@pytest.mark.parametrize("recal", [None, 6 * HOUR])
def test_many_small_steps_equal_one_jump(recal):
    prof = "sine:300K:360K:1d"
    tile = dict(dac_bits=8, adc_bits=8, adc_bound=10.0, out_noise=0.04, read_noise=0.0)
    ams = [
        convert(
            tiny_gpt2(), analog_mapping("pcm", {**tile, "drift_compensation": "global"})
        ).program(7)
        for _ in range(2)
    ]
    fine = Clock(ams[0], HOUR, HOUR, prof, tolerance=0.0, recalibrate_every_s=recal)
    _run(fine, 25)  # tokens at 1 h ... 25 h
    coarse = Clock(ams[1], 24 * HOUR, HOUR, prof, tolerance=0.0, recalibrate_every_s=recal)
    _run(coarse, 2)  # 1 h, then one jump to 25 h
    a, b = _states(ams[0]), _states(ams[1])
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-7)
    # and it can fail: the same 24 h held at the final temperature is a different state
    wrong = convert(
        tiny_gpt2(), analog_mapping("pcm", {**tile, "drift_compensation": "global"})
    ).program(7)
    wrong.at(25 * HOUR, float(parse_profile(prof).temperature(25 * HOUR)))
    w = _states(wrong)
    assert any(not torch.allclose(a[n], w[n], rtol=1e-3) for n in a)


# ------------------------------------------------------------------ skipping


def test_skipping_really_skips_and_stays_within_tolerance():
    tol = 0.005
    am = convert(tiny_gpt2(), analog_mapping("pcm")).program(3)
    clock = Clock(am, step_time_s=1.0, start_age_s=HOUR, profile="300K", tolerance=tol)
    layers = list(am.analog_layers())
    held_t = None
    worst = 0.0
    checked = 0
    for _ in range(400):
        s = clock.next_step()
        te = next(iter(s.equivalent_s.values()))
        if s.updated:
            held_t = te
            continue
        if s.index % 25 and s.index < 395:
            continue
        checked += 1
        for _, layer in layers[:3]:
            held = layer.effective_normalized(held_t, 300.0)
            exact = layer.effective_normalized(te, 300.0)
            # each device of a pair moved by at most tol * g_max (drift exactly bounded;
            # the accumulated-noise part of the bound is one std, so allow its tail)
            worst = max(worst, float((held - exact).abs().max()))
    assert 1 < clock.n_updates < 40  # skips: far fewer updates than the 400 tokens
    assert checked > 5
    assert worst <= 2 * 2 * tol
    # with tolerance 0 every token updates
    c0 = Clock(am, step_time_s=1.0, start_age_s=HOUR, profile="300K", tolerance=0.0)
    assert all(s.updated for s in _run(c0, 10))


def test_skipped_drift_stays_within_tolerance_exactly():
    """Drift alone (no accumulated noise): the bound is exact, so every held state is within
    ``tolerance * g_max`` of the exact one for each device of a pair."""
    tol = 0.005
    m = analog_mapping("pcm")
    m = m.with_device_overrides("pcm", {"read_noise.scale": 0.0})
    am = convert(tiny_gpt2(), m).program(3)
    clock = Clock(am, step_time_s=5.0, start_age_s=HOUR, profile="300K", tolerance=tol)
    layer = next(layer for _, layer in am.analog_layers())
    held_t = None
    prev = None
    worst = 0.0
    for _ in range(300):
        s = clock.next_step()
        te = next(iter(s.equivalent_s.values()))
        if s.updated and prev is not None:
            # the step before an update is the farthest the held state was from the truth
            worst = max(
                worst,
                float(
                    (
                        layer.effective_normalized(held_t, 300.0)
                        - layer.effective_normalized(prev, 300.0)
                    )
                    .abs()
                    .max()
                ),
            )
        if s.updated:
            held_t = te
        prev = te
    assert clock.n_updates > 2
    assert 0 < worst <= 2 * tol


# ------------------------------------------------------------------ recalibration


def test_recalibration_happens_on_schedule_and_freezes_compensation():
    tile = dict(IDEAL_TILE, drift_compensation="global")
    am = convert(tiny_gpt2(), analog_mapping("pcm", tile)).program(1)
    clock = Clock(am, HOUR, DAY, "300K", tolerance=0.0, recalibrate_every_s=6 * HOUR)
    states = _run(clock, 14)
    recal = [e.time_s for e in clock.events if e.kind == "recalibration"]
    assert recal == [DAY, DAY + 6 * HOUR, DAY + 12 * HOUR]
    by_t = {s.time_s: s for s in states}
    assert "recalibration" in by_t[DAY + 6 * HOUR].reasons
    layer = next(layer for _, layer in am.analog_layers())
    assert layer.frozen_compensation
    # between recalibrations the factor stays; without the schedule it follows every update
    comp = layer._comp.clone()
    clock.next_step()  # 14 h after start, no recalibration
    assert torch.equal(layer._comp, comp)


# ------------------------------------------------------------------ faults


def _fault_model(lam_min: float, lam_max: float, static: float = 0.0):
    m = analog_mapping("ideal").with_device_overrides(
        "ideal",
        {
            "faults.onset_gmin_per_s": lam_min,
            "faults.onset_gmax_per_s": lam_max,
            "faults.stuck_at_gmin_rate": static,
        },
    )
    return convert(tiny_gpt2(), m).program(11)


def test_fault_counts_match_the_binomial_expectation():
    lam = 2e-7  # per device per second; p(1 d) ~ 1.7 %
    am = _fault_model(0.6 * lam, 0.4 * lam, static=0.002)
    clock = Clock(am, step_time_s=2 * HOUR, start_age_s=0.0, profile="300K")
    states = _run(clock, 13)
    n = sum(2 * effective_matrix(layer).numel() for _, layer in am.analog_layers())
    counts = [s.faults for s in states]
    assert counts == sorted(counts)  # failures never heal
    for s in states[1:]:
        p_static = 0.002
        p_on = 1 - math.exp(-lam * s.time_s)
        mean = n * (p_static + (1 - p_static) * p_on)
        assert s.faults_expected == pytest.approx(mean, rel=1e-9)
        p = mean / n
        sd = math.sqrt(n * p * (1 - p))
        assert abs(s.faults - mean) < 5 * sd, (s.time_s, s.faults, mean, sd)
    assert states[-1].faults > states[1].faults + 100


def test_fault_checkpoints_refresh_the_state_when_one_new_failure_is_expected():
    am = _fault_model(1e-9, 0.0)
    n = sum(2 * effective_matrix(layer).numel() for _, layer in am.analog_layers())
    rate = n * 1e-9  # expected new failures per second (p small)
    step = 0.3 / rate  # about 3 tokens per expected failure
    clock = Clock(am, step_time_s=step, start_age_s=0.0, profile="300K")
    states = _run(clock, 40)
    updated = [s.index for s in states if s.updated]
    assert 8 <= len(updated) <= 20  # about every 3rd token, not every token
    last = 0.0
    for s in states:
        e = s.faults_expected
        if s.updated:
            last = e
        else:
            assert e - last < 1.0 + 1e-9  # a refresh is never late
    assert any(e.kind == "fault_checkpoint" for e in clock.events)


# ------------------------------------------------------------------ sigma schedules


@pytest.mark.parametrize("spec", ["linear:0:0.02", "sine:0.001:0.03:8", "step:0.02:0.005:6"])
def test_sigma_schedule_gives_exactly_sigma_k(spec):
    model = tiny_gpt2()
    originals = {n: p.detach().clone() for n, p in model.named_parameters()}
    sched = parse_schedule(spec, 16)
    wn = WeightNoise(model, sched, "gaussian", seed=3)
    measured: list[float] = []

    def check(state):
        k = state.index
        s = float(sched.sigma(k))
        assert state.sigma == s
        num = den = 0.0
        for t in wn.targets:
            delta = t.param.detach().double() - t.original.double()
            torch.testing.assert_close(delta, s * t.xi.double(), rtol=0, atol=2e-7)
            num += float((delta * t.xi.double()).sum())
            den += float((t.xi.double() ** 2).sum())
        measured.append(num / den)  # least-squares scale of the perturbation

    clock = Clock(model, step_time_s=1.0, noise=wn, on_step=check)
    _run(clock, 16)
    assert measured == pytest.approx([float(sched.sigma(k)) for k in range(16)], abs=1e-6)
    if spec.startswith(("sine", "step")):
        assert min(np.diff(measured)) < 0  # it goes down when the schedule goes down
    clock.close()
    for n, p in model.named_parameters():
        assert torch.equal(p.detach(), originals[n]), n  # restored bit for bit


def test_sigma_schedule_on_an_analog_model_adds_to_the_effective_weights():
    am = convert(tiny_gpt2(), analog_mapping("ideal")).program(0)
    sched = parse_schedule("linear:0:0.01", 6)
    wn = WeightNoise(am, sched, "gaussian", seed=1, analog=True)
    clean = _states(am)

    def check(state):
        s = float(sched.sigma(state.index))
        for t in wn.targets:
            name = next(n for n, layer in am.analog_layers() if layer is t.layer)
            torch.testing.assert_close(
                effective_matrix(t.layer) - clean[name], s * t.xi, rtol=0, atol=1e-5
            )

    clock = Clock(am, step_time_s=HOUR, start_age_s=HOUR, noise=wn, on_step=check)
    states = _run(clock, 6)
    assert states[-1].weight_error["mlp"] > states[1].weight_error["mlp"] > 0
    clock.close()
    after = _states(am)
    for n in clean:
        torch.testing.assert_close(after[n], clean[n], rtol=0, atol=0)


def test_deployment_time_for_an_equivalent_age_inverts_the_profile():
    am = convert(tiny_gpt2(), analog_mapping("pcm")).program(0)
    prof = parse_profile("2h=300K+sine:300K:370K:5h")
    clock = Clock(am, step_time_s=HOUR, start_age_s=HOUR, profile=prof)
    clock.start()
    key = clock.groups[0].key
    te0 = clock.equivalent_age(key)
    for extra in (1.0, 5e3, 2e5, 3e6):
        t = clock._wall_time_for(key, te0 + extra)
        got = te0 + prof.equivalent_time(clock.age.time_s, t, key[1], key[0])
        assert got == pytest.approx(te0 + extra, rel=1e-9)
        assert got >= te0 + extra * (1 - 1e-12)  # never early
