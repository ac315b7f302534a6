"""``analogsim devices`` and ``analogsim device show``: the shipped device cards.

Imports of the API (torch and above) sit inside the command bodies so that
``analogsim --help`` stays fast: the documented exception to imports at module top.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from analogsim.cli.options import (
    DEFAULT_TIMES,
    JsonOpt,
    SeedOpt,
    TimesOpt,
    console,
    parse_floats,
    print_json,
)
from analogsim.units import format_time, parse_temperature, parse_temperatures, parse_times


def devices_cmd(json_out: JsonOpt = False) -> None:
    """List the shipped device cards, one line each."""
    from analogsim.devices import list_devices, load_device  # lazy: start-up time

    rows = [load_device(n).summary() for n in list_devices()]
    if json_out:
        print_json(rows)
        return
    # three narrow columns and one of labelled lines: fits 80 columns without breaking a
    # header or a value mid-word (the long facts wrap at their commas and spaces)
    table = Table(title="device cards (devices/*.toml)")
    table.add_column("name", no_wrap=True)
    table.add_column("technology", no_wrap=True)
    table.add_column("G (uS)", no_wrap=True)
    table.add_column("drift, temperature, faults", min_width=26)
    for r in rows:
        facts = "\n".join(f"{k}: {r[k]}" for k in ("drift", "temperature", "faults"))
        table.add_row(r["name"], r["technology"], f"{r['g_min_uS']:g}..{r['g_max_uS']:g}", facts)
    console.print(table)


def device_show_cmd(
    card: Annotated[
        str, typer.Argument(help="A shipped card name (pcm, rram, ...) or a path to a .toml card.")
    ],
    g: Annotated[
        str, typer.Option("--g", help="Relative target levels g_rel = (G - g_min)/(g_max - g_min).")
    ] = "0.1,0.5,1.0",
    times: TimesOpt = DEFAULT_TIMES,
    temperature: Annotated[
        str | None,
        typer.Option(
            "--temperature", help="Temperatures (K or C suffix); default the card's reference."
        ),
    ] = None,
    program_temperature: Annotated[
        str | None,
        typer.Option(
            "--program-temperature",
            help="Temperature the targets are verified at (K or C suffix); default the "
            "card's reference.",
        ),
    ] = None,
    samples: Annotated[
        int, typer.Option("--samples", min=100, help="Devices sampled per level.")
    ] = 100_000,
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG plot of the datasheet here.")
    ] = None,
) -> None:
    """The datasheet of a card: statistics of G(t, T) / G_target at relative target levels.

    A device programmed (verified) at --program-temperature and held at T for t seconds
    has the drift age of the demarcation-energy law at the reference temperature and 1/f
    noise of t seconds, and is read at T (docs/physics.md section 4).
    """
    from analogsim.devices import load_device  # lazy: start-up time
    from analogsim.studies.evaluate import device_datasheet

    dev = load_device(card)
    levels = parse_floats(g, key="g")
    temps = parse_temperatures(temperature, key="--temperature") if temperature else None
    t_prog = (
        parse_temperature(program_temperature, key="--program-temperature")
        if program_temperature
        else None
    )
    rows = device_datasheet(
        dev,
        levels,
        parse_times(times, key="--times"),
        temps,
        samples=samples,
        seed=seed,
        programming_temperature_K=t_prog,
    )
    if json_out:
        keys = ("g_rel", "time_s", "temperature_K", "mean", "std")
        print_json([{k: r[k] for k in keys} for r in rows])
    else:
        table = Table(
            title=f"{dev.name}: G(t, T) / G_target ({samples} devices per level, seed {seed})"
        )
        for col in ("g_rel", "time", "T (K)", "mean", "std", "1%", "99%"):
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(
                f"{r['g_rel']:g}",
                format_time(r["time_s"]),
                f"{r['temperature_K']:g}",
                f"{r['mean']:.4f}",
                f"{r['std']:.4f}",
                f"{r['p01']:.4f}",
                f"{r['p99']:.4f}",
            )
        console.print(table)
        assumptions = dev.assumptions()
        if assumptions:
            console.print(
                "[dim]assumptions (no published source): "
                + "; ".join(f"{s}: {', '.join(k)}" for s, k in assumptions.items())
                + "[/dim]"
            )
    if plot is not None:
        from analogsim.report.plots import plot_datasheet  # lazy: start-up time

        plot.parent.mkdir(parents=True, exist_ok=True)
        plot_datasheet(rows, plot, title=f"{dev.name} datasheet")
        if not json_out:
            console.print(f"plot: {plot}")
