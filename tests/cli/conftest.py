"""Fixtures for the CLI smoke tests: ``digits-mlp`` built once into a temporary cache.

Every CLI test runs with ``ANALOGSIM_CACHE`` pointing at that cache, so commands that take
``digits-mlp`` by name load it in milliseconds and nothing touches the user's cache.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from analogsim.cli import app
from analogsim.models.digits import load_digits_mlp
from tests.train.conftest import digits_runs  # noqa: F401  (trained checkpoints for test_train)

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ENV = {"COLUMNS": "200", "TERMINAL_WIDTH": "200", "NO_COLOR": "1", "TERM": "dumb"}


@pytest.fixture(scope="session")
def cli_cache(tmp_path_factory) -> Path:
    """A cache folder holding a trained digits-mlp (trained here, with one torch thread)."""
    root = tmp_path_factory.getbasetemp() / "analogsim-cache"  # shared with other tests
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        load_digits_mlp(root, progress=False)
    finally:
        torch.set_num_threads(before)
    return root


@pytest.fixture(autouse=True)
def _use_cli_cache(cli_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALOGSIM_CACHE", str(cli_cache))


class Result:
    """What a command printed and how it ended (ANSI codes removed)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.exit_code: int = raw.exit_code
        self.exception: BaseException | None = raw.exception
        self.stdout: str = _ANSI.sub("", raw.stdout)
        self.output: str = _ANSI.sub("", raw.output)

    def json(self) -> Any:
        return json.loads(self.stdout)

    def words(self) -> str:
        """The output with runs of whitespace (line wrapping, table borders) collapsed."""
        return " ".join(self.output.split())


@pytest.fixture
def cli() -> Callable[..., Result]:
    """``cli("eval", "digits-mlp", ...)`` runs the typer app in-process."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return Result(runner.invoke(app, [str(a) for a in args], env=ENV))

    return invoke
