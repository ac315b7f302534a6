"""Tests of ``analogsim/cli/options.py``: the shared printing and parsing helpers, and that
every command default equals the API default it stands for (the CLI writes those defaults
out so that ``analogsim --help`` does not load torch).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import click
import pytest
import typer

from analogsim.cli import app
from analogsim.cli.options import parse_floats, parse_overrides, parse_roles, print_json
from analogsim.errors import ConfigError
from analogsim.studies.compare import run_compare
from analogsim.studies.demo import run_demo
from analogsim.studies.evaluate import device_datasheet, evaluate
from analogsim.studies.generate import GenerateOptions
from analogsim.studies.robustness import robustness
from analogsim.studies.stream import StreamOptions
from analogsim.studies.sweep import run_sweep
from analogsim.train import HWAConfig, LearnedNoiseConfig, TrainConfig
from analogsim.train.distill import DistillConfig
from analogsim.units import (
    parse_range,
    parse_temperature,
    parse_temperatures,
    parse_time,
    parse_times,
)


# ---------------------------------------------------------------------------- helpers
def test_print_json_is_strict_json(capsys):
    print_json({"a": float("inf"), "b": [float("nan"), -float("inf"), 1.5], 3: None})
    text = capsys.readouterr().out
    assert json.loads(text) == {"a": "inf", "b": ["nan", "-inf", 1.5], "3": None}


def test_parsers():
    assert parse_floats("0.1, 0.5,,1", key="g") == [0.1, 0.5, 1.0]
    assert parse_roles(None) is None and parse_roles("") is None
    assert parse_roles("mlp, attention,") == ["mlp", "attention"]
    assert parse_overrides(["drift.scale=2", "faults.rate=1e-3", "card.name=x"]) == {
        "drift.scale": 2,
        "faults.rate": 1e-3,
        "card.name": "x",
    }
    with pytest.raises(ConfigError, match=r"SECTION\.KEY=VALUE"):
        parse_overrides(["drift.scale"])


# ---------------------------------------------------------------------------- defaults
def _command(*path: str) -> click.Command:
    cmd: Any = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


def _cli_defaults(*path: str) -> dict[str, Any]:
    return {p.name: p.default for p in _command(*path).params}


def _api_defaults(api: Callable[..., Any]) -> dict[str, Any]:
    if isinstance(api, type):  # a config dataclass
        obj = api()
        return {k: getattr(obj, k) for k in api.__dataclass_fields__}
    return {
        k: p.default
        for k, p in inspect.signature(api).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def _as_is(v: Any) -> Any:
    return v


def _seq(parse: Callable[[str], list[float]]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else list(parse(v))


def _lo(parse: Callable[..., float]) -> Callable[[str], float]:
    return lambda v: parse(v.split(":")[0])


def _hi(parse: Callable[..., float]) -> Callable[[str], float]:
    return lambda v: parse(v.split(":")[-1])


def _time(v: Any) -> Any:
    return parse_time(v) if isinstance(v, str) else v


TIMES = ("times", _seq(parse_times))
TEMPS = ("temperatures", _seq(parse_temperatures))

# (command, API, {CLI option: (API name, CLI value -> API value)}, CLI options not to compare,
#  options that differ on purpose)
Case = tuple[tuple[str, ...], Any, dict[str, tuple[str, Callable[[Any], Any]]], set[str], set[str]]
CASES: list[Case] = [
    (
        ("device", "show"),
        device_datasheet,
        {"g": ("g_levels", lambda v: parse_floats(v, key="g")), "times": TIMES},
        set(),
        set(),
    ),
    (("eval",), evaluate, {"times": TIMES, "temperature": TEMPS}, set(), set()),
    (
        ("sweep",),
        run_sweep,
        {"sigma": ("sigmas", _seq(parse_range)), "no_bias": ("include_bias", lambda v: not v)},
        set(),
        set(),
    ),
    (
        ("compare",),
        run_compare,
        {"times": TIMES, "temperature": TEMPS, "precision": ("digital_precision", _as_is)},
        set(),
        set(),
    ),
    (("demo",), run_demo, {}, set(), set()),
    (
        ("generate",),
        GenerateOptions,
        {"token_time": ("token_time", _time), "start_age": ("start_age", _time)},
        set(),
        {"start_age"},  # 1h: 1 s tokens then rarely need a state update (see --help)
    ),
    (
        ("stream",),
        StreamOptions,
        {"input_time": ("input_time", _time), "start_age": ("start_age", _time)},
        set(),
        {"input_time"},  # 1h: the digits test set then spans ~19 days (see --help)
    ),
    (
        ("robustness",),
        robustness,
        {"times": TIMES, "temperature": TEMPS, "sigma": ("sigmas", _seq(parse_range))},
        set(),
        set(),
    ),
    (("train",), TrainConfig, {}, set(), set()),
    (
        ("train",),
        HWAConfig,
        {
            "train_times": ("t_min_s", _lo(parse_time)),
            "train_temperature": ("temperature_min_K", _lo(parse_temperature)),
            "train_noise_scale": ("noise_scale", _as_is),
            "stuck_at_gmin": ("stuck_at_gmin_rate", _as_is),
            "stuck_at_gmax": ("stuck_at_gmax_rate", _as_is),
        },
        # --noise-scale is learned-noise's; None for these two means HWAConfig's default
        {"noise_scale", "resample_every", "clip_sigma"},
        set(),
    ),
    (
        ("train",),
        HWAConfig,
        {
            "train_times": ("t_max_s", _hi(parse_time)),
            "train_temperature": ("temperature_max_K", _hi(parse_temperature)),
        },
        {"noise_scale", "resample_every", "clip_sigma"},
        set(),
    ),
    (
        ("train",),
        LearnedNoiseConfig,
        {
            "noise_lr": ("lr", _as_is),
            "noise_scale": ("scale", _as_is),
            "noise_reward": ("reward", _as_is),
        },
        {"lr"},  # --lr is the weights' learning rate (TrainConfig's)
        set(),
    ),
    (("train",), DistillConfig, {}, set(), set()),
]


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, tuple | list) or isinstance(b, tuple | list):
        return a is not None and b is not None and list(a) == pytest.approx(list(b))
    if isinstance(b, float) and not isinstance(a, bool):
        return a == pytest.approx(b)
    return a == b


@pytest.mark.parametrize(
    ("command", "api", "renamed", "skip", "on_purpose"),
    CASES,
    ids=[f"{' '.join(c[0])}-{c[1].__name__}" for c in CASES],
)
def test_command_defaults_are_the_api_defaults(command, api, renamed, skip, on_purpose):
    cli, ref = _cli_defaults(*command), _api_defaults(api)
    compared = set()
    for name, default in cli.items():
        api_name, convert = renamed.get(name, (name, _as_is))
        if name in skip or api_name not in ref:
            continue
        compared.add(name)
        same = _equal(convert(default), ref[api_name])
        assert same != (name in on_purpose), (name, default, ref[api_name])
    assert len(compared) >= 2, compared
    assert on_purpose <= compared
