"""Weight-noise sweeps (``analogsim/sweep.py``): bit-exact restore, seeds, tied embeddings,
role selection, relative sigma, threshold crossings with interpolation."""

from __future__ import annotations

import json
import math

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from torch import nn
from transformers import PreTrainedTokenizerFast

import analogsim.studies.sweep as sweep_mod
from analogsim.errors import ConfigError
from analogsim.models import LoadedModel
from analogsim.report.rundir import RunDir
from analogsim.studies.sweep import (
    SWEEP_COLUMNS,
    SWEEP_KEYS,
    crossing,
    run_sweep,
    summarize_sweep,
    thresholds,
)
from tests.conftest import make_gpt2, make_mlp

TEXT = (
    "The return statement leaves a function. A class definition creates a class object. "
    "Exceptions are raised when an error occurs. The for statement iterates over a sequence. "
) * 10


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    """A 100-entry BPE tokenizer trained on TEXT (token 0 is <|endoftext|>)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=100, special_tokens=["<|endoftext|>", "<unk>"], show_progress=False
    )
    tok.train_from_iterator([TEXT], trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<unk>",
    )


@pytest.fixture
def lm(tokenizer) -> LoadedModel:
    ids = tokenizer(TEXT, return_tensors="pt")["input_ids"][0][:200]
    # a random GPT-2 (2 layers, 32 wide, 64 positions) whose lm_head is tied to wte
    model = make_gpt2(vocab=len(tokenizer), n_positions=64)
    assert model.lm_head.weight is model.transformer.wte.weight
    return LoadedModel("tiny-lm", "causal-lm", model, tokenizer, {"heldout_ids": ids})


@pytest.fixture
def mlp_lm() -> LoadedModel:
    """A small classifier on fixed random data."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 12, generator=g)
    model = make_mlp()
    with torch.no_grad():
        y = model(x).argmax(1)  # the clean model scores 1.0
    return LoadedModel("mlp", "classifier", model, None, {"x_test": x, "y_test": y})


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict(keep_vars=False).items()}


def _assert_bit_exact(model: nn.Module, snap: dict[str, torch.Tensor]) -> None:
    now = model.state_dict()
    assert set(now) == set(snap)
    for k, v in snap.items():
        assert torch.equal(now[k], v), k


def _changed(model: nn.Module, snap: dict[str, torch.Tensor]) -> set[str]:
    return {k for k, v in model.state_dict().items() if not torch.equal(v, snap[k])}


# ---------------------------------------------------------------------------- run_sweep
def test_sweep_restores_bit_exact_tied_gpt2(lm):
    snap = _snapshot(lm.model)
    res = run_sweep(
        lm, "gaussian", (0.0, 0.05, 0.3), seeds=2, include_embeddings=True, progress=False
    )
    _assert_bit_exact(lm.model, snap)
    assert lm.model.lm_head.weight is lm.model.transformer.wte.weight
    assert ["transformer.wte", "lm_head"] in res["targets"] or [
        "lm_head",
        "transformer.wte",
    ] in res["targets"]
    assert res["quality"] == "perplexity" and res["higher_is_better"] is False
    metrics = {r["metric"] for r in res["rows"]}
    assert metrics == {"perplexity", "entropy_bits"}
    assert len(res["rows"]) == 3 * 2 * 2
    assert [s["sigma"] for s in res["samples"]] == [0.0, 0.05, 0.3]
    assert all(isinstance(s["text"], str) for s in res["samples"])


def test_sweep_sigma_zero_is_the_baseline(lm, mlp_lm):
    for noise in ("gaussian", "cauchy", "student-t"):
        res = run_sweep(lm, noise, (0.0,), seeds=2, relative=True, progress=False)
        for r in res["rows"]:
            assert r["value"] == res["baseline"][r["metric"]]
    res = run_sweep(mlp_lm, "gaussian", (0.0,), seeds=1, progress=False)
    assert res["baseline"] == {"accuracy": 1.0}
    assert [r["value"] for r in res["rows"]] == [1.0]


def test_sweep_reproducible_and_seed_dependent(lm):
    def values(seeds):
        res = run_sweep(lm, "gaussian", (0.1, 0.3), seeds=seeds, progress=False)
        return [(r["sigma"], r["metric"], r["value"]) for r in res["rows"]]

    a, b, c = values([0]), values([0]), values([1])
    assert a == b
    assert [x[:2] for x in a] == [x[:2] for x in c]
    assert all(x[2] != y[2] for x, y in zip(a, c, strict=True) if x[1] == "perplexity")


def test_sweep_validates_before_work(lm):
    with pytest.raises(ConfigError, match="unknown noise"):
        run_sweep(lm, "pink", (0.1,), progress=False)
    with pytest.raises(ConfigError, match="sigmas must be finite"):
        run_sweep(lm, "gaussian", (0.1, -0.1), progress=False)
    with pytest.raises(ConfigError, match="sigmas must be finite"):
        run_sweep(lm, "gaussian", (math.inf,), progress=False)


