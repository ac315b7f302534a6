"""Tests for analogsim.mapping.roles: every weight layer gets the right role."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from transformers.pytorch_utils import Conv1D

from analogsim.errors import AnalogsimError
from analogsim.mapping.roles import (
    FAMILY_RULES,
    ROLES,
    LayerInfo,
    ModelRoles,
    model_roles,
    tie_groups,
    weight_layers,
)

NAMED = ("gpt2", "bert", "llama", "mistral", "qwen2", "phi3", "opt", "gpt_neox")


def _independent_params(model: nn.Module) -> int:
    """Weight + bias elements of every wrappable module, counted without analogsim."""
    total = 0
    for module in model.modules():
        if isinstance(module, (nn.Linear, Conv1D, nn.Conv2d, nn.Embedding)):
            total += module.weight.numel()
            if getattr(module, "bias", None) is not None:
                total += module.bias.numel()
    return total


def _counts(roles: ModelRoles) -> dict[str, int]:
    return {role: len(layers) for role, layers in roles.by_role().items()}


def _expected_counts(model_type: str, n: int) -> dict[str, int]:
    """Closed-form role counts for the tiny configs in conftest (n = number of layers)."""
    zero = dict.fromkeys(ROLES, 0)
    table = {
        # 2 Conv1D per attn + 2 per mlp; wte, wpe; lm_head
        "gpt2": dict(attention=2 * n, mlp=2 * n, embedding=2, head=1),
        # q, k, v, attention.output.dense; intermediate, output; 3 embeddings; cls transform+decoder
        "bert": dict(attention=4 * n, mlp=2 * n, embedding=3, head=2),
        "llama": dict(attention=4 * n, mlp=3 * n, embedding=1, head=1),
        "mistral": dict(attention=4 * n, mlp=3 * n, embedding=1, head=1),
        "qwen2": dict(attention=4 * n, mlp=3 * n, embedding=1, head=1),
        # fused qkv_proj + o_proj; fused gate_up_proj + down_proj
        "phi3": dict(attention=2 * n, mlp=2 * n, embedding=1, head=1),
        # project_in / project_out exist because word_embed_proj_dim != hidden_size
        "opt": dict(attention=4 * n, mlp=2 * n, embedding=2, head=1, other=2),
        "gpt_neox": dict(attention=2 * n, mlp=2 * n, embedding=1, head=1),
    }
    return {**zero, **table[model_type]}


# (layer name, role) spot checks per named family; names are transformers 5.x names.
SPOT_CHECKS: dict[str, list[tuple[str, str]]] = {
    "gpt2": [
        ("transformer.h.0.attn.c_attn", "attention"),
        ("transformer.h.1.attn.c_proj", "attention"),  # same leaf name as the MLP's c_proj
        ("transformer.h.2.mlp.c_proj", "mlp"),
        ("transformer.h.0.mlp.c_fc", "mlp"),
        ("transformer.wte", "embedding"),
        ("transformer.wpe", "embedding"),
        ("lm_head", "head"),
    ],
    "bert": [
        ("bert.encoder.layer.0.attention.self.query", "attention"),
        ("bert.encoder.layer.0.attention.output.dense", "attention"),
        ("bert.encoder.layer.0.output.dense", "mlp"),  # the FFN one
        ("bert.encoder.layer.2.intermediate.dense", "mlp"),
        ("bert.embeddings.token_type_embeddings", "embedding"),
        ("cls.predictions.transform.dense", "head"),
        ("cls.predictions.decoder", "head"),
    ],
    "llama": [
        ("model.layers.0.self_attn.q_proj", "attention"),
        ("model.layers.2.self_attn.o_proj", "attention"),
        ("model.layers.1.mlp.gate_proj", "mlp"),
        ("model.layers.1.mlp.down_proj", "mlp"),
        ("model.embed_tokens", "embedding"),
        ("lm_head", "head"),
    ],
    "mistral": [
        ("model.layers.0.self_attn.k_proj", "attention"),
        ("model.layers.0.mlp.up_proj", "mlp"),
        ("model.embed_tokens", "embedding"),
        ("lm_head", "head"),
    ],
    "qwen2": [
        ("model.layers.0.self_attn.v_proj", "attention"),
        ("model.layers.2.mlp.down_proj", "mlp"),
        ("lm_head", "head"),
    ],
    "phi3": [
        ("model.layers.0.self_attn.qkv_proj", "attention"),
        ("model.layers.0.self_attn.o_proj", "attention"),
        ("model.layers.1.mlp.gate_up_proj", "mlp"),
        ("model.layers.1.mlp.down_proj", "mlp"),
        ("model.embed_tokens", "embedding"),
        ("lm_head", "head"),
    ],
    "opt": [
        ("model.decoder.layers.0.self_attn.q_proj", "attention"),
        ("model.decoder.layers.0.self_attn.out_proj", "attention"),
        ("model.decoder.layers.1.fc1", "mlp"),
        ("model.decoder.layers.1.fc2", "mlp"),
        ("model.decoder.embed_tokens", "embedding"),
        ("model.decoder.embed_positions", "embedding"),
        ("model.decoder.project_in", "other"),
        ("model.decoder.project_out", "other"),
        ("lm_head", "head"),
    ],
    "gpt_neox": [
        ("gpt_neox.layers.0.attention.query_key_value", "attention"),
        ("gpt_neox.layers.0.attention.dense", "attention"),
        ("gpt_neox.layers.2.mlp.dense_h_to_4h", "mlp"),
        ("gpt_neox.layers.2.mlp.dense_4h_to_h", "mlp"),
        ("gpt_neox.embed_in", "embedding"),
        ("lm_head", "head"),  # "embed_out" in transformers 4.x
    ],
}


# ---------------------------------------------------------------------------------------------
# Named families
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_type", NAMED)
def test_named_family_roles(tiny_hf, model_type: str) -> None:
    model = tiny_hf(model_type)
    roles = model_roles(model)
    by_name = roles.by_name()

    assert roles.family == model_type
    assert roles.unclassified == []
    for name, role in SPOT_CHECKS[model_type]:
        assert by_name[name].role == role, (name, by_name[name].reason)
        assert by_name[name].reason.startswith(f"{model_type}: name matches"), name

    n = model.config.num_hidden_layers
    assert _counts(roles) == _expected_counts(model_type, n)
    assert sum(layer.params for layer in roles.layers) == _independent_params(model)
    assert [layer.name for layer in roles.layers] == [name for name, _ in weight_layers(model)]
    assert all(layer.role in ROLES for layer in roles.layers)


def test_named_families_have_tables() -> None:
    assert set(NAMED) == set(FAMILY_RULES)


def test_gpt2_conv1d_is_transposed_and_shaped(tiny_hf) -> None:
    model = tiny_hf("gpt2")
    d = model.config.n_embd
    layers = model_roles(model).by_name()

    c_attn = layers["transformer.h.0.attn.c_attn"]
    assert (c_attn.kind, c_attn.role, c_attn.transposed) == ("conv1d", "attention", True)
    assert (c_attn.in_features, c_attn.out_features) == (d, 3 * d)
    assert c_attn.macs_per_token == d * 3 * d
    assert c_attn.params == d * 3 * d + 3 * d
    assert c_attn.has_bias

    c_proj = layers["transformer.h.0.mlp.c_proj"]  # n_inner defaults to 4 * n_embd
    assert (c_proj.in_features, c_proj.out_features) == (4 * d, d)
    assert c_proj.transposed

    head = layers["lm_head"]
    assert (head.kind, head.transposed, head.has_bias) == ("linear", False, False)
    assert (head.in_features, head.out_features) == (d, model.config.vocab_size)
    assert head.macs_per_token == d * model.config.vocab_size

    wte = layers["transformer.wte"]
    assert (wte.kind, wte.macs_per_token, wte.transposed) == ("embedding", 0, False)
    assert (wte.in_features, wte.out_features) == (d, model.config.vocab_size)
    assert wte.params == d * model.config.vocab_size


def test_conv1d_features_match_the_mvm_it_computes() -> None:
    """in_features is the length of the input vector, out_features the output's."""
    layer = Conv1D(nf=7, nx=5)  # y = x @ W + b, W: (5, 7)
    info = model_roles(nn.Sequential(layer)).layers[0]
    y = layer(torch.zeros(2, info.in_features))
    assert y.shape == (2, info.out_features)
    assert (info.in_features, info.out_features, info.transposed) == (5, 7, True)


