"""Fixtures of the fault-injection suite and the summary of its counts (see
``tests/reliability/__init__.py``)."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import cli_cache  # noqa: F401  (digits-mlp, built once per session)
from tests.reliability.harness import COUNTS


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    if not COUNTS["runs_killed"] and not any(COUNTS.values()):
        return
    line = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in COUNTS.items())
    terminalreporter.write_sep("-", "fault injection")
    terminalreporter.write_line(line)
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is not None:
        path = factory.getbasetemp() / "reliability_counts.json"
        path.write_text(json.dumps(COUNTS, indent=2) + "\n")
        terminalreporter.write_line(f"written to {path}")


@pytest.fixture(scope="session")
def counts() -> dict[str, int]:
    return COUNTS
