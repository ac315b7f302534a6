"""Classification accuracy."""

from __future__ import annotations

import pytest
import torch

from analogsim.errors import ConfigError
from analogsim.metrics import accuracy


class _Pick(torch.nn.Module):
    """Logits = the input itself, so the predicted class is the arg-max feature."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_accuracy_by_hand_and_batch_invariant():
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 5.0], [3.0, 4.0, 0.0]])
    y = torch.tensor([0, 1, 1, 0])  # rows 0 and 1 right, 2 and 3 wrong
    for batch_size in (1, 3, 1024):
        assert accuracy(_Pick(), x, y, batch_size=batch_size) == 0.5


def test_accuracy_restores_mode_and_rejects_bad_input():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2)).train()
    x = torch.zeros(4, 3)
    accuracy(model, x, torch.zeros(4, dtype=torch.long))
    assert model.training
    with pytest.raises(ConfigError, match="differ in length"):
        accuracy(model, x, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ConfigError, match="no samples"):
        accuracy(model, x[:0], torch.zeros(0, dtype=torch.long))
