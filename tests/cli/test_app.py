"""Tests of ``analogsim/cli/__init__.py``: the app (help, version), the entry point
:func:`analogsim.cli.main` (one-line errors, exit codes) and the warning display.

The typer app runs in-process with ``CliRunner``; ``main()`` (the console-script entry
point that turns analogsim errors into one line and exit code 2) is tested separately,
since the runner bypasses it.
"""

from __future__ import annotations

import sys

import pytest

from analogsim.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:mapping 'all_digital' places no layer analog")

HELP = {
    ("devices",): ["--json"],
    ("device", "show"): [
        "--g",
        "--times",
        "--temperature",
        "--samples",
        "--seed",
        "--json",
        "--plot",
    ],
    ("eval",): ["--mapping", "--device", "--times", "--temperature", "--seeds", "--out", "--json"],
    ("roles",): ["--json"],
    ("map",): ["--mapping", "--device", "--json"],
    ("sweep",): [
        "--noise",
        "--sigma",
        "--relative",
        "--roles",
        "--include-embeddings",
        "--seeds",
        "--threshold",
        "--multiple",
        "--out",
        "--json",
    ],
    ("compare",): [
        "--mappings",
        "--device",
        "--times",
        "--temperature",
        "--seeds",
        "--vary",
        "--precision",
        "--weight-memory",
        "--out",
        "--json",
    ],
    ("demo",): ["--out", "--question", "--tokens", "--full", "--seed"],
    ("bench",): ["--out", "--quick"],
    ("plot",): ["run_dir"],
    ("generate",): [
        "--mapping",
        "--device",
        "--prompt",
        "--tokens",
        "--token-time",
        "--start-age",
        "--temperature",
        "--tolerance",
        "--time-cache",
        "--set",
        "--schedule",
        "--out",
        "--json",
    ],
    ("stream",): ["--mapping", "--device", "--input-time", "--start-age", "--inputs", "--json"],
    ("train",): ["--mapping", "--device", "--method", "--train-times", "--out", "--json"],
    ("robustness",): ["--times", "--temperature", "--seeds", "--sigma", "--noise", "--json"],
}


# ---------------------------------------------------------------------------- help
@pytest.mark.parametrize("command", list(HELP), ids=" ".join)
def test_help(cli, command):
    res = cli(*command, "--help")
    assert res.exit_code == 0, res.output
    for option in HELP[command]:
        assert option in res.output, option


def test_top_level_help_lists_commands(cli):
    res = cli("--help")
    assert res.exit_code == 0
    for name in ("devices", "device", "eval", "roles", "map", "sweep", "compare", "demo", "bench"):
        assert name in res.output


def test_version(cli):
    from analogsim import __version__

    res = cli("--version")
    assert res.exit_code == 0 and __version__ in res.output


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["device", "show", "pcm", "--temperature", "hot"], ["error:", "temperature", "hot"]),
        (["device", "show", "nosuch"], ["error:", "unknown device", "nosuch"]),
        (["map", "digits-mlp", "--mapping", "nosuch"], ["error:", "unknown mapping", "nosuch"]),
        (["compare", "digits-mlp", "--vary", "adc_bits"], ["error:", "KEY=V1,V2"]),
    ],
)
def test_main_turns_errors_into_one_line_and_exit_2(monkeypatch, capsys, argv, words):
    monkeypatch.setattr(sys, "argv", ["analogsim", *argv])
    monkeypatch.setenv("COLUMNS", "400")
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    for w in words:
        assert w in err
    assert "Traceback" not in err


def test_main_usage_error_exits_nonzero(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["analogsim", "device", "show"])  # CARD missing
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    assert "Missing argument 'card'" in capsys.readouterr().err


def test_own_warnings_print_one_line_once(capsys, monkeypatch):
    """analogsim's warnings reach the user as one 'warning:' line, each text once per run;
    other libraries' warnings keep Python's form."""
    import analogsim.cli as cli
    from analogsim.mapping import rules

    monkeypatch.setattr(cli, "_shown", set())
    seen = []
    monkeypatch.setattr(cli, "_default_showwarning", lambda *a: seen.append(a[0]))
    for _ in range(2):
        cli._show_warning(UserWarning("places nothing analog"), UserWarning, rules.__file__, 1)
    cli._show_warning(UserWarning("from elsewhere"), UserWarning, "/usr/lib/x.py", 1)
    err = capsys.readouterr().err
    assert err.count("warning: places nothing analog") == 1, err
    assert [str(m) for m in seen] == ["from elsewhere"]


def test_error_lines_keep_square_brackets(monkeypatch, capsys, tmp_path):
    """Card errors name their section as [conductance]; rich must not eat it as markup."""
    card = tmp_path / "bad.toml"
    card.write_text(
        'name = "x"\ntechnology = "pcm"\n[conductance]\ng_min_uS = 0.0\ng_maxx_uS = 1.0\n'
    )
    monkeypatch.setattr(sys, "argv", ["analogsim", "device", "show", str(card)])
    monkeypatch.setenv("COLUMNS", "400")
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "unknown key 'g_maxx_uS' in [conductance];" in err
    assert str(card) in err
