"""Plastic adapters on a running model (``analogsim/plasticity/session.py``): the adapter
adds ``s (x A) B`` on Linear and on a slice of GPT-2's Conv1D, stability keeps norms
bounded under adversarial input, the mechanisms act, targets and settings are checked."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from analogsim.errors import ConfigError
from analogsim.mapping.rules import mapping_from_dict
from analogsim.plasticity import PlasticSession, plasticity_config, resolve_targets
from tests.clock.conftest import tiny_gpt2

NO_STABILITY = {
    "ewc": False,
    "spectral_cap": False,
    "clip": False,
    "adaptive_rate": False,
    "decay": 0.0,
}


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).eval()


def _session(model, table, targets=("mlp",), seed=0):
    cfg = plasticity_config(None, table)
    return PlasticSession(model, cfg, resolve_targets(model, targets), seed)


def _exact_sigma(ad) -> float:
    a, b = ad.effective()
    return float(torch.linalg.matrix_norm(ad.scale * a @ b, ord=2))


def _adversarial_run(table, steps, check_every=0):
    """Feed one large fixed direction (Hebbian positive feedback) for ``steps`` forwards."""
    net = _mlp()
    s = _session(net, table)
    g = torch.Generator().manual_seed(1)
    direction = torch.randn(1, 6, generator=g)
    sigmas = []
    with torch.no_grad(), s.attach():
        for i in range(steps):
            net(50.0 * direction + 0.01 * torch.randn(1, 6, generator=g))
            if check_every and (i + 1) % check_every == 0:
                sigmas.append(_exact_sigma(s.adapters[0]))
    return s, sigmas


def test_stability_keeps_norms_bounded_over_10000_adversarial_updates():
    table = {"rules": {"hebbian": 1.0}, "rate": 0.05, "rank": 4, "alpha": 8}
    s, sigmas = _adversarial_run(table, 10_000, check_every=1000)
    cap = 2.0
    spectral = [r["plasticity_spectral_norm"] for r in s.records]
    norms = [r["plasticity_adapter_norm"] for r in s.records]
    assert len(s.records) == 10_000
    assert all(math.isfinite(v) for v in spectral + norms)
    assert max(spectral) <= cap * (1 + 1e-6)
    assert max(sigmas) <= cap * 1.01  # the exact largest singular value, not the estimate
    assert max(norms) <= cap * math.sqrt(4) * 1.01  # ||M||_F <= sqrt(rank) sigma_max
    assert sum(r["plasticity_clipped"] for r in s.records) > 0  # the mechanisms did act


def test_without_stability_the_same_input_diverges():
    """The test above can fail: the same run with the stability mechanisms off blows up."""
    table = {"rules": {"hebbian": 1.0}, "rate": 0.05, "rank": 4, "alpha": 8}
    s, _ = _adversarial_run(table | {"stability": NO_STABILITY}, 300)
    last = s.records[-1]["plasticity_spectral_norm"]
    assert not math.isfinite(last) or last > 100.0


def test_device_updates_stay_bounded_too():
    table = {"rules": {"hebbian": 1.0}, "rate": 0.05, "rank": 4, "update": "reram"}
    s, sigmas = _adversarial_run(table, 1000, check_every=250)
    assert max(sigmas) <= 2.0 * 1.05  # writes are noisy: the cap holds to the write error
    assert sum(r["plasticity_pulses"] for r in s.records) > 0


def test_adapter_adds_scaled_low_rank_term_on_linear():
    net = _mlp()
    s = _session(net, {"rules": {"hebbian": 1.0}, "rank": 2, "alpha": 6, "update": "ideal"})
    ad = s.adapters[0]
    g = torch.Generator().manual_seed(3)
    ad.b.read = torch.randn(2, 8, generator=g)
    ad.b.w = ad.b.read.clone()
    ad.eff = None
    x = torch.randn(4, 6, generator=g)
    a, b = ad.effective()
    base = net[0](x)
    with torch.no_grad(), s.attach():
        got = net[0](x)
    torch.testing.assert_close(got, base + 3.0 * (x @ a) @ b)


def test_gpt2_conv1d_value_slice():
    """attention.v on GPT-2 adapts the last third of the fused c_attn (a Conv1D)."""
    model = tiny_gpt2()
    targets = resolve_targets(model, ["attention.v", "mlp.down"])
    names = [t.name for t in targets]
    assert "transformer.h.0.attn.c_attn" in names and "transformer.h.1.mlp.c_proj" in names
    v = next(t for t in targets if t.name.endswith("c_attn"))
    assert v.out_slice == (64, 96) and v.d_out == 32
    cfg = plasticity_config("oja", None, plastic={"rank": 2, "update": "ideal"})
    s = PlasticSession(model, cfg, [v], 0)
    ad = s.adapters[0]
    ad.b.read = torch.ones(2, 32)
    ad.eff = None
    layer = model.get_submodule(v.name)
    x = torch.randn(1, 3, 32)
    base = layer(x)
    with torch.no_grad(), s.attach():
        got = layer(x)
    torch.testing.assert_close(got[..., :64], base[..., :64])
    a, b = ad.effective()
    torch.testing.assert_close(got[..., 64:], base[..., 64:] + cfg.scale * (x @ a) @ b)


def test_one_update_per_forward_and_every_n():
    net = _mlp()
    s = _session(net, {"rules": {"oja": 1.0}, "every": 3})
    with torch.no_grad(), s.attach():
        for _ in range(7):
            net(torch.randn(1, 6))
    assert [r["plasticity_updated"] for r in s.records] == [1, 0, 0, 1, 0, 0, 1]
    # hooks are gone after the block
    out = net(torch.ones(1, 6))
    assert len(s.records) == 7 and out.shape == (1, 3)


def test_mechanisms_gate_the_rate():
    net = _mlp()
    s = _session(
        net,
        {
            "rules": {"hebbian": 1.0},
            "mechanisms": {"tsm": {"threshold": 0.0, "floor": 0.25}, "ch": {"burn_in": 2}},
        },
    )
    with torch.no_grad(), s.attach():
        for i in range(30):
            net(torch.full((1, 6), float(i % 5)))
    gains = {r["plasticity_gain"] for r in s.records}
    assert gains <= {1.0, 0.25} and gains == {1.0, 0.25}
    assert s.adapters[0].ch_target is not None


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="no rule"):
        plasticity_config(None, {"rate": 0.1})
    with pytest.raises(ConfigError, match="unknown key 'sped'"):
        plasticity_config("oja", {"sped": 1})
    with pytest.raises(ConfigError, match="unknown mechanism"):
        plasticity_config("oja", {"mechanisms": {"agx": True}})
    with pytest.raises(ConfigError, match=r"plastic\.rank"):
        plasticity_config("oja", None, plastic={"rank": 0})
    with pytest.raises(ConfigError, match="needs plasticity"):
        plasticity_config(None, None, every=2)
    with pytest.raises(ConfigError, match="matches no Linear/Conv1D"):
        resolve_targets(tiny_gpt2(), ["mlp.gate"])
    with pytest.raises(ConfigError, match=r"plastic\.nope"):
        mapping_from_dict({"name": "m", "plastic": {"nope": 1}})
    assert plasticity_config(None, None) is None


def test_mapping_plastic_table_sets_targets_rank_alpha():
    m = mapping_from_dict({"name": "m", "plastic": {"targets": ["mlp.up"], "rank": 4, "alpha": 8}})
    cfg = plasticity_config("oja", None, plastic=m.raw["plastic"])
    assert cfg.targets == ("mlp.up",) and cfg.rank == 4 and cfg.scale == 2.0
    # a config file beats the mapping, the command line beats both
    cfg = plasticity_config("bcm", {"rank": 8, "rules": {"oja": 1.0}}, plastic=m.raw["plastic"])
    assert cfg.rank == 8 and cfg.rules == {"bcm": 1.0}
