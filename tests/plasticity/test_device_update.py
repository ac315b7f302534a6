"""The device update model (``analogsim/devices/update.py``): soft bounds saturate at the
bound, the up/down asymmetry gives its stated ratio, stochastic pulse rounding is
unbiased, cycle-to-cycle spread has its stated size, a PCM pair refreshes."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from analogsim.devices.update import (
    UPDATE_PRESETS,
    UpdateModel,
    apply_update,
    draw_spread,
    pulses,
    update_model,
)
from analogsim.errors import ConfigError

SB = UpdateModel("sb", "soft_bounds", dw_min=0.01, w_max=1.0, w_min=-1.0, max_pulses=1000)


def test_soft_bounds_saturate_at_the_per_device_bound():
    m = replace(SB, w_max_dtod=0.2, dw_min_dtod=0.1)
    g = torch.Generator().manual_seed(0)
    spread = draw_spread(m, (500,), g)
    w = torch.zeros(500)
    for _ in range(20):  # 20 x 1000 pulses of 0.01 up: far beyond the bound
        w = apply_update(m, w, torch.full((500,), 10.0), spread, g).w
    torch.testing.assert_close(w, spread.w_max, atol=1e-4, rtol=0)
    assert float(spread.w_max.std()) > 0.1  # the bounds do differ from device to device
    down = w
    for _ in range(40):
        down = apply_update(m, down, torch.full((500,), -10.0), spread, g).w
    torch.testing.assert_close(down, spread.w_min, atol=1e-4, rtol=0)


def test_soft_bounds_closed_form_equals_pulse_by_pulse():
    g = torch.Generator().manual_seed(1)
    spread = draw_spread(SB, (50,), g)
    w0 = torch.rand(50, generator=g) - 0.5
    n = 37
    w = w0.clone()
    for _ in range(n):
        w = w + spread.dw_up * (1 - w / spread.w_max)
    res = apply_update(SB, w0, torch.full((50,), n * SB.dw_min), spread, torch.Generator())
    torch.testing.assert_close(res.w, w, rtol=0, atol=1e-5)


@pytest.mark.parametrize("beta", [0.2, -0.3])
def test_asymmetry_gives_the_stated_up_down_ratio(beta):
    m = replace(SB, up_down=beta, up_down_dtod=0.02)
    g = torch.Generator().manual_seed(2)
    n_dev = 4000
    spread = draw_spread(m, (n_dev,), g)
    w = torch.zeros(n_dev)
    up = apply_update(m, w, torch.full((n_dev,), m.dw_min), spread, torch.Generator()).w
    dn = apply_update(m, w, torch.full((n_dev,), -m.dw_min), spread, torch.Generator()).w
    # exactly one pulse each way (|dw| = dw_min, u < 1): step ratio per device is
    # (1 + beta_ij)/(1 - beta_ij); its mean over devices is the stated ratio to first order
    ratio = up / (-dn)
    se = float(ratio.std()) / math.sqrt(n_dev)
    assert float(ratio.mean()) == pytest.approx(m.up_down_ratio(), abs=4 * se + 2 * 0.02**2)


def test_stochastic_rounding_is_unbiased_and_capped():
    g = torch.Generator().manual_seed(3)
    dw = torch.full((20000,), 2.3 * 0.01)
    n, cut = pulses(dw, 0.01, torch.rand(dw.shape, generator=g), 31)
    assert cut == 0
    se = math.sqrt(0.3 * 0.7 / dw.numel())
    assert float(n.mean()) == pytest.approx(2.3, abs=4 * se)
    n, cut = pulses(torch.full((10,), 1.0), 0.01, torch.zeros(10), 31)
    assert cut == 10 and float(n.max()) == 31


def test_cycle_to_cycle_spread_has_its_size():
    m = replace(SB, dw_min_std=0.5)
    g = torch.Generator().manual_seed(4)
    spread = draw_spread(m, (20000,), g)
    w = torch.zeros(20000)
    res = apply_update(m, w, torch.full((20000,), 16 * m.dw_min), spread, g)
    base = apply_update(
        replace(m, dw_min_std=0.0),
        w,
        torch.full((20000,), 16 * m.dw_min),
        spread,
        torch.Generator(),
    )
    err = res.w - base.w
    # 16 pulses of step ~dw_min with relative spread 0.5: sd = 0.5 * step * sqrt(16)
    step = base.w / 16
    expect = float((0.5 * step * 4).pow(2).mean().sqrt())
    n = err.numel()
    assert float(err.std()) == pytest.approx(expect, rel=4 / math.sqrt(2 * n) + 0.01)


def test_one_sided_pair_moves_one_device_and_refreshes():
    m = UPDATE_PRESETS["pcm"]
    g = torch.Generator().manual_seed(5)
    spread = draw_spread(replace(m, dw_min_std=0.0), (100,), g)
    gp, gm = torch.zeros(100), torch.zeros(100)
    quiet = replace(m, dw_min_std=0.0)
    res = apply_update(quiet, gp - gm, torch.full((100,), 10 * m.dw_min), spread, g, (gp, gm))
    assert torch.all(gm == 0) and torch.all(gp > 0)
    assert res.refreshed == 0
    total = 0
    for i in range(200):  # alternate: both devices climb while the weight stays small
        sign = 1.0 if i % 2 == 0 else -1.0
        r = apply_update(
            quiet, gp - gm, torch.full((100,), sign * 31 * m.dw_min), spread, g, (gp, gm)
        )
        total += r.refreshed
    assert total > 0  # the devices ran into 75 % of their bounds and pairs were reset
    assert torch.all(gp <= spread.w_max) and torch.all(gm <= spread.w_min)
    assert torch.all(gp >= 0) and torch.all(gm >= 0)
    # without refresh both devices would sit near their bounds; with it they stay low
    assert float(torch.minimum(gp, gm).mean()) < 0.75 * m.w_max


def test_ideal_update_is_exact():
    w = torch.randn(10)
    dw = torch.randn(10) * 1e-7
    res = apply_update(UPDATE_PRESETS["ideal"], w, dw, None, None)
    assert torch.equal(res.w, w + dw)


def test_update_model_spec_and_errors():
    assert update_model("device", technology="pcm").name == "pcm"
    assert update_model("device", technology="rram").name == "reram"
    assert update_model("device", technology="ideal").name == "ideal"
    assert update_model({"preset": "reram", "dw_min": 0.005}).dw_min == 0.005
    with pytest.raises(ConfigError, match="unknown device update model"):
        update_model("flash")
    with pytest.raises(ConfigError, match=r"update\.nope"):
        update_model({"preset": "pcm", "nope": 1})
