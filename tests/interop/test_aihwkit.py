"""aihwkit interchange (analogsim/interop/aihwkit.py): the exported model runs in aihwkit
1.1.0, computes what analogsim computes, and its weights come back.

Statistical tolerance: Z = 5 standard errors of the chips drawn (tests/devices/_stats.py).
"""

from __future__ import annotations

import builtins
import math

import pytest
import torch

from analogsim.errors import ConfigError, MissingDependencyError
from analogsim.interop import aihwkit as ix
from analogsim.mapping.convert import convert
from analogsim.mapping.rules import mapping_from_dict
from tests.conftest import make_gpt2, make_mlp
from tests.devices._stats import Z, se_mean, se_std

pytest.importorskip("aihwkit")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

IDEAL_TILE = dict(
    dac_bits=0, adc_bits=0, adc_bound=0.0, out_noise=0.0, read_noise=0.0, drift_compensation="none"
)
IO_TILE = dict(
    rows=512,
    dac_bits=8,
    adc_bits=8,
    adc_bound=10.0,
    out_noise=0.0,
    read_noise=0.0,
    weight_scale="column",
    drift_compensation="none",
)


def _mapping(device: str, **tile):
    return mapping_from_dict(
        {"name": "t", "default": {"placement": "analog", "device": device, "tile": tile}}
    )


def _x(n: int = 64, k: int = 12) -> torch.Tensor:
    return torch.randn(n, k, generator=torch.Generator().manual_seed(1))


def test_missing_aihwkit_names_the_extra(monkeypatch):
    real = builtins.__import__

    def no_aihwkit(name, *a, **kw):
        if name == "aihwkit" or name.startswith("aihwkit."):
            raise ImportError("no aihwkit")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_aihwkit)
    with pytest.raises(MissingDependencyError, match=r"analogsim\[aihwkit\]"):
        ix.require_aihwkit()


def test_rpu_config_carries_the_tile(tmp_path):
    from aihwkit.simulator.parameters.enums import NoiseManagementType, WeightNoiseType

    from analogsim.devices import load_device
    from analogsim.tiles.config import TileConfig

    tile = TileConfig(rows=256, cols=128, dac_bits=6, adc_bits=7, adc_bound=8.0)
    rpu = ix.rpu_config_for(tile, load_device("pcm"))
    f = rpu.forward
    # aihwkit's quantisation step is 2 * res * bound: one DAC code = 1/31, one ADC step 8/63
    assert 2 * f.inp_res * f.inp_bound == pytest.approx(1 / 31)
    assert 2 * f.out_res * f.out_bound == pytest.approx(8.0 / 63)
    assert f.out_noise == tile.out_noise
    assert f.w_noise == 0.0 and f.w_noise_type == WeightNoiseType.NONE  # torch tile: none
    assert f.noise_management == NoiseManagementType.ABS_MAX
    assert rpu.mapping.max_input_size == 256 and rpu.mapping.max_output_size == 128
    assert list(rpu.noise_model.prog_coeff) == list(load_device("pcm").programming.coeffs_uS)
    static = ix.rpu_config_for(tile, None, input_range=2.5)
    assert static.pre_post.input_range.enable and static.pre_post.input_range.init_value == 2.5
    assert static.forward.noise_management == NoiseManagementType.NONE


def test_ideal_export_equals_digital(tmp_path):
    mlp = make_mlp(0, (12, 24, 5))
    man = ix.export_aihwkit(mlp, tmp_path, _mapping("ideal", **IDEAL_TILE))
    assert len(man["analog_layers"]) == 2
    model = ix.load_exported(tmp_path)
    with torch.no_grad():
        assert torch.allclose(model(_x()), mlp(_x()), atol=1e-5)


def test_quantised_io_agrees_with_the_analogsim_tile(tmp_path):
    """DAC, ADC, per-column weight scale, no noise, one tile per layer: the same numbers (up
    to float order at rounding ties). (Split layers differ: see the manifest test.)"""
    mlp = make_mlp(0, (12, 24, 5))
    m = _mapping("ideal", **IO_TILE)
    ix.export_aihwkit(mlp, tmp_path, m)
    model = ix.load_exported(tmp_path)
    ours = convert(mlp, m).program(0)
    with torch.no_grad():
        a, b = model(_x()), ours(_x())
    step = 10.0 / 127 * float(mlp[0].weight.abs().max())  # one ADC step, weight units
    assert (a - b).abs().max() < 3 * step
    assert float(((a - b).abs() < 1e-4).float().mean()) > 0.9


