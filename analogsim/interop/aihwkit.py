"""Interchange with IBM aihwkit 1.1.0: export a model with its analogsim deployment, read an
aihwkit-trained state dict back.

Export (:func:`export_aihwkit`): every layer the mapping places analog becomes an aihwkit
``AnalogLinear`` (GPT-2 ``Conv1D`` is turned into the equivalent ``nn.Linear`` first, which
aihwkit's own converter skips) or ``AnalogConv2d``, each with its own
``TorchInferenceRPUConfig`` (the pure-torch inference tile, which runs with any torch;
aihwkit's C++ tiles are not needed) built by :func:`rpu_config_for` from the layer's tile and
device card:

==========================  ============================================================
analogsim                   aihwkit 1.1.0
==========================  ============================================================
tile ``rows`` / ``cols``    ``mapping.max_input_size`` / ``max_output_size``
DAC ``dac_bits`` b          ``forward.inp_res = 1 / (2 L)``, ``L = 2^(b-1) - 1``
                            (aihwkit's step is ``2 inp_res inp_bound``), ``inp_bound = 1``
``dac_range = "dynamic"``   ``forward.noise_management = ABS_MAX``
static ``dac_range = r``    ``pre_post.input_range`` on, ``init_value = r``, not learned;
                            ``noise_management = NONE``
ADC ``adc_bits``, bound B   ``forward.out_res = 1 / (2 L)``, ``out_bound = B``
``out_noise``               ``forward.out_noise`` (per tile)
``read_noise``              not in the torch tile (``forward.w_noise`` with
                            ``PCM_READ`` needs aihwkit's C++ ``InferenceRPUConfig``): 0,
                            stated in the manifest
``weight_scale``            ``mapping.weight_scaling_omega = 1``, columnwise for ``column``
``drift_compensation``      ``GlobalDriftCompensation`` / ``PerColumnDriftCompensation``
PCM card                    ``PCMLikeNoiseModel`` (g_max, programming coefficients and
                            scale, t0, t_read, drift and read-noise scales)
==========================  ============================================================

Bound management is off (analogsim has none). What aihwkit cannot express is written to the
manifest (:func:`limitations`): temperature, faults, non-PCM cards or PCM drift/read fits
other than aihwkit's built-in ones, digital int-quantised layers, analog embeddings, the
per-role mapping itself (the exported model holds each layer's placement; aihwkit's
converter only knows exclusion lists), and that aihwkit's drift-compensation readout is a
noisy forward of one-hot inputs where analogsim reads ``mean |w|`` exactly.

The folder holds the digital model (``digital/``, ``save_pretrained`` of a Hugging Face
model, or ``digital.pt``), ``rpu_configs.pt`` (one ``TorchInferenceRPUConfig`` per analog
layer), ``state_dict.pt`` (the aihwkit model's ``state_dict()``), ``manifest.json`` and
``load_aihwkit.py``, a standalone loader (torch, aihwkit and transformers only) that rebuilds
the aihwkit model: the aihwkit model itself cannot be pickled whole (its torch tile holds a
local hook function). :func:`load_exported` runs that loader.

Import (:func:`import_aihwkit`): an aihwkit state dict (``AnalogLinear`` / ``AnalogConv2d``
entries ``<name>.analog_module.tile.weight``, ``.bias``, ``.mapping_scales``, ``.alpha``, or
plain digital entries) is read with ``torch.load(weights_only=True)``, aihwkit's configuration classes
allowlisted, and its digital weights (tile weights times their output scale) are written
into the matching layers of the analogsim model.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from analogsim.devices import load_device
from analogsim.devices.model import DeviceModel
from analogsim.devices.physics import levels_for_bits
from analogsim.errors import ConfigError, MissingDependencyError
from analogsim.mapping.rules import Mapping, load_mapping, resolve_plan
from analogsim.models import load_model
from analogsim.models.base import LoadedModel
from analogsim.provenance import jsonable, versions
from analogsim.tiles.config import TileConfig
from analogsim.tiles.kinds import module_kind, set_submodule, weight_matrix

EXTRA = "aihwkit"
AIHWKIT_VERSION = "1.1.0"
STATE_FILE = "state_dict.pt"
RPU_FILE = "rpu_configs.pt"
DIGITAL_DIR = "digital"
DIGITAL_FILE = "digital.pt"
LOADER = "load_aihwkit.py"
MANIFEST = "manifest.json"

LOADER_SOURCE = '''"""Rebuild the aihwkit model analogsim exported into this folder (needs torch, aihwkit
1.1.0 and, for Hugging Face models, transformers; not analogsim).

    from load_aihwkit import load
    model = load(".")                     # aihwkit AnalogLinear / AnalogConv2d layers
    model.program_analog_weights(); model.drift_analog_weights(3600.0)