def test_phi3_fused_projection_shapes(tiny_hf) -> None:
    model = tiny_hf("phi3")
    cfg = model.config
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    layers = model_roles(model).by_name()
    qkv = layers["model.layers.0.self_attn.qkv_proj"]
    assert qkv.out_features == (cfg.num_attention_heads + 2 * cfg.num_key_value_heads) * head_dim
    assert layers["model.layers.0.mlp.gate_up_proj"].out_features == 2 * cfg.intermediate_size


def test_bert_pooler_and_classifier_are_head(tiny_hf) -> None:
    roles = model_roles(tiny_hf("bert", "AutoModelForSequenceClassification")).by_name()
    assert roles["bert.pooler.dense"].role == "head"
    assert roles["classifier"].role == "head"
    base = model_roles(tiny_hf("bert", "AutoModel")).by_name()
    assert base["pooler.dense"].role == "head"  # no "bert." prefix on the bare base model
    assert base["encoder.layer.0.attention.output.dense"].role == "attention"
    assert base["encoder.layer.0.output.dense"].role == "mlp"


def test_sequence_classification_score_is_head(tiny_hf) -> None:
    roles = model_roles(tiny_hf("llama", "AutoModelForSequenceClassification"))
    assert roles.by_name()["score"].role == "head"
    assert roles.unclassified == []


