"""The workbench behind the page (no browser): the chip is built once per structure and a
slider move only re-states it, both answers and the digital view of the chip's answer,
statistical noise on and off, and bad values refused before any work."""

from __future__ import annotations

import math
import shlex

import pytest
import torch

from analogsim.clock.profile_spec import parse_profile
from analogsim.errors import ConfigError
from analogsim.mapping.convert import convert
from analogsim.models import LoadedModel
from analogsim.models.tiny_gpt2 import train_tokenizer
from analogsim.ui.workbench import IDEAL_TILE, ChipSettings, Workbench, profile_text
from tests.conftest import make_gpt2

YEAR = 365.25 * 86400.0
PROMPT = "What is a chip?"


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    """A random GPT-2 (untied head, sharpened logits) with a small BPE tokenizer."""
    tok = train_tokenizer("What is a chip? A chip is a small piece of silicon.\n\n" * 30, 200, 128)
    model = make_gpt2(0, vocab=len(tok), n_positions=128, dropout=0.0, tied=False, sharpen=2.0)
    return LoadedModel("random-gpt2", "causal-lm", model, tok, {})


@pytest.fixture
def wb(loaded: LoadedModel, tmp_path) -> Workbench:
    return Workbench(loaded, runs=tmp_path)


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_a_slider_move_restates_the_chip_without_converting_again(wb, loaded):
    s = ChipSettings(device="pcm", age_s=3600.0, temperature_K=300.0)
    chip = wb.chip(s)
    built = wb.last_build_s
    moved = ChipSettings(device="pcm", age_s=YEAR, temperature_K=358.15)
    took = wb.restate(moved)
    assert took is not None and took >= 0
    assert wb.chip(moved) is chip and wb.last_build_s == built
    assert chip.time_s == YEAR and chip.temperature_K == 358.15
    # the re-stated chip is the chip programmed from the same seed and read there
    fresh = convert(loaded.model, wb.mapping(moved)).program(0).at(YEAR, 358.15)
    ids = torch.arange(1, 9).view(1, -1)
    assert torch.equal(_logits(chip, ids), _logits(fresh, ids))
    # another seed is another chip: the slider alone does not build it
    assert wb.restate(ChipSettings(device="pcm", age_s=YEAR, seed=1)) is None
    assert wb.chip(ChipSettings(device="pcm", age_s=YEAR, seed=1)) is not chip


def test_the_digital_model_stays_digital_while_the_chip_ages(wb, loaded):
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    wb.chip(ChipSettings(device="pcm", age_s=YEAR, temperature_K=358.15))
    after = loaded.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_an_ideal_chip_answers_like_the_digital_model_and_an_aged_hot_chip_does_not(wb):
    ideal = ChipSettings(device="ideal", tile=IDEAL_TILE, age_s=YEAR, temperature_K=358.15)
    *_, res = wb.talk(ideal, PROMPT, 12)
    assert res.identical and len(res.chip) == 12
    assert all(v["gap_nats"] == pytest.approx(0.0, abs=1e-9) for v in res.digital_view)
    hot = ChipSettings(device="pcm", age_s=YEAR, temperature_K=358.15)
    *_, res = wb.talk(hot, PROMPT, 12)
    assert not res.identical
    assert any(v["gap_nats"] > 0 for v in res.digital_view)


def test_both_answers_stream_and_each_chip_token_has_both_top5(wb):
    s = ChipSettings(device="pcm", age_s=YEAR, temperature_K=358.15)
    updates = [(len(r.digital), len(r.chip), bool(r.digital_view)) for r in wb.talk(s, PROMPT, 8)]
    assert updates[0][:2] in ((1, 0), (0, 1))  # one token at a time
    assert updates[-1] == (8, 8, True)
    res = wb.last_talk
    text = wb.loaded.tokenizer.decode([st.token for st in res.chip])
    assert "".join(st.text for st in res.chip) == text
    for st, view in zip(res.chip, res.digital_view, strict=True):
        assert len(st.top) == 5 and len(view["top"]) == 5
        # greedy: the chip's token is its own first choice
        assert st.top[0][1] == pytest.approx(math.exp(st.logprob), rel=1e-12)
        assert view["gap_nats"] >= 0
        probs = [p for _, p in view["top"]]
        assert probs == sorted(probs, reverse=True)


