"""A small progress-bar wrapper (rich) that becomes a no-op when disabled.

Bars are drawn on standard error, as is the convention for command-line tools: standard
output holds only results (``--json`` writes one JSON document there, pipes stay clean).
The layout fits the terminal: the bar narrows on narrow terminals and the description and
status are shortened with an ellipsis, never broken mid-word.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.table import Column

_TIME = 7  # h:mm:ss
_WIDE = 100  # from this width on, the elapsed time is shown beside the time remaining


def layout(terminal_width: int, description: str, total: int) -> tuple[int, int, int, bool]:
    """Widths ``(description, bar, status)`` of a bar of ``total`` steps on a terminal
    ``terminal_width`` wide, and whether the elapsed time is shown (from 100 columns on;
    the time remaining always is). The bar takes 10 cells at 80 columns and at most 40;
    the count and the times keep their width; the description and the status share the
    rest (each at least 8 cells; longer text ends in an ellipsis)."""
    elapsed = terminal_width >= _WIDE
    bar = max(6, min(40, (terminal_width - 60) // 2))
    count = 2 * len(str(total)) + 1
    fixed = bar + count + 3 + _TIME + (_TIME if elapsed else 0)  # 3: "eta"
    free = terminal_width - fixed - (6 if elapsed else 5)  # one space between columns
    desc = max(8, min(len(description), free - 20))
    return desc, bar, max(8, free - desc), elapsed


@contextlib.contextmanager
def progress_bar(
    description: str, total: int, enabled: bool, *, console: Console | None = None
) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n=1, status="")`` that moves a rich progress bar of ``total`` steps.

    The bar is drawn on standard error (or on ``console``) and fits its width
    (:func:`layout`). With ``enabled=False`` nothing is drawn and ``advance`` does nothing.
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

    con = console if console is not None else Console(stderr=True)
    desc_w, bar_w, status_w, elapsed = layout(con.width, description, total)

    def cell(width: int, *, exact: bool = True) -> Column:
        """One line, cut with an ellipsis; ``exact``: always ``width`` cells."""
        return Column(
            width=width if exact else None,
            max_width=width,
            no_wrap=True,
            overflow="ellipsis",
        )

    columns = (
        TextColumn("[bold]{task.description}", table_column=cell(desc_w, exact=False)),
        BarColumn(bar_width=bar_w, table_column=cell(bar_w)),
        MofNCompleteColumn(table_column=cell(2 * len(str(total)) + 1)),
        *([TimeElapsedColumn(table_column=cell(_TIME))] if elapsed else []),
        TextColumn("eta", table_column=cell(3)),
        TimeRemainingColumn(table_column=cell(_TIME)),
        TextColumn("{task.fields[status]}", table_column=cell(status_w, exact=False)),
    )
    with Progress(*columns, console=con) as bar:
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
