"""The ``analogsim`` command line: thin commands over the Python API.

Every command has ``--help``. Commands that measure write a run directory
(``--out DIR``, default ``runs/<timestamp>-<command>/``) with ``results.csv``,
``manifest.json`` and plots; re-running with the same ``--out`` resumes.

This module holds the typer app, the entry point :func:`main` and the display of
analogsim's warnings; the commands live one module per group (``devices``, ``models``,
``studies``, ``clock``, ``train``, ``bench``) and what they share in ``options``. Every
module here imports the API (torch and above) inside command bodies only, so that
``analogsim --help`` stays fast: the documented exception to imports at module top.
"""

from __future__ import annotations

import errno
import sys
import warnings
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.markup import escape

from analogsim import __version__
from analogsim.cli import attribute, bench, clock, devices, interop, models, studies, train, ui
from analogsim.cli import run as run_cli
from analogsim.cli.options import console, err_console
from analogsim.errors import AnalogsimError

app = typer.Typer(
    name="analogsim",
    help="Simulate neural networks on analog in-memory-computing hardware: "
    "device physics over time and temperature, crossbar tiles, and what it costs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
device_app = typer.Typer(help="Inspect one device card.", no_args_is_help=True)
app.add_typer(device_app, name="device")

# registration order is the order of `analogsim --help`
app.command("devices")(devices.devices_cmd)
device_app.command("show")(devices.device_show_cmd)
app.command("roles")(models.roles_cmd)
app.command("map")(models.map_cmd)
app.command("eval")(studies.eval_cmd)
app.command("sweep")(studies.sweep_cmd)
app.command("compare", context_settings={"allow_extra_args": True})(studies.compare_cmd)
app.command("attribute")(attribute.attribute_cmd)
app.command("demo")(studies.demo_cmd)
app.command("plot")(studies.plot_cmd)
app.command("bench")(bench.bench_cmd)
app.command("generate")(clock.generate_cmd)
app.command("stream")(clock.stream_cmd)
app.command("train")(train.train_cmd)
app.command("robustness")(train.robustness_cmd)
app.command("export")(interop.export_cmd)
app.command("import")(interop.import_cmd)
app.command("ui")(ui.ui_cmd)
app.command("run")(run_cli.run_cmd)


def _version(value: bool) -> None:
    if value:
        console.print(f"analogsim {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """analogsim: what happens to this model, on that analog chip, after this much time at that temperature."""


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # type: ignore[no-untyped-def]
    """analogsim's own warnings as one line each, each text once per run; others in
    Python's usual form."""
    if Path(filename).resolve().is_relative_to(Path(__file__).resolve().parents[1]):
        key = (category, str(message))
        if key not in _shown:
            _shown.add(key)
            err_console.print(
                f"[yellow]warning:[/yellow] {escape(str(message))}", highlight=False, soft_wrap=True
            )
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning
_shown: set[tuple[type, str]] = set()


# a file system that refuses a write (full, read-only, over a size limit): one line, exit 1
_WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EDQUOT}


def _interrupted() -> NoReturn:
    """Ctrl-C: one line saying how far the run got, exit code 130."""
    from analogsim.report.rundir import interruption_line  # lazy: only after a Ctrl-C

    err_console.print(interruption_line(), markup=False, highlight=False, soft_wrap=True)
    sys.exit(130)


def main() -> None:
    """Entry point: turn analogsim's own errors into one clear line and exit code 2, a
    refused write into one line and exit code 1, Ctrl-C into one line and exit code 130."""
    warnings.showwarning = _show_warning
    try:
        app()
    except AnalogsimError as exc:
        # escape: messages name card sections as [conductance], which rich would eat as markup
        err_console.print(f"[bold red]error:[/bold red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit as exc:
        if exc.code == 130:  # typer turns a KeyboardInterrupt into exit code 130 itself
            _interrupted()
        raise
    except OSError as exc:
        if exc.errno not in _WRITE_ERRNOS:
            raise
        err_console.print(
            f"[bold red]error:[/bold red] cannot write {escape(str(exc.filename or 'a file'))} "
            f"({exc.strerror}); finished points are kept in the run directory: free space or "
            "choose a writable --out, then rerun the same command to continue",
            soft_wrap=True,
        )
        sys.exit(1)


__all__ = ["app", "main"]