def test_sweep_interrupted_restores_and_resumes(mlp_lm, tmp_path, monkeypatch):
    model = mlp_lm.model
    snap = _snapshot(model)
    sigmas, seeds = (0.0, 0.5, 1.0), 1
    fresh = run_sweep(mlp_lm, "gaussian", sigmas, seeds=seeds, progress=False)["rows"]
    real = sweep_mod.perturb
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        real(*args, **kwargs)
        calls["n"] += 1
        # sigma 0 perturbs nothing (the baseline is reused): the first call is sigma 0.5
        if calls["n"] == 1:  # weights are perturbed when the interrupt comes
            raise KeyboardInterrupt

    monkeypatch.setattr(sweep_mod, "perturb", flaky)
    config = {"sigmas": list(sigmas)}
    with (
        pytest.raises(KeyboardInterrupt),
        RunDir(tmp_path, "sweep", config, SWEEP_COLUMNS, SWEEP_KEYS) as run,
    ):
        run_sweep(mlp_lm, "gaussian", sigmas, seeds=seeds, run=run, progress=False)
    _assert_bit_exact(model, snap)
    assert run.manifest["status"] == "interrupted"
    assert len(run.rows) == 1

    monkeypatch.setattr(sweep_mod, "perturb", real)
    with RunDir(tmp_path, "sweep", config, SWEEP_COLUMNS, SWEEP_KEYS) as run:
        res = run_sweep(mlp_lm, "gaussian", sigmas, seeds=seeds, run=run, progress=False)
    _assert_bit_exact(model, snap)
    rows = res["rows"]
    assert len(rows) == 3
    assert [float(r["sigma"]) for r in rows] == list(sigmas)
    assert [float(r["value"]) for r in rows] == [r["value"] for r in fresh]
    assert [s["n"] for s in res["summary"]] == [1, 1, 1]


def test_sweep_writes_samples_for_language_models(lm, tmp_path):
    with RunDir(tmp_path, "sweep", {}, SWEEP_COLUMNS, SWEEP_KEYS) as run:
        run_sweep(lm, "gaussian", (0.0, 0.1), seeds=1, run=run, progress=False)
    lines = (tmp_path / "samples.jsonl").read_text().splitlines()
    assert [json.loads(x)["sigma"] for x in lines] == [0.0, 0.1]
    assert len(run.rows) == 4


# ---------------------------------------------------------------------------- summary
def test_summarize_sweep_hand_computed():
    rows = [{"sigma": "0.1", "metric": "perplexity", "value": v} for v in ("10", "20", "30")] + [
        {"sigma": 0.0, "metric": "perplexity", "value": 5.0}
    ]
    out = summarize_sweep(rows)
    assert [s["sigma"] for s in out] == [0.0, 0.1]
    s = out[1]
    assert (s["mean"], s["min"], s["max"], s["n"]) == (20.0, 10.0, 30.0, 3)
    assert s["std"] == pytest.approx(10.0, abs=1e-12)  # sqrt((100 + 0 + 100) / 2)
    assert out[0]["std"] == 0.0


def test_summarize_sweep_non_finite():
    rows = [{"sigma": 1.0, "metric": "perplexity", "value": v} for v in (10.0, math.inf)]
    rows += [{"sigma": 2.0, "metric": "perplexity", "value": v} for v in (10.0, math.nan)]
    out = {s["sigma"]: s for s in summarize_sweep(rows)}
    assert out[1.0]["mean"] == math.inf and out[1.0]["max"] == math.inf
    assert out[1.0]["min"] == 10.0
    assert math.isnan(out[2.0]["mean"])


# ---------------------------------------------------------------------------- crossing
def test_crossing_linear_rising():
    assert crossing([0, 1, 2], [1, 3, 5], 4, log=False) == pytest.approx(1.5)
    assert crossing([0, 0.1, 0.3], [1, 3, 5], 4, log=False) == pytest.approx(0.2)


def test_crossing_log_rising():
    # log interpolation: ln 316.23 is half way between ln 100 and ln 1000
    level = 100 * math.sqrt(10)
    assert crossing([0, 1, 2], [10, 100, 1000], level) == pytest.approx(1.5)
    # linear interpolation of the same points lands elsewhere
    assert crossing([0, 1, 2], [10, 100, 1000], level, log=False) == pytest.approx(
        1 + (level - 100) / 900
    )


def test_crossing_falling():
    assert crossing([0, 1, 2], [0.9, 0.7, 0.5], 0.8, log=False, rising=False) == pytest.approx(0.5)
    assert crossing([0, 2], [1.0, 0.5], 0.5, log=False, rising=False) == pytest.approx(2.0)