def test_unknown_layer_in_named_family_falls_back_to_generic(tiny_hf) -> None:
    model = tiny_hf("gpt2")
    model.transformer.h[0].attn.extra_proj = nn.Linear(4, 4)  # under attn: generic knows
    model.transformer.adapter = nn.Linear(4, 4)  # nothing in the name says what it is
    roles = model_roles(model)
    extra = roles.by_name()["transformer.h.0.attn.extra_proj"]
    assert extra.role == "attention"
    assert extra.reason.startswith("generic") and "no gpt2 rule matched" in extra.reason
    assert roles.unclassified == ["transformer.adapter"]
    assert roles.by_name()["transformer.adapter"].role == "other"


# ---------------------------------------------------------------------------------------------
# Ties: storage, never names
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_type", "head", "embedding"),
    [
        ("gpt2", "lm_head", "transformer.wte"),
        ("bert", "cls.predictions.decoder", "bert.embeddings.word_embeddings"),
        ("opt", "lm_head", "model.decoder.embed_tokens"),
    ],
)
def test_tied_head_reported_on_both_sides(tiny_hf, model_type, head, embedding) -> None:
    layers = model_roles(tiny_hf(model_type)).by_name()
    assert layers[head].tied_to == embedding
    assert layers[embedding].tied_to == head
    assert layers[head].role == "head"
    others = [name for name, info in layers.items() if name not in (head, embedding)]
    assert all(layers[name].tied_to is None for name in others)


def test_llama_tie_follows_config(tiny_hf) -> None:
    untied = model_roles(tiny_hf("llama")).by_name()
    assert untied["lm_head"].tied_to is None
    assert untied["model.embed_tokens"].tied_to is None
    tied = model_roles(tiny_hf("llama", tie_word_embeddings=True)).by_name()
    assert tied["lm_head"].tied_to == "model.embed_tokens"
    assert tied["model.embed_tokens"].tied_to == "lm_head"


def test_equal_values_in_separate_storage_are_not_tied(tiny_hf) -> None:
    model = tiny_hf("gpt2")
    model.lm_head.weight = nn.Parameter(model.lm_head.weight.detach().clone())
    assert torch.equal(model.lm_head.weight, model.transformer.wte.weight)
    layers = model_roles(model).by_name()
    assert layers["lm_head"].tied_to is None
    assert layers["transformer.wte"].tied_to is None


