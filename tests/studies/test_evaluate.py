"""Studies (``analogsim/study.py``): the device datasheet against closed forms, quality
metrics, ``evaluate`` (baseline row, reproducibility, resume) and ``summarize``."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from analogsim.devices import load_device
from analogsim.errors import ConfigError
from analogsim.models import LoadedModel
from analogsim.models.digits import load_digits_mlp
from analogsim.models.quality import Quality, quality_metric
from analogsim.report.rundir import RunDir
from analogsim.studies.evaluate import (
    EVAL_COLUMNS,
    EVAL_KEYS,
    device_datasheet,
    evaluate,
    summarize,
)
from tests.conftest import IDEAL_TILE, analog_mapping
from tests.devices._stats import Z, folded_normal_mgf
from tests.metrics.conftest import make_gpt2

pytestmark = pytest.mark.filterwarnings("ignore:mapping 'all_digital' places no layer analog")

HOUR = 3600.0
YEAR = 365.25 * 86400.0
T0 = 20.0  # pcm drift t0
NU_MU, NU_SD = 0.049, 0.008  # pcm drift exponent at g_max (devices/pcm.toml, clipped fits)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """digits-mlp trained once per session into a temporary cache (a few seconds).

    One torch thread while training (module fixtures run before the suite's autouse
    one-thread fixture; two spinning threads make this small training many times slower).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return load_digits_mlp(tmp_path_factory.getbasetemp() / "analogsim-cache", progress=False)
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_lm():
    """A random 2-layer GPT-2 (vocab 300, 32 positions) with 96 held-out token ids."""
    ids = torch.randint(0, 300, (96,), generator=torch.Generator().manual_seed(3))
    return LoadedModel("tiny-lm", "causal-lm", make_gpt2(), None, {"heldout_ids": ids})


def _drift_mean(t: float) -> float:
    """E[((t + t0)/t0)^-nu], nu ~ |N(mu, sd^2)|: the mean drift factor at g_max."""
    return folded_normal_mgf(math.log((t + T0) / T0), NU_MU, NU_SD)


# ---------------------------------------------------------------------------- datasheet
def test_datasheet_ideal_card_is_exactly_one():
    rows = device_datasheet(
        "ideal", (0.25, 0.5, 1.0), (1.0, HOUR, YEAR), (250.0, 300.0, 358.0), samples=500
    )
    assert len(rows) == 3 * 3 * 3
    for r in rows:
        assert r["mean"] == 1.0 and r["std"] == 0.0
        assert r["p01"] == 1.0 and r["p99"] == 1.0
        assert r["samples"] == 500


def test_datasheet_zero_target_reports_absolute_conductance():
    # g_rel = 0 on a card with g_min = 0: the target is 0 uS, the row holds G - 0
    (row,) = device_datasheet("ideal", (0.0,), (HOUR,), samples=100)
    assert row["mean"] == 0.0 and row["std"] == 0.0


def test_datasheet_rows_and_default_temperature():
    dev = load_device("pcm")
    rows = device_datasheet(dev, (0.5, 1.0), (1.0, HOUR), samples=200, seed=1)
    assert [(r["g_rel"], r["time_s"]) for r in rows] == [
        (0.5, 1.0),
        (0.5, HOUR),
        (1.0, 1.0),
        (1.0, HOUR),
    ]
    assert {r["temperature_K"] for r in rows} == {dev.temperature.t_ref_K}
    assert set(rows[0]) == {
        "g_rel",
        "time_s",
        "temperature_K",
        "mean",
        "std",
        "p01",
        "p99",
        "samples",
    }
    for r in rows:
        assert r["p01"] <= r["mean"] <= r["p99"]


@pytest.mark.parametrize(("t", "published"), [(HOUR, 0.775), (YEAR, 0.50)])
def test_datasheet_pcm_gmax_matches_closed_form(t, published):
    """Programming and read noise are zero-mean: the mean is the drift factor's mean."""
    n = 40_000
    (row,) = device_datasheet("pcm", (1.0,), (t,), (300.0,), samples=n, seed=7)
    se = row["std"] / math.sqrt(n)
    assert abs(row["mean"] - _drift_mean(t)) <= Z * se, (row["mean"], _drift_mean(t), se)
    assert row["mean"] == pytest.approx(published, abs=0.005 + Z * se)


def test_datasheet_pcm_hotter_is_higher_and_ages_monotonically():
    """At g_max, 85 C reads above 27 C (conduction gain, Ea 0.05 eV, beats the faster drift
    of the hotter glass; docs/temperature.md section 2) and both fall with age."""
    n = 20_000
    rows = device_datasheet("pcm", (1.0,), (1.0, HOUR, YEAR), (300.0, 358.0), samples=n, seed=3)
    by = {(r["time_s"], r["temperature_K"]): r for r in rows}
    for t in (HOUR, YEAR):
        hot, room = by[(t, 358.0)], by[(t, 300.0)]
        se = math.hypot(hot["std"], room["std"]) / math.sqrt(n)
        assert hot["mean"] - room["mean"] > Z * se
    for temp in (300.0, 358.0):
        means = [by[(t, temp)]["mean"] for t in (1.0, HOUR, YEAR)]
        assert means[0] > means[1] > means[2]


