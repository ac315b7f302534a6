"""Pipes and units (issue 10 items 2, 3 and 7): what a script reading ``analogsim`` sees.

* Every command with ``--json`` (found by reading the typer options of ``analogsim.cli``,
  so a new one cannot be forgotten) runs as a subprocess with standard output a pipe and
  progress bars on: its stdout is exactly one JSON document (``json.loads``), numbers are
  numbers (``time_s`` and ``temperature_K`` included), non-finite values are the strings
  ``"inf"``, ``"-inf"``, ``"nan"``; progress bars and notes go to stderr.
* Units are never guessed: a bare temperature, a bare time, an out-of-range temperature and
  an empty list item are one line naming the option on stderr, exit 2, no run directory.
* A model that does not exist leaves no run directory.

Inputs are small: digits-mlp (built once per session into a temporary cache) and a random
GPT-2 saved with ``save_pretrained`` (never the built-in tiny-gpt2).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from analogsim.cli import app, main
from analogsim.models.tiny_gpt2 import train_tokenizer
from analogsim.progress import quiet_transformers
from tests.conftest import make_gpt2
from tests.reliability.harness import ENV, command, count_tracebacks
from tests.runner.conftest import sweep_config

# a pipe, an 80-column terminal width for the bars, no network for hub names
PIPE_ENV = {"COLUMNS": "80", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def json_commands() -> list[str]:
    """Every command (``"device show"`` for sub-commands) that has a ``--json`` option."""
    found = []

    def walk(cmd: Any, path: tuple[str, ...]) -> None:
        if hasattr(cmd, "commands"):  # a group (typer's own click)
            for name, sub in cmd.commands.items():
                walk(sub, (*path, name))
        elif any("--json" in p.opts for p in cmd.params):
            found.append(" ".join(path))

    walk(typer.main.get_command(app), ())
    return sorted(found)


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random GPT-2 with a 300-entry BPE, saved HF-style (milliseconds to build)."""
    folder = tmp_path_factory.mktemp("random-gpt2")
    tok = train_tokenizer("The quick brown fox jumps over the lazy dog.\n" * 50, 300, 64)
    model = make_gpt2(0, vocab=len(tok), n_positions=64, dropout=0.0)
    with quiet_transformers():
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
    return folder


def _run(args: list[Any], cache: Path) -> subprocess.CompletedProcess[str]:
    """``analogsim ARGS`` in a subprocess, stdout and stderr pipes (tracebacks counted)."""
    env = {**os.environ, **ENV, **PIPE_ENV, "ANALOGSIM_CACHE": str(cache)}
    done = subprocess.run(command(*args), env=env, capture_output=True, text=True, timeout=600)
    count_tracebacks(done.stderr)
    return done


def _args(name: str, out: Path, gpt2: Path, checkpoint: Path | None) -> list[Any]:
    """The smallest run of command ``name`` with ``--json`` (its run directory in ``out``)."""
    chip = ["--mapping", "all_analog", "--device", "pcm"]
    return {
        "attribute": ["attribute", "digits-mlp", "--device", "pcm", "--out", out],
        "devices": ["devices"],
        "device show": ["device", "show", "pcm", "--times", "1h", "--samples", "1000"],
        "roles": ["roles", "digits-mlp"],
        "map": ["map", "digits-mlp"],
        "eval": ["eval", "digits-mlp", "--times", "1h,1d", "--seeds", "1", "--out", out],
        "sweep": ["sweep", "digits-mlp", "--sigma", "0,0.02", "--seeds", "1", "--out", out],
        "compare": [
            "compare",
            "digits-mlp",
            "--mappings",
            "all_digital,all_analog",
            "--times",
            "1h",
            "--seeds",
            "1",
            "--out",
            out,
        ],
        "generate": ["generate", gpt2, *chip, "--tokens", "3", "--out", out],
        "stream": ["stream", "digits-mlp", *chip, "--inputs", "10", "--out", out],
        "train": ["train", "digits-mlp", *chip, "--method", "plain", "--epochs", "1", "--out", out],
        "robustness": ["robustness", checkpoint, "--times", "1h", "--seeds", "1", "--out", out],
        "export": ["export", "digits-mlp", "--to", "aihwkit", "--out", out],
        # an aihwkit state dict written by export (the test exports first)
        "import": [
            "import",
            Path(out) / "exported" / "state_dict.pt",
            "--model",
            "digits-mlp",
            "--out",
            out / "ckpt",
        ],
        "run": [
            "run",
            Path(out) / "exp.toml",
            "--model",
            gpt2,
            "--workers",
            "1",
            "--out",
            out / "run",
        ],
    }[name] + ["--json"]