def test_shared_storage_with_distinct_parameters_is_tied() -> None:
    emb = nn.Embedding(10, 4)
    out = nn.Linear(4, 10, bias=False)
    out.weight = nn.Parameter(emb.weight.data)  # new Parameter object, same data_ptr
    assert out.weight is not emb.weight
    layers = model_roles(nn.ModuleDict({"a": emb, "b": out})).by_name()
    assert (layers["a"].tied_to, layers["b"].tied_to) == ("b", "a")


def test_tie_names_do_not_matter() -> None:
    model = nn.ModuleDict({"wte": nn.Embedding(10, 4), "lm_head": nn.Linear(4, 10)})
    assert all(info.tied_to is None for info in model_roles(model).layers)


def test_meta_device_ties_by_parameter_identity(tiny_hf) -> None:
    """On the meta device every data_ptr is 0; that must not tie unrelated layers."""
    import transformers

    from tests.mapping.conftest import TINY_CONFIGS

    _, kwargs = TINY_CONFIGS["gpt2"]
    config = transformers.AutoConfig.for_model("gpt2", **kwargs)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    layers = model_roles(model).by_name()
    assert layers["lm_head"].tied_to == "transformer.wte"
    assert layers["transformer.h.0.attn.c_attn"].tied_to is None
    assert sum(info.tied_to is not None for info in layers.values()) == 2


# ---------------------------------------------------------------------------------------------
# Generic fallback
# ---------------------------------------------------------------------------------------------


def _generic_expected(model_type: str, n: int) -> tuple[int, int]:
    """(attention, mlp) layer counts for the tiny generic configs."""
    return {
        "bloom": (2 * n, 2 * n),  # query_key_value + dense; dense_h_to_4h + dense_4h_to_h
        "gptj": (4 * n, 2 * n),  # q/k/v/out_proj; fc_in + fc_out
        # encoder self-attn q/k/v/o; decoder self + cross; wi + wo in every block
        "t5": (4 * n + 8 * n, 2 * n + 2 * n),
        "roberta": (4 * n, 2 * n),
    }[model_type]


@pytest.mark.parametrize("model_type", ["bloom", "gptj", "t5", "roberta"])
def test_generic_fallback_finds_attention_and_mlp(tiny_hf, model_type: str) -> None:
    model = tiny_hf(model_type)
    roles = model_roles(model)
    assert roles.family == f"generic:{model_type}"
    n = getattr(model.config, "num_hidden_layers", None) or model.config.num_layers
    attention, mlp = _generic_expected(model_type, n)
    counts = _counts(roles)
    assert (counts["attention"], counts["mlp"]) == (attention, mlp)
    assert counts["head"] >= 1
    assert all(info.reason.startswith("generic") for info in roles.layers)
    assert roles.unclassified == [info.name for info in roles.layers if info.role == "other"]
    assert sum(info.params for info in roles.layers) == _independent_params(model)


def test_generic_bert_style_output_dense_is_mlp(tiny_hf) -> None:
    layers = model_roles(tiny_hf("roberta")).by_name()
    assert layers["roberta.encoder.layer.0.output.dense"].role == "mlp"
    assert layers["roberta.encoder.layer.0.attention.output.dense"].role == "attention"
    assert layers["lm_head.decoder"].role == "head"
    assert layers["lm_head.decoder"].tied_to == "roberta.embeddings.word_embeddings"


def test_generic_t5_tied_group_and_head(tiny_hf) -> None:
    layers = model_roles(tiny_hf("t5")).by_name()
    assert layers["lm_head"].role == "head"
    assert layers["lm_head"].tied_to == "shared"
    assert layers["encoder.embed_tokens"].tied_to == "shared"
    assert layers["encoder.block.0.layer.0.SelfAttention.q"].role == "attention"
    assert layers["decoder.block.0.layer.1.EncDecAttention.o"].role == "attention"
    assert layers["decoder.block.0.layer.2.DenseReluDense.wo"].role == "mlp"


