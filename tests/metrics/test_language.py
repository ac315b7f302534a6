"""Perplexity, next-token entropy and text generation against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from analogsim.errors import ConfigError
from analogsim.metrics import (
    generate_samples,
    next_token_entropy_bits,
    perplexity,
    perplexity_windows,
    seq2seq_perplexity,
    seq2seq_windows,
)
from tests.metrics.conftest import VOCAB, ConstantLogits, make_gpt2
from tests.models.conftest import save_tiny_seq2seq


def _nll(model: torch.nn.Module, window: torch.Tensor) -> torch.Tensor:
    """Per-target NLL of one window, by hand: (T,) -> (T-1,)."""
    with torch.no_grad():
        logits = model(window[None]).logits[0]  # (T, V)
    return F.cross_entropy(logits[:-1].double(), window[1:], reduction="none")


def test_single_window_equals_exp_mean_nll(gpt2, ids):
    seq = ids[:30]  # fits the 32-token context in one window
    expected = math.exp(float(_nll(gpt2, seq).mean()))
    got = perplexity(gpt2, seq, max_length=32, stride=16)
    assert got == pytest.approx(expected, rel=1e-6)
    assert 1.0 < got < 10 * VOCAB


def test_windows_by_hand():
    assert perplexity_windows(10, 4, 2) == [(0, 4, 1), (2, 6, 4), (4, 8, 6), (6, 10, 8)]
    assert perplexity_windows(10, 4, 4) == [(0, 4, 1), (4, 8, 5), (8, 10, 9)]
    assert perplexity_windows(3, 8, 4) == [(0, 3, 1)]


@pytest.mark.parametrize("n,length,stride", [(40, 32, 8), (40, 32, 31), (97, 16, 5), (5, 4, 1)])
def test_overlapping_windows_score_every_token_but_the_first_once(n, length, stride):
    windows = perplexity_windows(n, length, stride)
    targets = [t for _, e, first in windows for t in range(first, e)]
    assert targets == list(range(1, n))
    assert all(e - b <= length for b, e, _ in windows)


def test_disjoint_windows_skip_each_window_start():
    windows = perplexity_windows(40, 10, 10)
    assert sum(e - first for _, e, first in windows) == 40 - len(windows)


def test_sliding_window_matches_manual_loop_and_is_batch_invariant(gpt2, ids):
    length, stride = 32, 12
    total = torch.zeros((), dtype=torch.float64)
    count = 0
    prev_end = 0
    for begin in range(0, ids.numel(), stride):  # the HF guide's loop, written out
        end = min(begin + length, ids.numel())
        nll = _nll(gpt2, ids[begin:end])  # targets begin+1 .. end-1
        keep = nll[max(prev_end, begin + 1) - begin - 1 :]
        total += keep.sum()
        count += keep.numel()
        prev_end = end
        if end == ids.numel():
            break
    assert count == ids.numel() - 1
    expected = math.exp(float(total) / count)
    for batch_size in (1, 2, 8):
        got = perplexity(gpt2, ids, max_length=length, stride=stride, batch_size=batch_size)
        assert got == pytest.approx(expected, rel=1e-6)


def test_default_window_is_model_context(gpt2, ids):
    assert perplexity(gpt2, ids) == pytest.approx(
        perplexity(gpt2, ids, max_length=32, stride=16), rel=1e-9
    )


def test_context_free_model_gives_closed_form():
    logits = torch.linspace(-2.0, 3.0, 7)  # (V,)
    model = ConstantLogits(logits)
    seq = torch.tensor([0, 1, 2, 3, 4, 5, 6, 0, 3])
    logp = torch.log_softmax(logits.double(), -1)
    expected = math.exp(-float(logp[seq[1:]].mean()))
    assert perplexity(model, seq, max_length=4, stride=3) == pytest.approx(expected, rel=1e-6)


def test_uniform_model_has_perplexity_vocab_size():
    model = ConstantLogits(torch.zeros(50))
    seq = torch.arange(20) % 50
    assert perplexity(model, seq, max_length=8, stride=4) == pytest.approx(50.0, rel=1e-6)


@pytest.mark.parametrize("scale", [1e15, 1e30, 1e300])
def test_overflowing_logits_give_inf_not_an_exception(ids, scale):
    model = make_gpt2()
    with torch.no_grad():
        model.lm_head.weight.mul_(scale)  # float32 logits: huge, or inf past ~3e38
    assert perplexity(model, ids, max_length=32, stride=16) == float("inf")


def test_nan_logits_give_inf(ids):
    model = ConstantLogits(torch.full((VOCAB,), float("nan")))
    assert perplexity(model, ids, max_length=16, stride=8) == float("inf")


def test_perplexity_restores_training_mode(ids):
    model = make_gpt2().train()
    perplexity(model, ids, max_length=32, stride=16)
    assert model.training


@pytest.mark.parametrize(
    "kwargs,key",
    [
        ({"input_ids": torch.zeros(2, 5, dtype=torch.long)}, "input_ids"),
        ({"input_ids": torch.zeros(1, dtype=torch.long)}, "input_ids"),
        ({"stride": 0}, "stride"),
        ({"stride": 40}, "stride"),
        ({"max_length": 1}, "max_length"),
        ({"max_length": 33}, "max_length"),  # longer than the 32-token context
    ],
)
def test_bad_perplexity_arguments(gpt2, ids, kwargs, key):
    args = {"input_ids": ids, "max_length": 32, "stride": 16, **kwargs}
    with pytest.raises(ConfigError, match=key):
        perplexity(gpt2, args.pop("input_ids"), **args)


def test_entropy_of_uniform_logits_is_log2_vocab():
    model = ConstantLogits(torch.zeros(VOCAB))
    got = next_token_entropy_bits(model, None, [[1, 2, 3], [4]], steps=10)
    assert got == pytest.approx(math.log2(VOCAB), abs=1e-9)


def test_entropy_of_uniform_hf_model_is_log2_vocab(tokenizer):
    model = make_gpt2()
    with torch.no_grad():
        model.lm_head.weight.zero_()  # tied to the embedding: all logits are 0
    got = next_token_entropy_bits(model, tokenizer, ["The cat", "A dog"], steps=3)
    assert got == pytest.approx(math.log2(VOCAB), abs=1e-9)


def test_entropy_of_a_certain_model_is_zero():
    logits = torch.full((VOCAB,), -1e4)
    logits[7] = 0.0
    assert next_token_entropy_bits(ConstantLogits(logits), None, [[1]], steps=4) == pytest.approx(
        0.0, abs=1e-12
    )


def test_entropy_one_step_by_hand(gpt2, tokenizer):
    prompt = "The quick brown fox"
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        p = torch.softmax(gpt2(ids).logits[0, -1].double(), -1)
    expected = float(-(p * torch.log2(p)).sum())
    assert next_token_entropy_bits(gpt2, tokenizer, [prompt], steps=1) == pytest.approx(
        expected, rel=1e-9
    )


class _NoCache(torch.nn.Module):
    """Hides the HF config so the metric recomputes the full sequence every step."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.inner(input_ids=input_ids, use_cache=False).logits


