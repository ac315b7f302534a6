"""Redrawing a run directory's plots from its results.csv and manifest.json
(``analogsim/studies/redraw.py``), from hand-made run directories."""

from __future__ import annotations

import json

import pytest

from analogsim.errors import ConfigError
from analogsim.report.rundir import RunDir
from analogsim.studies.compare import COMPARE_COLUMNS, COMPARE_KEYS
from analogsim.studies.evaluate import EVAL_COLUMNS, EVAL_KEYS
from analogsim.studies.redraw import redraw
from analogsim.studies.sweep import SWEEP_COLUMNS, SWEEP_KEYS

PNG = b"\x89PNG\r\n\x1a\n"


def _png(path) -> bool:
    return path.read_bytes()[:8] == PNG


def _rows(extra: dict) -> list[dict]:
    rows = [dict(model="m", mapping="digital", device="", seed=-1, time_s=0.0, temperature_K=0.0)]
    rows += [
        dict(model="m", mapping="all_analog", device="pcm", seed=s, time_s=t, temperature_K=300.0)
        for s in (0, 1)
        for t in (1.0, 3600.0)
    ]
    return [
        {**r, **extra, "metric": "accuracy", "value": 0.9 - 0.01 * i} for i, r in enumerate(rows)
    ]


def test_redraw_eval(tmp_path):
    with RunDir(tmp_path, "eval", {"model": "m"}, EVAL_COLUMNS, EVAL_KEYS) as run:
        run.write(_rows({}))
    paths = redraw(tmp_path)
    assert [p.name for p in paths] == ["accuracy_vs_time.png"] and _png(paths[0])


def test_redraw_compare_with_energy(tmp_path):
    with RunDir(tmp_path, "compare", {"model": "m"}, COMPARE_COLUMNS, COMPARE_KEYS) as run:
        run.write(_rows({"vary": ""}))
        run.note(summary=[{"mapping": "all_analog", "vary": "", "energy_per_token_J": 1e-6}])
    paths = redraw(tmp_path)
    assert [p.name for p in paths] == ["accuracy_vs_time.png", "accuracy_vs_energy.png"]
    assert all(_png(p) for p in paths)


def test_redraw_sweep_with_crossings(tmp_path):
    rows = [
        dict(
            model="m",
            noise="gaussian",
            relative=False,
            roles="all-but-embeddings",
            seed=seed,
            sigma=sigma,
            metric=metric,
            value=v * (1 + sigma * 10),
        )
        for seed in (0, 1)
        for sigma in (0.0, 0.02, 0.05)
        for metric, v in (("perplexity", 10.0), ("entropy_bits", 3.0))
    ]
    with RunDir(tmp_path, "sweep", {"model": "m"}, SWEEP_COLUMNS, SWEEP_KEYS) as run:
        run.write(rows)
        run.note(
            baseline={"perplexity": 10.0, "entropy_bits": "nan"},
            quality="perplexity",
            crossings=[{"threshold": "2x baseline", "level": 20.0, "sigma": 0.03}],
        )
    paths = redraw(tmp_path)
    assert sorted(p.name for p in paths) == ["entropy_bits_vs_sigma.png", "perplexity_vs_sigma.png"]
    assert all(_png(p) for p in paths)


def test_redraw_refuses_other_runs_and_empty_results(tmp_path):
    with RunDir(tmp_path / "g", "generate", {}, ["metric", "value"], ["metric"]) as run:
        run.write([{"metric": "tokens", "value": 1.0}])
    with pytest.raises(ConfigError, match="cannot redraw"):
        redraw(tmp_path / "g")
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "manifest.json").write_text(json.dumps({"command": "eval"}))
    (tmp_path / "e" / "results.csv").write_text(",".join(EVAL_COLUMNS) + "\n")
    with pytest.raises(ConfigError, match="no rows"):
        redraw(tmp_path / "e")
