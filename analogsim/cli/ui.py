"""``analogsim ui``: the browser workbench (docs/ui.md).

Gradio and the API are imported inside the command body so that ``analogsim --help``
stays fast: the documented exception to imports at module top. Gradio is the ``ui``
extra (``pip install 'analogsim[ui]'``); without it the command says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from analogsim.cli.options import console
from analogsim.errors import ConfigError


def ui_cmd(
    model: Annotated[
        str,
        typer.Option(
            "--model", help="smollm2, tiny-gpt2 or a Hugging Face causal LM name / local path."
        ),
    ] = "smollm2",
    host: Annotated[
        str, typer.Option("--host", help="Address to serve on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to serve on.")] = 7860,
    runs: Annotated[
        Path,
        typer.Option("--runs", help="Folder for run directories written from the page."),
    ] = Path("runs"),
) -> None:
    """Serve the browser workbench: a model on a simulated chip,
    side by side with the digital model, while the chip ages and heats.

    Panels: Chip (mapping, placement table, device card, tile settings,
    age 1 s to 10 y, temperature, statistical noise, seed); Talk (both
    answers streamed, chip tokens shaded, top-5 per token, entropy and
    log-probability); Age while it talks (event clock, temperature
    profile, trace plots, cliff detector); Compare (partitions over age
    and temperature); Device (the card's datasheet). Stop with Ctrl-C.
    """
    try:
        import gradio  # noqa: F401  (lazy: an optional extra, and start-up time)
    except ImportError:
        raise ConfigError(
            "the browser workbench needs Gradio",
            key="ui",
            allowed="pip install 'analogsim[ui]'",
        ) from None
    from analogsim.models import pending_build
    from analogsim.ui.app import serve

    note = pending_build(model)
    if note:
        console.print(note)
    console.print(f"loading {model}; the page will be at http://{host}:{port}")
    serve(model, host, port, runs=runs)
