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
import torch.nn.functional as F
from torch import Tensor, nn

from analogsim.devices.quant import Quantizer
from analogsim.mapping.analog_model import AnalogModel, set_submodule
from analogsim.mapping.rules import Mapping, load_mapping, resolve_plan
from analogsim.tiles.embedding import AnalogEmbedding
from analogsim.tiles.layer import AnalogLayer, weight_matrix


class DigitalQuantized(nn.Module):
    """A digital layer whose weights are integer-quantized (the original kept for restore)."""

    def __init__(self, module: nn.Module, quantizer: Quantizer, name: str = "") -> None:
        super().__init__()
        self.digital = module
        self.quantizer = quantizer
        self.name = name
        with torch.no_grad():
            if isinstance(module, nn.Embedding):
                q = quantizer(module.weight.detach())
            else:
                q = quantizer(weight_matrix(module).detach())
        self.register_buffer("w_q", q.contiguous(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        m = self.digital
        if isinstance(m, nn.Embedding):
            return F.embedding(
                x, self.w_q, m.padding_idx, m.max_norm, m.norm_type, m.scale_grad_by_freq, m.sparse
            )
        if isinstance(m, nn.Conv2d):
            padding = m.padding
            if m.padding_mode != "zeros":  # as nn.Conv2d: pad explicitly, then no padding
                x = F.pad(x, m._reversed_padding_repeated_twice, mode=m.padding_mode)
                padding = 0
            return F.conv2d(
                x, self.w_q.view_as(m.weight), m.bias, m.stride, padding, m.dilation, m.groups
            )
        return F.linear(x, self.w_q, m.bias)

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
