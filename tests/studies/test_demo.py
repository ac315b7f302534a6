"""Tests of ``analogsim/studies/demo.py`` on a tiny random GPT-2 in place of smollm2 (the
model loader is monkeypatched): the run directory, report.md's answer and perplexity
tables, the plots, resume, and the step lines with the time left."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
import torch

from analogsim.errors import ConfigError
from analogsim.models import LoadedModel
from analogsim.studies import demo
from analogsim.studies.demo import (
    ANALOG,
    DIGITAL,
    GRID,
    HOUR,
    HYBRID,
    YEAR,
    Chip,
    _Steps,
    run_demo,
)
from tests.conftest import make_gpt2

pytestmark = pytest.mark.filterwarnings("ignore:mapping 'all_digital' places no layer analog")

VOCAB = 100
TEMPLATE = "<user>{}<assistant>"


class _Tok:
    """Characters as token ids (a..z and space, then '|', newline, '<', '>'), EOS 0, and a
    chat template that wraps the message (like an instruct model's)."""

    chars = " abcdefghijklmnopqrstuvwxyz?|\n<>/"
    eos_token_id = 0
    pad_token_id = None
    chat_template = "wrap"

    def __init__(self) -> None:
        self.messages: list[str] = []

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        self.messages.append(messages[-1]["content"])
        return TEMPLATE.format(messages[-1]["content"])

    def __call__(self, text, return_tensors=None, add_special_tokens=True):
        ids = [1 + self.chars.index(c) if c in self.chars else 1 for c in text.lower()]
        return {"input_ids": torch.tensor([ids]) if return_tensors == "pt" else ids}

    def decode(self, ids, skip_special_tokens=False):
        ids = [int(i) for i in ids]
        return "".join(
            self.chars[i - 1] if 0 < i <= len(self.chars) else ("" if i == 0 else "~") for i in ids
        )


@pytest.fixture
def tiny_lm(monkeypatch):
    """A random GPT-2 with the character tokenizer, loaded in place of smollm2."""
    tok = _Tok()
    gen = torch.Generator().manual_seed(0)
    heldout = torch.randint(1, VOCAB, (300,), generator=gen)
    lm = LoadedModel(
        name="tiny-lm",
        kind="causal-lm",
        model=make_gpt2(n_positions=64, sharpen=4.0),
        tokenizer=tok,
        data={"heldout_ids": heldout},
        info={"weights": "random float weights"},
    )
    loaded = []

    def fake_load(name, *, progress=True):
        loaded.append(name)
        return lm

    monkeypatch.setattr(demo, "load_model", fake_load)
    monkeypatch.setattr(demo, "pending_build", lambda name: None)
    lm.loaded = loaded
    return lm


def _rows(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


CHIPS = (
    Chip(DIGITAL),
    Chip(HYBRID, HOUR, 300.0),
    Chip(HYBRID, YEAR, 358.15),
    Chip(ANALOG, HOUR, 300.0),
)
QS = ("why is the sky blue?", "a|b")


def test_run_demo_writes_answers_perplexity_energy_report_and_plots(tiny_lm, tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "GRID", CHIPS)
    root = run_demo(tmp_path / "demo", questions=QS, tokens=5, progress=False)
    assert tiny_lm.loaded == ["smollm2"]
    assert tiny_lm.tokenizer.messages.count(QS[0]) >= 1  # through the chat template
    rows = _rows(root / "results.csv")
    by = {
        (r["mapping"], r["time_s"], r["temperature_K"], r["question"], r["metric"]): r for r in rows
    }
    # one perplexity and one answer per question on every chip, one energy per partition
    assert sum(r["metric"] == "perplexity" for r in rows) == len(CHIPS)
    assert sum(r["metric"] == "answer" for r in rows) == len(CHIPS) * len(QS)
    energy = {r["mapping"]: float(r["value"]) for r in rows if r["metric"] == "energy_per_token_J"}
    assert set(energy) == {DIGITAL, HYBRID, ANALOG}
    assert energy[ANALOG] < energy[DIGITAL]
    for r in rows:
        if r["metric"] == "perplexity":
            assert math.isfinite(float(r["value"])) and float(r["value"]) > 1
        if r["metric"] == "answer":
            assert 0 <= float(r["value"]) <= 5
    digital = [
        r for r in rows if r["mapping"] == DIGITAL and r["metric"] in ("perplexity", "answer")
    ]
    shares = {r["mapping"]: float(r["value"]) for r in rows if r["metric"] == "analog_param_share"}
    assert shares[DIGITAL] == 0 and 0 < shares[HYBRID] < shares[ANALOG] <= 1
    assert {r["seed"] for r in digital} == {"-1"} and len(digital) == 1 + len(QS)
    # the digital answer is what the digital model says to the templated prompt
    ids = tiny_lm.tokenizer(TEMPLATE.format(QS[0]))["input_ids"]
    with torch.no_grad():
        out = tiny_lm.model.generate(
            torch.tensor([ids]), max_new_tokens=5, do_sample=False, pad_token_id=0
        )
    want = tiny_lm.tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)
    got = next(r for r in digital if r["question"] == QS[0])
    assert got["text"] == want

    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["command"] == "demo"
    assert manifest["config"]["questions"] == list(QS)
    assert manifest["config"]["chat_template"] is True
    assert "pcm" in manifest["device_cards"]
    assert {p.name for p in root.glob("*.png")} == {
        "perplexity_vs_age.png",
        "perplexity_vs_energy.png",
    }

    report = (root / "report.md").read_text()
    lines = report.splitlines()
    assert lines[0] == "# analogsim demo: tiny-lm on simulated analog chips"
    assert "random float weights" in report
    assert "![perplexity_vs_age](perplexity_vs_age.png)" in lines
    # one table per question, one row per chip, in the grid's order
    for i, q in enumerate(QS):
        head = lines.index(f"### {i + 1}. {q}")
        assert lines[head + 2 : head + 4] == ["| chip | answer |", "|---|---|"]
        table = lines[head + 4 : head + 4 + len(CHIPS)]
        assert [row.split(" | ")[0][2:] for row in table] == [c.label() for c in CHIPS]
        assert all(row.count("|") - row.count("\\|") == 3 for row in table), table
    labels = [c.label() for c in CHIPS]
    assert labels[2] == "digital attention + analog MLP, 1y, 85 C"
    # perplexity table: the digital row is 1x digital, every row as wide as the header
    head = next(i for i, line in enumerate(lines) if line.startswith("| partition | age"))
    table = lines[head : head + 2 + len(CHIPS)]
    assert {row.count("|") for row in table} == {8}
    first = table[2].split(" | ")
    ppl = float(by[(DIGITAL, "0.0", "0.0", "", "perplexity")]["value"])
    assert first[:5] == ["| all digital", "-", "-", f"{ppl:.4g}", "1"]
    assert table[3].startswith("| digital attention + analog MLP | 1h | 27 C | ")


def test_run_demo_resumes_without_measuring_again(tiny_lm, tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "GRID", CHIPS[:2])
    root = run_demo(tmp_path / "demo", questions=QS[:1], tokens=3, progress=False)
    before = (root / "results.csv").read_text()
    calls = []
    monkeypatch.setattr(demo, "convert", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(demo, "generate_samples", lambda *a, **k: calls.append(a))
    again = run_demo(tmp_path / "demo", questions=QS[:1], tokens=3, progress=False)
    assert again == root and calls == []
    assert (root / "results.csv").read_text() == before
    # another question is another run
    with pytest.raises(ConfigError, match="different run"):
        run_demo(tmp_path / "demo", questions=("other?",), tokens=3, progress=False)


def test_run_demo_prints_answers_and_steps(tiny_lm, tmp_path, monkeypatch, capsys):
    from rich.console import Console

    monkeypatch.setattr(demo, "GRID", CHIPS[:2])
    out = io.StringIO()
    run_demo(tmp_path / "d", questions=QS[1:], tokens=3, console=Console(file=out, width=200))
    printed = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in printed] == [f"Q1 {c.label()}" for c in CHIPS[:2]]
    err = capsys.readouterr().err
    steps = [line for line in err.splitlines() if line.startswith("[")]
    assert steps[0].startswith("[1/") and "loading smollm2" in steps[0]
    assert "left]" in steps[0]
    assert any("perplexity" in line for line in steps)
    total = int(steps[0].split("/")[1].split()[0])
    assert len(steps) == total  # every planned step is announced once


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"questions": ()}, "question"),
        ({"questions": (" ",)}, "question"),
        ({"tokens": 0}, "tokens"),
    ],
)
def test_run_demo_refuses_bad_settings_before_any_work(tiny_lm, tmp_path, kwargs, key):
    with pytest.raises(ConfigError) as info:
        run_demo(tmp_path / "never", progress=False, **kwargs)
    assert info.value.key == key
    assert not (tmp_path / "never").exists() and tiny_lm.loaded == []


