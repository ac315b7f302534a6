"""Tests for analogsim.devices.functions: piecewise fitted statistics and their validation."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from analogsim.devices import load_device
from analogsim.devices.functions import parse_piecewise
from analogsim.errors import ConfigError

G = torch.tensor([1e-9, 1e-4, 0.01, 0.05, 0.0945, 0.1, 0.16, 0.3, 0.3055, 0.6, 1.0, 1.3]).double()


def _pw(value):
    return parse_piecewise(value, file="card.toml", key="drift.nu_mean")


def test_const_poly_log_inverse_power_forms():
    g = G.clamp(min=1e-7)
    torch.testing.assert_close(_pw({"form": "const", "c": [0.4]})(G), torch.full_like(G, 0.4))
    torch.testing.assert_close(
        _pw({"form": "poly", "c": [1.0, -2.0, 3.0]})(G), 1 - 2 * g + 3 * g**2
    )
    torch.testing.assert_close(
        _pw({"form": "log", "c": [0.5, -0.25]})(G), 0.5 - 0.25 * torch.log(g)
    )
    inv = _pw({"form": "inverse_power", "c": [0.0088], "p": 0.65, "floor": 1e-3})
    torch.testing.assert_close(inv(G), 0.0088 / torch.clamp(g**0.65, min=1e-3))


def test_min_max_clip():
    f = _pw({"form": "log", "c": [0.0, 1.0], "min": -1.0, "max": 0.0})
    torch.testing.assert_close(f(G), torch.log(G.clamp(min=1e-7)).clamp(-1.0, 0.0))


def test_segments_apply_below_their_bound():
    f = _pw(
        [
            {"below": 0.1, "form": "const", "c": [1.0]},
            {"below": 0.5, "form": "const", "c": [2.0]},
            {"form": "const", "c": [3.0]},
        ]
    )
    g = torch.tensor([0.0, 0.0999, 0.1, 0.4999, 0.5, 2.0])
    torch.testing.assert_close(f(g), torch.tensor([1.0, 1.0, 2.0, 2.0, 3.0, 3.0]))


def test_pcm_card_drift_fits_equal_published_formulas():
    """The card's nu mean/std and Q_s equal the aihwkit PCMLikeNoiseModel expressions."""
    pcm = load_device("pcm")
    g = G.clamp(min=1e-7)
    mu = (-0.0155 * torch.log(g) + 0.0244).clamp(0.049, 0.1)
    sd = (-0.0125 * torch.log(g) - 0.0059).clamp(0.008, 0.045)
    q_s = (0.0088 / (g**0.65).clamp(min=1e-3)).clamp(max=0.2)
    torch.testing.assert_close(pcm.drift.nu_mean(G), mu)
    torch.testing.assert_close(pcm.drift.nu_std(G), sd)
    torch.testing.assert_close(pcm.read_noise.amplitude(G), q_s)


def test_hermes_card_fits_equal_published_branches():
    """pcm_hermes piecewise fits equal aihwkit HermesNoiseModel(num_devices=2) branches."""
    h = load_device("pcm_hermes")
    g = G.clamp(min=1e-7)
    mu = torch.where(
        g < 0.0945, (-0.0387 * torch.log(g) - 0.0182).clamp(0.072, 0.13), -0.0436 * g**2
    )
    mu = torch.where(g < 0.0945, mu, mu - 0.0126 * g + 0.0736)
    sd = torch.where(
        g < 0.3055,
        (-0.0117 * torch.log(g) - 0.0057).clamp(0.0091, 0.04),
        -0.0118 * g**2 + 0.0093 * g + 0.0073,
    )
    q_s = torch.where(
        g < 0.16,
        (-0.0117 * torch.log(g) - 0.0069).clamp(0.015, 0.04),
        0.0069 * g**3 - 0.0280 * g**2 + 0.0211 * g + 0.0123,
    )
    torch.testing.assert_close(h.drift.nu_mean(G), mu)
    torch.testing.assert_close(h.drift.nu_std(G), sd)
    torch.testing.assert_close(h.read_noise.amplitude(G), q_s)


def test_scalar():
    pcm = load_device("pcm")
    assert pcm.drift.nu_mean.scalar(1.0) == pytest.approx(0.049)
    assert pcm.drift.nu_mean.scalar(0.01) == pytest.approx(0.0244 - 0.0155 * math.log(0.01))


_segment = st.fixed_dictionaries(
    {
        "form": st.sampled_from(["const", "poly", "log", "inverse_power"]),
        "lo": st.floats(-1, 0),
        "span": st.floats(0, 2),
        "c0": st.floats(-2, 2),
        "c1": st.floats(-2, 2),
    }
)


@given(st.lists(_segment, min_size=1, max_size=3), st.floats(0.01, 0.3))
@settings(deadline=None, max_examples=50)
def test_to_toml_round_trip(segs, first_below):
    items = []
    for i, s in enumerate(segs):
        c = {"const": [s["c0"]], "poly": [s["c0"], s["c1"]], "log": [s["c0"], s["c1"]]}.get(
            s["form"], [s["c0"]]
        )
        d = {"form": s["form"], "c": c, "min": s["lo"], "max": s["lo"] + s["span"]}
        if s["form"] == "inverse_power":
            d.update(p=0.5, floor=1e-3)
        if i < len(segs) - 1:
            d["below"] = first_below * (i + 1)
        items.append(d)
    value = items if len(items) > 1 else items[0]
    f = _pw(value)
    again = _pw(f.to_toml())
    assert again == f
    torch.testing.assert_close(again(G), f(G))


@pytest.mark.parametrize(
    ("value", "key", "words"),
    [
        ({"form": "cubic", "c": [1.0]}, "drift.nu_mean.form", "unknown form"),
        ({"form": "log", "c": [1.0, 2.0, 3.0]}, "drift.nu_mean.c", "takes 2 coefficient"),
        ({"form": "const", "c": [1.0, 2.0]}, "drift.nu_mean.c", "takes 1 coefficient"),
        ({"form": "poly", "c": []}, "drift.nu_mean.c", "non-empty list"),
        ({"form": "poly", "c": ["a"]}, "drift.nu_mean.c", "must be a number"),
        ({"form": "const", "c": [1.0], "slope": 2}, "drift.nu_mean", "unknown key 'slope'"),
        ({"form": "const", "c": [1.0], "min": 2.0, "max": 1.0}, "drift.nu_mean.min", "min must"),
        ({"form": "inverse_power", "c": [1.0]}, "drift.nu_mean.floor", "floor > 0"),
        ({"form": "const", "c": [1.0], "below": 0.5}, "drift.nu_mean.below", "last segment"),
        (
            [{"form": "const", "c": [1.0]}, {"form": "const", "c": [2.0]}],
            r"drift.nu_mean\[0\].below",
            "needs 'below'",
        ),
        (
            [
                {"below": 0.5, "form": "const", "c": [1.0]},
                {"below": 0.2, "form": "const", "c": [1.0]},
                {"form": "const", "c": [2.0]},
            ],
            r"drift.nu_mean\[1\].below",
            "increase",
        ),
        ([], "drift.nu_mean", "at least one segment"),
        (3.0, "drift.nu_mean", "each segment is a table"),
    ],
)
def test_parse_errors_name_file_and_key(value, key, words):
    with pytest.raises(ConfigError, match=rf"card\.toml: key '{key}'.*{words}") as info:
        _pw(value)
    assert info.value.file == "card.toml"