def test_pcm_at_one_hour_output_statistics_agree(tmp_path):
    """Same MLP, PCM, programmed and drifted to 1 h, the IO of all_analog (without per-MVM
    read noise, which aihwkit's torch tile lacks): per-output mean and spread over chips
    agree within Z standard errors of n chips each."""
    n = 150
    mlp = make_mlp(0, (12, 24, 5))
    m = _mapping(
        "pcm",
        rows=512,
        dac_bits=8,
        adc_bits=8,
        adc_bound=10.0,
        out_noise=0.04,
        read_noise=0.0,
        weight_scale="column",
        drift_compensation="global",
    )
    ix.export_aihwkit(mlp, tmp_path, m)
    model = ix.load_exported(tmp_path)
    x = _x(8)
    ys_a, ys_b = [], []
    with torch.no_grad(), torch.random.fork_rng():
        for s in range(n):
            torch.manual_seed(s)
            model.program_analog_weights()
            model.drift_analog_weights(3600.0)
            ys_a.append(model(x))
    am = convert(mlp, m)
    with torch.no_grad():
        for s in range(n):
            am.program(s).at(3600.0, 300.0)
            ys_b.append(am(x))
    a, b = torch.stack(ys_a), torch.stack(ys_b)  # (chips, 8, 5)
    fails = 0
    for i in range(x.shape[0]):
        for j in range(a.shape[2]):
            ra, rb = a[:, i, j], b[:, i, j]
            if abs(float(ra.mean() - rb.mean())) > Z * math.hypot(se_mean(ra), se_mean(rb)):
                fails += 1
            if abs(float(ra.std() - rb.std())) > Z * math.hypot(se_std(ra), se_std(rb)):
                fails += 1
    assert fails == 0, f"{fails} of {2 * a.shape[1] * a.shape[2]} statistics differ"


def test_gpt2_conv1d_layers_are_converted(tmp_path):
    gpt = make_gpt2(0, vocab=50, n_positions=16)
    man = ix.export_aihwkit(gpt, tmp_path, _mapping("ideal", **IDEAL_TILE))
    names = {la["name"]: la for la in man["analog_layers"]}
    assert names["transformer.h.0.attn.c_attn"]["kind"] == "conv1d"
    assert names["transformer.h.0.attn.c_attn"]["aihwkit"] == "AnalogLinear"
    model = ix.load_exported(tmp_path)
    ids = torch.arange(10)[None] % 50
    with torch.no_grad():
        got = model(input_ids=ids).logits
        ref = gpt(input_ids=ids).logits
    assert torch.allclose(got, ref, atol=1e-4)


def test_manifest_names_what_aihwkit_cannot_express(tmp_path):
    mlp = make_mlp(0, (12, 24, 5))
    man = ix.export_aihwkit(mlp, tmp_path / "pcm", _mapping("pcm"))
    text = " ".join(man["not_expressible"])
    assert "temperature" in text and "per-role" in text and "drift compensation" in text
    assert "read noise" in text  # all_analog-like default tile: read_noise 0.0175
    assert "per tile" not in text  # 12 and 24 inputs: one 512-row tile per layer
    man = ix.export_aihwkit(mlp, tmp_path / "split", _mapping("pcm", rows=8))
    assert "per tile" in " ".join(man["not_expressible"])
    man = ix.export_aihwkit(mlp, tmp_path / "rram", _mapping("rram"))
    text = " ".join(man["not_expressible"])
    assert "no equivalent noise model" in text and "faults" in text


def test_import_round_trip(tmp_path):
    """export -> aihwkit state dict (as aihwkit saves it) -> import: the weights come back;
    GPT-2 Conv1D transposed back."""
    for net in (make_mlp(0, (12, 24, 5)), make_gpt2(0, vocab=50, n_positions=16)):
        ix.export_aihwkit(net, tmp_path, _mapping("pcm"))
        back, analog = ix.import_aihwkit(tmp_path / ix.STATE_FILE, make_like(net))
        assert analog
        for (ka, va), (kb, vb) in zip(
            net.state_dict().items(), back.state_dict().items(), strict=True
        ):
            assert ka == kb
            assert torch.allclose(va.float(), vb.float(), atol=1e-6), ka


def make_like(net):
    """The same architecture with other weights (so the import has to write them)."""
    if isinstance(net, torch.nn.Sequential):
        return make_mlp(7, (12, 24, 5))
    return make_gpt2(7, vocab=50, n_positions=16)


def test_import_refuses_foreign_files(tmp_path):
    p = tmp_path / "x.pt"
    torch.save({"nope.weight": torch.zeros(3, 3)}, p)
    with pytest.raises(ConfigError, match="does not have"):
        ix.import_aihwkit(p, make_mlp(0, (12, 24, 5)))
    with pytest.raises(ConfigError, match="not found"):
        ix.import_aihwkit(tmp_path / "missing.pt", make_mlp(0, (12, 24, 5)))
