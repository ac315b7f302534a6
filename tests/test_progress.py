"""Progress bars (``analogsim/progress.py``): on standard error, fitted to the terminal."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from analogsim.progress import layout, progress_bar


@pytest.mark.parametrize("width", [60, 80, 100, 160])
def test_bar_fits_the_terminal(width):
    """Description and status cut with an ellipsis only when needed; the line never
    wider than the terminal (at 80 columns a bar was cut mid-number: "0:00…")."""
    buf = io.StringIO()
    con = Console(file=buf, width=width, color_system=None)
    with progress_bar("eval digits-mlp on all_analog", 12, True, console=con) as advance:
        advance(3, status="seed 0 t=1h T=300K")
    (line,) = [x for x in buf.getvalue().splitlines() if x.strip()]
    assert len(line) <= width
    assert "3/12" in line and "eta" in line
    if width >= 80:  # the whole description and status fit from 80 columns on
        assert "eval digits-mlp on all_analog" in line and "seed 0 t=1h T=300K" in line
    if width >= 100:
        assert "0:00:0" in line.split("3/12")[1].split("eta")[0]  # elapsed shown


def test_layout_gives_the_bar_10_cells_at_80_columns():
    desc, bar, status, elapsed = layout(80, "eval digits-mlp on all_analog", 12)
    assert bar == 10 and not elapsed and desc == 29 and status >= 18
    assert layout(200, "x", 5)[1] == 40 and layout(200, "x", 5)[3]


def test_bar_is_drawn_on_stderr(capsys):
    with progress_bar("working", 2, True) as advance:
        advance(2, status="done")
    out = capsys.readouterr()
    assert out.out == "" and "working" in out.err


def test_disabled_bar_draws_nothing(capsys):
    with progress_bar("working", 2, False) as advance:
        advance(2, status="done")
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
