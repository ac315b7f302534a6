"""Device cards: every shipped card loads; every invalid card fails with one ConfigError that
names the file, the key and the bad value or what is allowed (DESIGN.md, "Bad input")."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from analogsim.devices import card_dict, device_from_dict, list_devices, load_card, load_device
from analogsim.devices.card import SECTIONS, TOP_KEYS
from analogsim.errors import ConfigError

SHIPPED = ("ideal", "pcm", "pcm_hermes", "rram")


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def to_toml(card: dict[str, Any]) -> str:
    """A minimal TOML writer for card dicts (top-level scalars, then one table per section)."""
    lines = [f"{k} = {_value(v)}" for k, v in card.items() if not isinstance(v, dict)]
    for k, v in card.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines += [f"{kk} = {_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


BASE: dict[str, Any] = {
    "name": "test_pcm",
    "technology": "pcm",
    "description": "a card for tests",
    "source": "tests",
    "conductance": {"g_min_uS": 0.0, "g_max_uS": 25.0, "devices_per_weight": 2},
    "programming": {"coeffs_uS": [0.26348, 1.965, -1.1731], "g_max_ref_uS": 25.0},
    "drift": {
        "t0_s": 20.0,
        "nu_mean": {"form": "log", "c": [0.0244, -0.0155], "min": 0.049, "max": 0.1},
        "nu_std": {"form": "log", "c": [-0.0059, -0.0125], "min": 0.008, "max": 0.045},
    },
    "read_noise": {
        "kind": "relative",
        "amplitude": {"form": "inverse_power", "c": [0.0088], "p": 0.65, "floor": 1e-3},
        "t_offset_s": 2.5e-7,
        "t_scale_s": 5e-7,
        "t0_s": 20.0,
    },
    "temperature": {"t_ref_K": 300.0, "drift_ea_eV": 0.6, "assumptions": ["drift_ea_eV"]},
    "faults": {"stuck_at_gmin_rate": 0.01, "stuck_at_gmax_rate": 0.01},
}


def write_card(tmp_path: Path, card: dict[str, Any] | str, name: str = "card.toml") -> Path:
    path = tmp_path / name
    path.write_text(card if isinstance(card, str) else to_toml(card))
    return path


def edited(**changes: Any) -> dict[str, Any]:
    """BASE with ``section__key=value`` changes (``value=...`` deletes with DELETE)."""
    card = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        parts = dotted.split("__")
        target = card
        for p in parts[:-1]:
            target = target.setdefault(p, {})
        if value is DELETE:
            target.pop(parts[-1])
        else:
            target[parts[-1]] = value
    return card


DELETE = object()


def test_base_card_is_valid(tmp_path):
    dev = load_card(write_card(tmp_path, BASE))
    assert dev.name == "test_pcm" and dev.g_max == 25.0
    assert dev.assumptions() == {"temperature": ("drift_ea_eV",)}


def test_shipped_cards_are_listed():
    assert set(SHIPPED) <= set(list_devices())


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_card_loads_and_round_trips(name):
    dev = load_device(name)
    assert dev.name == name
    assert dev.path is not None and dev.path.name == f"{name}.toml"
    again = device_from_dict(card_dict(dev))
    assert again == dataclasses.replace(dev, path=None)
    assert load_card(dev.path) == dev


@pytest.mark.parametrize("name", ["pcm", "pcm_hermes", "rram"])
def test_shipped_sections_name_a_source(name):
    dev = load_device(name)
    for sec in SECTIONS:
        part = getattr(dev, sec)
        if part is None or (sec == "faults" and not (part.static or part.dynamic)):
            continue  # absent, or no faults at all
        assert part.source, f"{name} [{sec}] has no source"


def _expect(path: Path, key: str, *fragments: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{path}: key '{key}'")) as info:
        load_card(path)
    msg = str(info.value)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"
    assert info.value.key == key


CASES = [
    # (id, card, key, fragments that must appear in the message)
    ("unknown top-level", edited(colour="red"), "colour", ["unknown top-level key", *TOP_KEYS]),
    (
        "unknown section key",
        edited(drift__t_zero=20.0),
        "drift.t_zero",
        ["unknown key 't_zero' in [drift]", "t0_s", "nu_mean", "nu_std", "scale"],
    ),
    (
        "missing required key",
        edited(drift__t0_s=DELETE),
        "drift.t0_s",
        ["missing required key 't0_s'", "t0_s, nu_mean, nu_std"],
    ),
    (
        "wrong type",
        edited(conductance__g_max_uS="25"),
        "conductance.g_max_uS",
        ["must be a number", "'25'"],
    ),
    (
        "bool is not a number",
        edited(programming__g_max_ref_uS=True),
        "programming.g_max_ref_uS",
        ["must be a number", "True"],
    ),
    (
        "negative conductance",
        edited(conductance__g_min_uS=-1.0),
        "conductance.g_min_uS",
        ["out of physical range", "-1.0", "[0, inf)"],
    ),
    (
        "g_min >= g_max",
        edited(conductance__g_min_uS=30.0),
        "conductance.g_min_uS",
        ["must be below g_max_uS", "30.0", "g_max_uS = 25"],
    ),
    (
        "rate above 1",
        edited(faults__stuck_at_gmin_rate=1.5),
        "faults.stuck_at_gmin_rate",
        ["out of physical range", "1.5", "[0, 1]"],
    ),
    (
        "negative rate",
        edited(faults__outlier_rate=-0.1),
        "faults.outlier_rate",
        ["out of physical range", "-0.1", "[0, 1]"],
    ),
    (
        "rates sum above 1",
        edited(faults__stuck_at_gmin_rate=0.6, faults__stuck_at_gmax_rate=0.5),
        "faults",
        [
            "add up to more than 1",
            "1.1",
            "stuck_at_gmin_rate + stuck_at_gmax_rate + outlier_rate <= 1",
        ],
    ),
    (
        "unknown piecewise form",
        edited(drift__nu_mean={"form": "spline", "c": [1.0]}),
        "drift.nu_mean.form",
        ["unknown form", "'spline'", "const, poly, log, inverse_power"],
    ),
    (
        "wrong coefficient count",
        edited(drift__nu_std={"form": "log", "c": [1.0]}),
        "drift.nu_std.c",
        ["takes 2 coefficient", "[1.0]"],
    ),
    (
        "missing below",
        edited(
            read_noise__amplitude=[{"form": "const", "c": [0.01]}, {"form": "const", "c": [0.02]}]
        ),
        "read_noise.amplitude[0].below",
        ["needs 'below'"],
    ),
    (
        "decreasing below",
        edited(
            read_noise__amplitude=[
                {"below": 0.3, "form": "const", "c": [0.01]},
                {"below": 0.1, "form": "const", "c": [0.02]},
                {"form": "const", "c": [0.03]},
            ]
        ),
        "read_noise.amplitude[1].below",
        ["must be > 0 and increase", "0.1"],
    ),
    (
        "assumption names a missing key",
        edited(temperature__assumptions=["activation"]),
        "temperature.assumptions",
        ["assumption names a key", "'activation'", "t_ref_K, relaxation_tau0_s"],
    ),
    (
        "invalid string choice",
        edited(read_noise__kind="multiplicative"),
        "read_noise.kind",
        ["invalid value", "'multiplicative'", "relative, absolute"],
    ),
    (
        "integer key",
        edited(conductance__devices_per_weight=2.5),
        "conductance.devices_per_weight",
        ["must be an integer", "2.5"],
    ),
    (
        "unknown technology",
        edited(technology="memristor"),
        "technology",
        ["unknown technology", "'memristor'", "pcm, rram, ideal, other"],
    ),
    ("missing name", edited(name=DELETE), "name", ["missing required key 'name'"]),
    (
        "bad name",
        edited(name="my card"),
        "name",
        ["invalid device name", "'my card'", "letters, digits"],
    ),
    (
        "missing conductance",
        edited(conductance=DELETE),
        "conductance",
        ["missing required section [conductance]"],
    ),
    (
        "section not a table",
        {**edited(drift=DELETE), "drift": 3},
        "drift",
        ["[drift] must be a table", "3"],
    ),
    (
        "noise clock undefined at t = 0",
        edited(read_noise__t_offset_s=0.0, read_noise__t0_s=0.0),
        "read_noise.t_offset_s",
        ["must be defined at t = 0", "t0_s + t_offset_s > 0"],
    ),
    (
        "non-finite",
        edited(drift__t0_s=float("inf")),
        "drift.t0_s",
        ["out of physical range", "inf"],
    ),
]


@pytest.mark.parametrize(
    ("card", "key", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_invalid_card_error_names_file_key_and_value(tmp_path, card, key, fragments):
    _expect(write_card(tmp_path, card), key, *fragments)


def test_bad_toml_names_the_file(tmp_path):
    path = write_card(tmp_path, 'name = "x"\n[conductance\ng_max_uS = 25\n')
    with pytest.raises(ConfigError, match=re.escape(str(path)) + r": not valid TOML"):
        load_card(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="device card not found"):
        load_card(tmp_path / "nope.toml")


def test_unknown_device_name_lists_shipped_cards():
    with pytest.raises(ConfigError, match=r"unknown device.*'plutonium'.*pcm, pcm_hermes, rram"):
        load_device("plutonium")


def test_load_device_by_path(tmp_path):
    path = write_card(tmp_path, BASE, "mine.toml")
    assert load_device(str(path)).name == "test_pcm"
    assert load_device(path).path == path.resolve()


def test_card_written_by_hand_parses_like_tomllib(tmp_path):
    """The test's TOML writer round-trips (so the cases above test the cards, not the writer)."""
    assert tomllib.loads(to_toml(BASE)) == BASE


