"""Tests of analogsim.train.loop: the training loop itself (no files written)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from analogsim.errors import ConfigError
from analogsim.mapping.rules import load_mapping
from analogsim.train import TrainConfig, fit, load_base
from analogsim.train.loop import _set_dropout
from tests.train.conftest import fast_hwa


def test_plain_training_stays_digital(digits_fits) -> None:
    """The plain model is an ordinary float MLP: no noise anywhere, same output twice."""
    model = digits_fits["plain"].model
    assert all(type(m).__module__.startswith("torch") for m in model.modules())
    x = torch.rand(4, 64)
    assert torch.equal(model(x), model(x))


def test_methods_see_the_same_batches_and_start(digits_fits) -> None:
    starts = {r.metrics["start_digital_accuracy"] for r in digits_fits.values()}
    assert len(starts) == 1


def test_fit_reports_through_callbacks_and_writes_nothing(digits_fits, tmp_path) -> None:
    """Every logged row and noise snapshot goes to the callbacks, as returned."""
    rows, noise = [], []
    base, _ = load_base("digits-mlp", progress=False)
    cfg = TrainConfig(method="learned-noise", epochs=1)
    res = fit(
        base,
        load_mapping("all_analog").with_device("pcm"),
        cfg,
        on_row=rows.append,
        on_noise=noise.extend,
        progress=False,
    )
    assert rows == res.history and noise == res.noise_log
    assert {r["metric"] for r in rows} >= {"loss", "digital_accuracy"}
    assert res.checkpoint is None and res.run_dir is None and "learned_noise" in res.extra
    assert set(res.metrics) == set(digits_fits["learned-noise"].metrics)
    assert not any(tmp_path.iterdir()) and res.noise_log[0]["step"] == 0


def _fit(seed: int = 0, mapping: str = "all_analog", device: str | None = "pcm"):
    base, _ = load_base("digits-mlp", progress=False)
    cfg = TrainConfig(method="hwa", epochs=1, seed=seed, hwa=fast_hwa())
    return fit(base, load_mapping(mapping).with_device(device), cfg, progress=False)


def test_same_seed_same_weights() -> None:
    a, b, c = _fit(), _fit(), _fit(seed=1)
    assert torch.equal(a.model[0].weight, b.model[0].weight)
    assert not torch.equal(a.model[0].weight, c.model[0].weight)


def test_bad_method_and_nothing_analog_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown training method"):
        TrainConfig(method="magic")
    with pytest.raises(ConfigError, match="needs analog-placed layers"), pytest.warns(UserWarning):
        _fit(mapping="all_digital", device=None)


def test_dropout_override_is_for_training_only() -> None:
    net = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.2), nn.Linear(3, 2))
    saved = _set_dropout(net, 0.0)
    assert net[1].p == 0.0 and saved == [(net[1], 0.2)]
    assert _set_dropout(net, None) == []
    with pytest.raises(ConfigError, match="dropout"):
        TrainConfig(dropout=1.5)


def test_hwa_reports_the_time_of_its_device_tables(digits_fits) -> None:
    """The surrogate tables are built before the first step: their time is reported beside
    the training time (issue 10: long work counts honestly), zero for the other methods."""
    hwa = digits_fits["hwa"].metrics
    assert hwa["prepare_seconds"] > 0
    assert digits_fits["plain"].metrics["prepare_seconds"] == 0.0
    assert digits_fits["learned-noise"].metrics["prepare_seconds"] == 0.0


def test_hwa_table_progress_counts_every_grid_point(monkeypatch) -> None:
    import analogsim.train.hwa as hwa_mod
    from analogsim.devices import load_device
    from analogsim.train.hwa import HWAContext

    seen: list[tuple[str, int, bool]] = []
    real = hwa_mod.progress_bar

    def spy(description, total, enabled, **kw):
        seen.append((description, total, enabled))
        return real(description, total, False)

    monkeypatch.setattr(hwa_mod, "progress_bar", spy)
    ctx = HWAContext(fast_hwa(), seed=0)
    ctx.prepare([load_device("pcm"), load_device("ideal")], progress=True)
    assert seen == [("hwa device tables", len(ctx.times) * len(ctx.temperatures), True)]