def test_generic_lists_what_it_cannot_classify(tiny_hf) -> None:
    """Mamba's mixer projections are neither attention nor MLP: role other, listed."""
    model = tiny_hf("mamba")
    roles = model_roles(model)
    n = model.config.num_hidden_layers
    assert roles.family == "generic:mamba"
    expected = [
        f"backbone.layers.{i}.mixer.{proj}"
        for i in range(n)
        for proj in ("in_proj", "x_proj", "dt_proj", "out_proj")
    ]
    assert roles.unclassified == expected
    assert all(roles.by_name()[name].role == "other" for name in expected)
    assert roles.by_name()["lm_head"].role == "head"  # tied to backbone.embeddings


def test_generic_head_outside_base_model(tiny_hf) -> None:
    layers = model_roles(tiny_hf("roberta", "AutoModelForSequenceClassification")).by_name()
    assert layers["classifier.dense"].role == "head"
    assert layers["classifier.out_proj"].role == "head"


# ---------------------------------------------------------------------------------------------
# Plain torch
# ---------------------------------------------------------------------------------------------


def test_plain_mlp() -> None:
    model = nn.Sequential(
        nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)
    )
    roles = model_roles(model)
    assert roles.family == "torch"
    assert [(info.name, info.role) for info in roles.layers] == [
        ("0", "mlp"),
        ("2", "mlp"),
        ("4", "head"),
    ]
    assert roles.unclassified == []
    assert roles.by_name()["2"].macs_per_token == 16 * 16


class _SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 3, groups=2, bias=False)
        )
        self.fc = nn.Linear(8 * 6 * 6, 16)
        self.out = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 8, 8)
        return self.out(torch.relu(self.fc(self.features(x).flatten(1))))