def test_statistical_noise_goes_on_and_comes_off_exactly(wb):
    # the weights the chip applies (its probes), not its outputs: every read draws new noise
    base = ChipSettings(device="pcm", age_s=3600.0)
    clean = wb.chip(base).squared_errors_by_role()
    noisy = ChipSettings(
        device="pcm", age_s=3600.0, noise="gaussian", sigma=0.05, noise_roles=("mlp",)
    )
    with_noise = wb.chip(noisy).squared_errors_by_role()
    assert with_noise["mlp"] > clean["mlp"] and with_noise["attention"] == clean["attention"]
    assert wb.chip(base).squared_errors_by_role() == clean
    # a slider move with noise on: the noise sits on the new state, and comes off again
    moved = ChipSettings(
        device="pcm", age_s=YEAR, noise="gaussian", sigma=0.05, noise_roles=("mlp",)
    )
    assert wb.restate(moved) is not None
    aged = ChipSettings(device="pcm", age_s=YEAR)
    assert (
        wb.chip(moved).squared_errors_by_role()["mlp"]
        > wb.chip(aged).squared_errors_by_role()["mlp"]
    )


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        (dict(temperature_K=500.0), "temperature"),
        (dict(age_s=-1.0), "age"),
        (dict(seed=-1), "seed"),
        (dict(device="no-such-card"), None),
        (dict(tile={**IDEAL_TILE, "adc_bits": 1}), "adc_bits"),
        (dict(noise="no-such-noise", sigma=0.1), "noise"),
        (dict(noise="gaussian", sigma=-0.1), "sigma"),
        (dict(noise="gaussian", sigma=0.1, noise_roles=()), "noise roles"),
    ],
)
def test_bad_settings_are_refused_before_any_work(wb, settings, key):
    with pytest.raises(ConfigError) as err:
        wb.chip(ChipSettings(**settings))
    if key is not None:
        assert key in str(err.value)
    assert wb._chip is None  # nothing was built


def test_bad_talk_values_are_refused(wb):
    s = ChipSettings(device="pcm")
    with pytest.raises(ConfigError, match="tokens"):
        next(wb.talk(s, PROMPT, 0))
    with pytest.raises(ConfigError, match="prompt"):
        next(wb.talk(s, "  ", 4))
    with pytest.raises(ConfigError, match="context"):
        next(wb.talk(s, PROMPT, 500))
    with pytest.raises(ConfigError, match="token time"):
        wb.age_run(s, PROMPT, 4, "fast", "300K")
    with pytest.raises(ConfigError, match="save run"):
        wb.save_talk()


def test_profile_text_is_the_command_line_form():
    assert profile_text("constant", 27, 85, "1d") == "300.15K"
    assert profile_text("ramp", 27, 85, "1d") == "ramp:300.15K:358.15K:1d"
    assert profile_text("sine", 27, 85, "6h") == "sine:300.15K:358.15K:6h"
    with pytest.raises(ConfigError, match="profile"):
        profile_text("square", 27, 85, "1d")
    # a chip a year old was held at the Chip panel's temperature until the profile starts
    text = profile_text("ramp", 27, 85, "1d", start_age_s=YEAR, held_K=330.15)
    assert text == "31557600.000000s=330.15K+ramp:300.15K:358.15K:1d"
    p = parse_profile(text)
    assert p.temperature(YEAR - 1) == pytest.approx(330.15)
    assert p.temperature(YEAR + 0.5 * 86400) == pytest.approx(329.15)
    assert p.temperature(YEAR + 2 * 86400) == pytest.approx(358.15)


def test_the_command_line_of_a_run_from_the_page_runs_as_written(wb, tmp_path):
    s = ChipSettings(device="pcm", tile=IDEAL_TILE, noise="gaussian", sigma=0.01, seed=3)
    prompt = 'What\'s \\up? "é"'
    line = wb._generate_command(s, prompt, 8, "1h", "300K", YEAR, tmp_path / "run")
    words = shlex.split(line, comments=True)  # the tile note is a trailing comment
    assert words[:3] == ["analogsim", "generate", "random-gpt2"]
    assert words[words.index("--prompt") + 1] == prompt
    assert words[words.index("--out") + 1] == str(tmp_path / "run")
    assert words[words.index("--schedule") + 1] == "0.01" and "--seed" in words
    assert "adc_bits=0" in line.split("#", 1)[1]
