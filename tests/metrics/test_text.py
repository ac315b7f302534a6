"""distinct-n and repetition rate on hand examples and invariants."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from analogsim.errors import ConfigError
from analogsim.metrics import distinct_n, repetition_rate


def test_distinct_n_by_hand():
    assert distinct_n(["the cat the cat"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["the cat the cat"], 2) == pytest.approx(2 / 3)  # (the cat) twice
    assert distinct_n(["a b c d"], 2) == 1.0
    assert distinct_n("a a a a", 1) == pytest.approx(1 / 4)


def test_distinct_n_pools_texts_without_crossing_them():
    # bigrams: (a b) from the first, (b a) from the second; none spans "b" + "b"
    assert distinct_n(["a b", "b a"], 2) == 1.0
    assert distinct_n(["a b", "a b"], 2) == pytest.approx(1 / 2)


def test_distinct_n_is_case_sensitive_and_handles_short_texts():
    assert distinct_n(["The the"], 1) == 1.0
    assert distinct_n(["one"], 2) == 0.0
    assert distinct_n([], 1) == 0.0


def test_repetition_rate_by_hand():
    # bigrams ab ba ab ba ab: the 3rd, 4th, 5th repeat an earlier one
    assert repetition_rate("a b a b a b", n=2) == pytest.approx(3 / 5)
    assert repetition_rate([1, 2, 1, 2], n=1) == pytest.approx(2 / 4)
    assert repetition_rate(torch.tensor([[1, 1, 1], [2, 3, 4]]), n=1) == pytest.approx(2 / 6)
    assert repetition_rate(["x y z", "x y z"], n=1) == 0.0  # only within a sequence
    assert repetition_rate([[5, 6], torch.tensor([7, 7])], n=1) == pytest.approx(1 / 4)
    assert repetition_rate("too short", n=4) == 0.0


@pytest.mark.parametrize("n", [0, -1, 1.5])
def test_bad_n(n):
    with pytest.raises(ConfigError, match="'n'"):
        distinct_n(["a b"], n)
    with pytest.raises(ConfigError, match="'n'"):
        repetition_rate(["a b"], n)


@given(words=st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=30), n=st.integers(1, 4))
def test_for_one_text_repetition_is_one_minus_distinct(words, n):
    text = " ".join(words)
    if len(words) < n:
        assert repetition_rate(text, n) == 0.0 == distinct_n(text, n)
    else:
        assert repetition_rate(text, n) == pytest.approx(1.0 - distinct_n(text, n))
        assert 0.0 < distinct_n(text, n) <= 1.0
