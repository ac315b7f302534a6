"""``analogsim generate`` and ``analogsim stream``: models running while the chip ages.

Thin commands over :func:`analogsim.studies.generate.run_generate` and
:func:`analogsim.studies.stream.run_stream`. Imports of the API (torch and above) sit
inside the command bodies so that ``analogsim --help`` stays fast: the documented
exception to imports at module top.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer

from analogsim.cli.options import (
    DEFAULT_TOLERANCE,
    DeviceOpt,
    FaultRateOpt,
    JsonOpt,
    MaybeMappingOpt,
    MaybeNoiseOpt,
    OutOpt,
    ProfileOpt,
    RecalibrateOpt,
    RelativeOpt,
    ScheduleOpt,
    SeedOpt,
    SetOpt,
    TimeCacheOpt,
    ToleranceOpt,
    console,
    parse_overrides,
    parse_roles,
    print_json,
    print_values,
)
from analogsim.errors import ConfigError

#: = ``analogsim.studies.generate.DEFAULT_PROMPT`` (that module loads torch).
DEFAULT_PROMPT = "The return statement"


def _prompt(prompt: str, prompt_ids: str | None) -> str | list[int]:
    """The prompt text, or the token ids of ``--prompt-ids`` when given."""
    if prompt_ids is None:
        return prompt
    try:
        return [int(x) for x in prompt_ids.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(
            "token ids are comma-separated integers", key="prompt_ids", value=prompt_ids
        ) from None


#: The options of both commands that are chip and clock settings of the studies
#: (``ChipOptions`` fields of the same name); ``--set`` becomes ``device_overrides``.
_CHIP_OPTIONS = (
    "start_age",
    "temperature",
    "mapping",
    "device",
    "fault_rate",
    "seed",
    "tolerance",
    "recalibrate_every",
    "time_cache",
    "noise",
    "schedule",
    "relative",
)


def _chip_settings(args: dict[str, Any]) -> dict[str, Any]:
    """The chip and clock settings among a command's arguments (``args``: its
    ``locals()``), as keywords of ``run_generate`` / ``run_stream``."""
    return {k: args[k] for k in _CHIP_OPTIONS} | {"device_overrides": parse_overrides(args["set_"])}


PlasticityOpt = Annotated[
    str | None,
    typer.Option(
        "--plasticity",
        help="Plastic LoRA adapters updated by a local rule once per step at that step's "
        "time: oja, hebbian, bcm, predictive, energy, hybrid (docs/plasticity.md).",
    ),
]
PlasticityConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--plasticity-config",
        help="Plasticity TOML: rule mix, mechanisms (agp, tsm, ch), stability, update model.",
    ),
]
PlasticityEveryOpt = Annotated[
    int | None,
    typer.Option("--plasticity-every", min=1, help="One plasticity update every N steps."),
]


def _plastic_settings(args: dict[str, Any]) -> dict[str, Any]:
    """The plasticity options among a command's arguments, as study keywords."""
    return {k: args[k] for k in ("plasticity", "plasticity_config", "plasticity_every")}


def _fmt(v: Any) -> str:
    """A measure for the summary table: floats to 4 digits, NaN as "-"."""
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        return f"{v:.4g}"
    return str(v)


