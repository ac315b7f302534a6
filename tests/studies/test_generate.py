"""Tests for clocked generation, the trace and its detector, ``stream``, the CLI and the bench."""

from __future__ import annotations

import csv
import json
import math
import sys

import pytest
import torch
from torch import nn

from analogsim.clock.core import Clock
from analogsim.errors import ConfigError
from analogsim.mapping.convert import convert
from analogsim.models import LoadedModel
from analogsim.studies.generate import (
    TokenRecorder,
    digital_scores,
    generate_with_clock,
    parse_fault_rates,
    run_generate,
)
from analogsim.studies.trace import detect_cliff, read_csv, trace_columns
from tests.clock.conftest import loaded, mapping, tiny_gpt2

HOUR, DAY = 3600.0, 86400.0


def _trace(path) -> list[dict[str, str]]:
    return read_csv(path / "trace.csv")


# ------------------------------------------------------------------ the hook


def test_every_token_sees_its_own_time(prompt):
    model = tiny_gpt2()
    am = convert(model, mapping("pcm")).program(0)
    seen: list[float] = []
    layer = next(layer for _, layer in am.analog_layers())
    orig = layer.forward

    def spy(x):
        seen.append(am.time_s)
        return orig(x)

    layer.forward = spy
    clock = Clock(am, step_time_s=HOUR, start_age_s=DAY, profile="300K", tolerance=0.0)
    res = generate_with_clock(am, prompt, clock, 6)
    assert len(res.tokens) == 6 and len(res.steps) == 6
    # forward k (k = 0 the prefill) runs with the chip at start_age + k * token_time
    assert seen == [DAY + k * HOUR for k in range(6)]
    assert [s.time_s for s in res.steps] == seen


def test_generation_does_not_stop_at_eos_unless_asked(prompt):
    model = tiny_gpt2()
    res = generate_with_clock(model, prompt, Clock(None, 1.0), 5)
    assert len(res.tokens) == 5
    first = res.tokens[0]
    # with the first token declared EOS: exactly 5 tokens by default, one with stop_at_eos
    res = generate_with_clock(model, prompt, Clock(None, 1.0), 5, eos_token_id=first)
    assert len(res.tokens) == 5
    res = generate_with_clock(
        model, prompt, Clock(None, 1.0), 5, stop_at_eos=True, eos_token_id=first
    )
    assert res.tokens == [first]
    assert len(res.steps) == 1


def test_sampling_uses_its_own_generator_and_leaves_the_global_rng(prompt):
    model = tiny_gpt2()
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = generate_with_clock(model, prompt, Clock(None, 1.0), 12, sample=True, seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    b = generate_with_clock(model, prompt, Clock(None, 1.0), 12, sample=True, seed=5)
    c = generate_with_clock(model, prompt, Clock(None, 1.0), 12, sample=True, seed=6)
    g = generate_with_clock(model, prompt, Clock(None, 1.0), 12)
    assert a.tokens == b.tokens
    assert a.tokens != c.tokens
    assert a.tokens != g.tokens


def test_recorder_entropy_and_logprob_against_hand_values():
    rec = TokenRecorder()
    z = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64)  # p = (1/4, 3/4)
    rec(torch.zeros(1, 1, dtype=torch.long), z)
    rec.finish()
    assert rec.tokens == [1]
    assert rec.logprobs[0] == pytest.approx(math.log(0.75), abs=1e-12)
    h = -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75))
    assert rec.entropies[0] == pytest.approx(h, abs=1e-12)
    # top-k 1 sampling always returns the arg-max, whatever the uniform
    s = TokenRecorder(sample=True, generator=torch.Generator().manual_seed(0), top_k=1)
    for _ in range(20):
        s(torch.zeros(1, 1, dtype=torch.long), z)
    assert set(s.finish().tokens) == {1}


# ------------------------------------------------------------------ against the digital model


@pytest.mark.parametrize("sample", [False, True])
def test_everything_ideal_generates_the_digital_text(prompt, sample):
    digital = tiny_gpt2()
    ref = generate_with_clock(digital, prompt, Clock(None, HOUR), 24, sample=sample, seed=2)
    am = convert(tiny_gpt2(), mapping("ideal")).program(0)
    clock = Clock(am, HOUR, DAY, "sine:300K:360K:1d")
    res = generate_with_clock(am, prompt, clock, 24, sample=sample, seed=2)
    assert res.tokens == ref.tokens
    assert res.logprobs == pytest.approx(ref.logprobs, abs=1e-4)
    dlp, _ = digital_scores(digital, res.ids, res.prompt_len)
    assert dlp == pytest.approx(res.logprobs, abs=1e-4)
    assert len(set(ref.tokens)) > 2  # not a degenerate constant text