def test_crossing_edges():
    assert crossing([0, 1], [10, 20], 5, log=False) == 0.0  # already past at the first point
    assert crossing([0, 1], [10, 20], 10, log=False) == 0.0  # exactly at the level counts
    assert crossing([0, 1, 2], [1, 2, 3], 4, log=False) is None
    assert crossing([0, 1, 2], [0.9, 0.95, 0.99], 0.8, log=False, rising=False) is None
    assert crossing([], [], 1.0) is None


def test_crossing_inf():
    # inf counts as above any level: the crossing is at that grid point
    assert crossing([0, 1, 2], [10, 20, math.inf], 100) == 2.0
    # before the inf the usual log interpolation: 10 * 2^x = 15
    assert crossing([0, 1, 2, 3], [10, 20, math.inf, math.inf], 15) == pytest.approx(
        math.log(1.5) / math.log(2)
    )
    # falling metric after an inf (e.g. a loss that recovers): the first grid point below
    assert crossing([0, 1], [math.inf, 0.5], 0.8, log=False, rising=False) == 1.0
    assert crossing([0, 1], [math.nan, 5.0], 4.0, log=False) == 1.0


def test_thresholds_perplexity_and_accuracy():
    ppl = [
        {"sigma": 0.0, "metric": "perplexity", "mean": 10.0},
        {"sigma": 0.1, "metric": "perplexity", "mean": 40.0},
        {"sigma": 0.2, "metric": "perplexity", "mean": math.inf},
        {"sigma": 0.1, "metric": "entropy_bits", "mean": 1e9},
    ]
    out = thresholds(
        ppl, "perplexity", 10.0, higher_is_better=False, absolute=[20, 1e6], multiples=[2]
    )
    assert [o["threshold"] for o in out] == [
        "perplexity >= 20",
        "perplexity >= 1e+06",
        "2x baseline",
    ]
    # ln 20 = ln 10 + ln 2, half of ln 40 - ln 10 = ln 4: sigma 0.05
    assert out[0]["sigma"] == pytest.approx(0.05)
    assert out[1]["sigma"] == 0.2
    assert out[2]["level"] == 20.0 and out[2]["sigma"] == pytest.approx(0.05)

    acc = [
        {"sigma": 0.0, "metric": "accuracy", "mean": 0.95},
        {"sigma": 0.5, "metric": "accuracy", "mean": 0.75},
    ]
    (o,) = thresholds(acc, "accuracy", 0.95, higher_is_better=True, multiples=[0.9])
    # level 0.855: linear, (0.95 - 0.855) / 0.2 * 0.5 = 0.2375
    assert o["level"] == pytest.approx(0.855)
    assert o["sigma"] == pytest.approx(0.2375)
    (o,) = thresholds(acc, "accuracy", 0.95, higher_is_better=True, absolute=[0.5])
    assert o["threshold"] == "accuracy <= 0.5" and o["sigma"] is None


def test_sweep_scores_the_unperturbed_model_once(lm, monkeypatch):
    """sigma = 0 reuses the baseline: one score per metric, whatever the seeds."""
    real = sweep_mod._metrics
    calls: dict[str, int] = {}

    def counted(*args):
        q, funcs = real(*args)

        def wrap(name, f):
            def g(m):
                calls[name] = calls.get(name, 0) + 1
                return f(m)

            return g

        return q, {k: wrap(k, f) for k, f in funcs.items()}

    monkeypatch.setattr(sweep_mod, "_metrics", counted)
    res = run_sweep(lm, "gaussian", (0.0, 0.1), seeds=3, progress=False)
    assert calls == {"perplexity": 1 + 3, "entropy_bits": 1 + 3}  # baseline + sigma 0.1
    zero = [r for r in res["rows"] if r["sigma"] == 0.0]
    assert len(zero) == 3 * 2  # the rows are all there, copies of the baseline
    assert all(r["value"] == res["baseline"][r["metric"]] for r in zero)


def test_sweep_text_and_max_tokens(lm, tmp_path, capsys):
    f = tmp_path / "eval.txt"
    f.write_text("A class definition creates a class object. " * 5)
    a = run_sweep(lm, "gaussian", (0.0,), seeds=1, progress=False, text=f)
    b = run_sweep(lm, "gaussian", (0.0,), seeds=1, progress=False)
    c = run_sweep(lm, "gaussian", (0.0,), seeds=1, progress=False, text=f, max_tokens=8)
    ppl = [r["baseline"]["perplexity"] for r in (a, b, c)]
    assert len(set(ppl)) == 3
    with pytest.raises(ConfigError, match="the file is empty"):
        (tmp_path / "empty.txt").write_text("")
        run_sweep(lm, "gaussian", (0.0,), seeds=1, progress=False, text=tmp_path / "empty.txt")
    capsys.readouterr()
    run_sweep(lm, "gaussian", (0.0, 0.1), seeds=2, progress=True, text=f)
    err = capsys.readouterr().err
    for line in (
        "tiny-lm sigma=0 seed=0: perplexity",
        "(baseline, unperturbed)",
        "tiny-lm sigma=0.1 seed=1: perplexity",
    ):
        assert line in err
