r"""The three transformer-specific mechanisms of the design: attention-guided plasticity
(AGP), temporal surprise minimisation (TSM) and contextual homeostasis (CH).

* **AGP**: forward hooks on the model's attention modules read the attention weights
  ``(1, H, L_q, L_k)`` they return (the model runs with eager attention while AGP is on;
  SDPA returns none). The *focus* of the current query is ``1 - H(a)/ln L_k`` (``a`` the
  last query row averaged over heads, ``H`` its entropy; 1 for ``L_k = 1``), averaged
  over layers; the gain is ``1 - strength + strength * focus``: sharp attention, more
  plasticity.
* **TSM**: the surprise of a step is ``-ln p(token)`` of the input token under the
  previous step's output distribution (generation), or the entropy of the output
  distribution (classifiers, and the first step); a running mean ``mu`` and variance
  ``var`` (EMA, ``momentum``) give ``z = (s - mu)/sqrt(var)``; the gain is 1 when
  ``z > threshold`` and ``floor`` otherwise (statistics before this step; gain 1 at the
  first step).
* **CH**: for the first ``burn_in`` updates each adapter records the mean ``E[h^2]`` of
  its code per unit (the context's target activity); afterwards an EMA of ``h^2`` is
  compared with it and the columns of ``A`` are pulled toward the target:
  ``dA_j = rate (sqrt(target_j / ema_j) - 1) A_j``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

__all__ = ["SurpriseGate", "attention_focus", "homeostasis_direction"]


def attention_focus(weights: Tensor) -> float:
    """Focus of the last query row of attention weights ``(B, H, L_q, L_k)`` (see module)."""
    a = weights[..., -1, :].double().mean(dim=tuple(range(weights.dim() - 2)))  # (L_k,)
    lk = a.shape[-1]
    if lk <= 1:
        return 1.0
    a = a / a.sum().clamp(min=1e-30)
    ent = float(torch.special.entr(a).sum())
    return max(0.0, min(1.0, 1.0 - ent / math.log(lk)))


class SurpriseGate:
    """TSM's running statistics and gate (module docstring)."""

    def __init__(self, momentum: float = 0.05, threshold: float = 0.0, floor: float = 0.1) -> None:
        self.momentum = float(momentum)
        self.threshold = float(threshold)
        self.floor = float(floor)
        self.mean: float | None = None
        self.var = 0.0
        self.last: float = math.nan

    def gain(self, surprise: float) -> float:
        """The gate for this step's ``surprise`` (nats); then update the statistics."""
        self.last = surprise
        if not math.isfinite(surprise):
            return self.floor
        if self.mean is None:
            self.mean, self.var = surprise, 0.0
            return 1.0
        sd = math.sqrt(self.var)
        z = (surprise - self.mean) / sd if sd > 0 else 0.0
        g = 1.0 if z > self.threshold else self.floor
        m = self.momentum
        delta = surprise - self.mean
        self.mean += m * delta
        self.var = (1.0 - m) * (self.var + m * delta * delta)
        return g

    def state(self) -> dict[str, Any]:
        return {"mean": self.mean, "var": self.var}


def homeostasis_direction(a: Tensor, target: Tensor, ema: Tensor, rate: float) -> Tensor:
    """``rate (sqrt(target/ema) - 1) A`` per column ``(d_in, r)``; columns with no activity
    (``ema = 0``) are left alone."""
    ratio = torch.where(ema > 0, (target / ema.clamp(min=1e-30)).sqrt() - 1.0, 0.0)  # (r,)
    return rate * a * ratio