def test_plain_cnn() -> None:
    model = _SmallCNN()
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    roles = model_roles(model)
    assert [(info.name, info.role) for info in roles.layers] == [
        ("features.0", "conv"),
        ("features.2", "conv"),
        ("fc", "mlp"),
        ("out", "head"),
    ]
    grouped = roles.by_name()["features.2"]
    assert grouped.kind == "conv2d"
    assert (grouped.in_features, grouped.out_features) == (4 // 2 * 3 * 3, 8)
    assert grouped.macs_per_token == 18 * 8
    assert (grouped.params, grouped.has_bias) == (8 * 2 * 3 * 3, False)


def test_plain_embedding_and_multihead_attention() -> None:
    model = nn.ModuleDict(
        {"emb": nn.Embedding(20, 8), "mha": nn.MultiheadAttention(8, 2), "out": nn.Linear(8, 20)}
    )
    layers = model_roles(model).by_name()
    assert layers["emb"].role == "embedding"
    assert layers["mha.out_proj"].role == "attention"
    assert layers["out"].role == "head"


def test_conv2d_features_match_the_unfolded_mvm() -> None:
    """Conv2d == (unfolded patches, in_features long) @ (weight as in_features x out_features)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, (2, 3), bias=True)
    info = model_roles(nn.Sequential(conv)).layers[0]
    x = torch.randn(1, 3, 6, 7)
    patches = nn.functional.unfold(x, (2, 3))  # (B, C_in*kh*kw, L)
    assert patches.shape[1] == info.in_features
    w = conv.weight.reshape(info.out_features, info.in_features)
    y = (w @ patches[0] + conv.bias[:, None]).reshape(1, 5, 5, 5)
    torch.testing.assert_close(y, conv(x))
    n_pixels = y.shape[-1] * y.shape[-2]
    assert info.macs_per_token * n_pixels == 5 * 3 * 2 * 3 * n_pixels


@settings(max_examples=40, deadline=None)
@given(
    c_in_per_group=st.integers(1, 4),
    c_out_per_group=st.integers(1, 4),
    groups=st.integers(1, 3),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    bias=st.booleans(),
)
def test_conv2d_shape_invariants(c_in_per_group, c_out_per_group, groups, kh, kw, bias) -> None:
    conv = nn.Conv2d(
        c_in_per_group * groups, c_out_per_group * groups, (kh, kw), groups=groups, bias=bias
    )
    info = model_roles(nn.Sequential(conv)).layers[0]
    assert info.in_features == c_in_per_group * kh * kw
    assert info.out_features == c_out_per_group * groups
    assert info.macs_per_token == info.in_features * info.out_features
    assert info.params == sum(p.numel() for p in conv.parameters())
    assert info.has_bias is bias
    assert info.role == "conv" and not info.transposed


@settings(max_examples=30, deadline=None)
@given(widths=st.lists(st.integers(1, 6), min_size=2, max_size=6))
def test_plain_mlp_invariants(widths: list[int]) -> None:
    """Exactly one head (the last Linear); every other Linear is mlp; params add up."""
    linears = [nn.Linear(a, b) for a, b in itertools.pairwise(widths)]
    model = nn.Sequential(*linears)
    roles = model_roles(model)
    assert [info.role for info in roles.layers] == ["mlp"] * (len(linears) - 1) + ["head"]
    assert sum(info.params for info in roles.layers) == sum(p.numel() for p in model.parameters())
    for info, linear in zip(roles.layers, linears, strict=True):
        assert info.macs_per_token == linear.in_features * linear.out_features


# ---------------------------------------------------------------------------------------------
# API details
# ---------------------------------------------------------------------------------------------


def test_by_role_has_every_role_and_by_name_keeps_order(tiny_hf) -> None:
    roles = model_roles(tiny_hf("gpt2"))
    groups = roles.by_role()
    assert tuple(groups) == ROLES
    assert groups["conv"] == [] and groups["other"] == []
    assert list(roles.by_name()) == [info.name for info in roles.layers]
    assert isinstance(roles.layers[0], LayerInfo)


def test_weight_layers_kinds() -> None:
    model = nn.ModuleDict(
        {
            "lin": nn.Linear(2, 3),
            "c1d": Conv1D(3, 2),
            "conv": nn.Conv2d(1, 2, 1),
            "emb": nn.Embedding(4, 2),
            "torch_conv1d": nn.Conv1d(1, 2, 1),  # not a weight layer analogsim wraps
            "norm": nn.LayerNorm(2),
        }
    )
    assert [name for name, _ in weight_layers(model)] == ["lin", "c1d", "conv", "emb"]
    kinds = [info.kind for info in model_roles(model).layers]
    assert kinds == ["linear", "conv1d", "conv2d", "embedding"]


def test_model_is_not_modified(tiny_hf) -> None:
    model = tiny_hf("gpt2")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model_roles(model)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_lazy_layer_error_says_how_to_fix() -> None:
    model = nn.Sequential(nn.LazyLinear(4))
    with pytest.raises(AnalogsimError, match=r"layer '0'.*run one forward pass"):
        model_roles(model)


def test_hf_config_without_model_type_is_generic_unknown() -> None:
    import transformers

    class Custom(transformers.PreTrainedModel):
        config_class = transformers.PretrainedConfig

        def __init__(self, config: transformers.PretrainedConfig) -> None:
            super().__init__(config)
            self.attn = nn.Linear(2, 2)
            self.mystery = nn.Linear(2, 2)
            # leaf names alone, with no *attention* / *mlp* module above them
            self.block = nn.ModuleDict(
                {"query_key_value": nn.Linear(2, 6), "q": nn.Linear(2, 2), "fc1": nn.Linear(2, 4)}
            )

    roles = model_roles(Custom(transformers.PretrainedConfig()))
    assert roles.family == "generic:unknown"
    layers = roles.by_name()
    assert layers["attn"].role == "attention"
    assert layers["block.query_key_value"].role == "attention"
    assert layers["block.q"].role == "attention"
    assert layers["block.fc1"].role == "mlp"
    assert roles.unclassified == ["mystery"]


def test_tie_groups_join_links_owner_first():
    class L:
        def __init__(self, name, tied_to=None):
            self.name, self.tied_to = name, tied_to

    layers = [L("a", "b"), L("x"), L("b", "a"), L("c", "a"), L("d", "e"), L("e", "d")]
    assert tie_groups(layers) == [["a", "b", "c"], ["d", "e"]]
    assert tie_groups([L("x"), L("y")]) == []
