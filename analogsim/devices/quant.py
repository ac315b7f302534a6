"""Digital integer quantization of weights (k bits, per tensor or per output channel)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from analogsim.errors import ConfigError


@dataclass(frozen=True)
class Quantizer:
    """Symmetric uniform quantizer: ``q = clamp(round(w / s), -L, L) s``, ``L = 2^(bits-1) - 1``.

    ``s = max|w| / L`` over the whole tensor, or per output channel (dim 0 of the
    ``(out, in)`` matrix) with ``per_channel=True``. ``bits`` in 2..16.
    """

    bits: int = 8
    per_channel: bool = False

    def __post_init__(self) -> None:
        if (
            isinstance(self.bits, bool)
            or not isinstance(self.bits, int)
            or not 2 <= self.bits <= 16
        ):
            raise ConfigError(
                "quantizer bits must be an integer in 2..16", key="bits", value=self.bits
            )

    @property
    def levels(self) -> int:
        return 2 ** (self.bits - 1) - 1

    def scale(self, w: Tensor) -> Tensor:
        """Step size, a scalar tensor or ``(out, 1, ...)`` per channel."""
        if self.per_channel:
            amax = w.detach().abs().reshape(w.shape[0], -1).amax(dim=1)
            amax = amax.reshape(-1, *([1] * (w.dim() - 1)))
        else:
            amax = w.detach().abs().amax()
        return (amax / self.levels).clamp(min=torch.finfo(w.dtype).tiny)

    def __call__(self, w: Tensor) -> Tensor:
        s = self.scale(w)
        return torch.round(w / s).clamp_(-self.levels, self.levels).mul_(s)


def quantize_weight(w: Tensor, bits: int, per_channel: bool = False) -> Tensor:
    """Quantize ``w`` (out of place); see :class:`Quantizer`."""
    return Quantizer(bits, per_channel)(w)
