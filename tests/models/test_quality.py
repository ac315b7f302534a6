"""Tests for analogsim.models.quality: the default quality metric of each model kind."""

from __future__ import annotations

import math

import pytest
import torch

from analogsim.errors import ConfigError
from analogsim.models import LoadedModel
from analogsim.models.digits import load_digits_mlp
from analogsim.models.quality import evaluation_text, quality_metric
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


# ---------------------------------------------------------------------------- --text
class CharTokenizer:
    """Token id = position of the character in ``abcd`` (a tokenizer's call signature)."""

    def __call__(self, text: str, return_tensors: str = "pt") -> dict[str, torch.Tensor]:
        return {"input_ids": torch.tensor([["abcd".index(c) for c in text if c in "abcd"]])}


def _const_lm(row: torch.Tensor) -> LoadedModel:
    ids = torch.tensor([0, 1, 2, 3] * 20)  # the built-in held-out text of this model
    return LoadedModel(
        "const", "causal-lm", ConstantLogits(row), CharTokenizer(), {"heldout_ids": ids}
    )


def test_quality_metric_scores_the_given_text_file_and_string(tmp_path):
    """Constant logits: the perplexity of a text of one repeated token is exp(-log p)."""
    row = torch.tensor([2.0, 0.0, -1.0, 0.5])
    lm = _const_lm(row)
    logp = torch.log_softmax(row.double(), 0)
    f = tmp_path / "eval.txt"
    f.write_text("a" * 50)
    for text in (f, str(f), "a" * 50):
        q = quality_metric(lm, text=text)
        assert q.score(lm.model) == pytest.approx(math.exp(-float(logp[0])), rel=1e-6)
    # the built-in text is another one: another perplexity
    assert quality_metric(lm).score(lm.model) != pytest.approx(math.exp(-float(logp[0])))
    # the first max_tokens tokens of the text only: "aaaa" then "d..."
    f.write_text("aaaa" + "d" * 40)
    q = quality_metric(lm, text=f, max_tokens=4)
    assert q.score(lm.model) == pytest.approx(math.exp(-float(logp[0])), rel=1e-6)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "no such file"),
        (b"", "the file is empty"),
        (b"  \n\t ", "the file is empty"),
        (b"ab\x00cd", "binary"),
        (b"\xff\xfe\xfa", "not UTF-8"),
    ],
)
def test_evaluation_text_refuses_bad_files(tmp_path, content, match):
    f = tmp_path / "eval.txt"
    if content is not None:
        f.write_bytes(content)
    for text in (f, str(f)):
        with pytest.raises(ConfigError, match=match) as err:
            evaluation_text(text)
        assert err.value.key == "--text" and str(f) in str(err.value)


def test_evaluation_text_of_a_string():
    assert evaluation_text("some words / to score") == "some words / to score"
    with pytest.raises(ConfigError, match="empty"):
        evaluation_text("   ")
    with pytest.raises(ConfigError, match="no such file"):
        evaluation_text("missing/corpus.txt")


def test_quality_metric_text_needs_a_language_model_and_two_tokens(digits):
    with pytest.raises(ConfigError, match="--text applies to language models"):
        quality_metric(digits, text="abcd")
    lm = _const_lm(torch.zeros(4))
    with pytest.raises(ConfigError, match="shorter than 2 tokens"):
        quality_metric(lm, text="a xyz")
    with pytest.raises(ConfigError, match="at least 2 tokens"):
        quality_metric(lm, max_tokens=1)
