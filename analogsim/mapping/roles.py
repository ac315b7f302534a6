"""Give every weight layer of a torch / Hugging Face model a role.

A *weight layer* is a module analogsim can wrap: ``nn.Linear`` (and subclasses such as
Falcon's ``FalconLinear``), GPT-2's ``transformers.pytorch_utils.Conv1D``, ``nn.Conv2d`` and
``nn.Embedding`` (and subclasses such as OPT's learned positional embedding); its *kind* is
one of :data:`analogsim.tiles.kinds.KINDS` (:func:`analogsim.tiles.kinds.module_kind`).

Its *role* is one of :data:`ROLES`. The mapper's placement rules select layers by role, so the
role must be right for every family analogsim knows and sensible for the ones it has never seen.
The classification is chosen in three ways (see ``docs/roles.md`` for the full tables):

1. **Named families** (``config.model_type`` in :data:`NAMED_FAMILIES`): a table of regexes on the
   qualified module name, first ``fullmatch`` wins (:data:`FAMILY_RULES`). A layer the table does
   not know falls through to the generic rules, and its ``reason`` says so.
2. **Generic fallback** (any other Hugging Face ``model_type``): module kind, weight ties, the
   task head outside the base model, and the names of the path components, deepest first.
   A layer no rule recognises gets role ``"other"`` and is listed in ``ModelRoles.unclassified``.
3. **Plain torch** (no ``config.model_type``): ``nn.Conv2d`` -> conv, ``nn.Embedding`` ->
   embedding, a Linear inside ``nn.MultiheadAttention`` -> attention, the last Linear in module
   order -> head, every other Linear -> mlp.

Ties (``LayerInfo.tied_to``) compare storage, never names: two layers are tied when their
weights are the same ``Parameter`` object or (for real, non-empty tensors) start at the same
``data_ptr()`` on the same device.

This module only reads the model; it never changes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch
from torch import nn

from analogsim.errors import AnalogsimError
from analogsim.tiles.kinds import module_kind

__all__ = [
    "FAMILY_RULES",
    "NAMED_FAMILIES",
    "ROLES",
    "LayerInfo",
    "ModelRoles",
    "RoleRule",
    "model_roles",
    "tie_groups",
    "weight_layers",
]

ROLES: tuple[str, ...] = ("attention", "mlp", "embedding", "head", "conv", "other")
"""Every role a weight layer can have, in the order reports list them."""

# --------------------------------------------------------------------------------------------
# Public data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerInfo:
    """One weight layer, its shape as an MVM sees it, and its role.

    ``in_features`` x ``out_features`` is the matrix a crossbar holds (rows x columns):

    ======================  =======================================  ======================
    kind                    in_features                              out_features
    ======================  =======================================  ======================
    ``linear``              ``in_features``                          ``out_features``
    ``conv1d`` (Conv1D)     ``weight.shape[0]``                      ``weight.shape[1]``
    ``conv2d``              ``C_in / groups * kh * kw``              ``C_out``
    ``embedding``           ``embedding_dim``                        ``num_embeddings``
    ======================  =======================================  ======================

    ``macs_per_token`` is ``in_features * out_features`` per token (linear, conv1d) or per output
    pixel (conv2d; for a grouped conv this is exactly ``C_out * C_in/groups * kh * kw``), and 0
    for an embedding, which is a table lookup.
    """

    name: str
    kind: str
    role: str
    in_features: int
    out_features: int
    params: int
    has_bias: bool
    transposed: bool
    macs_per_token: int
    tied_to: str | None
    reason: str


@dataclass(frozen=True)
class ModelRoles:
    """The roles of all weight layers of one model.

    ``family`` is the named family (``"gpt2"``, ``"bert"``, ``"llama"``, ``"mistral"``,
    ``"qwen2"``, ``"phi3"``, ``"opt"``, ``"gpt_neox"``), ``"torch"`` for a plain torch model, or
    ``"generic:<model_type>"`` for a Hugging Face family with no table. ``layers`` is in module
    order; ``unclassified`` names the layers no rule recognised (their role is ``"other"``).
    """

    family: str
    layers: list[LayerInfo]
    unclassified: list[str]

    def by_name(self) -> dict[str, LayerInfo]:
        """Layers keyed by qualified module name."""
        return {layer.name: layer for layer in self.layers}

    def by_role(self) -> dict[str, list[LayerInfo]]:
        """Layers grouped by role; every role in :data:`ROLES` is a key, possibly empty."""
        groups: dict[str, list[LayerInfo]] = {role: [] for role in ROLES}
        for layer in self.layers:
            groups[layer.role].append(layer)
        return groups


class RoleRule(NamedTuple):
    """One row of a family table: a regex ``fullmatch``-ed against the qualified name."""

    role: str
    pattern: str
    label: str  # short text for ``LayerInfo.reason``


# --------------------------------------------------------------------------------------------
# Family tables
# --------------------------------------------------------------------------------------------

# Any prefix ending in a dot, or none: the same table serves GPT2Model ("h.0.attn.c_attn") and
# GPT2LMHeadModel ("transformer.h.0.attn.c_attn").
_P = r"(?:.+\.)?"

# Task heads that Hugging Face puts at the top level of *ForXxx models.
_COMMON_HEADS = (
    RoleRule("head", r"score", "score (sequence classification)"),
    RoleRule("head", r"classifier(?:\..+)?", "classifier"),
    RoleRule("head", r"qa_outputs", "qa_outputs (question answering)"),
)

_GPT2 = (
    RoleRule("attention", _P + r"h\.\d+\.attn\.(?:c_attn|c_proj|q_attn)", "attn.c_attn/c_proj"),
    RoleRule(
        "attention",
        _P + r"h\.\d+\.crossattention\.(?:c_attn|c_proj|q_attn)",
        "crossattention.c_attn/q_attn/c_proj",
    ),
    RoleRule("mlp", _P + r"h\.\d+\.mlp\.(?:c_fc|c_proj)", "mlp.c_fc/c_proj"),
    RoleRule("embedding", _P + r"(?:wte|wpe)", "wte/wpe"),
    RoleRule("head", r"lm_head", "lm_head"),
    RoleRule("head", r"multiple_choice_head\..+", "multiple_choice_head"),
    *_COMMON_HEADS,
)

_BERT = (
    RoleRule(
        "attention",
        _P + r"layer\.\d+\.(?:attention|crossattention)\.self\.(?:query|key|value)",
        "attention.self.query/key/value",
    ),
    RoleRule(
        "attention",
        _P + r"layer\.\d+\.(?:attention|crossattention)\.output\.dense",
        "attention.output.dense",
    ),
    RoleRule("mlp", _P + r"layer\.\d+\.intermediate\.dense", "intermediate.dense"),
    RoleRule("mlp", _P + r"layer\.\d+\.output\.dense", "output.dense (FFN)"),
    RoleRule(
        "embedding",
        _P + r"embeddings\.(?:word|position|token_type)_embeddings",
        "embeddings.*_embeddings",
    ),
    # Decision: the pooler (dense + tanh on [CLS], used only by classification heads) is part
    # of the task head, like cls.predictions.transform.dense.
    RoleRule("head", _P + r"pooler\.dense", "pooler.dense"),
    RoleRule("head", r"cls\..+", "cls.* (MLM / NSP head)"),
    *_COMMON_HEADS,
)

_LLAMA_LIKE = (
    RoleRule(
        "attention",
        _P + r"layers\.\d+\.self_attn\.(?:q_proj|k_proj|v_proj|o_proj|qkv_proj)",
        "self_attn.q/k/v/o_proj (or fused qkv_proj)",
    ),
    RoleRule(
        "mlp",
        _P + r"layers\.\d+\.mlp\.(?:gate_proj|up_proj|down_proj|gate_up_proj)",
        "mlp.gate/up/down_proj (or fused gate_up_proj)",
    ),
    RoleRule("embedding", _P + r"embed_tokens", "embed_tokens"),
    RoleRule("head", r"lm_head", "lm_head"),
    *_COMMON_HEADS,
)

_OPT = (
    RoleRule(
        "attention",
        _P + r"layers\.\d+\.self_attn\.(?:q_proj|k_proj|v_proj|out_proj)",
        "self_attn.q/k/v/out_proj",
    ),
    RoleRule("mlp", _P + r"layers\.\d+\.(?:fc1|fc2)", "fc1/fc2"),
    RoleRule("embedding", _P + r"(?:embed_tokens|embed_positions)", "embed_tokens/positions"),
    RoleRule("other", _P + r"(?:project_in|project_out)", "project_in/out"),
    RoleRule("head", r"lm_head", "lm_head"),
    *_COMMON_HEADS,
)

_GPT_NEOX = (
    RoleRule(
        "attention",
        _P + r"layers\.\d+\.attention\.(?:query_key_value|dense)",
        "attention.query_key_value/dense",
    ),
    RoleRule("mlp", _P + r"layers\.\d+\.mlp\.(?:dense_h_to_4h|dense_4h_to_h)", "mlp.dense_*"),
    RoleRule("embedding", _P + r"embed_in", "embed_in"),
    # transformers 4.x names the LM head "embed_out"; 5.x renamed it "lm_head".
    RoleRule("head", r"(?:embed_out|lm_head)", "embed_out/lm_head"),
    *_COMMON_HEADS,
)

FAMILY_RULES: dict[str, tuple[RoleRule, ...]] = {
    "gpt2": _GPT2,
    "bert": _BERT,
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "phi3": _LLAMA_LIKE,
    "opt": _OPT,
    "gpt_neox": _GPT_NEOX,
}
"""Per named family, the name rules tried in order; the first ``re.fullmatch`` wins."""

NAMED_FAMILIES: tuple[str, ...] = tuple(FAMILY_RULES)
"""``config.model_type`` values with their own table."""

_COMPILED: dict[str, tuple[tuple[RoleRule, re.Pattern[str]], ...]] = {
    family: tuple((rule, re.compile(rule.pattern)) for rule in rules)
    for family, rules in FAMILY_RULES.items()
}

# Generic fallback vocabulary (lower-cased comparisons).
_HEAD_TOP_NAMES = frozenset({"lm_head", "embed_out", "classifier", "score", "qa_outputs", "cls"})
_ATTN_COMPONENT = re.compile(r".*(?:attn|attention).*", re.IGNORECASE)
_MLP_COMPONENT = re.compile(
    r".*(?:mlp|ffn|feed_?forward|densereludense|intermediate|experts?|moe).*", re.IGNORECASE
)
_ATTN_LEAVES = frozenset(
    {
        "q", "k", "v", "o",
        "query", "key", "value",
        "q_proj", "k_proj", "v_proj", "o_proj", "kv_proj",
        "qkv", "qkv_proj", "wqkv", "query_key_value",
        "c_attn", "q_attn",
    }
)  # fmt: skip
_MLP_LEAVES = frozenset(
    {
        "fc1", "fc2", "fc_in", "fc_out", "c_fc",
        "dense_h_to_4h", "dense_4h_to_h",
        "gate_proj", "up_proj", "down_proj", "gate_up_proj",
        "w1", "w2", "w3", "wi", "wi_0", "wi_1", "wo",
        "lin1", "lin2", "linear1", "linear2",
    }
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Weight layers and their shapes
# --------------------------------------------------------------------------------------------


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules analogsim can wrap, as ``(qualified_name, module)`` in module order.

    These are ``nn.Linear``, ``transformers.pytorch_utils.Conv1D``, ``nn.Conv2d`` and
    ``nn.Embedding`` instances (subclasses included) that have a weight. A module registered
    under two names appears once, under its first name (``named_modules`` order). Other
    convolutions (``nn.Conv1d``, ``nn.Conv3d``, transposed convs) and raw parameters such as
    ``nn.MultiheadAttention.in_proj_weight`` are not weight layers.
    """
    return [
        (name, module)
        for name, module in model.named_modules()
        if module_kind(module) is not None and getattr(module, "weight", None) is not None
    ]