def _walk(x: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every leaf of a JSON document with its path."""
    if isinstance(x, dict):
        return [leaf for k, v in x.items() for leaf in _walk(v, f"{path}.{k}")]
    if isinstance(x, list):
        return [leaf for i, v in enumerate(x) for leaf in _walk(v, f"{path}[{i}]")]
    return [(path, x)]


TEXT_KEYS = ("name", "tied_to", "text", "prompt", "run_dir", "checkpoint", "analog_layers_read")
"""Keys whose values are text even when they look like numbers (layer "0", generated text)."""
NUMERIC_KEYS = ("time_s", "temperature_K", "mean", "std", "value", "digital", "sigma")


@pytest.fixture(scope="module")
def train_run(cli_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """``train --json`` once: its result, and its run directory (robustness reads the
    checkpoint)."""
    out = tmp_path_factory.mktemp("pipes") / "train"
    return _run(_args("train", out, Path(), None), cli_cache), out


def test_the_list_of_json_commands_is_complete():
    """A command given ``--json`` later is found here, and then needs an entry in _args."""
    assert json_commands() == sorted(
        [
            "attribute",
            "compare",
            "device show",
            "devices",
            "eval",
            "export",
            "generate",
            "import",
            "map",
            "robustness",
            "roles",
            "run",
            "stream",
            "sweep",
            "train",
        ]
    )


@pytest.mark.parametrize("name", json_commands())
def test_json_stdout_is_one_json_document(name, cli_cache, gpt2_folder, train_run, tmp_path):
    """stdout a pipe, progress bars on: stdout parses as JSON, numbers are numbers, the
    non-finite ones the documented strings; bars and notes are on stderr."""
    if name == "train":
        done, out = train_run
    else:
        out = tmp_path / "run"
        checkpoint = train_run[1] / "checkpoint"
        if name == "import":  # a state dict to read back: export one
            exported = _run(_args("export", out / "exported", gpt2_folder, None), cli_cache)
            assert exported.returncode == 0, exported.stderr
        if name == "run":  # the smallest experiment: one role, two sigmas, one seed
            out.mkdir(parents=True)
            (out / "exp.toml").write_text(sweep_config(str(gpt2_folder), "[0.0, 0.05]", 1))
        done = _run(_args(name, out, gpt2_folder, checkpoint), cli_cache)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)  # exactly one document: no bar, no note, no text
    assert doc not in (None, [], {})
    assert "Traceback" not in done.stderr
    for path, value in _walk(doc):
        key = path.rsplit(".", 1)[-1].split("[")[0]  # a list item: its list's key
        if isinstance(value, str) and key not in TEXT_KEYS:
            # a number written as text is a bug; inf and nan are the documented strings
            try:
                float(value)
            except ValueError:
                continue
            assert value in ("inf", "-inf", "nan"), f"{path} = {value!r} is a number as text"
        if key in NUMERIC_KEYS and value not in ("inf", "-inf", "nan"):
            assert value is None or isinstance(value, int | float), (path, value)
            assert value is None or math.isfinite(value)
    if name in ("eval", "sweep", "compare", "train"):
        bar = {"eval": "eval digits-mlp", "sweep": "sweep digits-mlp", "train": "train"}
        assert bar.get(name, "eval digits-mlp") in done.stderr  # the bar went to stderr
        bars = [line for line in done.stderr.splitlines() if " eta " in line]
        assert bars and all(len(line) <= 80 for line in bars), done.stderr  # COLUMNS=80


def test_eval_json_summary_holds_numbers(cli_cache, tmp_path):
    """The repro of issue 10 item 2: time_s and temperature_K are numbers, also when the
    run resumes from results.csv (every cell read back as text)."""
    out = tmp_path / "run"
    args = ["eval", "digits-mlp", "--times", "1h,1d", "--seeds", "1", "--out", out, "--json"]
    for _ in range(2):  # run, then resume (everything read back from disk)
        done = _run(args, cli_cache)
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)["summary"]
        assert sorted(r["time_s"] for r in summary) == [3600.0, 86400.0]
        assert {r["temperature_K"] for r in summary} == {300.0}
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(r["time_s"] for r in manifest["summary"]) == [3600.0, 86400.0]


def _main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: Any) -> Any:
    """``analogsim ARGS`` through the entry point in-process (its error handling included):
    the exit code and what it printed."""
    monkeypatch.setattr(sys, "argv", ["analogsim", *map(str, args)])
    for k, v in {**PIPE_ENV, "COLUMNS": "400"}.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code, capsys.readouterr()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--temperature", "85"], ["--temperature", "needs a unit", "85C", "358.15K"]),
        (["--temperature", "5K"], ["--temperature", "out of range", "233 K to 398.15 K"]),
        (["--temperature", "300K,400K"], ["--temperature", "out of range", "400K"]),
        (["--times", "3600"], ["--times", "needs a unit", "3600s"]),
        (["--times", "1h,,1d"], ["--times", "item 2 of 3 is empty"]),
    ],
)
def test_units_are_never_guessed(monkeypatch, capsys, tmp_path, args, words):
    """One line on stderr naming the option, exit 2, nothing on stdout, no run directory."""
    out = tmp_path / "run"
    code, printed = _main(monkeypatch, capsys, "eval", "digits-mlp", *args, "--out", out, "--json")
    text = " ".join(printed.err.split())
    assert code == 2 and text.startswith("error:") and all(w in text for w in words), text
    assert printed.out == "" and "Traceback" not in printed.err
    assert not out.exists()


@pytest.mark.parametrize("cmd", ["eval", "sweep", "compare"])
def test_a_missing_model_leaves_no_run_directory(monkeypatch, capsys, tmp_path, cmd):
    """Like every other bad input: one line, exit 2, and no (failed) run directory."""
    out = tmp_path / "run"
    model = "./no/such/folder"
    code, printed = _main(monkeypatch, capsys, cmd, model, "--seeds", "1", "--out", out)
    assert code == 2 and "Traceback" not in printed.err
    assert f"model '{model}'" in " ".join(printed.err.split())
    assert not out.exists()


def test_a_missing_hub_model_leaves_no_run_directory(cli_cache, tmp_path):
    """The repro of issue 10 item 7, offline (a subprocess: the hub reads HF_HUB_OFFLINE
    when it is imported)."""
    out = tmp_path / "run"
    done = _run(["eval", "no-such-model", "--times", "1h", "--seeds", "1", "--out", out], cli_cache)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "model 'no-such-model'" in " ".join(done.stderr.split())
    assert not out.exists()