The pickled files are analogsim's own output: load them only from a source you trust.
"""

import json
import sys
from pathlib import Path

import torch
from torch import nn


def _linear(mod):
    if type(mod).__name__ != "Conv1D":  # GPT-2's Conv1D stores (in, out)
        return mod
    lin = nn.Linear(mod.weight.shape[0], mod.weight.shape[1], bias=mod.bias is not None)
    with torch.no_grad():
        lin.weight.copy_(mod.weight.t())
        if mod.bias is not None:
            lin.bias.copy_(mod.bias)
    return lin


def load(folder="."):
    from aihwkit.nn import AnalogConv2d, AnalogLinear

    folder = Path(folder)
    man = json.loads((folder / "manifest.json").read_text())
    if man["family"] == "hf":
        import transformers

        cls = getattr(transformers, man["class"])
        model = cls.from_pretrained(folder / man["files"]["digital"])
    else:
        model = torch.load(folder / man["files"]["digital"], weights_only=False)
    rpus = torch.load(folder / man["files"]["rpu_configs"], weights_only=False)
    for layer in man["analog_layers"]:
        name = layer["name"]
        parent_name, _, leaf = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        mod = getattr(parent, leaf)
        if isinstance(mod, nn.Conv2d):
            new = AnalogConv2d.from_digital(mod, rpus[name])
        else:
            new = AnalogLinear.from_digital(_linear(mod), rpus[name])
        setattr(parent, leaf, new)
    state = torch.load(folder / man["files"]["state_dict"], weights_only=False)
    model.load_state_dict(state)
    if not hasattr(model, "program_analog_weights"):
        from aihwkit.nn import AnalogWrapper  # program_analog_weights() on the root, as
        model = AnalogWrapper(model)  # aihwkit's convert_to_analog gives

    return model.eval()


if __name__ == "__main__":
    m = load(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)
    print(m)
'''
"""The standalone loader written beside an export (torch + aihwkit + transformers only)."""

_CONFIG_MODULES = (
    "aihwkit.simulator.configs",
    "aihwkit.simulator.configs.configs",
    "aihwkit.simulator.configs.devices",
    "aihwkit.simulator.parameters",
    "aihwkit.simulator.parameters.enums",
    "aihwkit.simulator.parameters.io",
    "aihwkit.simulator.parameters.mapping",
    "aihwkit.simulator.parameters.pre_post",
    "aihwkit.simulator.parameters.inference",
    "aihwkit.simulator.parameters.training",
    "aihwkit.simulator.parameters.runtime",
    "aihwkit.simulator.tiles.inference_torch",
    "aihwkit.simulator.tiles.torch_tile",
    "aihwkit.inference",
    "aihwkit.inference.noise.pcm",
    "aihwkit.inference.converter.conductance",
    "aihwkit.inference.compensation.drift",
)


def require_aihwkit() -> Any:
    """The ``aihwkit`` module, or :class:`MissingDependencyError` naming the pip extra."""
    try:
        import aihwkit
    except ImportError as exc:
        raise MissingDependencyError(
            "aihwkit interchange needs aihwkit, which is not installed: "
            f'pip install "analogsim[{EXTRA}]" (aihwkit {AIHWKIT_VERSION})'
        ) from exc
    return aihwkit


# ---------------------------------------------------------------------------- config
def _pcm_reference() -> DeviceModel:
    return load_device("pcm")


def device_limitations(device: DeviceModel | None) -> list[str]:
    """What of a card aihwkit's ``PCMLikeNoiseModel`` cannot express (empty: nothing)."""
    if device is None or device.is_ideal:
        return []
    out: list[str] = []
    name = device.name
    if device.technology != "pcm":
        out.append(
            f"device '{name}' ({device.technology}): aihwkit has no equivalent noise model; "
            "exported with PCMLikeNoiseModel scales set to 0 (no programming, drift or read "
            "noise)"
        )
    ref = _pcm_reference()
    pcm = device.technology == "pcm"
    d, rd = device.drift, ref.drift
    if (
        pcm
        and d is not None
        and rd is not None
        and (d.nu_mean, d.nu_std) != (rd.nu_mean, rd.nu_std)
    ):
        out.append(
            f"device '{name}': drift-exponent fits differ from aihwkit's built-in PCM fits "
            "(aihwkit keeps its own)"
        )
    r, rr = device.read_noise, ref.read_noise
    if pcm and r is not None and rr is not None and r.amplitude != rr.amplitude:
        out.append(
            f"device '{name}': read-noise amplitude fit differs from aihwkit's built-in "
            "one (aihwkit keeps its own)"
        )
    t = device.temperature
    out.append(
        f"device '{name}': temperature (Arrhenius conduction and drift acceleration, "
        f"reference {t.t_ref_K:g} K) - aihwkit has no temperature; it runs as at the "
        "reference temperature"
    )
    f = device.faults
    if f.static or f.dynamic:
        out.append(
            f"device '{name}': stuck-at faults, outliers and fault onsets - not in aihwkit's "
            "PCM noise model"
        )
    return out