def _shape(name: str, kind: str, module: nn.Module) -> tuple[int, int, bool, int]:
    """``(in_features, out_features, transposed, macs_per_token)`` of one weight layer."""
    weight = module.weight
    if kind == "linear":  # weight (out, in)
        n_in, n_out, transposed = weight.shape[1], weight.shape[0], False
    elif kind == "conv1d":  # weight (in, out): GPT-2's Conv1D computes x @ W + b
        n_in, n_out, transposed = weight.shape[0], weight.shape[1], True
    elif kind == "conv2d":  # weight (C_out, C_in/groups, kh, kw), unrolled per output pixel
        n_in = weight.shape[1] * weight.shape[2] * weight.shape[3]
        n_out, transposed = weight.shape[0], False
    else:  # embedding: weight (num_embeddings, embedding_dim)
        n_in, n_out, transposed = weight.shape[1], weight.shape[0], False
    macs = 0 if kind == "embedding" else n_in * n_out
    return int(n_in), int(n_out), transposed, int(macs)


# --------------------------------------------------------------------------------------------
# Ties
# --------------------------------------------------------------------------------------------


def _storage_key(weight: torch.Tensor) -> tuple[str, int] | None:
    """Where the weight's data starts, or None when that says nothing (meta or empty tensor)."""
    if weight.device.type == "meta" or weight.numel() == 0:
        return None
    return (str(weight.device), weight.data_ptr())


