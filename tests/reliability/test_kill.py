"""``kill -9`` at seeded random moments of every measuring command, then the same
command again: the run finishes with exactly the rows of an uninterrupted run."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analogsim.cli import app
from analogsim.report.rundir import read_results
from analogsim.studies.clocked import RESULT_KEYS
from analogsim.studies.compare import COMPARE_KEYS
from analogsim.studies.evaluate import EVAL_KEYS
from analogsim.studies.sweep import SWEEP_KEYS
from analogsim.studies.train import TRAIN_KEYS
from tests.conftest import make_gpt2
from tests.reliability.harness import ENV, command, compare_rows, kill_at_random, run


@pytest.fixture(scope="session")
def gpt2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 saved HF-style (no tokenizer: prompts are token ids)."""
    folder = tmp_path_factory.mktemp("kill-gpt2")
    make_gpt2(vocab=100, n_positions=64).save_pretrained(folder)
    return folder


# command, its key columns (+ metric), points it runs (0: unknown, any moment)
CASES = {
    "eval": (
        [
            "eval",
            "digits-mlp",
            "--mapping",
            "all_analog",
            "--device",
            "pcm",
            "--times",
            "1s,1h,1d",
            "--seeds",
            "2",
            "--no-progress",
        ],
        [*EVAL_KEYS, "metric"],
        7,
    ),
    "sweep": (
        ["sweep", "digits-mlp", "--sigma", "0:0.2:4", "--seeds", "2", "--no-progress"],
        [*SWEEP_KEYS, "metric"],
        8,
    ),
    "compare": (
        [
            "compare",
            "digits-mlp",
            "--mappings",
            "all_digital",
            "all_analog",
            "--times",
            "1h,1d",
            "--seeds",
            "1",
            "--no-progress",
        ],
        [*COMPARE_KEYS, "metric"],
        5,
    ),
    "generate": (
        [
            "generate",
            "{gpt2}",
            "--mapping",
            "all_analog",
            "--device",
            "pcm",
            "--prompt-ids",
            "1,2,3",
            "--tokens",
            "32",
            "--quiet",
        ],
        RESULT_KEYS,
        1,
    ),
    "train": (
        [
            "train",
            "digits-mlp",
            "--mapping",
            "all_analog",
            "--device",
            "pcm",
            "--method",
            "plain",
            "--epochs",
            "1",
            "--no-progress",
        ],
        TRAIN_KEYS,
        7,
    ),
}


@pytest.fixture(scope="session")
def reference(cli_cache, gpt2_folder, tmp_path_factory):  # type: ignore[no-untyped-def]
    """Rows of an uninterrupted run of each case, in-process (no start-up), once."""
    made: dict[str, list[dict[str, str]]] = {}

    def rows(name: str) -> list[dict[str, str]]:
        if name not in made:
            out = tmp_path_factory.mktemp(f"ref-{name}")
            env = {**ENV, "ANALOGSIM_CACHE": str(cli_cache)}
            res = CliRunner().invoke(app, _args(name, gpt2_folder, out)[3:], env=env)
            assert res.exit_code == 0, res.output
            made[name] = read_results(out)
        return made[name]

    return rows


def _args(name: str, gpt2: Path, out: Path) -> list[str]:
    args = [a.replace("{gpt2}", str(gpt2)) for a in CASES[name][0]]
    return command(*args, "--out", out)


def _kill_and_resume(name, seed, tmp_path, cli_cache, gpt2_folder, reference) -> None:  # type: ignore[no-untyped-def]
    _, keys, points = CASES[name]
    want = reference(name)
    rng = random.Random(f"{name}-{seed}")
    out = tmp_path / name
    args = _args(name, gpt2_folder, out)
    killed = kill_at_random(args, out, cli_cache, rng, points)
    again = run(args, cli_cache)
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    if killed and (out / "results.sqlite").exists() and "resuming:" in again.stderr:
        assert "points already done" in again.stderr
    compare_rows(out, want, keys)
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"


@pytest.mark.parametrize("name", list(CASES))
def test_kill_then_rerun_gives_the_rows_of_an_uninterrupted_run(
    name, tmp_path, cli_cache, gpt2_folder, reference
):
    _kill_and_resume(name, 0, tmp_path, cli_cache, gpt2_folder, reference)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("name", list(CASES))
def test_kill_at_more_moments(name, seed, tmp_path, cli_cache, gpt2_folder, reference):
    _kill_and_resume(name, seed, tmp_path, cli_cache, gpt2_folder, reference)


@pytest.mark.slow
def test_kill_twice_then_rerun(tmp_path, cli_cache, gpt2_folder, reference):
    """Two kills in a row on the same folder (a resumed run killed again)."""
    _, keys, points = CASES["eval"]
    out = tmp_path / "eval"
    args = _args("eval", gpt2_folder, out)
    rng = random.Random("twice")
    for _ in range(2):
        kill_at_random(args, out, cli_cache, rng, points)
    again = run(args, cli_cache)
    assert again.returncode == 0, again.stderr
    compare_rows(out, reference("eval"), keys)
