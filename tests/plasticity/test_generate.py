"""Plasticity in the clocked studies (``studies/generate.py``, ``studies/stream.py``): off
is today's generation byte for byte, a zero rate changes no token, the same seed gives
the same trace, the trace has the plasticity columns, the classifier stream too."""

from __future__ import annotations

import json

import torch

from analogsim.clock.hook import digital_scores, generate_with_clock
from analogsim.models import LoadedModel
from analogsim.plasticity import PLASTICITY_COLUMNS
from analogsim.report.rundir import read_csv, write_csv
from analogsim.studies.clocked import chip_mapping, resolve_chip, running_chip
from analogsim.studies.generate import GenerateOptions, run_generate
from analogsim.studies.stream import run_stream
from analogsim.studies.trace import trace_columns, trace_rows
from tests.clock.conftest import loaded, tiny_gpt2
from tests.conftest import analog_mapping, make_mlp

PROMPT = [5, 17, 42]
CHIP = dict(tokens=8, token_time="1d", start_age="1h", temperature="330K", seed=3)


def _mapping():
    return analog_mapping("pcm", dict(dac_bits=8, adc_bits=8, out_noise=0.02, read_noise=0.01))


def test_plasticity_off_is_todays_generation_byte_for_byte(tmp_path):
    mapping = _mapping()
    res = run_generate(
        loaded(tiny_gpt2()),
        prompt=PROMPT,
        mapping=mapping,
        out=tmp_path / "api",
        plots=False,
        **CHIP,
    )
    # today's path, assembled from the unchanged mechanism (clock hook, trace rows)
    opts = GenerateOptions(mapping=mapping, **CHIP)
    setup, sched = resolve_chip(opts, opts.token_time, "token_time", schedule_steps=opts.tokens)
    m, _, _ = chip_mapping(mapping, None)
    digital = tiny_gpt2()
    with running_chip(digital, opts, setup, m, sched) as (am, clock):
        result = generate_with_clock(am, torch.tensor([PROMPT]), clock, opts.tokens, seed=opts.seed)
    dig = digital_scores(digital, result.ids, result.prompt_len)
    rows = trace_rows(result, dig, clock.roles, None)
    write_csv(tmp_path / "today.csv", rows, trace_columns(clock.roles))
    got = (res["run_dir"] / "trace.csv").read_bytes()
    assert got == (tmp_path / "today.csv").read_bytes()
    manifest = json.loads((res["run_dir"] / "manifest.json").read_text())
    assert "plasticity" not in manifest and "plasticity" not in manifest["config"]


def test_zero_rate_changes_no_token_and_adds_the_columns(tmp_path):
    off = run_generate(
        loaded(tiny_gpt2()),
        prompt=PROMPT,
        mapping=_mapping(),
        out=tmp_path / "off",
        plots=False,
        **CHIP,
    )
    zero = {"rules": {"oja": 1.0}, "rate": 0.0, "stability": {"decay": 0.0}}
    on = run_generate(
        loaded(tiny_gpt2()),
        prompt=PROMPT,
        mapping=_mapping(),
        plasticity_config=zero,
        out=tmp_path / "zero",
        plots=False,
        **CHIP,
    )
    a, b = read_csv(off["run_dir"] / "trace.csv"), read_csv(on["run_dir"] / "trace.csv")
    assert [r["token"] for r in a] == [r["token"] for r in b]
    assert [r["logprob"] for r in a] == [r["logprob"] for r in b]
    assert set(PLASTICITY_COLUMNS) <= set(b[0])
    # nothing written but rounding: a drifted PCM pair is rescaled device by device
    assert all(float(r["plasticity_update_norm"]) < 1e-6 for r in b)


def test_same_seed_same_trace_and_rules_move_the_adapters(tmp_path):
    runs = [
        run_generate(
            loaded(tiny_gpt2()),
            prompt=PROMPT,
            mapping=_mapping(),
            plasticity="hybrid",
            plasticity_every=2,
            out=tmp_path / f"r{i}",
            plots=False,
            **CHIP,
        )
        for i in range(2)
    ]
    t0, t1 = ((r["run_dir"] / "trace.csv").read_bytes() for r in runs)
    assert t0 == t1
    rows = read_csv(runs[0]["run_dir"] / "trace.csv")
    assert [int(r["plasticity_updated"]) for r in rows] == [1, 0] * 4
    assert float(rows[-1]["plasticity_adapter_norm"]) > 0.0
    assert runs[0]["metrics"]["plasticity_updates"] == 4.0
    man = json.loads((runs[0]["run_dir"] / "manifest.json").read_text())
    assert man["config"]["plasticity"]["rules"]["oja"] > 0
    assert man["plasticity"]["adapters"][0]["update_model"] == "pcm"


def test_stream_gets_plasticity(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(20, 12)
    y = torch.randint(0, 5, (20,))
    lm = LoadedModel("mlp", "classifier", make_mlp(), None, {"x_test": x, "y_test": y})
    res = run_stream(
        lm, inputs=10, input_time="1h", device="pcm", plasticity="bcm", out=tmp_path / "s"
    )
    assert (res["run_dir"] / "plasticity.png").stat().st_size > 0
    rows = read_csv(res["run_dir"] / "trace.csv")
    assert len(rows) == 10 and set(PLASTICITY_COLUMNS) <= set(rows[0])
    assert res["metrics"]["plasticity_updates"] == 10.0
