"""Tests of the generation hook (``analogsim/clock/hook.py``): the clock advancing per token
inside an unmodified Hugging Face ``generate``, the recorder, and the digital scores."""

from __future__ import annotations

import math

import pytest
import torch

from analogsim.clock.core import Clock
from analogsim.clock.hook import TokenRecorder, digital_scores, generate_with_clock
from analogsim.mapping.convert import convert
from tests.clock.conftest import tiny_gpt2
from tests.conftest import analog_mapping

HOUR, DAY = 3600.0, 86400.0


# ------------------------------------------------------------------ the hook


def test_every_token_sees_its_own_time(prompt):
    model = tiny_gpt2()
    am = convert(model, analog_mapping("pcm")).program(0)
    seen: list[float] = []
    layer = next(layer for _, layer in am.analog_layers())
    orig = layer.forward

    def spy(x):
        seen.append(am.time_s)
        return orig(x)

    layer.forward = spy
    clock = Clock(am, step_time_s=HOUR, start_age_s=DAY, profile="300K", tolerance=0.0)
    res = generate_with_clock(am, prompt, clock, 6)
    assert len(res.tokens) == 6 and len(res.steps) == 6
    # forward k (k = 0 the prefill) runs with the chip at start_age + k * token_time
    assert seen == [DAY + k * HOUR for k in range(6)]
    assert [s.time_s for s in res.steps] == seen


def test_generation_does_not_stop_at_eos_unless_asked(prompt):
    model = tiny_gpt2()
    res = generate_with_clock(model, prompt, Clock(None, 1.0), 5)
    assert len(res.tokens) == 5
    first = res.tokens[0]
    # with the first token declared EOS: exactly 5 tokens by default, one with stop_at_eos
    res = generate_with_clock(model, prompt, Clock(None, 1.0), 5, eos_token_id=first)
    assert len(res.tokens) == 5
    res = generate_with_clock(
        model, prompt, Clock(None, 1.0), 5, stop_at_eos=True, eos_token_id=first
    )
    assert res.tokens == [first]
    assert len(res.steps) == 1


def test_sampling_uses_its_own_generator_and_leaves_the_global_rng(prompt):
    model = tiny_gpt2()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = generate_with_clock(model, prompt, Clock(None, 1.0), 12, sample=True, seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    b = generate_with_clock(model, prompt, Clock(None, 1.0), 12, sample=True, seed=5)
    c = generate_with_clock(model, prompt, Clock(None, 1.0), 12, sample=True, seed=6)
    g = generate_with_clock(model, prompt, Clock(None, 1.0), 12)
    assert a.tokens == b.tokens
    assert a.tokens != c.tokens
    assert a.tokens != g.tokens


def test_recorder_entropy_and_logprob_against_hand_values():
    rec = TokenRecorder()
    z = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)  # p = (1/4, 3/4)
    rec(torch.zeros(1, 1, dtype=torch.long), z)
    rec.finish()
    assert rec.tokens == [1]
    assert rec.logprobs[0] == pytest.approx(math.log(0.75), abs=1e-12)
    h = -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))
    assert rec.entropies[0] == pytest.approx(h, abs=1e-12)
    # top-k 1 sampling always returns the arg-max, whatever the uniform
    s = TokenRecorder(sample=True, generator=torch.Generator().manual_seed(0), top_k=1)
    for _ in range(20):
        s(torch.zeros(1, 1, dtype=torch.long), z)
    assert set(s.finish().tokens) == {1}


# ------------------------------------------------------------------ against the digital model


@pytest.mark.parametrize("sample", [False, True])
def test_everything_ideal_generates_the_digital_text(prompt, sample):
    digital = tiny_gpt2()
    ref = generate_with_clock(digital, prompt, Clock(None, HOUR), 24, sample=sample, seed=2)
    am = convert(tiny_gpt2(), analog_mapping("ideal")).program(0)
    clock = Clock(am, HOUR, DAY, "sine:300K:360K:1d")
    res = generate_with_clock(am, prompt, clock, 24, sample=sample, seed=2)
    assert res.tokens == ref.tokens
    assert res.logprobs == pytest.approx(ref.logprobs, abs=1e-4)
    dlp, _ = digital_scores(digital, res.ids, res.prompt_len)
    assert dlp == pytest.approx(res.logprobs, abs=1e-4)
    assert len(set(ref.tokens)) > 2  # not a degenerate constant text


def test_digital_scores_are_teacher_forced(prompt):
    model = tiny_gpt2()
    res = generate_with_clock(model, prompt, Clock(None, 1.0), 8)
    lp, ent = digital_scores(model, res.ids, res.prompt_len)
    # greedy on the same digital model: its own log-probabilities, token by token
    assert lp == pytest.approx(res.logprobs, abs=1e-5)
    assert ent == pytest.approx(res.entropies, abs=1e-5)
