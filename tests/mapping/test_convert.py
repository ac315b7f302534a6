"""Tests for analogsim.mapping.convert: wrapping a model, time and temperature, restore."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from analogsim.devices import load_device
from analogsim.devices.age import DeviceTime
from analogsim.devices.quant import quantize_weight
from analogsim.mapping.analog_model import AnalogModel
from analogsim.mapping.convert import DigitalQuantized, convert
from analogsim.mapping.rules import mapping_from_dict
from analogsim.tiles.embedding import AnalogEmbedding
from analogsim.tiles.layer import AnalogLayer
from tests.conftest import IDEAL_IO, make_mlp

HOUR = 3600.0
PCM = load_device("pcm")


def _mapping(rules=(), tile=None, device="pcm", **default):
    d = {"placement": "analog", "device": device, **default}
    if tile is not None:
        d["tile"] = tile
    return mapping_from_dict({"name": "t", "default": d, "rule": list(rules)})


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _bitwise_equal(model: nn.Module, snap: dict[str, torch.Tensor]) -> bool:
    sd = model.state_dict()
    return sd.keys() == snap.keys() and all(torch.equal(sd[k], snap[k]) for k in snap)


def _analog(am: AnalogModel) -> dict[str, AnalogLayer]:
    return dict(am.analog_layers())


# ---------------------------------------------------------------------------- wrapping
def test_convert_copies_and_leaves_the_original_untouched(small_mlp):
    snap = _snapshot(small_mlp)
    types = [type(m) for m in small_mlp.modules()]
    am = convert(small_mlp, "all_analog", seed=0)
    x = torch.randn(4, 12)
    am(x)
    am.at(HOUR, 330.0)(x)
    assert [type(m) for m in small_mlp.modules()] == types
    assert _bitwise_equal(small_mlp, snap)
    assert am.model is not small_mlp
    assert isinstance(am.model[0], AnalogLayer) and isinstance(small_mlp[0], nn.Linear)
    assert am.model[0].digital.weight is not small_mlp[0].weight


def test_inplace_wraps_the_model_itself(small_mlp):
    w0 = small_mlp[0].weight
    am = convert(small_mlp, "all_analog", inplace=True, seed=0)
    assert am.model is small_mlp
    assert isinstance(small_mlp[0], AnalogLayer) and small_mlp[0].digital.weight is w0
    restored = am.restore()
    assert restored is small_mlp and small_mlp[0].weight is w0


def test_restore_gives_the_original_weights_bit_for_bit(small_mlp):
    snap = _snapshot(small_mlp)
    am = convert(small_mlp, "all_analog", device="rram", seed=3)
    am.advance(86400.0, 350.0)
    am(torch.randn(2, 12))
    digital = am.restore()
    assert all(type(m) in (nn.Sequential, nn.Linear, nn.ReLU) for m in digital.modules())
    assert _bitwise_equal(digital, snap)
    x = torch.randn(3, 12)
    torch.testing.assert_close(digital(x), small_mlp(x), rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="restored to digital"):
        am(x)


def test_digital_quantized_layers_and_restore(small_mlp):
    m = _mapping([{"name": "2", "placement": "digital", "quantizer": {"bits": 4}}])
    snap = _snapshot(small_mlp)
    am = convert(small_mlp, m, seed=0)
    q = am.model[2]
    assert isinstance(q, DigitalQuantized)
    h = torch.randn(5, 24)
    w = small_mlp[2].weight.detach()
    torch.testing.assert_close(q(h), F.linear(h, quantize_weight(w, 4), small_mlp[2].bias))
    assert _bitwise_equal(am.restore(), snap)


def test_tiny_gpt2_restore_keeps_the_tie(tiny_hf):
    model = tiny_hf("gpt2")
    assert model.lm_head.weight is model.transformer.wte.weight
    snap = _snapshot(model)
    am = convert(model, "all_analog", seed=1)
    conv = am.model
    assert isinstance(conv.lm_head, AnalogLayer)
    assert conv.lm_head.digital.weight is conv.transformer.wte.weight  # tie kept while analog
    assert isinstance(conv.transformer.h[0].attn.c_attn, AnalogLayer)
    assert conv.transformer.h[0].attn.c_attn.kind == "conv1d"
    ids = torch.randint(0, 100, (2, 10), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = am.at(86400.0, 330.0)(input_ids=ids).logits
    assert out.shape == (2, 10, 100) and torch.isfinite(out).all()
    digital = am.restore()
    assert digital.lm_head.weight is digital.transformer.wte.weight
    assert _bitwise_equal(digital, snap)
    assert _bitwise_equal(model, snap)  # the original (converted as a copy) is untouched
    with torch.no_grad():
        torch.testing.assert_close(digital(input_ids=ids).logits, model(input_ids=ids).logits)


def test_tied_embedding_and_head_share_one_array(tiny_hf):
    """With the embedding analog too, the tied table and head are one physical array."""
    model = tiny_hf("gpt2")
    m = _mapping(tile={"drift_compensation": "none"})
    am = convert(model, m, seed=2).at(HOUR)
    wte = am.model.transformer.wte
    assert isinstance(wte, AnalogEmbedding)
    head = am.model.lm_head
    torch.testing.assert_close(
        head.effective_normalized(HOUR, None), wte._layer.effective_normalized(HOUR, None)
    )
    # the embedding's inner array is not a layer of its own (programmed once, counted once)
    names = [n for n, _ in am.analog_layers()]
    assert "transformer.wte" in names and not any(n.endswith("._layer") for n in names)
    assert am.state_bytes() == sum(layer.state_bytes() for _, layer in am.analog_layers())
    digital = am.restore()
    assert digital.lm_head.weight is digital.transformer.wte.weight


@pytest.mark.parametrize("io", [False, True])
def test_ideal_device_gpt2_equals_digital(tiny_hf, io):
    """Every layer analog (embeddings too) on the ideal device with ideal tiles: same logits."""
    model = tiny_hf("gpt2")
    tile = dict(IDEAL_IO, out_noise=1e-12, adc_bound=0.0) if io else IDEAL_IO
    am = convert(model, _mapping(tile=tile, device="ideal"), seed=0).at(86400.0, 350.0)
    assert isinstance(am.model.transformer.wpe, AnalogEmbedding)
    ids = torch.randint(0, 100, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(
            am(input_ids=ids).logits, model(input_ids=ids).logits, rtol=1e-4, atol=1e-5
        )


def test_placement_report_names_the_rule(small_mlp):
    m = _mapping([{"role": "head", "placement": "digital"}])
    am = convert(small_mlp, m)
    rows = {r["name"]: r for r in am.placement_report()}
    assert rows["4"]["placement"] == "digital" and rows["4"]["rule"] == "rule[0] role='head'"
    assert rows["0"]["placement"] == "analog" and rows["0"]["rule"] == "default"
    assert rows["0"]["device"] == "pcm" and rows["0"]["tiles"] == 1


# ---------------------------------------------------------------------------- seeds
def test_same_seed_same_numbers(small_mlp):
    x = torch.randn(8, 12, generator=torch.Generator().manual_seed(5))
    a = convert(small_mlp, "all_analog", seed=7).at(HOUR, 330.0)
    b = convert(small_mlp, "all_analog", seed=7).at(HOUR, 330.0)
    c = convert(small_mlp, "all_analog", seed=8).at(HOUR, 330.0)
    ya, yb, yc = a(x), b(x), c(x)
    assert torch.equal(ya, yb)
    assert not torch.equal(ya, yc)
    for (_, la), (_, lb) in zip(a.analog_layers(), b.analog_layers(), strict=True):
        assert torch.equal(la.w_eff, lb.w_eff)
    # layers get different seeds (derived from the model seed and the layer name)
    seeds = [layer.seed for _, layer in a.analog_layers()]
    assert len(set(seeds)) == len(seeds)


# ---------------------------------------------------------------------------- time
def _state(am: AnalogModel) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    return {n: (layer.w_eff.clone(), layer.out_mult) for n, layer in am.analog_layers()}


@pytest.mark.parametrize("temperature", [None, 300.0, 358.0])
def test_one_jump_equals_many_steps(temperature):
    """at(24 h, T) == 24 x advance(1 h, T): state is recomputed, never accumulated."""
    net = make_mlp(1, (40, 64, 30, 10))
    jump = convert(net, "all_analog", seed=4).at(24 * HOUR, temperature)
    steps = convert(net, "all_analog", seed=4)
    for _ in range(24):
        steps.advance(HOUR, temperature)
    assert steps.time_s == pytest.approx(24 * HOUR)
    sj, ss = _state(jump), _state(steps)
    for name in sj:
        torch.testing.assert_close(ss[name][0], sj[name][0], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(ss[name][1], sj[name][1], rtol=1e-5, atol=1e-7)
    # and the state did change with time
    fresh = _state(convert(net, "all_analog", seed=4))
    assert not torch.allclose(fresh["0"][0], sj["0"][0], rtol=1e-3, atol=1e-4)


def test_reference_temperature_equals_no_temperature():
    net = make_mlp(6)
    a = _state(convert(net, "all_analog", seed=9).at(HOUR, 300.0))
    b = _state(convert(net, "all_analog", seed=9).at(HOUR))
    for name in a:
        assert torch.equal(a[name][0], b[name][0]) and torch.equal(a[name][1], b[name][1])


def test_at_uses_the_demarcation_energy_age():
    """Held at 358 K for 1 h: drift age by the demarcation-energy law, 1/f noise on the
    held hour itself."""
    net = make_mlp(2)
    am = convert(net, _mapping(tile={"drift_compensation": "none"}), seed=5).at(HOUR, 358.0)
    layer = am.model[0]
    t_eq = PCM.temperature.drift_age_after(0.0, HOUR, 358.0)
    assert am.equivalent_time(PCM) == pytest.approx(t_eq)
    assert am.device_time(PCM) == DeviceTime(t_eq, HOUR, HOUR)
    assert layer.time_s == pytest.approx(t_eq) and layer.temperature_K == 358.0
    torch.testing.assert_close(
        layer.w_eff, layer.effective_normalized(DeviceTime(t_eq, HOUR, HOUR), 358.0)
    )


def test_advance_integrates_a_temperature_history():
    """1 h at 358 K then 2 h at 300 K: the age is carried through both stretches (not
    additive); read at 300 K."""
    net = make_mlp(3)
    am = convert(net, _mapping(tile={"drift_compensation": "none"}), seed=6)
    am.advance(HOUR, 358.0).advance(2 * HOUR, 300.0)
    tm = PCM.temperature
    t_eq = tm.drift_age_after(tm.drift_age_after(0.0, HOUR, 358.0), 2 * HOUR, 300.0)
    assert am.time_s == pytest.approx(3 * HOUR)
    assert am.equivalent_time(PCM) == pytest.approx(t_eq)
    layer = am.model[0]
    torch.testing.assert_close(
        layer.w_eff, layer.effective_normalized(DeviceTime(t_eq, 3 * HOUR, 3 * HOUR), 300.0)
    )
    # the same history as one jump at the reference temperature would be younger
    assert t_eq > 3 * HOUR


def test_devices_with_different_temperature_models_age_separately():
    net = make_mlp(4)
    m = _mapping([{"name": "2", "device": "rram"}], tile={"drift_compensation": "none"})
    am = convert(net, m, seed=7).at(HOUR, 350.0)
    rram = load_device("rram")
    assert am.model[0].time_s == pytest.approx(PCM.temperature.drift_age_after(0, HOUR, 350.0))
    assert am.model[2].time_s == pytest.approx(rram.temperature.drift_age_after(0, HOUR, 350.0))
    assert am.model[0].time_s != am.model[2].time_s


def test_global_compensation_keeps_outputs_calibrated_after_drift():
    """all_analog has global drift compensation: after a year the mean normalised |w_eff| times
    the compensation factor (out_mult without the per-column weight scales) of a layer equals
    its value right after programming."""
    net = make_mlp(5, (64, 48, 8))
    am = convert(net, "all_analog", seed=8)
    layer = am.model[0]

    def level():
        comp = layer.out_mult / layer._w_scale  # the global compensation factor, per row
        return float((layer.w_eff.abs() * comp[:, None]).mean())

    ref = level()
    am.at(365 * 86400.0)
    assert level() == pytest.approx(ref, rel=1e-5)
    raw = float(layer.w_eff.abs().mean()) / float(layer._ref_readout[0])
    assert raw < 0.7  # the uncompensated array has lost > 30 % (drift ~0.5 at g_max)


def test_state_errors(small_mlp):
    am = convert(small_mlp, "all_analog")
    with pytest.raises(RuntimeError, match="program"):
        am.at(HOUR)
    with pytest.raises(RuntimeError, match="program"):
        am(torch.randn(1, 12))
    am.program(0)
    with pytest.raises(ValueError, match="must be finite seconds >= 0"):
        am.at(-1.0)
    with pytest.raises(ValueError, match="dt_s must be finite seconds >= 0"):
        am.advance(math.inf)


def test_memory_of_device_state(small_mlp):
    am = convert(small_mlp, "all_analog", seed=0)
    extra_vectors = sum(4 * 4 * layer.out_features for _, layer in am.analog_layers())
    assert am.weight_bytes() <= am.state_bytes() <= am.weight_bytes() + extra_vectors


def test_convert_does_not_use_the_global_rng(small_mlp):
    before = torch.random.get_rng_state()
    am = convert(small_mlp, "all_analog", seed=0).at(HOUR, 330.0)
    am(torch.zeros(2, 12))
    assert torch.equal(torch.random.get_rng_state(), before)


@pytest.mark.parametrize("padding_mode", ["zeros", "circular", "reflect"])
def test_digital_quantized_conv2d_matches_quantized_reference(padding_mode):
    """A quantized Conv2d computes the digital conv (padding mode included) on q(W)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1, padding_mode=padding_mode),
            nn.Flatten(),
            nn.Linear(100, 3),
        )
    m = _mapping([{"role": "conv", "placement": "digital", "quantizer": {"bits": 6}}])
    am = convert(net, m, seed=0)
    q = am.model[0]
    assert isinstance(q, DigitalQuantized)
    ref = copy.deepcopy(net[0])
    with torch.no_grad():
        ref.weight.copy_(quantize_weight(net[0].weight, 6))
    x = torch.randn(2, 2, 5, 5, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(q(x), ref(x))
