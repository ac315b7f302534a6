"""Which layers get a plastic adapter: roles, sub-roles and module names.

A target is one of

* a role of :data:`analogsim.mapping.roles.ROLES` (``"mlp"``: every MLP layer);
* a sub-role ``attention.q|k|v|o|qkv`` or ``mlp.up|gate|down``, found by the layer's
  leaf name among the layers of that role (table below);
* otherwise a regular expression, full-matched against qualified module names.

==============  ==============================================================
sub-role        leaf names (GPT-2 / LLaMA-like / BERT / OPT, ...)
==============  ==============================================================
attention.q     q_proj, query, q_lin (GPT-2: the first third of ``c_attn``)
attention.k     k_proj, key, k_lin (GPT-2: the second third of ``c_attn``)
attention.v     v_proj, value, v_lin (GPT-2: the last third of ``c_attn``)
attention.o     o_proj, out_proj, c_proj, dense, out_lin
attention.qkv   c_attn, qkv_proj, query_key_value, Wqkv
mlp.up          up_proj, c_fc, fc1, lin1, dense_h_to_4h, ``intermediate.dense``
mlp.gate        gate_proj
mlp.down        down_proj, c_proj, fc2, lin2, dense_4h_to_h, ``output.dense``
==============  ==============================================================

GPT-2's fused ``c_attn`` (a ``Conv1D`` with ``3 d`` outputs) gives ``attention.q|k|v`` an
*output slice*: the adapter adds to those ``d`` outputs only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from analogsim.errors import ConfigError
from analogsim.mapping.roles import ROLES, model_roles

__all__ = ["SUBROLES", "Target", "resolve_targets"]

SUBROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "attention.q": ("attention", ("q_proj", "query", "q_lin")),
    "attention.k": ("attention", ("k_proj", "key", "k_lin")),
    "attention.v": ("attention", ("v_proj", "value", "v_lin")),
    "attention.o": ("attention", ("o_proj", "out_proj", "c_proj", "dense", "out_lin")),
    "attention.qkv": ("attention", ("c_attn", "qkv_proj", "query_key_value", "Wqkv")),
    "mlp.up": ("mlp", ("up_proj", "c_fc", "fc1", "lin1", "dense_h_to_4h", "intermediate.dense")),
    "mlp.gate": ("mlp", ("gate_proj",)),
    "mlp.down": ("mlp", ("down_proj", "c_proj", "fc2", "lin2", "dense_4h_to_h", "output.dense")),
}
_FUSED_PART = {"attention.q": 0, "attention.k": 1, "attention.v": 2}


@dataclass(frozen=True)
class Target:
    """One adapted layer: its module name, shape, the target that chose it, and the output
    slice ``(start, stop)`` the adapter adds to (None: all outputs)."""

    name: str
    in_features: int
    out_features: int
    chosen_by: str
    out_slice: tuple[int, int] | None = None

    @property
    def d_out(self) -> int:
        if self.out_slice is None:
            return self.out_features
        return self.out_slice[1] - self.out_slice[0]


def _leaf_match(name: str, leaves: Sequence[str]) -> bool:
    return any(name == leaf or name.endswith("." + leaf) for leaf in leaves)


def resolve_targets(
    model: nn.Module, targets: Sequence[str], *, file: object = None, key: str = "plastic.targets"
) -> list[Target]:
    """The layers of ``model`` (the digital model) the targets select, in module order.

    A target that selects nothing is a ConfigError listing the model's roles.
    """
    roles = model_roles(model)
    layers = [i for i in roles.layers if i.kind in ("linear", "conv1d")]
    chosen: dict[str, Target] = {}
    for t in targets:
        hits: list[Target] = []
        if t in ROLES:
            hits = [Target(i.name, i.in_features, i.out_features, t) for i in layers if i.role == t]
        elif t in SUBROLES:
            role, leaves = SUBROLES[t]
            for i in layers:
                if i.role != role:
                    continue
                if _leaf_match(i.name, leaves):
                    hits.append(Target(i.name, i.in_features, i.out_features, t))
                elif t in _FUSED_PART and _leaf_match(i.name, ("c_attn",)):
                    d = i.out_features // 3
                    part = _FUSED_PART[t]
                    hits.append(
                        Target(i.name, i.in_features, i.out_features, t, (part * d, part * d + d))
                    )
        else:
            try:
                rx = re.compile(t)
            except re.error as exc:
                raise ConfigError(
                    f"not a role, sub-role or valid regular expression: {exc}",
                    file=file,
                    key=key,
                    value=t,
                ) from None
            hits = [
                Target(i.name, i.in_features, i.out_features, t)
                for i in layers
                if rx.fullmatch(i.name)
            ]
        if not hits:
            raise ConfigError(
                "plastic target matches no Linear/Conv1D layer of this model",
                file=file,
                key=key,
                value=t,
                allowed="a role ("
                + ", ".join(sorted({i.role for i in layers}))
                + "), a sub-role ("
                + ", ".join(SUBROLES)
                + ") or a module-name regex (see `analogsim map MODEL`)",
            )
        for h in hits:
            chosen.setdefault(h.name, h)
    order = {i.name: k for k, i in enumerate(layers)}
    return sorted(chosen.values(), key=lambda tg: order[tg.name])
