"""Converting a torch model: wrap its weight layers in place and hold the device state.

>>> import torch, analogsim
>>> net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
>>> am = analogsim.convert(net, "all_analog").program(seed=0)
>>> digital = am.restore()                               # original weights, bit for bit

The converted model and its time are :class:`~analogsim.mapping.analog_model.AnalogModel`.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from analogsim.devices.quant import Quantizer
from analogsim.mapping.analog_model import AnalogModel
from analogsim.mapping.rules import Mapping, load_mapping, resolve_plan
from analogsim.tiles.embedding import AnalogEmbedding
from analogsim.tiles.kinds import forward_with, set_submodule, weight_matrix
from analogsim.tiles.layer import AnalogLayer


class DigitalQuantized(nn.Module):
    """A digital layer whose weights are integer-quantized (the original kept for restore)."""

    def __init__(self, module: nn.Module, quantizer: Quantizer, name: str = "") -> None:
        super().__init__()
        self.digital = module
        self.quantizer = quantizer
        self.name = name
        with torch.no_grad():
            q = quantizer(weight_matrix(module).detach())  # (out, in)
        self.register_buffer("w_q", q.contiguous(), persistent=False)

    @property
    def weight(self) -> Tensor:
        """The original weight, for Hugging Face code that reads it (T5's feed-forward
        checks ``self.wo.weight.dtype``); the forward uses the quantized copy."""
        return self.digital.weight

    def forward(self, x: Tensor) -> Tensor:
        return forward_with(self.digital, x, self.w_q)

    def extra_repr(self) -> str:
        return f"int{self.quantizer.bits}, per_channel={self.quantizer.per_channel}"


def convert(
    model: nn.Module,
    mapping: str | Mapping = "all_analog",
    *,
    device: str | None = None,
    inplace: bool = False,
    seed: int | None = None,
    strict: bool = True,
) -> AnalogModel:
    """Convert a torch / Hugging Face model for analog simulation.

    Args:
        model: the digital model (left untouched unless ``inplace``).
        mapping: a shipped mapping name, a path to a mapping TOML, or a :class:`Mapping`.
        device: device card for every analog placement (overrides the mapping's).
        inplace: wrap the layers of ``model`` itself instead of a deep copy.
        seed: if given, program the device state right away.
        strict: a rule that matches no layer is an error (else ignored).
    Returns:
        An :class:`AnalogModel`. Call :meth:`AnalogModel.program` before running it.
    """
    m = load_mapping(mapping).with_device(device)
    target = model if inplace else copy.deepcopy(model)
    plan = resolve_plan(target, m, strict=strict)
    for lp in plan.layers:
        mod = target.get_submodule(lp.name)
        if lp.placement == "analog":
            if isinstance(mod, nn.Embedding):
                new: nn.Module = AnalogEmbedding(mod, lp.device, lp.name)
            else:
                new = AnalogLayer(mod, lp.device, lp.tile, lp.name)
        elif lp.quantizer is not None:
            new = DigitalQuantized(mod, lp.quantizer, lp.name)
        else:
            continue
        set_submodule(target, lp.name, new)
    am = AnalogModel(target, plan)
    if seed is not None:
        am.program(seed)
    return am
