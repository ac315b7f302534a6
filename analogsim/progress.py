"""A small progress-bar wrapper (rich) that becomes a no-op when disabled."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_bar(description: str, total: int, enabled: bool) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1, status="")`` that moves a rich progress bar of ``total`` steps.

    With ``enabled=False`` nothing is drawn and ``advance`` does nothing.
    """
    if not enabled:

        def _noop(n: int = 1, status: str = "") -> None:
            return None

        yield _noop
        return

    # lazy: rich's progress machinery is only needed when a bar is shown (CLI start-up)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns) as bar:
        task = bar.add_task(description, total=total, status="")

        def _advance(n: int = 1, status: str = "") -> None:
            bar.update(task, advance=n, status=status)

        yield _advance


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' per-file progress bars and info/warning logs inside the block
    (loading a 1M-parameter model needs no bar); the previous settings are restored."""
    # lazy: importing transformers takes seconds; ground modules must stay cheap to import
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