def test_digital_scores_are_teacher_forced(prompt):
    model = tiny_gpt2()
    res = generate_with_clock(model, prompt, Clock(None, 1.0), 8)
    lp, ent = digital_scores(model, res.ids, res.prompt_len)
    # greedy on the same digital model: its own log-probabilities, token by token
    assert lp == pytest.approx(res.logprobs, abs=1e-5)
    assert ent == pytest.approx(res.entropies, abs=1e-5)


# ------------------------------------------------------------------ the run


def test_run_generate_writes_trace_plots_and_manifest(tmp_path):
    out = tmp_path / "run"
    res = run_generate(
        loaded(tiny_gpt2()),
        prompt=[5, 17, 42],
        tokens=12,
        token_time="1d",
        start_age="1h",
        temperature="sine:300K:360K:7d",
        mapping=mapping(
            "pcm",
            dict(
                dac_bits=8,
                adc_bits=8,
                adc_bound=10.0,
                out_noise=0.04,
                read_noise=0.0175,
                drift_compensation="global",
            ),
        ),
        recalibrate_every="2d",
        fault_rate="gmin=1e-8,gmax=1e-9",
        seed=0,
        out=out,
    )
    rows = _trace(out)
    roles = ["attention", "head", "mlp"]
    assert list(rows[0]) == trace_columns(roles)
    for col in (
        "token_index",
        "time_s",
        "temperature_K",
        "token",
        "logprob",
        "entropy_bits",
        "digital_logprob",
        "faults_so_far",
        "updated",
    ):
        assert col in rows[0]
    assert len(rows) == 12
    assert [float(r["time_s"]) for r in rows] == [HOUR + k * DAY for k in range(12)]
    assert all(r["updated"] == "1" for r in rows)  # a day per token moves everything
    assert all(float(r["weight_error_mlp"]) > 0 for r in rows)
    assert int(rows[-1]["faults_so_far"]) > int(rows[0]["faults_so_far"])
    for png in ("temperature_time.png", "logprob.png", "entropy.png", "weight_error.png"):
        assert (out / png).stat().st_size > 1000
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "complete"
    assert man["config"]["tokens"] == 12
    assert "alarm_token" in man["cliff"] and man["cliff"]["h_nats"] > 0
    assert man["clock"]["state_updates"] >= 12
    results = read_csv(out / "results.csv")
    assert {r["metric"] for r in results} >= {"tokens", "mean_logprob", "state_updates"}
    assert res["metrics"]["tokens"] == 12
    events = read_csv(out / "events.csv")
    assert any(e["kind"] == "recalibration" for e in events)


def test_same_seed_same_trace(tmp_path):
    def go(seed, name, time_cache=True):
        run_generate(
            loaded(tiny_gpt2()),
            prompt=[1, 2, 3],
            tokens=10,
            token_time="6h",
            start_age="1d",
            temperature="ramp:300K:350K:2d",
            mapping=mapping(
                "pcm",
                dict(
                    dac_bits=8,
                    adc_bits=8,
                    adc_bound=10.0,
                    out_noise=0.04,
                    read_noise=0.0175,
                    drift_compensation="global",
                ),
            ),
            sample=True,
            seed=seed,
            time_cache=time_cache,
            out=tmp_path / name,
            plots=False,
        )
        return (tmp_path / name / "trace.csv").read_text()

    a, b, c = go(0, "a"), go(0, "b"), go(1, "c")
    assert a == b
    assert a != c
    # the time cache is a speed/memory trade only: regenerating every update gives the same
    assert go(0, "d", time_cache=False) == a


def test_seed_study_noise_schedule_on_the_digital_model(tmp_path):
    model = tiny_gpt2()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    res = run_generate(
        loaded(model),
        prompt=[3, 4],
        tokens=10,
        noise="gaussian",
        schedule="linear:0:0.02",
        out=tmp_path / "seed",
        plots=False,
    )
    rows = res["rows"]
    assert [r["sigma"] for r in rows] == pytest.approx([0.02 * k / 9 for k in range(10)])
    assert rows[0]["weight_error_mlp"] == 0.0
    assert rows[-1]["weight_error_mlp"] > rows[5]["weight_error_mlp"] > 0
    for n, p in model.named_parameters():
        assert torch.equal(p.detach(), before[n])  # restored bit for bit


