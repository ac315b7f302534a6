"""The worked examples of ``docs/cli.md`` print what the page shows.

Every ``$ analogsim ...`` line of the page that is followed by output and runs offline in
seconds (digits-mlp and the device cards; not tiny-gpt2 or MiniLM) is run here with the
console 100 columns wide, and its output must equal the page's, word for word (table
borders aside; the run directory's name is free). An example whose output is an
``error:`` line must raise that error. A change that moves these numbers must update the
page (run the command, paste its output).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from analogsim.cli.options import console

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
_BORDERS = str.maketrans(dict.fromkeys("┏┓┗┛┳┻╋━┡┩╇└┘┴─┌┐┬┼│┃", " "))
OFFLINE = ("digits-mlp", "pcm", "rram", "ideal")


def examples() -> list[tuple[str, list[str]]]:
    """``(command line, output lines)`` of each documented command with output."""
    found: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```\n(.*?)```", DOC.read_text(), flags=re.S):
        current: list[str] | None = None  # output belongs to a command of its own block
        for line in block.splitlines():
            if line.startswith("$ analogsim "):
                current = []
                found.append((line[2:].split("  #")[0].strip(), current))
            elif current is not None and line.strip():
                current.append(line)
    return [(cmd, out) for cmd, out in found if out and _checkable(cmd, out)]


def _checkable(cmd: str, out: list[str]) -> bool:
    """An error example, or one that runs offline in seconds."""
    args = shlex.split(cmd)[1:]
    return (
        out[0].startswith("error:") or args[0] == "devices" or any(w in args[:3] for w in OFFLINE)
    )


def _words(lines: list[str]) -> list[str]:
    text = " ".join(x for x in lines if not x.strip().startswith("run directory:"))
    return text.translate(_BORDERS).split()


@pytest.mark.parametrize(("cmd", "expected"), examples(), ids=[c for c, _ in examples()])
def test_docs_example_prints_what_the_page_shows(cli, monkeypatch, tmp_path, cmd, expected):
    monkeypatch.setattr(console, "_width", 100)
    args = shlex.split(cmd)[1:]
    if args[0] in ("eval", "sweep", "compare"):
        args += ["--out", str(tmp_path / "run"), "--no-progress"]
    res = cli(*args)
    if expected[0].startswith("error:"):
        assert res.exit_code != 0 and res.exception is not None
        assert _words([f"error: {res.exception}"]) == _words(expected)
        return
    assert res.exit_code == 0, res.output
    assert _words(res.output.splitlines()) == _words(expected)


def test_the_page_has_examples_to_check():
    names = [shlex.split(c)[1] for c, _ in examples()]
    assert {"devices", "device", "eval", "sweep"} <= set(names)