def test_datasheet_seeded():
    a = device_datasheet("pcm", (0.5,), (HOUR,), samples=1000, seed=4)
    b = device_datasheet("pcm", (0.5,), (HOUR,), samples=1000, seed=4)
    c = device_datasheet("pcm", (0.5,), (HOUR,), samples=1000, seed=5)
    assert a == b
    assert a[0]["mean"] != c[0]["mean"]


@pytest.mark.parametrize("g", [-0.1, 1.5])
def test_datasheet_rejects_levels_outside_unit_interval(g):
    with pytest.raises(ConfigError, match=r"relative level must be in \[0, 1\]"):
        device_datasheet("pcm", (g,), (1.0,), samples=100)


# ---------------------------------------------------------------------------- evaluate
def test_evaluate_digital_baseline_row(digits):
    rows = evaluate(digits, "all_analog", None, (HOUR,), (300.0,), 1, progress=False)
    base = [r for r in rows if r["mapping"] == "digital"]
    assert len(base) == 1
    b = base[0]
    assert (b["seed"], b["device"], b["time_s"], b["temperature_K"]) == (-1, "", 0.0, 0.0)
    assert b["metric"] == "accuracy"
    assert b["value"] == quality_metric(digits).score(digits.model)
    analog = [r for r in rows if r["mapping"] != "digital"]
    assert [(r["mapping"], r["device"], r["seed"], r["time_s"]) for r in analog] == [
        ("all_analog", "pcm", 0, HOUR)
    ]
    assert set(rows[0]) == set(EVAL_COLUMNS)


def test_evaluate_all_digital_equals_baseline(digits):
    rows = evaluate(digits, "all_digital", None, (1.0, YEAR), (300.0, 358.0), 2, progress=False)
    base = rows[0]["value"]
    assert rows[0]["mapping"] == "digital"
    assert len(rows) == 1 + 2 * 2 * 2
    assert all(r["value"] == base for r in rows)


def test_evaluate_device_override_and_label(digits):
    rows = evaluate(
        digits,
        "all_analog",
        "ideal",
        (YEAR,),
        (358.0,),
        [3],
        progress=False,
        label="mine",
        extra={"vary": "x=1"},
    )
    (r,) = [r for r in rows if r["mapping"] != "digital"]
    assert (r["mapping"], r["device"], r["seed"], r["vary"]) == ("mine", "ideal", 3, "x=1")
    assert rows[0]["vary"] == ""


def test_evaluate_reproducible_with_seed(tiny_lm):
    def run(seeds):
        rows = evaluate(tiny_lm, "all_analog", None, (HOUR, YEAR), (300.0,), seeds, progress=False)
        return [r["value"] for r in rows if r["mapping"] != "digital"]

    a, b, c = run([0]), run([0]), run([1])
    assert a == b
    assert all(math.isfinite(v) for v in a)
    assert a != c  # another chip, other programming errors


def test_evaluate_state_sampled_once(tiny_lm):
    """The value at a time does not depend on which other times were read before it.

    Per-MVM noise is off here: its stream advances with every forward pass, so with it on
    a point's value also depends on how many forwards came before (see the report)."""
    m = analog_mapping("pcm", IDEAL_TILE, name="quiet")
    both = evaluate(tiny_lm, m, None, (1.0, HOUR, YEAR), (358.0,), [2], progress=False)
    alone = evaluate(tiny_lm, m, None, (YEAR,), (358.0,), [2], progress=False)
    base = both[0]["value"]
    assert both[-1]["time_s"] == alone[-1]["time_s"] == YEAR
    assert both[-1]["value"] == pytest.approx(alone[-1]["value"], rel=1e-6)
    assert both[-1]["value"] != pytest.approx(base, rel=1e-6)  # the drift did change it


def test_evaluate_resume_after_interrupt(tiny_lm, tmp_path, monkeypatch):
    import analogsim.studies.evaluate as study

    times, temps, seeds = (1.0, HOUR, YEAR), (300.0,), 2
    fresh = evaluate(tiny_lm, "all_analog", None, times, temps, seeds, progress=False)
    config = {"times": list(times), "seeds": seeds}

    real = study.quality_metric
    calls = {"n": 0}

    def flaky(loaded, **kw):
        q = real(loaded, **kw)

        def score(m):
            calls["n"] += 1
            if calls["n"] == 5:  # digital baseline + 3 points of seed 0, then stop
                raise KeyboardInterrupt
            return q.score(m)

        return Quality(q.name, q.higher_is_better, score)

    monkeypatch.setattr(study, "quality_metric", flaky)
    with (
        pytest.raises(KeyboardInterrupt),
        RunDir(tmp_path, "eval", config, EVAL_COLUMNS, EVAL_KEYS) as run,
    ):
        evaluate(tiny_lm, "all_analog", None, times, temps, seeds, run=run, progress=False)
    assert run.manifest["status"] == "interrupted"
    assert len(run.rows) == 4

    monkeypatch.setattr(study, "quality_metric", real)
    calls["n"] = 0
    with RunDir(tmp_path, "eval", config, EVAL_COLUMNS, EVAL_KEYS) as run:
        new = evaluate(tiny_lm, "all_analog", None, times, temps, seeds, run=run, progress=False)
        assert len(new) == 3  # only seed 1 is measured again
        assert all(r["seed"] == 1 for r in new)
    rows = run.rows
    assert len(rows) == len(fresh) == 7
    keys = [tuple(r[k] for k in EVAL_KEYS) for r in rows]
    assert len(set(keys)) == len(keys)
    # the resumed run gives the numbers of an uninterrupted one
    by = {(int(r["seed"]), float(r["time_s"])): float(r["value"]) for r in rows}
    for r in fresh:
        assert by[(r["seed"], r["time_s"])] == pytest.approx(r["value"], rel=1e-12)