def generate_cmd(
    model: Annotated[
        str,
        typer.Argument(help="smollm2, tiny-gpt2 or a Hugging Face causal LM name / local path."),
    ],
    mapping: MaybeMappingOpt = None,
    device: DeviceOpt = None,
    prompt: Annotated[
        str,
        typer.Option(
            "--prompt",
            help="Prompt text; a user message for a model with a chat template (smollm2).",
        ),
    ] = DEFAULT_PROMPT,
    raw_prompt: Annotated[
        bool,
        typer.Option("--raw-prompt", help="Tokenize --prompt as it is, without the chat template."),
    ] = False,
    prompt_ids: Annotated[
        str | None,
        typer.Option("--prompt-ids", help="Prompt as token ids 1,2,3 (models without tokenizer)."),
    ] = None,
    tokens: Annotated[int, typer.Option("--tokens", min=1, help="New tokens.")] = 100,
    token_time: Annotated[
        str, typer.Option("--token-time", help="Simulated time per token (1s, 1h, 1d).")
    ] = "1s",
    start_age: Annotated[
        str,
        typer.Option(
            "--start-age",
            help="Time since programming at the first token (0, 1h, 1d, 1y). Default 1h, not "
            "the API's 0: drift is logarithmic in time, so from an hour of age on 1 s tokens "
            "rarely move a conductance enough to need a state update.",
        ),
    ] = "1h",
    temperature: ProfileOpt = "300K",
    seed: SeedOpt = 0,
    sample: Annotated[
        bool, typer.Option("--sample/--greedy", help="Sample tokens (seeded) or greedy.")
    ] = False,
    softmax_temperature: Annotated[
        float, typer.Option("--softmax-temperature", help="Sampling temperature.")
    ] = 1.0,
    top_k: Annotated[int | None, typer.Option("--top-k", help="Sample from the top k.")] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", help="Nucleus sampling mass.")] = None,
    tolerance: ToleranceOpt = DEFAULT_TOLERANCE,
    recalibrate_every: RecalibrateOpt = None,
    time_cache: TimeCacheOpt = True,
    fault_rate: FaultRateOpt = None,
    set_: SetOpt = None,
    noise: MaybeNoiseOpt = None,
    schedule: ScheduleOpt = None,
    relative: RelativeOpt = False,
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
    plasticity: PlasticityOpt = None,
    plasticity_config: PlasticityConfigOpt = None,
    plasticity_every: PlasticityEveryOpt = None,
    out: OutOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Do not print the text.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Generate text on a simulated chip while drift, temperature and faults advance.

    Token k is computed with the chip at START_AGE + k * TOKEN_TIME. A text prompt to a
    model with a chat template (smollm2) is a user message and the model answers it;
    --raw-prompt continues the text instead. Prints the text as it is generated and writes trace.csv (one row per token), events.csv, results.csv,
    manifest.json and plots. The seed study (sigma rising over the tokens) is
    `--noise gaussian --schedule linear:0:0.02` (digital model unless --mapping).
    --plasticity RULE adds plastic LoRA adapters updated once per token (trace gains the
    plasticity_* columns).
    """
    from analogsim.studies.generate import run_generate  # lazy: start-up time

    show = not quiet and not json_out
    res = run_generate(
        model,
        prompt=_prompt(prompt, prompt_ids),
        raw_prompt=raw_prompt,
        tokens=tokens,
        token_time=token_time,
        **_chip_settings(locals()),
        sample=sample,
        softmax_temperature=softmax_temperature,
        top_k=top_k,
        top_p=top_p,
        noise_roles=parse_roles(noise_roles),
        stop_at_eos=stop_at_eos,
        window=window,
        **_plastic_settings(locals()),
        out=out,
        print_text=show,
    )
    if json_out:
        print_json(
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
    print_values(f"{model}: generation on an aging chip", res["metrics"], _fmt)
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


def stream_cmd(
    model: Annotated[
        str, typer.Argument(help="A classifier with a test set: digits-mlp.")
    ] = "digits-mlp",
    mapping: MaybeMappingOpt = None,
    device: DeviceOpt = None,
    input_time: Annotated[
        str,
        typer.Option(
            "--input-time",
            help="Simulated time per input (1s, 1h, 1d). Default 1h, not the API's 60 s: "
            "digits-mlp's 450 test inputs then span about 19 days of deployment.",
        ),
    ] = "1h",
    start_age: Annotated[
        str, typer.Option("--start-age", help="Time since programming at the first input.")
    ] = "0",
    temperature: ProfileOpt = "300K",
    seed: SeedOpt = 0,
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
    tolerance: ToleranceOpt = DEFAULT_TOLERANCE,
    recalibrate_every: RecalibrateOpt = None,
    time_cache: TimeCacheOpt = True,
    fault_rate: FaultRateOpt = None,
    set_: SetOpt = None,
    noise: MaybeNoiseOpt = None,
    schedule: ScheduleOpt = None,
    relative: RelativeOpt = False,
    plasticity: PlasticityOpt = None,
    plasticity_config: PlasticityConfigOpt = None,
    plasticity_every: PlasticityEveryOpt = None,
    out: OutOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Classify the test set as a stream of inputs while the chip ages.

    Input i is classified with the chip at START_AGE + i * INPUT_TIME; writes trace.csv
    (rolling accuracy over deployment time), results.csv, manifest.json and plots.
    """
    from analogsim.studies.stream import run_stream  # lazy: start-up time

    res = run_stream(
        model,
        input_time=input_time,
        **_chip_settings(locals()),
        inputs=inputs,
        shuffle=shuffle,
        window=window,
        **_plastic_settings(locals()),
        out=out,
    )
    if json_out:
        print_json(
            {"run_dir": str(res["run_dir"]), "metrics": res["metrics"], "clock": res["clock"]}
        )
        return
    print_values(f"{model}: accuracy over deployment time", res["metrics"], _fmt)
    console.print(f"run directory: {res['run_dir']}")
