"""Every shipped study's --quick variant runs and writes its report beside the published
numbers: in the suite on a tiny random GPT-2 (``--model``), and as shipped (tiny-gpt2,
built on first use) in the slow job."""

from __future__ import annotations

from pathlib import Path

import pytest

from analogsim.report.rundir import read_results
from analogsim.runner.executor import InlineExecutor
from analogsim.runner.run import run_experiment

STUDIES = {
    "noise_sweep": "entropy",
    "layer_sensitivity": "0.034",
    "goldilocks": "+7.8 %",
    "scaling": "0.0129",
    "temporal_drift": "sigma_end / sqrt(n)",
    "partitions": "energy per token",
}


@pytest.mark.parametrize("study", sorted(STUDIES))
def test_quick_variant_on_a_tiny_model(study: str, lm_folder: Path, tmp_path: Path) -> None:
    res = run_experiment(
        Path("experiments") / f"{study}.toml",
        out=tmp_path / study,
        quick=True,
        models=[str(lm_folder)],
        executor=InlineExecutor(),
        progress=False,
    )
    assert res["failed"] == 0, res["errors"]
    assert res["done"] == res["points"] > 0
    report = (tmp_path / study / "report.md").read_text()
    assert STUDIES[study] in report  # the published number (or protocol) beside ours
    assert "(quick)" in report
    rows = read_results(tmp_path / study)
    assert {r["model"] for r in rows} == {str(lm_folder)}
    assert (tmp_path / study / "summary.csv").exists()


@pytest.mark.slow
@pytest.mark.parametrize("study", sorted(STUDIES))
def test_quick_variant_as_shipped(study: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from analogsim.cli import app

    out = tmp_path / study
    result = CliRunner().invoke(
        app,
        [
            "run",
            f"experiments/{study}.toml",
            "--quick",
            "--out",
            str(out),
            "--workers",
            "2",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert STUDIES[study] in (out / "report.md").read_text()
