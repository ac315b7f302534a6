"""Tests for analogsim.models.quality: the default quality metric of each model kind."""

from __future__ import annotations

import math

import pytest
import torch

from analogsim.models import LoadedModel
from analogsim.models.digits import load_digits_mlp
from analogsim.models.quality import quality_metric
from tests.metrics.conftest import ConstantLogits


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """digits-mlp trained once per module into a temporary cache (a few seconds).

    One torch thread while training (module fixtures run before the suite's autouse
    one-thread fixture; two spinning threads make this small training many times slower).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return load_digits_mlp(tmp_path_factory.getbasetemp() / "analogsim-cache", progress=False)
    finally:
        torch.set_num_threads(before)


def test_quality_metric_classifier_is_accuracy(digits):
    q = quality_metric(digits)
    assert (q.name, q.higher_is_better) == ("accuracy", True)
    x, y = digits.data.x_test, digits.data.y_test
    with torch.no_grad():
        expected = (digits.model(x).argmax(dim=1) == y).double().mean().item()
    assert q.score(digits.model) == pytest.approx(expected, abs=1e-12)


def test_quality_metric_perplexity_of_uniform_model_is_vocab_size():
    vocab = 37
    ids = torch.arange(200) % vocab
    lm = LoadedModel(
        "const", "causal-lm", ConstantLogits(torch.zeros(vocab)), None, {"heldout_ids": ids}
    )
    q = quality_metric(lm)
    assert (q.name, q.higher_is_better) == ("perplexity", False)
    assert q.score(lm.model) == pytest.approx(vocab, rel=1e-6)  # float32 logits


def test_quality_metric_perplexity_closed_form_and_max_tokens():
    """Constant logits: PPL = exp(-mean log softmax(row)[x_i]) over tokens 1..N-1."""
    row = torch.tensor([2.0, 0.0, -1.0, 0.5])
    ids = torch.tensor([0, 1, 2, 3, 0, 0, 1, 3] * 10)
    lm = LoadedModel("const", "causal-lm", ConstantLogits(row), None, {"heldout_ids": ids})
    logp = torch.log_softmax(row.double(), 0)

    def ppl(n: int) -> float:
        return math.exp(-float(logp[ids[1:n]].mean()))

    assert quality_metric(lm).score(lm.model) == pytest.approx(ppl(len(ids)), rel=1e-6)
    assert quality_metric(lm, max_tokens=8).score(lm.model) == pytest.approx(ppl(8), rel=1e-6)


def test_quality_metric_unknown_kind():
    lm = LoadedModel("x", "regressor", torch.nn.Linear(2, 2), None, None)
    with pytest.raises(ValueError, match="unknown model kind"):
        quality_metric(lm)