def test_bad_generate_input_fails_before_work(tmp_path):
    lm = loaded(tiny_gpt2())
    with pytest.raises(ConfigError, match="context"):
        run_generate(lm, prompt=[1, 2], tokens=500, out=tmp_path / "a")
    with pytest.raises(ConfigError, match="schedule"):
        run_generate(lm, prompt=[1], tokens=4, noise="gaussian", out=tmp_path / "b")
    with pytest.raises(ConfigError, match="tokenizer"):
        run_generate(lm, prompt="hello", tokens=4, out=tmp_path / "c")
    with pytest.raises(ConfigError, match="fault"):
        parse_fault_rates("gmid=1e-9")
    with pytest.raises(ConfigError, match="analog mapping"):
        run_generate(lm, prompt=[1], tokens=4, recalibrate_every="1h", out=tmp_path / "d")
    assert parse_fault_rates("gmin=1e-9, outlier=2e-10") == {
        "faults.onset_gmin_per_s": 1e-9,
        "faults.onset_outlier_per_s": 2e-10,
    }
    clf = LoadedModel("mlp", "classifier", nn.Linear(2, 2), None, None)
    with pytest.raises(ConfigError, match="causal"):
        run_generate(clf, prompt=[1], tokens=2, out=tmp_path / "e")


# ------------------------------------------------------------------ cliff detector


def test_cliff_detector_finds_a_step_and_ignores_noise():
    g = torch.Generator().manual_seed(0)
    healthy = (torch.randn(200, generator=g) * 0.3).tolist()
    digital = [-2.0] * 200
    quiet = detect_cliff([d + x for d, x in zip(digital, healthy, strict=True)], digital)
    assert quiet["alarm_index"] is None
    broken = [x + (2.5 if i >= 120 else 0.0) for i, x in enumerate(healthy)]
    res = detect_cliff([d + x for d, x in zip(digital, broken, strict=True)], digital)
    assert 120 <= res["alarm_index"] <= 126
    assert 115 <= res["onset_index"] <= 121
    assert res["cusum"][-1] > res["h_nats"]
    # an overflowing model (non-finite gap) alarms at once
    assert detect_cliff([math.nan, 0.0], [0.0, 0.0])["alarm_index"] == 0


# ------------------------------------------------------------------ stream


