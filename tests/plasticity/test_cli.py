"""``analogsim generate`` / ``stream`` pass --plasticity, --plasticity-config and
--plasticity-every to the studies; a bad rule is one error line before any model loads."""

from __future__ import annotations

import sys

import pytest

import analogsim.studies.generate as gen_mod
import analogsim.studies.stream as stream_mod
from analogsim.cli import main


def _run(monkeypatch, argv):
    monkeypatch.setattr(sys, "argv", ["analogsim", *argv])
    monkeypatch.setenv("COLUMNS", "400")
    main()


@pytest.mark.parametrize(
    ("command", "module", "name"),
    [("generate", gen_mod, "run_generate"), ("stream", stream_mod, "run_stream")],
)
def test_plasticity_options_reach_the_study(monkeypatch, tmp_path, command, module, name):
    seen = {}

    def fake(model, **kw):
        seen.update(kw)
        raise SystemExit(0)

    monkeypatch.setattr(module, name, fake)
    cfg = tmp_path / "p.toml"
    cfg.write_text("rate = 0.01\n")
    with pytest.raises(SystemExit):
        _run(
            monkeypatch,
            [
                command,
                "tiny-gpt2",
                "--plasticity",
                "bcm",
                "--plasticity-config",
                str(cfg),
                "--plasticity-every",
                "3",
            ],
        )
    assert seen["plasticity"] == "bcm"
    assert seen["plasticity_config"] == str(cfg)
    assert seen["plasticity_every"] == 3


def test_unknown_rule_is_one_error_line(monkeypatch, capsys):
    with pytest.raises(SystemExit) as info:
        _run(monkeypatch, ["generate", "no-such-model", "--device", "pcm", "--plasticity", "ojja"])
    assert info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "unknown plasticity rule" in err and "ojja" in err and "oja" in err
    assert "Traceback" not in err