def rpu_config_for(
    tile: TileConfig, device: DeviceModel | None, input_range: float | None = None
) -> Any:
    """The ``TorchInferenceRPUConfig`` equivalent to one analog layer's tile and card (module
    docstring table). ``input_range``: a learned static DAC range (overrides the tile's)."""
    require_aihwkit()
    from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel
    from aihwkit.inference.compensation.drift import PerColumnDriftCompensation
    from aihwkit.simulator.configs import TorchInferenceRPUConfig
    from aihwkit.simulator.parameters.enums import (
        BoundManagementType,
        NoiseManagementType,
        WeightClipType,
        WeightModifierType,
        WeightNoiseType,
        WeightRemapType,
    )

    rpu = TorchInferenceRPUConfig()
    fwd = rpu.forward
    fwd.is_perfect = False
    fwd.inp_bound = 1.0
    fwd.inp_res = 1.0 / (2 * levels_for_bits(tile.dac_bits)) if tile.dac_bits else -1.0
    fwd.inp_noise = 0.0
    fwd.out_res = 1.0 / (2 * levels_for_bits(tile.adc_bits)) if tile.adc_bits else -1.0
    fwd.out_bound = tile.adc_bound if tile.adc_bound > 0 else -1.0
    fwd.out_noise = float(tile.out_noise)
    # aihwkit 1.1.0's torch tile refuses forward.w_noise; the per-MVM read noise (PCM_READ,
    # the same form as analogsim's) needs its C++ InferenceRPUConfig: see the manifest
    fwd.w_noise = 0.0
    fwd.w_noise_type = WeightNoiseType.NONE
    fwd.bound_management = BoundManagementType.NONE
    fwd.ir_drop = 0.0
    static = input_range if input_range is not None else tile.dac_range
    if static == "dynamic":
        fwd.noise_management = NoiseManagementType.ABS_MAX
        rpu.pre_post.input_range.enable = False
    else:
        fwd.noise_management = NoiseManagementType.NONE
        ir = rpu.pre_post.input_range
        ir.enable = True
        ir.learn_input_range = False
        ir.init_from_data = 0
        ir.init_value = float(static)
    rpu.backward.is_perfect = True
    rpu.mapping.max_input_size = int(tile.rows)
    rpu.mapping.max_output_size = int(tile.cols)
    rpu.mapping.digital_bias = True
    rpu.mapping.weight_scaling_omega = 1.0
    rpu.mapping.weight_scaling_columnwise = tile.weight_scale == "column"
    rpu.mapping.learn_out_scaling = False
    rpu.mapping.out_scaling_columnwise = False
    rpu.clip.type = WeightClipType.NONE
    rpu.remap.type = WeightRemapType.NONE
    rpu.modifier.type = WeightModifierType.NONE
    rpu.drift_compensation = {
        "none": None,
        "global": GlobalDriftCompensation(),
        "column": PerColumnDriftCompensation(),
    }[tile.drift_compensation]
    if device is not None and device.technology == "pcm" and not device.is_ideal:
        prog, drift, read = device.programming, device.drift, device.read_noise
        nm = PCMLikeNoiseModel(
            g_max=float(device.g_max),
            prog_coeff=list(prog.coeffs_uS) if prog is not None else [0.0, 0.0, 0.0],
            t_0=float(drift.t0_s) if drift is not None else 20.0,
            t_read=float(read.t_offset_s) if read is not None else 2.5e-7,
            prog_noise_scale=float(prog.scale) if prog is not None else 0.0,
            read_noise_scale=float(read.scale) if read is not None else 0.0,
            drift_scale=float(drift.scale) if drift is not None else 0.0,
        )
        # aihwkit 1.1.0 leaves the attribute unset when the argument is given: set it here
        nm.prog_coeff_g_max_reference = (
            float(prog.g_max_ref_uS) if prog is not None else float(device.g_max)
        )
        rpu.noise_model = nm
    else:
        rpu.noise_model = PCMLikeNoiseModel(
            prog_noise_scale=0.0, read_noise_scale=0.0, drift_scale=0.0
        )
    return rpu