def test_entropy_with_kv_cache_equals_full_recompute(gpt2):
    prompts = [[5, 9, 2], [17], list(range(1, 30))]  # the last one is cut to fit the context
    cached = next_token_entropy_bits(gpt2, None, prompts, steps=10)
    full = next_token_entropy_bits(_NoCache(gpt2), None, [p[-22:] for p in prompts], steps=10)
    assert cached == pytest.approx(full, rel=1e-5)
    assert 0.0 < cached <= math.log2(VOCAB)


def test_entropy_bad_arguments(gpt2):
    with pytest.raises(ConfigError, match="steps"):
        next_token_entropy_bits(gpt2, None, [[1]], steps=0)
    with pytest.raises(ConfigError, match="tokenizer"):
        next_token_entropy_bits(gpt2, None, ["text needs a tokenizer"])


def _greedy_by_hand(model: torch.nn.Module, ids: torch.Tensor, n: int) -> torch.Tensor:
    for _ in range(n):
        with torch.no_grad():
            nxt = model(ids).logits[0, -1].argmax()
        ids = torch.cat([ids, nxt.view(1, 1)], dim=1)
    return ids


def test_greedy_generation_matches_argmax_loop(gpt2, tokenizer):
    prompt = "The cat"
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    expected_ids = _greedy_by_hand(gpt2, ids, 8)[0, ids.shape[1] :]
    # stop at EOS like generate does
    stop = (expected_ids == tokenizer.eos_token_id).nonzero()
    if stop.numel():
        expected_ids = expected_ids[: int(stop[0]) + 1]
    expected = tokenizer.decode(expected_ids, skip_special_tokens=True)
    assert generate_samples(gpt2, tokenizer, [prompt], max_new_tokens=8) == [expected]


def test_sampling_is_seeded_and_leaves_global_rng_alone(gpt2, tokenizer):
    prompts = ["The cat", "Python is"]
    state = torch.get_rng_state()
    a = generate_samples(gpt2, tokenizer, prompts, max_new_tokens=12, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    b = generate_samples(gpt2, tokenizer, prompts, max_new_tokens=12, seed=3)
    c = generate_samples(gpt2, tokenizer, prompts, max_new_tokens=12, seed=4)
    assert a == b
    assert a != c
    assert len(a) == 2 and all(isinstance(t, str) for t in a)


# ---------------------------------------------------------------------------- seq2seq
@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory):
    return save_tiny_seq2seq("t5", tmp_path_factory.mktemp("t5"))


def test_seq2seq_windows_score_every_token_after_the_first_window_once():
    pairs = seq2seq_windows(10, 4)
    assert pairs == [(0, 4, 8), (4, 8, 10)]
    for n, w in [(5, 4), (17, 4), (300, 128), (129, 128)]:
        targets = [i for _, b, e in seq2seq_windows(n, w) for i in range(b, e)]
        assert targets == list(range(w, n))


def test_seq2seq_perplexity_is_the_teacher_forced_loss(tiny_t5):
    ids = torch.arange(1, 41) % 300  # (40,)
    ppl = seq2seq_perplexity(tiny_t5, ids, window=16, batch_size=1)
    # the same by hand with the model's own label shifting (labels -> decoder inputs)
    nll, n = 0.0, 0
    with torch.no_grad():
        for s, b, e in seq2seq_windows(40, 16):
            out = tiny_t5(input_ids=ids[None, s:b], labels=ids[None, b:e])
            nll += float(out.loss) * (e - b)
            n += e - b
    assert ppl == pytest.approx(math.exp(nll / n), rel=1e-5)
    assert seq2seq_perplexity(tiny_t5, ids, window=16, batch_size=8) == pytest.approx(ppl)


def test_seq2seq_perplexity_errors_name_the_argument(tiny_t5):
    with pytest.raises(ConfigError, match="window"):
        seq2seq_perplexity(tiny_t5, torch.arange(10), window=16)
    with pytest.raises(ConfigError, match="decoder_start_token_id"):
        seq2seq_perplexity(make_gpt2(), torch.arange(40), window=16)
