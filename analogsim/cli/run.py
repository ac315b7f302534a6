"""``analogsim run EXPERIMENT.toml``: a study written as a config, run point by point in
worker processes, resumable, with a report beside the published numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from analogsim.cli.options import JsonOpt, NoProgressOpt, ResumableOutOpt, err_console, print_json


def run_cmd(
    experiment: Annotated[
        Path, typer.Argument(help="Experiment config (experiments/*.toml).", show_default=False)
    ],
    out: ResumableOutOpt = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="The smoke version: the config's \\[quick] values.")
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="Worker processes (each loads the model once and runs one torch "
            "thread, so the numbers do not depend on N; use as many as cores).",
        ),
    ] = 1,
    cluster: Annotated[
        str,
        typer.Option(
            "--cluster",
            help="Where the points run: local (worker processes here); ray (start a Ray "
            "runtime here, or join RAY_ADDRESS); auto (join an existing Ray cluster: "
            "RAY_ADDRESS); ray://HOST:PORT (Ray Client). Ray: pip extra 'ray', "
            "--workers actors; docs/scaling.md.",
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option("--address", help="Ray cluster address HOST:PORT (with --cluster ray)."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="Replace the config's models (repeatable)."),
    ] = None,
    json_out: JsonOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Run an experiment config: its grid points in worker processes, each written as it ends.

    Each point is seeded from the config and its coordinates: the
    numbers do not depend on --workers. The same --out skips the
    finished points (also after kill -9). Writes results.csv (grid
    order), summary.csv and report.md: ours beside the published
    numbers, 95 % intervals over seeds. Hub models that cannot be
    reached are skipped with a note. See docs/experiments.md.
    """
    from analogsim.runner.clusters import make_executor  # lazy: start-up time
    from analogsim.runner.run import run_experiment

    executor = make_executor(cluster, workers, address=address)
    try:
        result = run_experiment(
            experiment,
            out=out,
            quick=quick,
            executor=executor,
            models=model or None,
            progress=not no_progress,
        )
    finally:
        executor.close()
    if json_out:
        print_json({k: (str(v) if isinstance(v, Path) else v) for k, v in result.items()})
    else:
        err_console.print(
            f"{result['done']} of {result['points']} points in {result['run_dir']}; "
            f"report: {result['report']}",
            highlight=False,
            soft_wrap=True,
        )
    if result["failed"]:
        err_console.print(
            f"{result['failed']} point(s) failed; rerun the same command to retry them",
            highlight=False,
        )
        raise typer.Exit(1)