# ---------------------------------------------------------------------------- summarize
def _row(mapping, t, value, seed=0):
    return dict(
        mapping=mapping,
        device="pcm",
        time_s=t,
        temperature_K=300.0,
        metric="m",
        value=value,
        seed=seed,
    )


def test_summarize_mean_and_sample_std():
    rows = [_row("a", 1.0, v, s) for s, v in enumerate((0.5, 0.7, 0.9))] + [_row("a", 2.0, 0.4)]
    out = {s["time_s"]: s for s in summarize(rows)}
    assert out[1.0]["mean"] == pytest.approx(0.7, abs=1e-15)
    # sample std (n - 1): sqrt((0.04 + 0 + 0.04) / 2) = 0.2
    assert out[1.0]["std"] == pytest.approx(0.2, abs=1e-15)
    assert out[1.0]["n"] == 3
    assert (out[2.0]["mean"], out[2.0]["std"], out[2.0]["n"]) == (0.4, 0.0, 1)
    assert set(out[1.0]) == {
        "mapping",
        "device",
        "time_s",
        "temperature_K",
        "metric",
        "mean",
        "std",
        "n",
    }


def test_summarize_groups_and_csv_strings():
    rows = [_row("a", "1.0", "2.0"), _row("a", "1.0", "4.0"), _row("b", "1.0", "10")]
    out = summarize(rows, by=("mapping",))
    assert out == [
        {"mapping": "a", "mean": 3.0, "std": statistics.stdev([2.0, 4.0]), "n": 2},
        {"mapping": "b", "mean": 10.0, "std": 0.0, "n": 1},
    ]


def test_summarize_non_finite():
    rows = [_row("inf", 1.0, v) for v in (10.0, math.inf)]
    rows += [_row("nan", 1.0, v) for v in (10.0, math.nan)]
    out = {s["mapping"]: s for s in summarize(rows)}
    assert out["inf"]["mean"] == math.inf
    assert math.isnan(out["nan"]["mean"])


# ---------------------------------------------------------------------------- no work twice
def _counting(monkeypatch) -> dict[str, int]:
    """Count the quality scores ``evaluate`` computes."""
    import analogsim.studies.evaluate as study

    real = study.quality_metric
    calls = {"n": 0}

    def counted(loaded, **kw):
        q = real(loaded, **kw)

        def score(m):
            calls["n"] += 1
            return q.score(m)

        return Quality(q.name, q.higher_is_better, score)

    monkeypatch.setattr(study, "quality_metric", counted)
    return calls


def test_evaluate_scores_a_mapping_without_analog_layers_once(digits, monkeypatch):
    calls = _counting(monkeypatch)
    rows = evaluate(digits, "all_digital", None, (1.0, YEAR), (300.0, 358.0), 3, progress=False)
    assert calls["n"] == 2  # the digital model, then the all-digital chip once
    assert len(rows) == 1 + 3 * 2 * 2  # every point still has its row
    calls["n"] = 0
    evaluate(digits, "all_analog", None, (1.0, YEAR), (300.0,), 2, progress=False)
    assert calls["n"] == 1 + 2 * 2  # an analog chip: every point measured


def test_evaluate_reuses_a_known_digital_score(digits, monkeypatch):
    calls = _counting(monkeypatch)
    rows = evaluate(digits, "all_analog", None, (HOUR,), (300.0,), 1, progress=False, digital=0.5)
    assert calls["n"] == 1  # the analog point only
    assert rows[0]["mapping"] == "digital" and rows[0]["value"] == 0.5


def test_evaluate_prints_each_point_as_it_ends(digits, capsys):
    rows = evaluate(digits, "all_analog", None, (1.0, HOUR), (300.0,), 1, progress=True)
    err = capsys.readouterr().err
    assert f"digits-mlp digital: accuracy {rows[0]['value']:.4g}" in err
    for r in rows[1:]:
        t = "1s" if r["time_s"] == 1.0 else "1h"
        assert f"all_analog seed 0 t={t} T=300K: accuracy {r['value']:.4g}" in err
    evaluate(digits, "all_analog", None, (1.0,), (300.0,), 1, progress=False)
    assert capsys.readouterr().err == ""
