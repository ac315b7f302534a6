"""``analogsim generate`` and ``analogsim stream``: models running while the chip ages.

Thin commands over :func:`analogsim.studies.generate.run_generate` and
:func:`analogsim.studies.stream.run_stream`; registered on the main app by
:func:`register`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()

_OUT = typer.Option("--out", help="Run directory (default runs/<timestamp>-<command>).")


def _roles(text: str | None) -> list[str] | None:
    return [r.strip() for r in text.split(",") if r.strip()] if text else None


def _overrides(items: list[str] | None) -> dict[str, Any]:
    """``section.key=value`` pairs (values parsed as numbers where they are numbers)."""
    from analogsim.errors import ConfigError

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


def _prompt(prompt: str, prompt_ids: str | None) -> Any:
    from analogsim.errors import ConfigError

    if prompt_ids is None:
        return prompt
    try:
        return [int(x) for x in prompt_ids.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(
            "token ids are comma-separated integers", key="prompt_ids", value=prompt_ids
        ) from None


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        return f"{v:.4g}"
    return str(v)


def register(app: typer.Typer) -> None:
    """Add the ``generate`` and ``stream`` commands to ``app``."""

    @app.command("generate")
    def generate_cmd(
        model: Annotated[
            str, typer.Argument(help="tiny-gpt2 or a Hugging Face causal LM name / local path.")
        ],
        mapping: Annotated[
            str | None,
            typer.Option(
                "--mapping",
                help="Chip partition (name or TOML); none: the digital model (with --device: all_analog).",
            ),
        ] = None,
        device: Annotated[
            str | None, typer.Option("--device", help="Device card for analog layers.")
        ] = None,
        prompt: Annotated[str, typer.Option("--prompt", help="Prompt text.")] = (
            "The return statement"
        ),
        prompt_ids: Annotated[
            str | None,
            typer.Option(
                "--prompt-ids", help="Prompt as token ids 1,2,3 (models without tokenizer)."
            ),
        ] = None,
        tokens: Annotated[int, typer.Option("--tokens", min=1, help="New tokens.")] = 100,
        token_time: Annotated[
            str, typer.Option("--token-time", help="Simulated time per token (1s, 1h, 1d).")
        ] = "1s",
        start_age: Annotated[
            str,
            typer.Option(
                "--start-age", help="Time since programming at the first token (0, 1h, 1d, 1y)."
            ),
        ] = "1h",
        temperature: Annotated[
            str,
            typer.Option(
                "--temperature",
                help="Temperature profile over deployment time: 300K, ramp:300K:360K:1d, "
                "step:300K:358K:12h, sine:300K:360K:1d, csv:trace.csv, pieces joined by +.",
            ),
        ] = "300K",
        seed: Annotated[int, typer.Option("--seed", help="Chip, sampling and noise seed.")] = 0,
        sample: Annotated[
            bool, typer.Option("--sample/--greedy", help="Sample tokens (seeded) or greedy.")
        ] = False,
        softmax_temperature: Annotated[
            float, typer.Option("--softmax-temperature", help="Sampling temperature.")
        ] = 1.0,
        top_k: Annotated[int | None, typer.Option("--top-k", help="Sample from the top k.")] = None,
        top_p: Annotated[
            float | None, typer.Option("--top-p", help="Nucleus sampling mass.")
        ] = None,
        tolerance: Annotated[
            float,
            typer.Option(
                "--tolerance",
                help="Skip state updates while no conductance moved more than this fraction of g_max.",
            ),
        ] = 0.005,
        recalibrate_every: Annotated[
            str | None,
            typer.Option(
                "--recalibrate-every",
                help="Recalibrate drift compensation every so much deployment time (e.g. 24h).",
            ),
        ] = None,
        time_cache: Annotated[
            bool,
            typer.Option(
                "--time-cache/--no-time-cache",
                help="Cache per-device draws while the clock runs: fast state updates, up to 20x the "
                "analog weight bytes of memory. Same numbers either way.",
            ),
        ] = True,
        fault_rate: Annotated[
            str | None,
            typer.Option(
                "--fault-rate",
                help="Fault onset hazards per device per second: gmin=1e-9,gmax=1e-10,outlier=0.",
            ),
        ] = None,
        set_: Annotated[
            list[str] | None,
            typer.Option("--set", help="Device card override SECTION.KEY=VALUE (repeatable)."),
        ] = None,
        noise: Annotated[
            str | None,
            typer.Option(
                "--noise", help="Statistical weight noise: gaussian, uniform, cauchy, ..."
            ),
        ] = None,
        schedule: Annotated[
            str | None,
            typer.Option(
                "--schedule",
                help="Sigma per token: 0.01, linear:0:0.02, exp:1e-3:0.02, step:0:0.02:50, "
                "sine:0:0.02:50.",
            ),
        ] = None,
        relative: Annotated[
            bool, typer.Option("--relative", help="Sigma relative to each layer's weight std.")
        ] = False,
        noise_roles: Annotated[
            str | None,
            typer.Option("--noise-roles", help="Roles to perturb (default all but embeddings)."),
        ] = None,
        stop_at_eos: Annotated[
            bool, typer.Option("--stop-at-eos", help="Stop at the end-of-text token.")
        ] = False,
        window: Annotated[
            int, typer.Option("--window", min=1, help="Rolling window of the gap plot, tokens.")
        ] = 16,
        out: Annotated[Path | None, _OUT] = None,
        quiet: Annotated[bool, typer.Option("--quiet", help="Do not print the text.")] = False,
        json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    ) -> None:
        """Generate text on a simulated chip while drift, temperature and faults advance.

        Token k is computed with the chip at START_AGE + k * TOKEN_TIME. Prints the text as it
        is generated and writes trace.csv (one row per token), events.csv, results.csv,
        manifest.json and plots. The seed study (sigma rising over the tokens) is
        `--noise gaussian --schedule linear:0:0.02` (digital model unless --mapping).
        """
        from analogsim.studies.generate import run_generate

        show = not quiet and not json_out
        res = run_generate(
            model,
            prompt=_prompt(prompt, prompt_ids),
            tokens=tokens,
            token_time=token_time,
            start_age=start_age,
            temperature=temperature,
            mapping=mapping,
            device=device,
            fault_rate=fault_rate,
            device_overrides=_overrides(set_),
            seed=seed,
            sample=sample,
            softmax_temperature=softmax_temperature,
            top_k=top_k,
            top_p=top_p,
            tolerance=tolerance,
            recalibrate_every=recalibrate_every,
            time_cache=time_cache,
            noise=noise,
            schedule=schedule,
            relative=relative,
            noise_roles=_roles(noise_roles),
            stop_at_eos=stop_at_eos,
            window=window,
            out=out,
            print_text=show,
        )
        if json_out:
            _print_json(
                {
                    "run_dir": str(res["run_dir"]),
                    "text": res["text"],
                    "metrics": res["metrics"],
                    "clock": res["clock"],
                    "cliff_token": res["cliff"]["alarm_index"],
                }
            )
            return
        if show:
            print()
        m = res["metrics"]
        table = Table(title=f"{model}: generation on an aging chip")
        table.add_column("measure")
        table.add_column("value", justify="right")
        for k, v in m.items():
            table.add_row(k, _fmt(v))
        console.print(table)
        c = res["cliff"]
        if c["alarm_index"] is None:
            console.print("degradation detector: no alarm (CUSUM of logprob - digital_logprob)")
        else:
            row = res["rows"][c["alarm_index"]]
            console.print(
                f"degradation detector: alarm at token {c['alarm_index']} "
                f"(t = {float(row['time_s']):.4g} s), onset estimated at token {c['onset_index']}"
            )
        console.print(f"run directory: {res['run_dir']}")

    @app.command("stream")
    def stream_cmd(
        model: Annotated[
            str, typer.Argument(help="A classifier with a test set: digits-mlp.")
        ] = "digits-mlp",
        mapping: Annotated[
            str | None,
            typer.Option("--mapping", help="Chip partition; none: the digital model."),
        ] = None,
        device: Annotated[
            str | None, typer.Option("--device", help="Device card for analog layers.")
        ] = None,
        input_time: Annotated[
            str, typer.Option("--input-time", help="Simulated time per input (1s, 1h, 1d).")
        ] = "1h",
        start_age: Annotated[
            str, typer.Option("--start-age", help="Time since programming at the first input.")
        ] = "0",
        temperature: Annotated[
            str, typer.Option("--temperature", help="Temperature profile (see generate --help).")
        ] = "300K",
        seed: Annotated[int, typer.Option("--seed", help="Chip and noise seed.")] = 0,
        inputs: Annotated[
            int | None,
            typer.Option("--inputs", min=1, help="Stream length (default: the test set once)."),
        ] = None,
        shuffle: Annotated[
            bool, typer.Option("--shuffle", help="Permute the test set (seeded).")
        ] = False,
        window: Annotated[
            int, typer.Option("--window", min=1, help="Rolling accuracy window, inputs.")
        ] = 50,
        tolerance: Annotated[
            float, typer.Option("--tolerance", help="Skip tolerance, fraction of g_max.")
        ] = 0.005,
        recalibrate_every: Annotated[
            str | None,
            typer.Option("--recalibrate-every", help="Drift-compensation recalibration period."),
        ] = None,
        time_cache: Annotated[
            bool,
            typer.Option(
                "--time-cache/--no-time-cache",
                help="Cache per-device draws while the clock runs (fast updates, more memory).",
            ),
        ] = True,
        fault_rate: Annotated[
            str | None,
            typer.Option("--fault-rate", help="Fault onset hazards: gmin=1e-9,gmax=1e-10."),
        ] = None,
        set_: Annotated[
            list[str] | None,
            typer.Option("--set", help="Device card override SECTION.KEY=VALUE (repeatable)."),
        ] = None,
        noise: Annotated[
            str | None, typer.Option("--noise", help="Statistical weight noise distribution.")
        ] = None,
        schedule: Annotated[
            str | None, typer.Option("--schedule", help="Sigma per input (see generate --help).")
        ] = None,
        relative: Annotated[
            bool, typer.Option("--relative", help="Sigma relative to each layer's weight std.")
        ] = False,
        out: Annotated[Path | None, _OUT] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    ) -> None:
        """Classify the test set as a stream of inputs while the chip ages.

        Input i is classified with the chip at START_AGE + i * INPUT_TIME; writes trace.csv
        (rolling accuracy over deployment time), results.csv, manifest.json and plots.
        """
        from analogsim.studies.stream import run_stream

        res = run_stream(
            model,
            input_time=input_time,
            start_age=start_age,
            temperature=temperature,
            mapping=mapping,
            device=device,
            fault_rate=fault_rate,
            device_overrides=_overrides(set_),
            seed=seed,
            inputs=inputs,
            shuffle=shuffle,
            window=window,
            tolerance=tolerance,
            recalibrate_every=recalibrate_every,
            time_cache=time_cache,
            noise=noise,
            schedule=schedule,
            relative=relative,
            out=out,
        )
        if json_out:
            _print_json(
                {
                    "run_dir": str(res["run_dir"]),
                    "metrics": res["metrics"],
                    "clock": res["clock"],
                }
            )
            return
        table = Table(title=f"{model}: accuracy over deployment time")
        table.add_column("measure")
        table.add_column("value", justify="right")
        for k, v in res["metrics"].items():
            table.add_row(k, _fmt(v))
        console.print(table)
        console.print(f"run directory: {res['run_dir']}")


def _print_json(obj: object) -> None:
    from analogsim.cli import print_json

    print_json(obj)
