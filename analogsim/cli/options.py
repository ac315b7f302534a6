"""What the ``analogsim`` commands share: every option or argument used by more than one
command, defined once as a typer ``Annotated`` alias; the consoles; JSON and table
printing; the small text parsers.

Imports: typer, rich and analogsim's ground layer only, so ``analogsim --help`` never loads
torch. Command modules import the API (torch, transformers, the studies) inside their
command bodies for the same start-up reason: the documented exception to imports at
module top, in ``analogsim/cli`` only.

Defaults that mirror the API: a default whose API constant lives in a module that loads
torch is written here as a module-level constant naming the API value it mirrors;
``tests/cli/test_options.py`` checks every command default against the API's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from analogsim.errors import ConfigError
from analogsim.units import parse_float

console = Console()
err_console = Console(stderr=True)

# ---------------------------------------------------------------------------- API mirrors
#: = ``analogsim.clock.core.DEFAULT_TOLERANCE`` (that module loads torch).
DEFAULT_TOLERANCE = 0.005
#: = the default ``times`` of ``evaluate``, ``run_compare``, ``robustness`` and
#: ``device_datasheet`` in ``analogsim.studies`` (1 s, 1 h, 1 d, 1 y).
DEFAULT_TIMES = "1s,1h,1d,1y"
#: = their default ``temperatures`` (300 K).
DEFAULT_TEMPERATURE = "300K"
#: = ``analogsim.models.quality.DEFAULT_MAX_TOKENS`` (that module loads torch).
DEFAULT_MAX_TOKENS = 4096

# ---------------------------------------------------------------------------- shared options
ModelArg = Annotated[
    str, typer.Argument(help="digits-mlp, tiny-gpt2, minilm, or a Hugging Face name / local path.")
]
MappingOpt = Annotated[
    str, typer.Option("--mapping", help="Shipped mapping name or path to a mapping TOML.")
]
_maybe_mapping = typer.Option(
    "--mapping",
    help="Chip partition (name or TOML); none: the digital model (with --device: all_analog).",
)
MaybeMappingOpt = Annotated[str | None, _maybe_mapping]
DeviceOpt = Annotated[
    str | None,
    typer.Option("--device", help="Device card for analog layers (overrides the mapping)."),
]
TimesOpt = Annotated[
    str, typer.Option("--times", help="Times since programming (s, m, h, d, y suffixes).")
]
TemperaturesOpt = Annotated[
    str, typer.Option("--temperature", help="Temperatures (K or C suffix), e.g. 300K,85C.")
]
SeedsOpt = Annotated[
    int,
    typer.Option("--seeds", min=1, help="Programmed chips per setting (seeds 0..N-1)."),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of every random choice.")]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Run directory (default runs/<timestamp>-<command>).")
]
ResumableOutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out", help="Run directory (default runs/<timestamp>-<command>); reuse it to resume."
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")
]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="Hide progress bars.")]
_noise = typer.Option(
    "--noise",
    help="Statistical weight-noise distribution: gaussian, uniform, cauchy, laplace, "
    "student-t or a registered name.",
)
NoiseOpt = Annotated[str, _noise]
MaybeNoiseOpt = Annotated[str | None, _noise]
RelativeOpt = Annotated[
    bool, typer.Option("--relative", help="Sigma relative to each layer's weight std.")
]

# the evaluation text of language models (eval, sweep, compare)
TextOpt = Annotated[
    Path | None,
    typer.Option(
        "--text",
        help="UTF-8 text file a language model is scored on (perplexity). Default: the "
        "held-out part of Python's help text (pydoc_data.topics) of the built-in models.",
    ),
]
MaxTokensOpt = Annotated[
    int,
    typer.Option(
        "--max-tokens",
        min=2,
        help="Score a language model on the first N tokens of the text (sliding windows "
        "of 256 tokens, stride 128).",
    ),
]

# options of the clocked commands (generate, stream)
ProfileOpt = Annotated[
    str,
    typer.Option(
        "--temperature",
        help="Temperature profile over deployment time: 300K, ramp:300K:360K:1d, "
        "step:300K:358K:12h, sine:300K:360K:1d, csv:trace.csv, pieces joined by +.",
    ),
]
ToleranceOpt = Annotated[
    float,
    typer.Option(
        "--tolerance",
        help="Skip state updates while no conductance moved more than this fraction of g_max.",
    ),
]
RecalibrateOpt = Annotated[
    str | None,
    typer.Option(
        "--recalibrate-every",
        help="Recalibrate drift compensation every so much deployment time (e.g. 24h).",
    ),
]
TimeCacheOpt = Annotated[
    bool,
    typer.Option(
        "--time-cache/--no-time-cache",
        help="Cache per-device draws while the clock runs: fast state updates, up to 20x the "
        "analog weight bytes of memory. Same numbers either way.",
    ),
]
FaultRateOpt = Annotated[
    str | None,
    typer.Option(
        "--fault-rate",
        help="Fault onset hazards per device per second: gmin=1e-9,gmax=1e-10,outlier=0.",
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Device card override SECTION.KEY=VALUE (repeatable)."),
]
ScheduleOpt = Annotated[
    str | None,
    typer.Option(
        "--schedule",
        help="Sigma per step (token or input): 0.01, linear:0:0.02, exp:1e-3:0.02, "
        "step:0:0.02:50, sine:0:0.02:50.",
    ),
]


# ---------------------------------------------------------------------------- printing
def _finite_json(x: object) -> object:
    """Strict JSON: non-finite floats become the strings "inf", "-inf", "nan"."""
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, dict):
        return {str(k): _finite_json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite_json(v) for v in x]
    if isinstance(x, str | int | float | bool) or x is None:
        return x
    return str(x)


def print_json(obj: object) -> None:
    """Print ``obj`` as strict JSON (valid for jq and other strict parsers)."""
    print(json.dumps(_finite_json(obj), indent=2, allow_nan=False))


def print_values(
    title: str, values: Mapping[str, Any], fmt: Callable[[Any], str], name: str = "measure"
) -> None:
    """A two-column table (``name``, value) of ``values``, each value written by ``fmt``."""
    table = Table(title=title)
    table.add_column(name)
    table.add_column("value", justify="right")
    for k, v in values.items():
        table.add_row(k, fmt(v))
    console.print(table)


# ---------------------------------------------------------------------------- parsing
def parse_floats(text: str, key: str) -> list[float]:
    """A comma list of numbers (``"0.1,0.5,1"``); ``key`` names the option in errors."""
    return [parse_float(x, key=key) for x in text.split(",") if x.strip()]


def parse_roles(text: str | None) -> list[str] | None:
    """A comma list of role names; None (every role the command defaults to) when empty."""
    return [r.strip() for r in text.split(",") if r.strip()] if text else None


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``SECTION.KEY=VALUE`` pairs (values parsed as numbers where they are numbers)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(
                "device overrides are SECTION.KEY=VALUE",
                key="set",
                value=item,
                allowed="e.g. drift.scale=2 or faults.stuck_at_gmin_rate=0.001",
            )
        k, _, v = item.partition("=")
        v = v.strip()
        try:
            val: Any = float(v) if any(c in v for c in ".eE") else int(v)
        except ValueError:
            val = v
        out[k.strip()] = val
    return out