# ---------------------------------------------------------------------------- overrides
def test_with_overrides_dotted_and_underscore_forms():
    pcm = load_device("pcm")
    a = pcm.with_overrides({"drift.scale": 2.0, "faults.stuck_at_gmax_rate": 0.01})
    b = pcm.with_overrides({"drift_scale": 2.0, "faults_stuck_at_gmax_rate": 0.01})
    assert a.drift.scale == 2.0 and a.faults.stuck_at_gmax_rate == 0.01
    assert dataclasses.replace(a, path=None) == dataclasses.replace(b, path=None)
    assert pcm.drift.scale == 1.0  # the original is untouched
    c = pcm.with_overrides({"read_noise_scale": 0.5, "temperature.drift_ea_eV": 0.3})
    assert c.read_noise.scale == 0.5 and c.temperature.drift_ea_eV == 0.3
    assert load_device("pcm", {"drift.scale": 2.0}).drift.scale == 2.0


def test_with_overrides_can_set_piecewise_and_new_sections():
    ideal = load_device("ideal")
    dev = ideal.with_overrides({"faults.stuck_at_gmin_rate": 0.2})
    assert dev.faults.stuck_at_gmin_rate == 0.2 and ideal.faults.stuck_at_gmin_rate == 0.0
    pcm = load_device("pcm").with_overrides({"drift.nu_mean": {"form": "const", "c": [0.07]}})
    assert pcm.drift.nu_mean.scalar(0.3) == pytest.approx(0.07)


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        (
            {"faults.stuck_at_gmin_rate": 2.0},
            r"key 'faults.stuck_at_gmin_rate'.*out of physical range.*2.0",
        ),
        (
            {"drift.speed": 1.0},
            r"key 'drift.speed'.*unknown key 'speed'.*t0_s, nu_mean, nu_std, scale",
        ),
        (
            {"flux.capacitor": 1.0},
            r"key 'flux.capacitor'.*unknown card section.*conductance, programming",
        ),
        ({"scale": 1.0}, r"key 'scale'.*'section.key' or 'section_key'"),
        ({"conductance.g_min_uS": 30.0}, r"key 'conductance.g_min_uS'.*below g_max_uS"),
        (
            {"programming.scale": 0.0, "drift.scale": -1.0},
            r"key 'drift.scale'.*out of physical range",
        ),
        # the ideal card has no [programming]: setting only its scale misses the required keys
        ({"programming_scale": 1.0}, r"key 'programming.coeffs_uS'.*missing required key"),
    ],
)
def test_with_overrides_validates(overrides, pattern):
    name = "ideal" if "programming_scale" in overrides else "pcm"
    with pytest.raises(ConfigError, match=pattern):
        load_device(name).with_overrides(overrides)