def _tied_names(layers: list[tuple[str, nn.Module]]) -> dict[str, str]:
    """For each layer sharing its weight storage with another, the first *other* such layer.

    Layers are grouped when their weights are the same Parameter object or start at the same
    ``data_ptr`` on the same device (union-find over both keys, so a group can be larger
    than two, e.g. T5's ``shared``, ``encoder.embed_tokens``, ``decoder.embed_tokens`` and
    ``lm_head``). Names are never compared.
    """
    parent = list(range(len(layers)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_seen: dict[object, int] = {}
    for i, (_, module) in enumerate(layers):
        weight = module.weight
        keys: list[object] = [("param", id(weight))]
        storage = _storage_key(weight)
        if storage is not None:
            keys.append(("storage", storage))
        for key in keys:
            j = first_seen.setdefault(key, i)
            if j != i:
                parent[find(i)] = find(j)

    groups: dict[int, list[int]] = {}
    for i in range(len(layers)):
        groups.setdefault(find(i), []).append(i)
    tied: dict[str, str] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        for i in members:
            other = next(j for j in members if j != i)
            tied[layers[i][0]] = layers[other][0]
    return tied


class _Tied(Protocol):
    name: str
    tied_to: str | None


def tie_groups(layers: Iterable[_Tied]) -> list[list[str]]:
    """The groups of layers that share one weight, from their ``tied_to`` links.

    ``layers`` are :class:`LayerInfo` (or anything with ``name`` and ``tied_to``, such as
    a placement plan's layers) in module order. Each group lists its names in that order;
    its first name is the *owner* that parameter counts charge the shared weight to
    (T5: ``[shared, encoder.embed_tokens, decoder.embed_tokens, lm_head]``; GPT-2:
    ``[transformer.wte, lm_head]``). Layers that share nothing are in no group.
    """
    order: dict[str, int] = {}
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for layer in layers:
        order.setdefault(layer.name, len(order))
        if layer.tied_to is not None:
            a, b = find(layer.name), find(layer.tied_to)
            if a != b:
                parent[a] = b
    groups: dict[str, list[str]] = {}
    for name in order:
        if name in parent:
            groups.setdefault(find(name), []).append(name)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: order[g[0]])


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


def _family(model: nn.Module) -> tuple[str, str | None]:
    """``(family, model_type)``; model_type is None for plain torch."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if isinstance(model_type, str) and model_type:
        if model_type in FAMILY_RULES:
            return model_type, model_type
        return f"generic:{model_type}", model_type
    # A Hugging Face config without a model_type (a bare config; transformers 5.x spells the
    # class PreTrainedConfig, 4.x PretrainedConfig): HF, family unknown.
    if config is not None and any(
        cls.__name__ in ("PreTrainedConfig", "PretrainedConfig") for cls in type(config).__mro__
    ):
        return "generic:unknown", "unknown"
    return "torch", None


def _base_prefix(model: nn.Module) -> str | None:
    """Name of the Hugging Face base model submodule (e.g. ``"transformer"``), if it is one."""
    prefix = getattr(model, "base_model_prefix", None)
    if not isinstance(prefix, str) or not prefix:
        return None
    base = getattr(model, prefix, None)
    if isinstance(base, nn.Module) and base is not model:
        return prefix
    return None


class _Generic:
    """The generic rules, with what they need to know about the whole model."""

    def __init__(
        self,
        model: nn.Module,
        layers: list[tuple[str, nn.Module]],
        kinds: dict[str, str],
    ) -> None:
        self.module_names = {name for name, _ in model.named_modules()}
        self.base = _base_prefix(model)
        self.kinds = kinds
        # Every non-embedding layer whose weight is an embedding's weight -> that embedding.
        embedding_of: dict[object, str] = {}
        for name, module in layers:
            if kinds[name] == "embedding":
                embedding_of.setdefault(("param", id(module.weight)), name)
                storage = _storage_key(module.weight)
                if storage is not None:
                    embedding_of.setdefault(("storage", storage), name)
        self.tied_embedding: dict[str, str] = {}
        for name, module in layers:
            if kinds[name] == "embedding":
                continue
            keys = [("param", id(module.weight)), ("storage", _storage_key(module.weight))]
            found = next((embedding_of[key] for key in keys if key in embedding_of), None)
            if found is not None:
                self.tied_embedding[name] = found

    def classify(self, name: str) -> tuple[str, str] | None:
        """``(role, reason)`` or None when no generic rule recognises the layer."""
        kind = self.kinds[name]
        if kind == "embedding":
            return "embedding", "generic: nn.Embedding"
        if kind == "conv2d":
            return "conv", "generic: nn.Conv2d"
        if name in self.tied_embedding:
            return "head", f"generic: weight tied to embedding '{self.tied_embedding[name]}'"
        parts = name.split(".")
        if parts[0].lower() in _HEAD_TOP_NAMES:
            return "head", f"generic: top-level '{parts[0]}'"
        if self.base is not None and parts[0] != self.base:
            return "head", f"generic: outside the base model '{self.base}' (task head)"
        # Path components, deepest first: the most specific name decides.
        for depth in range(len(parts) - 1, -1, -1):
            part = parts[depth]
            low = part.lower()
            if depth == len(parts) - 1:
                if low in _ATTN_LEAVES:
                    return "attention", f"generic: q/k/v/o-like name '{part}'"
                if low in _MLP_LEAVES:
                    return "mlp", f"generic: MLP-like name '{part}'"
            if low == "output" and ".".join([*parts[:depth], "intermediate"]) in self.module_names:
                return "mlp", "generic: BERT-style FFN 'output' beside 'intermediate'"
            if _ATTN_COMPONENT.fullmatch(part):
                return "attention", f"generic: under a module named '{part}' (*attention*)"
            if _MLP_COMPONENT.fullmatch(part):
                return "mlp", f"generic: under a module named '{part}' (*mlp*/*ffn*)"
            if low == "pooler":
                return "head", "generic: pooler (part of the task head)"
        return None


def _classify_torch(
    layers: list[tuple[str, nn.Module]], kinds: dict[str, str], model: nn.Module
) -> dict[str, tuple[str, str]]:
    """Plain torch rules: conv, embedding, attention inside MultiheadAttention, last Linear head."""
    in_mha: set[str] = set()
    for prefix, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            for sub, _ in module.named_modules():
                in_mha.add(f"{prefix}.{sub}" if prefix and sub else prefix or sub)
    linear_names = [name for name, _ in layers if kinds[name] in ("linear", "conv1d")]
    last = next(
        (name for name in reversed(linear_names) if name not in in_mha),
        None,
    )
    out: dict[str, tuple[str, str]] = {}
    for name, _ in layers:
        kind = kinds[name]
        if kind == "conv2d":
            out[name] = ("conv", "torch: nn.Conv2d")
        elif kind == "embedding":
            out[name] = ("embedding", "torch: nn.Embedding")
        elif name in in_mha:
            out[name] = ("attention", "torch: inside nn.MultiheadAttention")
        elif name == last:
            out[name] = ("head", "torch: last Linear in module order")
        else:
            out[name] = ("mlp", "torch: Linear before the last one")
    return out


def model_roles(model: nn.Module) -> ModelRoles:
    """Classify every weight layer of ``model`` (see the module docstring and docs/roles.md).

    Args:
        model: any ``torch.nn.Module``; a Hugging Face model is recognised by
            ``model.config.model_type``. The model is only read.

    Returns:
        A :class:`ModelRoles` with one :class:`LayerInfo` per :func:`weight_layers` entry, in
        module order, and the names no rule recognised in ``unclassified``.

    Raises:
        AnalogsimError: a lazy module (``nn.LazyLinear``) has not been initialised yet.
    """
    family, _ = _family(model)
    layers = weight_layers(model)
    for name, module in layers:
        if isinstance(module.weight, nn.parameter.UninitializedParameter):
            raise AnalogsimError(
                f"layer '{name}' ({type(module).__name__}) has an uninitialised lazy weight; "
                "run one forward pass with a sample input before mapping the model"
            )
    kinds = {name: module_kind(module) or "" for name, module in layers}
    tied = _tied_names(layers)

    decided: dict[str, tuple[str, str]] = {}
    unclassified: list[str] = []
    if family == "torch":
        decided = _classify_torch(layers, kinds, model)
    else:
        generic = _Generic(model, layers, kinds)
        table = _COMPILED.get(family, ())
        for name, _ in layers:
            match = next((rule for rule, rx in table if rx.fullmatch(name)), None)
            if match is not None:
                decided[name] = (match.role, f"{family}: name matches {match.label}")
                continue
            found = generic.classify(name)
            if found is None:
                decided[name] = ("other", "generic: no rule matched")
                unclassified.append(name)
            elif table:
                role, why = found
                decided[name] = (role, f"{why} (no {family} rule matched)")
            else:
                decided[name] = found

    infos: list[LayerInfo] = []
    for name, module in layers:
        kind = kinds[name]
        n_in, n_out, transposed, macs = _shape(name, kind, module)
        bias = getattr(module, "bias", None)
        has_bias = isinstance(bias, torch.Tensor)
        params = module.weight.numel() + (bias.numel() if has_bias else 0)
        role, reason = decided[name]
        infos.append(
            LayerInfo(
                name=name,
                kind=kind,
                role=role,
                in_features=n_in,
                out_features=n_out,
                params=int(params),
                has_bias=has_bias,
                transposed=transposed,
                macs_per_token=macs,
                tied_to=tied.get(name),
                reason=reason,
            )
        )
    return ModelRoles(family=family, layers=infos, unclassified=unclassified)