def _classifier() -> LoadedModel:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(60, 8, generator=g)
    w = torch.randn(8, 3, generator=g)
    y = (x @ w).argmax(dim=1)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    with torch.no_grad():
        net[0].weight.copy_(torch.cat([w.t(), -w.t(), torch.zeros(10, 8)]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.cat([torch.eye(3), -torch.eye(3), torch.zeros(3, 10)], dim=1))
        net[2].bias.zero_()
    data = {"x_test": x, "y_test": y}
    return LoadedModel("toy-classifier", "classifier", net.eval(), None, data)


def test_stream_accuracy_over_deployment_time(tmp_path):
    from analogsim.studies.stream import run_stream

    lm = _classifier()
    res = run_stream(
        lm,
        input_time="1d",
        start_age="1h",
        temperature="ramp:300K:360K:60d",
        mapping=mapping("pcm"),
        inputs=90,
        window=10,
        out=tmp_path / "s",
    )
    rows = read_csv(tmp_path / "s" / "trace.csv")
    assert len(rows) == 90
    assert [float(r["time_s"]) for r in rows[:3]] == [HOUR, HOUR + DAY, HOUR + 2 * DAY]
    assert [int(r["label"]) for r in rows[:60]] == lm.data["y_test"].tolist()
    assert res["metrics"]["digital_accuracy"] == 1.0
    assert 0 <= res["metrics"]["accuracy"] <= 1
    assert (tmp_path / "s" / "accuracy_vs_time.png").exists()
    # ideal chip: every prediction equals the digital one
    ideal = run_stream(lm, input_time="1h", mapping=mapping("ideal"), out=tmp_path / "i")
    assert ideal["metrics"]["accuracy"] == 1.0


# ------------------------------------------------------------------ CLI


@pytest.fixture
def model_folder(tmp_path):
    """A tiny GPT-2 with its own byte-level BPE tokenizer, saved like a Hugging Face model."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from analogsim.models.tiny_gpt2 import train_tokenizer

    text = "\n\n".join(["the return statement returns a value from a function"] * 20)
    tok = train_tokenizer(text, vocab_size=300, model_max_length=128)
    cfg = GPT2Config(
        n_layer=1,
        n_embd=32,
        n_head=2,
        vocab_size=len(tok),
        n_positions=128,
        bos_token_id=0,
        eos_token_id=0,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = GPT2LMHeadModel(cfg)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from analogsim.cli import main

    monkeypatch.setattr(sys, "argv", ["analogsim", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_generate_prints_text_and_writes_the_run(model_folder, tmp_path, monkeypatch, capsys):
    out = tmp_path / "g"
    code, stdout, _ = _main(
        monkeypatch,
        capsys,
        "generate",
        str(model_folder),
        "--mapping",
        "all_analog",
        "--device",
        "pcm",
        "--prompt",
        "the return",
        "--tokens",
        "6",
        "--token-time",
        "1h",
        "--start-age",
        "1d",
        "--temperature",
        "sine:300K:360K:1d",
        "--seed",
        "0",
        "--out",
        str(out),
    )
    assert code == 0
    assert stdout.startswith("the return")  # the streamer printed the prompt and the text
    assert "run directory" in stdout
    rows = _trace(out)
    assert len(rows) == 6 and all(r["token_text"] != "" or r["token"] for r in rows)
    code, stdout, _ = _main(
        monkeypatch,
        capsys,
        "generate",
        str(model_folder),
        "--noise",
        "gaussian",
        "--schedule",
        "linear:0:0.02",
        "--tokens",
        "5",
        "--out",
        str(tmp_path / "n"),
        "--json",
    )
    assert code == 0
    assert json.loads(stdout)["metrics"]["tokens"] == 5


def test_cli_bad_input_is_one_clear_error(model_folder, tmp_path, monkeypatch, capsys):
    code, _, err = _main(
        monkeypatch,
        capsys,
        "generate",
        str(model_folder),
        "--temperature",
        "sine:300K",
        "--tokens",
        "3",
        "--out",
        str(tmp_path / "x"),
    )
    assert code == 2
    assert "error" in err and "sine" in err
    code, _, err = _main(
        monkeypatch,
        capsys,
        "generate",
        str(model_folder),
        "--schedule",
        "wiggle:1",
        "--noise",
        "gaussian",
        "--tokens",
        "3",
        "--out",
        str(tmp_path / "y"),
    )
    assert code == 2 and "schedule" in err


def test_cli_stream(monkeypatch, capsys, tmp_path):
    import analogsim.models

    monkeypatch.setattr(analogsim.models, "load_model", lambda name, progress=True: _classifier())
    code, stdout, _ = _main(
        monkeypatch,
        capsys,
        "stream",
        "toy",
        "--device",
        "pcm",
        "--input-time",
        "1h",
        "--inputs",
        "20",
        "--window",
        "5",
        "--out",
        str(tmp_path / "s"),
    )
    assert code == 0 and "accuracy" in stdout
    with (tmp_path / "s" / "trace.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 20


# ------------------------------------------------------------------ bench


def test_generation_bench_rows_have_the_bench_format():
    from analogsim.bench.clock import run_generation_bench
    from analogsim.bench.run import BENCH_COLUMNS

    rows = run_generation_bench(tokens=4, rounds=1, model=tiny_gpt2(), name="tiny")
    assert len(rows) == 6
    for r in rows:
        assert list(r) == BENCH_COLUMNS
        assert r["median_ms"] > 0 and r["ratio"] > 0
    assert {r["regime"] for r in rows} == {"realistic", "extreme"}


def test_rerun_with_the_same_out_resumes_without_redoing(tmp_path):
    kw = dict(prompt=[1, 2], tokens=5, token_time="1h", mapping=mapping("pcm"), out=tmp_path / "r")
    first = run_generate(loaded(tiny_gpt2()), **kw)
    n_rows = len(read_csv(tmp_path / "r" / "results.csv"))
    again = run_generate(loaded(tiny_gpt2()), **kw)
    assert again.get("resumed") is True
    assert len(read_csv(tmp_path / "r" / "results.csv")) == n_rows
    assert [r["token"] for r in again["rows"]] == [str(r["token"]) for r in first["rows"]]
    with pytest.raises(ConfigError, match="different run"):
        run_generate(loaded(tiny_gpt2()), **{**kw, "tokens": 6})


@pytest.mark.parametrize("sample", [False, True])
def test_interrupted_generation_keeps_its_trace_and_reruns(tmp_path, monkeypatch, sample):
    """Ctrl-C mid-generation: the tokens so far are written to trace.csv, the run is marked
    interrupted, and running again with the same --out redoes it to the same tokens."""
    kw = dict(
        prompt=[1, 2],
        tokens=10,
        token_time="1h",
        mapping=mapping("pcm"),
        sample=sample,
        out=tmp_path / "r",
        plots=False,
    )
    real = Clock.next_step
    calls = []

    def interrupting(self):
        calls.append(1)
        if len(calls) == 6:  # before forward 5: tokens 0..4 are chosen
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(Clock, "next_step", interrupting)
    with pytest.raises(KeyboardInterrupt):
        run_generate(loaded(tiny_gpt2()), **kw)
    partial = _trace(tmp_path / "r")
    assert [int(r["token_index"]) for r in partial] == [0, 1, 2, 3, 4]
    assert all(math.isfinite(float(r["digital_logprob"])) for r in partial)
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert manifest["interrupted_after_tokens"] == 5

    monkeypatch.setattr(Clock, "next_step", real)
    full = run_generate(loaded(tiny_gpt2()), **kw)
    assert full.get("resumed") is not True
    assert len(full["rows"]) == 10
    assert [r["token"] for r in full["rows"][:5]] == [int(r["token"]) for r in partial]
    assert [r["logprob"] for r in full["rows"][:5]] == pytest.approx(
        [float(r["logprob"]) for r in partial], rel=1e-9
    )