# ---------------------------------------------------------------------------- export
def _as_linear(mod: nn.Module) -> nn.Module:
    """GPT-2 ``Conv1D`` as the equivalent ``nn.Linear`` (weights transposed); else ``mod``."""
    if module_kind(mod) != "conv1d":
        return mod
    w = weight_matrix(mod).detach()  # (out, in)
    lin = nn.Linear(w.shape[1], w.shape[0], bias=mod.bias is not None)
    with torch.no_grad():
        lin.weight.copy_(w)
        if mod.bias is not None:
            lin.bias.copy_(mod.bias.detach())
    return lin


def _load(model: str | LoadedModel | nn.Module) -> tuple[nn.Module, dict[str, Any]]:
    """A digital torch model and what is known about it (checkpoint sidecar, name).

    A checkpoint folder comes as a :class:`LoadedModel` (the command line loads it: the
    checkpoint format belongs to :mod:`analogsim.train`, a sibling layer)."""
    if isinstance(model, nn.Module):
        return model, {"name": type(model).__name__}
    if isinstance(model, LoadedModel):
        return model.model, {"name": model.name, "sidecar": model.info.get("sidecar")}
    loaded = load_model(str(model), progress=False)
    return loaded.model, {"name": loaded.name}


def limitations(
    mapping: Mapping, plan: Any, input_ranges: dict[str, float] | None = None
) -> list[str]:
    """Every statement of the manifest's ``not_expressible`` list."""
    out: list[str] = []
    seen: set[str] = set()
    for lp in plan.layers:
        if lp.placement == "analog" and lp.device is not None and lp.device.name not in seen:
            seen.add(lp.device.name)
            out += device_limitations(lp.device)
        if lp.placement == "analog" and lp.kind == "embedding":
            out.append(
                f"{lp.name}: analog embedding table - aihwkit has no analog lookup; kept digital"
            )
        if lp.quantizer is not None and lp.placement != "analog":
            out.append(
                f"{lp.name}: digital int{lp.quantizer.bits} quantisation - aihwkit inference "
                "has no digital quantised layer; exported in float"
            )
    out.append(
        f"mapping '{mapping.name}': per-role placement rules - the exported model holds each "
        "layer's placement and settings, but aihwkit's converter can only reproduce them "
        "with exclusion lists, not roles"
    )
    split = [
        lp.name
        for lp in plan.layers
        if lp.placement == "analog" and lp.tile is not None and lp.in_features > lp.tile.rows
    ]
    if split:
        out.append(
            f"{len(split)} layer(s) span several tiles (e.g. {split[0]}): aihwkit scales the "
            "DAC range (abs-max noise management) and the weights per tile; analogsim per "
            "input vector and per layer (or column) across tiles - outputs of split layers "
            "differ"
        )
    out.append(
        "drift compensation: aihwkit reads it out with a (noisy) forward pass of one-hot "
        "inputs; analogsim uses mean |w| of the device weights exactly"
    )
    reads = sorted(
        {
            lp.tile.read_noise
            for lp in plan.layers
            if lp.placement == "analog" and lp.tile is not None and lp.tile.read_noise > 0
        }
    )
    if reads:
        out.append(
            f"per-MVM read noise (read_noise {', '.join(f'{r:g}' for r in reads)}): aihwkit "
            "1.1.0's torch tile (TorchInferenceRPUConfig) refuses forward.w_noise; exported "
            "as 0. With aihwkit's C++ tiles set forward.w_noise to it and forward.w_noise_type "
            "= PCM_READ (the same form)"
        )
    if input_ranges:
        out.append(
            "learned input ranges are exported as fixed aihwkit input ranges "
            "(pre_post.input_range, not learned further)"
        )
    return out


