"""``analogsim bench``: speed and memory ratios measured in one run (docs/benchmarks.md).

The benchmark code (torch and above) is imported inside the command body so that
``analogsim --help`` stays fast: the documented exception to imports at module top.
"""

from __future__ import annotations

from typing import Annotated

import typer

from analogsim.cli.options import ResumableOutOpt, console


def bench_cmd(
    out: ResumableOutOpt = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Small sizes and few rounds (a smoke run).")
    ] = False,
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help="Run one benchmark alone: smollm2 (a sweep point, device state and clocked "
            "generation on SmolLM2-135M); decode (batch-1 decoding with io tiles); runner "
            "(analogsim run's points/hour with 1 and 2 workers).",
        ),
    ] = None,
) -> None:
    """Speed and memory ratios (analog vs digital, analogsim vs aihwkit), measured in one run."""
    from analogsim.bench.run import run_benchmarks  # lazy: start-up time

    path = run_benchmarks(out, quick=quick, console=console, only=only)
    console.print(f"run directory: {path}")
