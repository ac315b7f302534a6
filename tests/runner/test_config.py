"""Experiment configs are refused before any work, with one error naming file, key,
value and what is allowed (issue 13 item 3)."""

from __future__ import annotations

import pytest

from analogsim.errors import ConfigError
from analogsim.runner.config import load_experiment
from tests.runner.conftest import sweep_config

GOOD = sweep_config("tiny-gpt2")


def _error(write_config, text: str) -> ConfigError:
    path = write_config(text)
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert str(path) in str(info.value)  # the file is always named
    return info.value


def test_a_good_config_loads(write_config) -> None:
    exp = load_experiment(write_config(GOOD))
    assert [a for a, _ in exp.axes] == ["model", "noise", "roles", "relative", "sigma", "seed"]
    assert exp.axis("seed") == [0, 1]
    # sigma 0 is one point per model; 2 roles x 2 sigmas > 0 x 2 seeds
    assert len(exp.points()) == 1 + 2 * 2 * 2


@pytest.mark.parametrize(
    ("old", "new", "key", "allowed"),
    [
        ('names = ["perplexity"]', 'names = ["perplexity"]\nfoo = 1', "metrics.foo", "max_tokens"),
        ("seed = 2", "seed = 2\nvoltage = [1]", "grid.voltage", "sigma"),
        ("sigma = [0.0, 0.05, 0.2]", "sigma = []", "grid.sigma", "at least one value"),
        ("sigma = [0.0, 0.05, 0.2]", 'sigma = [0.0, "big"]', "grid.sigma[1]", "a number"),
        ("sigma = [0.0, 0.05, 0.2]", "sigma = [0.0, -0.1]", "grid.sigma[1]", "[0, 10]"),
        ("max_tokens = 128", "max_tokens = 1.5", "metrics.max_tokens", None),
        ('roles = ["attention", "mlp"]', 'roles = ["attn"]', "grid.roles[0]", "attention"),
        (
            'roles = ["attention", "mlp"]',
            'roles = ["attention", "attention"]',
            "grid.roles",
            "distinct",
        ),
        ('study = "noise"', 'study = "magic"', "experiment.study", "noise, drift, chip"),
        ("seed = 2", "seed = 0", "grid.seed", "[1, 10000]"),
        ("[grid]", '[grid]\nnoise = ["pink"]', "grid.noise[0]", "gaussian"),
        ('model = ["tiny-gpt2"]', 'model = ["smollm2@n_layer=2"]', "grid.model[0]", "tiny-gpt2@"),
        ('model = ["tiny-gpt2"]', 'model = ["tiny-gpt2@depth=2"]', "grid.model[0]", None),
    ],
)
def test_bad_values_name_key_value_and_allowed(write_config, old, new, key, allowed) -> None:
    assert old in GOOD
    err = _error(write_config, GOOD.replace(old, new, 1))
    assert f"'{key}'" in str(err)
    if allowed is not None:
        assert allowed in str(err)


def test_unknown_table_and_quick_checked_without_quick(write_config) -> None:
    err = _error(write_config, GOOD + "\n[plots]\nx = 1\n")
    assert "'plots'" in str(err) and "grid" in str(err)
    # a mistake in [quick] is refused even when --quick is not given
    err = _error(write_config, GOOD + "\n[quick.grid]\nsigma = []\n")
    assert "'quick.grid.sigma'" in str(err)


def test_missing_required_axis_and_study(write_config) -> None:
    err = _error(write_config, GOOD.replace("sigma = [0.0, 0.05, 0.2]\n", ""))
    assert "'grid.sigma'" in str(err)
    err = _error(write_config, GOOD.replace('study = "noise"\n', ""))
    assert "'experiment.study'" in str(err)


def test_quick_values_replace_keys_and_models_override(write_config) -> None:
    text = GOOD + "\n[quick.grid]\nsigma = [0.0, 0.3]\nseed = 1\n[quick.metrics]\nmax_tokens = 64\n"
    path = write_config(text)
    full, quick = load_experiment(path), load_experiment(path, quick=True)
    assert quick.axis("sigma") == [0.0, 0.3] and quick.axis("seed") == [0]
    assert quick.settings["max_tokens"] == 64 and full.settings["max_tokens"] == 128
    assert quick.axis("roles") == full.axis("roles")  # untouched keys stay
    assert load_experiment(path, models=["a-folder"]).axis("model") == ["a-folder"]
    assert quick.resolved != full.resolved  # a quick run cannot resume a full one


def test_every_shipped_experiment_validates() -> None:
    from pathlib import Path

    shipped = sorted(Path("experiments").glob("*.toml"))
    assert {p.stem for p in shipped} >= {
        "noise_sweep",
        "layer_sensitivity",
        "goldilocks",
        "scaling",
        "temporal_drift",
        "partitions",
    }
    for p in shipped:
        for quick in (False, True):
            exp = load_experiment(p, quick=quick)
            assert exp.points(), p