def export_aihwkit(
    model: str | LoadedModel | nn.Module,
    out: str | Path,
    mapping: str | Mapping | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Write ``model`` (a built-in name or Hugging Face folder, a loaded checkpoint or a
    torch model) with the mapping as an aihwkit model into ``out`` (module docstring);
    return the manifest.

    ``mapping`` defaults to ``all_analog``, ``device`` to a loaded checkpoint's. Learned
    input ranges of a ``distill`` checkpoint become fixed input ranges.
    """
    require_aihwkit()
    from aihwkit.nn import AnalogConv2d, AnalogLinear

    net, info = _load(model)
    side = info.get("sidecar") or {}
    if device is None and side:
        device = side.get("device")
    m = load_mapping(mapping or "all_analog").with_device(device)
    ranges = dict(side.get("input_ranges") or {})
    net = copy.deepcopy(net).eval()
    plan = resolve_plan(net, m)
    modules = dict(net.named_modules())
    layers: list[dict[str, Any]] = []
    rpus: dict[str, Any] = {}
    for lp in plan.layers:
        if lp.placement != "analog" or lp.kind == "embedding" or lp.tied_to is not None:
            continue
        mod = modules[lp.name]
        rpu = rpu_config_for(lp.tile, lp.device, ranges.get(lp.name))
        rpus[lp.name] = rpu
        if lp.kind == "conv2d":
            new = AnalogConv2d.from_digital(mod, rpu)
        else:
            new = AnalogLinear.from_digital(_as_linear(mod), rpu)
        set_submodule(net, lp.name, new)
        layers.append(
            {
                "name": lp.name,
                "role": lp.role,
                "kind": lp.kind,
                "device": lp.device.name if lp.device is not None else None,
                "tile": lp.tile.__dict__ if lp.tile is not None else None,
                "input_range": ranges.get(lp.name),
                "aihwkit": type(new).__name__,
            }
        )
    if not layers:
        raise ConfigError(
            "the mapping places no layer analog: nothing to export to aihwkit",
            key="mapping",
            value=m.name,
        )
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    digital = copy.deepcopy(_load(model)[0]).eval()
    if hasattr(digital, "save_pretrained") and hasattr(digital, "config"):
        digital.save_pretrained(folder / DIGITAL_DIR)
        family = "hf"
    else:
        torch.save(digital, folder / DIGITAL_FILE)
        family = "torch"
    torch.save(rpus, folder / RPU_FILE)
    torch.save(net.state_dict(), folder / STATE_FILE)
    (folder / LOADER).write_text(LOADER_SOURCE)
    manifest = {
        "format": "analogsim-aihwkit-export",
        "aihwkit_version": AIHWKIT_VERSION,
        "model": info.get("name"),
        "family": family,
        "class": type(digital).__name__,
        "mapping": m.name,
        "device": device,
        "analog_layers": layers,
        "not_expressible": limitations(m, plan, ranges),
        "load": f"python {LOADER} (or: from load_aihwkit import load; model = load('.'))",
        "files": {
            "digital": DIGITAL_DIR if family == "hf" else DIGITAL_FILE,
            "rpu_configs": RPU_FILE,
            "state_dict": STATE_FILE,
            "loader": LOADER,
        },
        "versions": versions(),
    }
    (folder / MANIFEST).write_text(json.dumps(jsonable(manifest), indent=2) + "\n")
    return manifest


def load_exported(folder: str | Path) -> nn.Module:
    """The aihwkit model of an export folder, rebuilt by the folder's own loader script
    (the same code an aihwkit user without analogsim runs)."""
    require_aihwkit()
    folder = Path(folder)
    if not (folder / MANIFEST).is_file() or not (folder / LOADER).is_file():
        raise ConfigError(
            "not an analogsim aihwkit export", file=folder, allowed="a folder of `analogsim export`"
        )
    namespace: dict[str, Any] = {"__name__": "analogsim_aihwkit_loader"}
    exec(compile((folder / LOADER).read_text(), str(folder / LOADER), "exec"), namespace)
    return namespace["load"](folder)


# ---------------------------------------------------------------------------- import
def _safe_globals() -> list[type]:
    """aihwkit's configuration classes (dataclasses and enums of an analog tile's state)."""
    out: list[type] = []
    for name in _CONFIG_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:  # pragma: no cover - module layout of other aihwkit versions
            continue
        out += [
            c
            for _, c in inspect.getmembers(mod, inspect.isclass)
            if c.__module__.startswith("aihwkit")
        ]
    return out


def read_aihwkit_state(path: str | Path) -> tuple[dict[str, Tensor], list[str]]:
    """The digital weights in an aihwkit state dict file, ``"<name>.weight"`` /
    ``"<name>.bias"`` ``(out, in)`` tensors, and the names of the analog layers.

    Analog entries give ``tile.weight x mapping_scales x alpha`` (the tile weights times
    their mapping and output scales, what aihwkit's ``get_weights`` returns);
    digital entries pass through. Read with ``weights_only=True``.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError("aihwkit state dict not found", file=p, allowed="a torch.save file")
    require_aihwkit()
    with torch.serialization.safe_globals(_safe_globals()):
        try:
            sd = torch.load(p, weights_only=True, map_location="cpu")
        except Exception as exc:
            raise ConfigError(
                f"cannot read the aihwkit state dict safely: {str(exc).splitlines()[0]}",
                file=p,
                allowed="a state_dict() saved with torch.save by aihwkit 1.1.0",
            ) from None
    if not isinstance(sd, dict):
        raise ConfigError("not a state dict", file=p, value=type(sd).__name__)
    out: dict[str, Tensor] = {}
    analog: list[str] = []
    for key, val in sd.items():
        if ".analog_module." in key:
            base, rest = key.split(".analog_module.", 1)
            if rest == "tile.weight":
                w = val.float()
                # digital weight = tile weight x mapping scale (per row or one) x out scale
                for scale_key in ("mapping_scales", "alpha"):
                    sc = sd.get(f"{base}.analog_module.{scale_key}")
                    if isinstance(sc, Tensor) and sc.numel() > 0:
                        a = sc.float().reshape(-1)
                        w = w * (a[:, None] if a.numel() == w.shape[0] else a)
                out[f"{base}.weight"] = w
                analog.append(base)
            elif rest == "bias" and isinstance(val, Tensor):
                out[f"{base}.bias"] = val.float()
        elif isinstance(val, Tensor):
            out[key] = val
    return out, analog


def import_aihwkit(
    path: str | Path, model: str | LoadedModel | nn.Module
) -> tuple[nn.Module, list[str]]:
    """Write an aihwkit state dict's weights into a copy of ``model``; return it and the
    names of the layers read from analog tiles. Shapes must match; GPT-2 ``Conv1D``
    weights are transposed back."""
    weights, analog = read_aihwkit_state(path)
    net, _ = _load(model)
    net = copy.deepcopy(net).eval()
    modules = dict(net.named_modules())
    params = dict(net.named_parameters(remove_duplicate=False))  # tied heads by their name
    buffers = dict(net.named_buffers(remove_duplicate=False))
    with torch.no_grad():
        for key, val in weights.items():
            owner, _, leaf = key.rpartition(".")
            mod = modules.get(owner)
            target = params.get(key, buffers.get(key))
            if target is None or mod is None:
                raise ConfigError(
                    "the aihwkit state dict names a tensor the model does not have",
                    file=path,
                    key=key,
                    allowed="a state dict of the same architecture",
                )
            if leaf == "weight" and module_kind(mod) == "conv1d":
                val = val.t()
            if tuple(val.shape) != tuple(target.shape):
                if val.numel() == target.numel():
                    val = val.reshape(target.shape)
                else:
                    raise ConfigError(
                        "shape mismatch",
                        file=path,
                        key=key,
                        value=tuple(val.shape),
                        allowed=str(tuple(target.shape)),
                    )
            target.copy_(val.to(target.dtype))
    return net, analog


__all__ = [
    "EXTRA",
    "device_limitations",
    "export_aihwkit",
    "import_aihwkit",
    "limitations",
    "load_exported",
    "read_aihwkit_state",
    "require_aihwkit",
    "rpu_config_for",
]
