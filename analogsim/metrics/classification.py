"""Classification accuracy."""

from __future__ import annotations

import torch

from analogsim.errors import ConfigError
from analogsim.metrics._util import eval_mode, logits_of, model_device


def accuracy(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1024
) -> float:
    """Fraction of samples whose arg-max class equals the label.

    ``accuracy = (1/N) * sum_i [argmax_c f(x_i)_c == y_i]``, in [0, 1]. A sample whose
    logits are all NaN counts as wrong unless its arg-max happens to match (torch's
    arg-max of NaNs is the first NaN's index), so a broken model scores near chance,
    not an exception.

    Args:
        model: maps (B, ...) inputs to (B, C) logits (or an object with ``.logits``).
        x: inputs, first dimension N.
        y: int labels of shape (N,).
        batch_size: samples per forward pass.
    """
    if x.shape[0] != y.shape[0]:
        raise ConfigError(
            "inputs and labels differ in length",
            key="y",
            value=(x.shape[0], y.shape[0]),
            allowed="x.shape[0] == y.shape[0]",
        )
    if x.shape[0] == 0:
        raise ConfigError("no samples", key="x", allowed="at least one sample")
    if batch_size < 1:
        raise ConfigError(
            "batch size too small", key="batch_size", value=batch_size, allowed=">= 1"
        )
    device = model_device(model)
    correct = 0
    with eval_mode(model):
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size].to(device)  # (B, ...)
            yb = y[start : start + batch_size].to(device)  # (B,)
            pred = logits_of(model(xb)).argmax(dim=-1)  # (B,)
            correct += int((pred == yb).sum())
    return correct / x.shape[0]
