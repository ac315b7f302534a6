"""``analogsim export`` and ``analogsim import``: interchange with IBM aihwkit.

Thin commands over :mod:`analogsim.interop.aihwkit`. Imports of the API (torch and above)
sit inside the command bodies so that ``analogsim --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from analogsim.cli.options import DeviceOpt, JsonOpt, console, print_json
from analogsim.errors import ConfigError

TARGETS = ("aihwkit",)


def _loaded(model: str):
    """A checkpoint folder as a LoadedModel (its mapping and device recorded), else the
    name as given (built-in model or Hugging Face folder)."""
    from analogsim.train.checkpoint import SIDECAR, load_checkpoint  # lazy: start-up time

    p = Path(model)
    if p.is_dir() and (p / SIDECAR).is_file():
        return load_checkpoint(p, with_data=False)
    return model


def export_cmd(
    model: Annotated[
        str,
        typer.Argument(help="A built-in model, a Hugging Face folder or an analogsim checkpoint."),
    ],
    to: Annotated[str, typer.Option("--to", help="Target simulator: aihwkit.")] = "aihwkit",
    out: Annotated[Path, typer.Option("--out", help="Folder to write.")] = Path("aihwkit-export"),
    mapping: Annotated[
        str | None,
        typer.Option(
            "--mapping", help="Chip partition (default: the checkpoint's, else all_analog)."
        ),
    ] = None,
    device: DeviceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Write MODEL with its analog mapping as an aihwkit 1.1.0 model: AnalogLinear layers
    (GPT-2 Conv1D converted) with TorchInferenceRPUConfig equivalents of the tiles and the
    PCM card; manifest.json lists what aihwkit cannot express; load_aihwkit.py rebuilds it.
    """
    if to not in TARGETS:
        raise ConfigError("unknown export target", key="--to", value=to, allowed=", ".join(TARGETS))
    from analogsim.interop.aihwkit import export_aihwkit, require_aihwkit  # lazy: start-up

    require_aihwkit()
    src = _loaded(model)
    if mapping is None and not isinstance(src, str):
        from analogsim.studies.robustness import mapping_from_sidecar  # lazy: start-up

        mapping_arg = mapping_from_sidecar(src.info["sidecar"])
    else:
        mapping_arg = mapping or "all_analog"
    man = export_aihwkit(src, out, mapping_arg, device)
    if json_out:
        print_json(man)
        return
    console.print(
        f"{man['model']}: {len(man['analog_layers'])} analog layers on '{man['mapping']}' "
        f"written for aihwkit {man['aihwkit_version']} to {out}"
    )
    console.print("not expressible in aihwkit (manifest.json):")
    for line in man["not_expressible"]:
        console.print(f"  - {line}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"load: cd {out} && {man['load']}", markup=False, highlight=False)


def import_cmd(
    state_dict: Annotated[Path, typer.Argument(help="An aihwkit state_dict() file (torch.save).")],
    model: Annotated[
        str,
        typer.Option(
            "--model", help="The architecture: built-in model, Hugging Face folder or checkpoint."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Checkpoint folder to write.")] = Path(
        "aihwkit-import"
    ),
    mapping: Annotated[
        str, typer.Option("--mapping", help="The mapping the weights were trained for.")
    ] = "all_analog",
    device: DeviceOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Read an aihwkit-trained state dict back into MODEL's architecture and write an
    analogsim checkpoint (evaluate it with analogsim eval/robustness). Loaded with
    torch.load(weights_only=True), aihwkit's configuration classes allowlisted."""
    from analogsim.interop.aihwkit import import_aihwkit  # lazy: start-up time
    from analogsim.models import load_model  # lazy: start-up time
    from analogsim.train.checkpoint import save_checkpoint  # lazy: start-up time

    src = _loaded(model)
    loaded = src if not isinstance(src, str) else load_model(src, progress=False)
    net, analog = import_aihwkit(state_dict, loaded)
    folder = save_checkpoint(
        net,
        out,
        name=loaded.name,
        kind=loaded.kind,
        method="aihwkit-import",
        mapping=mapping,
        device=device,
        seed=0,
        tokenizer=loaded.tokenizer,
        extra={"imported_from": str(state_dict), "analog_layers_read": analog},
    )
    if json_out:
        print_json({"checkpoint": str(folder), "analog_layers_read": analog})
        return
    console.print(f"{len(analog)} analog layers read from {state_dict}; checkpoint: {folder}")


__all__ = ["export_cmd", "import_cmd"]
