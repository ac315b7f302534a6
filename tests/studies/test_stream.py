"""Tests of the ``stream`` study (``analogsim/studies/stream.py``): a classifier over a
stream of inputs while the chip ages."""

from __future__ import annotations

import csv

import pytest
import torch
from torch import nn

from analogsim.errors import ConfigError
from analogsim.models import LoadedModel
from analogsim.report.rundir import read_csv
from analogsim.studies import stream
from analogsim.studies.stream import StreamOptions, run_stream
from tests.conftest import analog_mapping
from tests.studies.test_generate import _main

HOUR, DAY = 3600.0, 86400.0


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
    lm = _classifier()
    res = run_stream(
        lm,
        input_time="1d",
        start_age="1h",
        temperature="ramp:300K:360K:60d",
        mapping=analog_mapping("pcm"),
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
    ideal = run_stream(lm, input_time="1h", mapping=analog_mapping("ideal"), out=tmp_path / "i")
    assert ideal["metrics"]["accuracy"] == 1.0


def test_cli_stream(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(stream, "load_model", lambda name, progress=True: _classifier())
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


def test_stream_options_object_and_keywords_give_the_same_run(tmp_path):
    opts = StreamOptions(input_time="1h", inputs=12, window=4, mapping=analog_mapping("pcm"))
    a = run_stream(_classifier(), opts, out=tmp_path / "a", plots=False)
    b = run_stream(
        _classifier(),
        input_time="1h",
        inputs=12,
        window=4,
        mapping=analog_mapping("pcm"),
        out=tmp_path / "b",
        plots=False,
    )
    assert (tmp_path / "a" / "trace.csv").read_text() == (tmp_path / "b" / "trace.csv").read_text()
    assert a["metrics"] == b["metrics"]
    with pytest.raises(TypeError, match="input_time"):
        run_stream(_classifier(), input_tme="1h", out=tmp_path / "c")


def test_bad_stream_input_fails_before_work(tmp_path):
    lm = _classifier()
    with pytest.raises(ConfigError, match="window"):
        run_stream(lm, window=0, out=tmp_path / "a")
    with pytest.raises(ConfigError, match="inputs"):
        run_stream(lm, inputs=0, out=tmp_path / "b")
    with pytest.raises(ConfigError, match="input_time"):
        run_stream(lm, input_time=0, out=tmp_path / "c")
    assert not any((tmp_path / d).exists() for d in "abc")
