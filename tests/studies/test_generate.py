"""Tests of the ``generate`` study (``analogsim/studies/generate.py``): the run directory,
its trace and resume, the CLI and the bench."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch
from torch import nn
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

from analogsim.bench.clock import run_generation_bench
from analogsim.bench.run import BENCH_COLUMNS
from analogsim.cli import main
from analogsim.clock.core import Clock
from analogsim.errors import ConfigError
from analogsim.models import LoadedModel, load_model
from analogsim.models.tiny_gpt2 import train_tokenizer
from analogsim.report.rundir import read_csv
from analogsim.studies.generate import GenerateOptions, run_generate
from analogsim.studies.trace import trace_columns
from tests.clock.conftest import loaded, tiny_gpt2
from tests.conftest import analog_mapping

HOUR, DAY = 3600.0, 86400.0


def _trace(path) -> list[dict[str, str]]:
    return read_csv(path / "trace.csv")


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
        mapping=analog_mapping(
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
            mapping=analog_mapping(
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
    with pytest.raises(ConfigError, match="analog mapping"):
        run_generate(lm, prompt=[1], tokens=4, recalibrate_every="1h", out=tmp_path / "d")
    clf = LoadedModel("mlp", "classifier", nn.Linear(2, 2), None, None)
    with pytest.raises(ConfigError, match="causal"):
        run_generate(clf, prompt=[1], tokens=2, out=tmp_path / "e")


# ------------------------------------------------------------------ CLI


@pytest.fixture
def model_folder(tmp_path):
    """A tiny GPT-2 with its own byte-level BPE tokenizer, saved like a Hugging Face model."""
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


# ------------------------------------------------------------------ chat template

CHAT = (
    "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant] {% endif %}"
)


@pytest.fixture
def chat_folder(model_folder):
    """The tiny GPT-2 of ``model_folder`` with a chat template in its tokenizer."""
    tok = AutoTokenizer.from_pretrained(model_folder)
    tok.chat_template = CHAT
    tok.save_pretrained(model_folder)
    return model_folder


def _prompt_text(out) -> str:
    man = json.loads((out / "manifest.json").read_text())
    tok = AutoTokenizer.from_pretrained(man["config"]["model"])
    return tok.decode(man["prompt_ids"])


def test_cli_chat_prompt_is_a_user_message_and_raw_prompt_skips_it(
    chat_folder, tmp_path, monkeypatch, capsys
):
    args = ("generate", str(chat_folder), "--prompt", "the return", "--tokens", "4")
    code, stdout, _ = _main(monkeypatch, capsys, *args, "--out", str(tmp_path / "chat"))
    assert code == 0
    assert _prompt_text(tmp_path / "chat") == "[user] the return\n[assistant] "
    assert stdout.startswith("the return\n")  # the message, not the template's text
    assert "[user]" not in stdout and "[assistant]" not in stdout
    man = json.loads((tmp_path / "chat" / "manifest.json").read_text())
    assert man["config"]["chat_template"] is True and man["config"]["raw_prompt"] is False
    code, stdout, _ = _main(
        monkeypatch, capsys, *args, "--raw-prompt", "--out", str(tmp_path / "raw")
    )
    assert code == 0
    assert _prompt_text(tmp_path / "raw") == "the return"
    assert stdout.startswith("the return")
    man = json.loads((tmp_path / "raw" / "manifest.json").read_text())
    assert man["config"]["chat_template"] is False and man["config"]["raw_prompt"] is True


def test_api_raw_prompt_and_token_ids(chat_folder, tmp_path):
    lm = load_model(str(chat_folder), progress=False)
    chat = run_generate(lm, prompt="the return", tokens=3, out=tmp_path / "a", plots=False)
    raw = run_generate(
        lm, GenerateOptions(prompt="the return", raw_prompt=True, tokens=3), out=tmp_path / "b"
    )
    assert _prompt_text(tmp_path / "a").startswith("[user] the return")
    assert _prompt_text(tmp_path / "b") == "the return"
    assert chat["metrics"]["tokens"] == raw["metrics"]["tokens"] == 3
    # token ids never go through the template
    run_generate(lm, prompt=[5, 6], tokens=2, out=tmp_path / "c", plots=False)
    man = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert man["prompt_ids"] == [5, 6] and man["config"]["chat_template"] is False


# ------------------------------------------------------------------ bench


def test_generation_bench_rows_have_the_bench_format():
    rows = run_generation_bench(tokens=4, rounds=1, model=tiny_gpt2(), name="tiny")
    assert len(rows) == 6
    for r in rows:
        assert list(r) == BENCH_COLUMNS
        assert r["median_ms"] > 0 and r["ratio"] > 0
    assert {r["regime"] for r in rows} == {"realistic", "extreme"}


def test_rerun_with_the_same_out_resumes_without_redoing(tmp_path):
    kw = dict(
        prompt=[1, 2], tokens=5, token_time="1h", mapping=analog_mapping("pcm"), out=tmp_path / "r"
    )
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
        mapping=analog_mapping("pcm"),
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


def test_options_object_and_keywords_give_the_same_run(tmp_path):
    kw = dict(
        prompt=[1, 2, 3], tokens=6, token_time="1h", mapping=analog_mapping("pcm"), sample=True
    )
    a = run_generate(loaded(tiny_gpt2()), GenerateOptions(**kw), out=tmp_path / "a", plots=False)
    b = run_generate(loaded(tiny_gpt2()), out=tmp_path / "b", plots=False, **kw)
    # keywords replace fields of the options object
    c = run_generate(
        loaded(tiny_gpt2()),
        GenerateOptions(**{**kw, "tokens": 3}),
        tokens=6,
        out=tmp_path / "c",
        plots=False,
    )
    traces = [(tmp_path / d / "trace.csv").read_text() for d in "abc"]
    assert traces[0] == traces[1] == traces[2]
    assert a["text"] == b["text"] == c["text"]
    with pytest.raises(TypeError, match="tokens"):
        run_generate(loaded(tiny_gpt2()), tokns=6, out=tmp_path / "d")
