"""What a weight layer is: its kind, the matrix an MVM sees, and its forward on another matrix.

A *weight layer* is a module analogsim can wrap:

==============  ==========================================  ===========================
kind            module                                      ``(out, in)`` matrix
==============  ==========================================  ===========================
``linear``      ``nn.Linear`` (and subclasses)              ``weight``
``conv1d``      GPT-2's ``transformers.pytorch_utils.Conv1D``  ``weight.t()`` (stored (in, out))
``conv2d``      ``nn.Conv2d``                               ``weight`` as ``(C_out, C_in/groups*kh*kw)``
``embedding``   ``nn.Embedding`` (and subclasses)           ``weight`` ``(num_embeddings, dim)``
==============  ==========================================  ===========================

Every kind but ``embedding`` is an MVM a crossbar computes (:data:`MVM_KINDS`); an embedding
is a table lookup. Other convolutions (``nn.Conv1d``, ``nn.Conv3d``, transposed convs) are not
weight layers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

try:  # transformers is a core dependency; keep the tiles usable on plain torch anyway
    from transformers.pytorch_utils import Conv1D as _HFConv1D
except Exception:  # pragma: no cover - exercised only without transformers
    _HFConv1D = None

KINDS: tuple[str, ...] = ("linear", "conv1d", "conv2d", "embedding")
"""Every module kind :func:`module_kind` returns (``conv1d`` is transformers' ``Conv1D``)."""

MVM_KINDS: tuple[str, ...] = ("linear", "conv1d", "conv2d")
"""The kinds a crossbar computes as an MVM (an embedding is a lookup)."""


def module_kind(module: nn.Module) -> str | None:
    """The kind of ``module`` (one of :data:`KINDS`), or None if it is not a weight layer."""
    if _HFConv1D is not None and isinstance(module, _HFConv1D):
        return "conv1d"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.Conv2d):
        return "conv2d"
    if isinstance(module, nn.Embedding):
        return "embedding"
    return None


def weight_matrix(module: nn.Module) -> Tensor:
    """The ``(out, in)`` matrix an MVM sees (a view where possible; module docstring)."""
    kind = module_kind(module)
    w = module.weight
    if kind in ("linear", "embedding"):
        return w
    if kind == "conv1d":
        return w.t()  # Conv1D stores (in, out)
    if kind == "conv2d":
        return w.reshape(w.shape[0], -1)
    raise TypeError(f"{type(module).__name__} is not a weight layer")


def forward_with(module: nn.Module, x: Tensor, w_mat: Tensor) -> Tensor:
    """The forward of weight layer ``module`` with its ``(out, in)`` matrix replaced by ``w_mat``.

    Bias, stride, dilation, groups and the padding mode of a ``Conv2d`` (padded explicitly
    for 'reflect' / 'replicate' / 'circular', then convolved without padding, as
    ``nn.Conv2d`` does) and the lookup options of an ``Embedding`` are the module's.
    """
    kind = module_kind(module)
    if kind in ("linear", "conv1d"):
        return F.linear(x, w_mat, module.bias)  # (..., out)
    if kind == "conv2d":
        padding = module.padding
        if module.padding_mode != "zeros":
            x = F.pad(x, module._reversed_padding_repeated_twice, mode=module.padding_mode)
            padding = 0
        return F.conv2d(
            x,
            w_mat.view_as(module.weight),
            module.bias,
            module.stride,
            padding,
            module.dilation,
            module.groups,
        )  # (B, C_out, H_out, W_out)
    if kind == "embedding":
        return F.embedding(
            x,
            w_mat,
            module.padding_idx,
            module.max_norm,
            module.norm_type,
            module.scale_grad_by_freq,
            module.sparse,
        )  # (..., dim)
    raise TypeError(f"{type(module).__name__} is not a weight layer")


def conv2d_columns(conv: nn.Conv2d, x: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """A Conv2d input as an MVM: ``(cols, unflatten)``.

    ``cols`` is ``(B*L, C*kh*kw)`` (im2col, padded as ``nn.Conv2d`` pads: 'same' may be
    asymmetric for even kernels, and 'reflect' / 'replicate' / 'circular' are not zeros);
    ``unflatten`` turns the ``(B*L, N)`` outputs into ``(B, N, H_out, W_out)``.
    """
    pad = conv.padding
    if conv.padding_mode != "zeros" or isinstance(pad, str):
        mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
        x = F.pad(x, conv._reversed_padding_repeated_twice, mode=mode)
        pad = (0, 0)
    b, _, h, w_in = x.shape
    kh, kw = conv.kernel_size
    h_out = (h + 2 * pad[0] - conv.dilation[0] * (kh - 1) - 1) // conv.stride[0] + 1
    w_out = (w_in + 2 * pad[1] - conv.dilation[1] * (kw - 1) - 1) // conv.stride[1] + 1
    cols = F.unfold(x, (kh, kw), dilation=conv.dilation, padding=pad, stride=conv.stride)
    cols = cols.transpose(1, 2).reshape(-1, cols.shape[1])  # (B*L, C*kh*kw)

    def unflatten(y: Tensor) -> Tensor:
        n = y.shape[1]
        return y.view(b, h_out * w_out, n).transpose(1, 2).reshape(b, n, h_out, w_out)

    return cols, unflatten


def set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    """Replace the module at dotted path ``name`` under ``root`` by ``new``."""
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


__all__ = [
    "KINDS",
    "MVM_KINDS",
    "conv2d_columns",
    "forward_with",
    "module_kind",
    "set_submodule",
    "weight_matrix",
]
