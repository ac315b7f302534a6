"""Costs and notes of an attribution (``analogsim/studies/attribute_fixes.py``)."""

import math

import pytest
import torch

from analogsim.models import LoadedModel
from analogsim.studies.attribute_fixes import base_note, quality_cost
from tests.conftest import make_gpt2


@pytest.fixture
def tiny_lm() -> LoadedModel:
    ids = torch.randint(0, 100, (200,), generator=torch.Generator().manual_seed(0))
    return LoadedModel("tiny-lm", "causal-lm", make_gpt2(), None, {"heldout_ids": ids})


def test_quality_cost():
    assert quality_cost(20.0, 10.0, higher_is_better=False) == pytest.approx(1.0)
    assert quality_cost(10.0, 10.0, higher_is_better=False) == 0.0
    assert quality_cost(0.9, 0.95, higher_is_better=True) == pytest.approx(0.05)
    assert quality_cost(math.inf, 10.0, higher_is_better=False) == math.inf
    assert quality_cost(math.nan, 10.0, higher_is_better=False) == math.inf


def test_base_note_only_for_a_quantised_source(tiny_lm):
    assert base_note(tiny_lm) is None
    tiny_lm.info = {"quantised_before_dequantisation": "MOSTLY_Q4_1", "weights": "4-bit Q4_1"}
    assert base_note(tiny_lm) == "4-bit Q4_1"