def test_grid_covers_each_partition_ages_and_both_temperatures():
    analog = [c for c in GRID if c.analog]
    assert GRID[0] == Chip(DIGITAL)
    assert {c.mapping for c in analog} == {HYBRID, ANALOG}
    assert {c.time_s for c in analog if c.mapping == HYBRID} == {HOUR, 86400.0, YEAR}
    assert {c.temperature_K for c in analog} == {300.0, 358.15}
    assert len(demo.FULL_GRID) == 1 + 2 * 3 * 2


def test_steps_time_left_scales_with_the_speed_of_finished_steps(monkeypatch):
    clock = iter([0.0, 0.0, 10.0, 10.0])
    monkeypatch.setattr(demo.time, "perf_counter", lambda: next(clock))
    s = _Steps(enabled=True, stream=io.StringIO())
    s.plan("a", 5.0)
    s.plan("b", 20.0)
    assert s.left() == 25.0  # nothing finished: the plan as it is
    s.begin("a", "first")
    s.end("a")  # took 10 s instead of 5: the rest is twice as slow
    assert s.left() == 40.0
    s.begin("b", "second")
    assert s.stream.getvalue().splitlines() == [
        "[1/2 0:00, ~0:25 left] first",
        "[2/2 0:10, ~0:40 left] second",
    ]
