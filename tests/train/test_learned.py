"""Tests for analogsim.train.learned: learnable weight noise (leaky tensors, completed)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from analogsim.errors import ConfigError
from analogsim.mapping.convert import convert
from analogsim.train.learned import LearnedNoiseConfig, install_learned_noise
from tests.devices._stats import Z
from tests.train.conftest import mlp, tiny_gpt2


def _noisy(per_channel: bool = False, **kw):
    net = mlp((12, 8, 3))
    am = convert(net, "all_analog", inplace=True)
    noise = install_learned_noise(am.model, LearnedNoiseConfig(per_channel=per_channel, **kw))
    am.model.train()
    return am.model, noise


def test_public_configuration_is_the_default() -> None:
    cfg = LearnedNoiseConfig()
    assert cfg.init_log_var == -6.0 and cfg.lr == 1e-4
    assert (cfg.sigma_min, cfg.sigma_max) == (1e-6, 0.1)
    assert cfg.reward == "none" and cfg.scale == "absolute"
    _, noise = _noisy()
    assert math.isclose(float(noise.sigma("0").detach()), math.exp(-3.0), rel_tol=1e-6)  # ~0.0498


def test_output_side_noise_has_the_weight_noise_spread() -> None:
    """y - (xW^T + b) ~ N(0, sigma^2 ||x||^2) for one input: Z standard errors of the std."""
    model, noise = _noisy()
    layer = model[0]
    x = torch.rand(1, 12, generator=torch.Generator().manual_seed(0))
    n = 4000
    with torch.no_grad():
        clean = F.linear(x, layer.digital.weight, layer.digital.bias)
    with torch.enable_grad():
        ys = torch.stack([layer(x).detach() for _ in range(n // 8)])  # (n/8, 1, 8)
    d = (ys - clean).flatten()
    expect = float(noise.sigma("0").detach()) * float(x.norm())
    se = expect / math.sqrt(2 * d.numel())
    assert abs(float(d.std()) - expect) <= Z * se
    assert abs(float(d.mean())) <= Z * expect / math.sqrt(d.numel())


def test_sequence_inputs_get_one_weight_sample_per_batch() -> None:
    """3-D inputs: the same noisy weights serve every position (weight side)."""
    model, _noise = _noisy()
    layer = model[0]
    x = torch.rand(1, 1, 12).expand(1, 2, 12)  # the same vector at two positions
    y = layer(x)
    assert torch.allclose(y[0, 0], y[0, 1])  # shared weights within the batch
    clean = F.linear(x, layer.digital.weight, layer.digital.bias)
    assert not torch.allclose(y, clean)


def test_gradient_reaches_the_log_variances_and_they_change() -> None:
    model, noise = _noisy()
    opt = torch.optim.Adam(noise.parameters(), lr=1e-2)
    before = {k: v.detach().clone() for k, v in noise.log_vars.items()}
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(32, 12, generator=g), torch.randint(0, 3, (32,), generator=g)
    for _ in range(5):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in noise.parameters())
        opt.step()
    assert all(not torch.equal(before[k], v.detach()) for k, v in noise.log_vars.items())


def _train_sigma(reward: str, weight: float, steps: int = 100, target: float = 0.05) -> float:
    """Mean sigma after ``steps`` Adam steps on a toy task (batches of 512: the drift of
    sigma follows the mean gradient, not its noise)."""
    model, noise = _noisy(reward=reward, reward_weight=weight, lr=3e-2, target_sigma=target)
    opt = torch.optim.Adam(
        [{"params": model.parameters(), "lr": 1e-3}, {"params": noise.parameters(), "lr": 3e-2}]
    )
    g = torch.Generator().manual_seed(0)
    w = torch.randn(12, 3, generator=g)
    for _ in range(steps):
        x = torch.rand(512, 12, generator=g)
        y = (x @ w).argmax(1)
        reward = noise.reward_loss()
        loss = F.cross_entropy(model(x), y) + (0.0 if reward is None else reward)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(torch.cat([noise.sigma(n).detach() for n in noise.names]).mean())


def test_without_reward_the_noise_decays_and_with_entropy_reward_it_grows() -> None:
    """The public configuration's failure mode, and the fix: nothing rewards noise, so
    sigma shrinks; an entropy reward pushes it up."""
    s0 = math.exp(-3.0)
    assert _train_sigma("none", 0.0) < s0
    assert _train_sigma("entropy", 1.0) > s0


def test_target_reward_pulls_toward_the_target() -> None:
    start = math.exp(-3.0)
    for target in (0.02, 0.09):
        s = _train_sigma("target", 10.0, target=target)
        assert abs(math.log(s / target)) < 0.5 * abs(math.log(start / target))


def test_sigma_is_clamped() -> None:
    _, noise = _noisy()
    with torch.no_grad():
        noise.log_vars["0"].fill_(10.0)
        noise.log_vars["2"].fill_(-100.0)
    assert float(noise.sigma("0").detach()) == pytest.approx(0.1)
    assert float(noise.sigma("2").detach()) == pytest.approx(1e-6)


def test_per_channel_has_one_variance_per_output() -> None:
    _, noise = _noisy(per_channel=True)
    assert noise.log_vars["0"].shape == (8,) and noise.log_vars["2"].shape == (3,)
    snap = noise.snapshot()
    assert set(snap) == {"0", "2"} and snap["0"]["sigma_min"] <= snap["0"]["sigma_max"]


def test_relative_scale_multiplies_by_max_weight() -> None:
    model, noise = _noisy(scale="relative")
    layer = model[0]
    x = torch.ones(1, 12)
    with torch.no_grad():
        clean = F.linear(x, layer.digital.weight, layer.digital.bias)
    ys = torch.stack([layer(x).detach() for _ in range(500)])
    expect = (
        float(noise.sigma("0").detach())
        * float(layer.digital.weight.detach().abs().max())
        * math.sqrt(12)
    )
    d = (ys - clean).flatten()
    assert abs(float(d.std()) - expect) <= Z * expect / math.sqrt(2 * d.numel())


def test_gpt2_conv1d_layers_get_noise() -> None:
    model = tiny_gpt2()
    am = convert(model, "digital_attention_analog_mlp")
    noise = install_learned_noise(am.model, seed=0)
    assert noise.names and all(n.endswith(("c_fc", "c_proj")) for n in noise.names)
    am.model.train()
    ids = torch.randint(0, 300, (2, 8), generator=torch.Generator().manual_seed(0))
    out = am.model(input_ids=ids, labels=ids, use_cache=False)
    out.loss.backward()
    assert all(p.grad is not None for p in noise.parameters())


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"reward": "bonus"}, "learned.reward"),
        ({"scale": "log"}, "learned.scale"),
        ({"sigma_min": 0.2}, "learned.sigma_min"),
    ],
)
def test_bad_settings_name_the_key(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        LearnedNoiseConfig(**kw)


def test_a_mapping_with_nothing_analog_is_refused() -> None:
    with pytest.warns(UserWarning, match="no layer analog"):
        am = convert(mlp(), "all_digital")
    with pytest.raises(ConfigError, match="analog-placed"):
        install_learned_noise(am.model)
