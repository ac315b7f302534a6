"""Statistical weight perturbation (``analogsim/mapping/perturb.py``): target selection
(roles, tied embeddings, biases), seeded perturbation and bit-exact restore, and the
scheduled noise of :class:`WeightNoise` without a clock."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from analogsim.clock.schedules import parse_schedule
from analogsim.errors import ConfigError
from analogsim.mapping.analog_model import effective_matrix
from analogsim.mapping.convert import convert
from analogsim.mapping.perturb import WeightNoise, perturb, restore, select_targets
from tests.conftest import make_mlp
from tests.devices._stats import Z, assert_close_std


@pytest.fixture
def gpt2() -> GPT2LMHeadModel:
    """A random GPT-2 (2 layers, 32 wide, vocab 100, 64 positions) whose lm_head is tied to
    wte."""
    cfg = GPT2Config(
        n_layer=2,
        n_embd=32,
        n_head=2,
        vocab_size=100,
        n_positions=64,
        bos_token_id=0,
        eos_token_id=0,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = GPT2LMHeadModel(cfg).eval()
    assert model.lm_head.weight is model.transformer.wte.weight
    return model


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict(keep_vars=False).items()}


def _assert_bit_exact(model: nn.Module, snap: dict[str, torch.Tensor]) -> None:
    now = model.state_dict()
    assert set(now) == set(snap)
    for k, v in snap.items():
        assert torch.equal(now[k], v), k


def _changed(model: nn.Module, snap: dict[str, torch.Tensor]) -> set[str]:
    return {k for k, v in model.state_dict().items() if not torch.equal(v, snap[k])}


# ---------------------------------------------------------------------------- selection
def test_default_selection_skips_embeddings_and_tied_head(gpt2):
    model = gpt2
    snap = _snapshot(model)
    targets = select_targets(model)
    names = {n for t in targets for n in t.names}
    assert "transformer.wte" not in names and "lm_head" not in names
    assert "transformer.wpe" not in names
    assert {"transformer.h.0.attn.c_attn", "transformer.h.1.mlp.c_proj"} <= names
    perturb(targets, "gaussian", 0.1, 0)
    changed = _changed(model, snap)
    assert "transformer.wte.weight" not in changed and "lm_head.weight" not in changed
    assert "transformer.wpe.weight" not in changed
    assert not any(k.startswith("transformer.ln") or ".ln_" in k for k in changed)
    conv_params = {
        f"transformer.h.{i}.{m}.{p}"
        for i in range(2)
        for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
        for p in ("weight", "bias")
    }
    assert changed == conv_params
    restore(targets)
    _assert_bit_exact(model, snap)


def test_include_embeddings_perturbs_shared_tensor_once(gpt2):
    model = gpt2
    snap = _snapshot(model)
    targets = select_targets(model, include_embeddings=True)
    shared = [t for t in targets if t.param is model.transformer.wte.weight]
    assert len(shared) == 1
    assert sorted(shared[0].names) == ["lm_head", "transformer.wte"]
    assert len({id(t.param) for t in targets}) == len(targets)
    sigma = 0.05
    perturb(targets, "gaussian", sigma, 0)
    assert model.lm_head.weight is model.transformer.wte.weight  # still tied
    delta = model.transformer.wte.weight.detach() - snap["transformer.wte.weight"]
    # one draw of N(0, sigma^2) per element (two draws added would give sigma * sqrt(2))
    assert_close_std(delta, sigma)
    assert {"transformer.wte.weight", "transformer.wpe.weight"} <= _changed(model, snap)
    restore(targets)
    _assert_bit_exact(model, snap)


def test_role_selection_perturbs_only_those_roles(gpt2):
    model = gpt2
    snap = _snapshot(model)
    targets = select_targets(model, ["mlp"])
    perturb(targets, "uniform", 0.1, 3)
    changed = _changed(model, snap)
    assert changed
    assert all(".mlp.c_" in k for k in changed), changed
    assert len(changed) == 2 * 2 * 2  # 2 blocks x (c_fc, c_proj) x (weight, bias)
    restore(targets)
    _assert_bit_exact(model, snap)


def test_no_bias(gpt2):
    targets = select_targets(gpt2, ["attention"], include_bias=False)
    assert all(t.param.dim() == 2 for t in targets)
    assert len(targets) == 4


def test_selection_errors(gpt2):
    with pytest.raises(ConfigError, match="unknown role"):
        select_targets(gpt2, ["attn"])
    with pytest.raises(ConfigError, match="no layer of this model has the role"):
        select_targets(gpt2, ["conv"])
    # the head is the embedding's tensor: without embeddings nothing is left to perturb
    with pytest.raises(ConfigError, match="perturbs no parameter"):
        select_targets(gpt2, ["head"])
    # with embeddings: the shared tensor once (named by both layers), and wpe
    targets = select_targets(gpt2, ["head"], include_embeddings=True)
    (t,) = [t for t in targets if "lm_head" in t.names]
    assert t.param is gpt2.transformer.wte.weight
    assert sorted(t.names) == ["lm_head", "transformer.wte"]
    assert sorted(n for t in targets for n in t.names) == [
        "lm_head",
        "transformer.wpe",
        "transformer.wte",
    ]


# ---------------------------------------------------------------------------- perturb
def test_perturb_sets_original_plus_noise_not_cumulative():
    model = make_mlp()
    targets = select_targets(model)
    perturb(targets, "gaussian", 0.2, 5)
    once = _snapshot(model)
    perturb(targets, "gaussian", 0.2, 5)
    _assert_bit_exact(model, once)


def test_gaussian_noise_has_sigma():
    model = nn.Sequential(nn.Linear(200, 300), nn.ReLU(), nn.Linear(300, 10))
    targets = select_targets(model, include_bias=False)
    sigma = 0.03
    perturb(targets, "gaussian", sigma, 0)
    for t in targets:
        assert_close_std(t.param.detach() - t.original, sigma)


def test_bias_noise_independent_of_weight_noise():
    """The bias must not reuse the weight's stream (its noise would copy the weight's)."""
    model = nn.Sequential(nn.Linear(50, 2000), nn.ReLU(), nn.Linear(2000, 2))
    targets = select_targets(model, ["mlp"])
    perturb(targets, "gaussian", 1.0, 0)
    w, b = (t.param.detach() - t.original for t in targets)
    n = b.numel()
    r = torch.corrcoef(torch.stack([w.flatten()[:n], b]))[0, 1]
    assert abs(float(r)) < Z / math.sqrt(n)


def test_relative_sigma_scales_with_each_layer_std():
    model = nn.Sequential(nn.Linear(100, 200), nn.ReLU(), nn.Linear(200, 100))
    with torch.no_grad():
        model[2].weight.mul_(10.0)  # very different weight spreads
    targets = select_targets(model, include_bias=False)
    sigma = 0.1
    perturb(targets, "gaussian", sigma, 1, relative=True)
    for t in targets:
        delta = t.param.detach() - t.original
        assert_close_std(delta / t.original.std(), sigma)
    rel = {t.names[0]: (t.param.detach() - t.original).clone() for t in targets}
    # same seed: relative sigma equals absolute sigma * std(W) per layer
    for t in targets:
        perturb([t], "gaussian", sigma * float(t.original.float().std()), 1)
        assert torch.allclose(t.param.detach() - t.original, rel[t.names[0]], rtol=1e-5, atol=0)


# ---------------------------------------------------------------------------- WeightNoise
def test_weight_noise_digital_is_sigma_k_times_one_draw_and_restores_bit_for_bit():
    model = make_mlp()
    snap = _snapshot(model)
    sched = parse_schedule("sine:0.001:0.03:8", 16)
    wn = WeightNoise(model, sched, "gaussian", seed=3)
    for k in (0, 3, 5, 3):
        sigma, changed = wn.apply(k)
        assert sigma == float(sched.sigma(k)) and changed
        for t in wn.targets:
            torch.testing.assert_close(
                t.param.detach() - t.original, sigma * t.xi, rtol=0, atol=1e-7
            )
        assert wn.apply(k) == (sigma, False)  # same sigma: nothing to do
    wn.restore()
    _assert_bit_exact(model, snap)
    wn.check_restored()


def test_weight_noise_analog_perturbs_effective_weights_on_top_of_the_device_state():
    am = convert(make_mlp(), "all_analog", seed=0)
    clean = {n: effective_matrix(layer).clone() for n, layer in am.analog_layers()}
    wn = WeightNoise(am, parse_schedule("0.01", 4), "gaussian", seed=1, analog=True)
    wn.refresh()
    wn.apply(0)
    for t in wn.targets:
        name = next(n for n, layer in am.analog_layers() if layer is t.layer)
        torch.testing.assert_close(
            effective_matrix(t.layer) - clean[name], 0.01 * t.xi, rtol=0, atol=1e-6
        )
    wn.restore()
    for n, layer in am.analog_layers():
        assert torch.equal(effective_matrix(layer), clean[n])


def test_weight_noise_needs_a_schedule_and_a_selection():
    with pytest.raises(ConfigError, match="not a sigma schedule"):
        WeightNoise(make_mlp(), 0.01)
    with pytest.raises(ConfigError):
        WeightNoise(make_mlp(), parse_schedule("0.01", 4), roles=["attention"])


@pytest.mark.parametrize("noise", ["gaussian", "uniform", "laplace"])
@pytest.mark.parametrize("relative", [False, True])
def test_perturb_draws_in_place_exactly_original_plus_weight_noise(noise, relative):
    """perturb writes the noise straight into the parameter, block by block; the numbers
    are those of ``original + weight_noise(original)`` bit for bit (sizes around the block
    length and under 16 elements, where torch draws by another path)."""
    from analogsim.devices.noise import STREAM_BLOCK, weight_noise
    from analogsim.devices.rng import derive_seed

    sizes = [(7,), (3, 5), (STREAM_BLOCK + 5,), (2, STREAM_BLOCK + 8), (STREAM_BLOCK * 2 + 20,)]
    for i, shape in enumerate(sizes):
        p = nn.Parameter(torch.randn(shape, generator=torch.Generator().manual_seed(i)))
        model = nn.Module()
        model.register_parameter("w", p)
        original = p.detach().clone()
        gen = torch.Generator().manual_seed(derive_seed(11, "sweep", "w"))
        expected = original + weight_noise(original, noise, 0.05, generator=gen, relative=relative)
        from analogsim.mapping.perturb import Target

        targets = [Target(["w"], p, original)]
        perturb(targets, noise, 0.05, 11, relative=relative)
        assert torch.equal(p.detach(), expected), (noise, shape)
        restore(targets)
        assert torch.equal(p.detach(), original)
