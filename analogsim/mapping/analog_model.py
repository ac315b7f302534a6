"""AnalogModel: a converted model plus its device state, the owner of deployment time.

>>> import torch, analogsim
>>> net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
>>> am = analogsim.convert(net, "all_analog").program(seed=0)
>>> y = am.at(3600.0, 300.0)(torch.randn(2, 8))          # one hour after programming, 300 K
>>> digital = am.restore()                               # original weights, bit for bit

Time
----
An :class:`AnalogModel` keeps the wall time since programming and, per device
temperature model (:attr:`Temperature.age_key
<analogsim.devices.sections.Temperature.age_key>`), the drift-equivalent age at the
reference temperature (demarcation-energy law, Ielmini et al. 2008) and the fault age, in
one :class:`~analogsim.devices.age.DeploymentAge`; 1/f read noise runs on the wall time.
``program(seed, temperature_K)`` verifies the targets at the programming temperature
(default 300 K); ``at(t, T)`` means "held at T since programming"; ``advance(dt, T)`` adds
``dt`` at ``T``; the clock calls :meth:`AnalogModel.set_time` with ages integrated over any
profile. Device state is always recomputed from the programmed state at the new ages.

Times must be finite and >= 0 s and temperatures in
:data:`~analogsim.units.TEMPERATURE_RANGE_K` (233 K to 398.15 K): anything
else raises ``ValueError`` naming the argument.

Probes
------
What the chip applies now, read without changing it: :func:`effective_matrix` (the
effective weights of a layer), :func:`squared_error` (``||W_eff - W||^2``),
:func:`count_faults` (failed devices at an equivalent age) and
:func:`effective_state` (the live effective weights, for statistical perturbation).
They are the only code outside ``analogsim.tiles`` that reads a layer's state
(``w_eff``, ``out_mult``); the clock and :mod:`analogsim.mapping.perturb` call them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from analogsim.devices import DeviceModel
from analogsim.devices.age import AgeKey, DeploymentAge, DeviceTime, check_temperature
from analogsim.devices.rng import CHUNK, derive_seed
from analogsim.mapping.rules import LayerPlan, PlacementPlan
from analogsim.tiles.embedding import AnalogEmbedding, analog_layers
from analogsim.tiles.kinds import set_submodule
from analogsim.tiles.layer import AnalogLayer


class AnalogModel(nn.Module):
    """A converted model plus its device state. Call it like the original model.

    Attributes:
        model: the converted module (analog layers wrapped in place).
        plan: the placement plan that converted it.
    """

    def __init__(self, model: nn.Module, plan: PlacementPlan) -> None:
        super().__init__()
        self.model = model
        self.plan = plan
        self.seed: int | None = None
        self.age = DeploymentAge()
        self.temperature_K: float | None = None
        self.programming_temperature_K: float = 300.0
        self._restored = False

    @property
    def time_s(self) -> float:
        """Wall (deployment) time since programming, s."""
        return self.age.time_s

    # ------------------------------------------------------------------ access
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._restored:
            raise RuntimeError("this AnalogModel was restored to digital; convert the model again")
        return self.model(*args, **kwargs)

    def analog_layers(self) -> Iterator[tuple[str, AnalogLayer | AnalogEmbedding]]:
        """(name, layer) of every analog-placed layer (:func:`~analogsim.tiles.embedding.analog_layers`)."""
        return analog_layers(self.model)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        """Hugging Face ``generate`` of the converted model."""
        return self.model.generate(*args, **kwargs)

    @property
    def config(self) -> Any:
        return getattr(self.model, "config", None)

    # ------------------------------------------------------------------ state
    def _layer_seed(self, seed: int, name: str, plan: LayerPlan | None) -> int:
        # tied weights placed analog on the same device share one physical array
        key = name
        if plan is not None and plan.tied_to is not None:
            key = min(name, plan.tied_to)
        return derive_seed(seed, key)

    @torch.no_grad()
    def program(self, seed: int, temperature_K: float = 300.0) -> AnalogModel:
        """Program every analog layer from ``seed`` (same seed, same numbers); time goes to 0.

        Args:
            seed: the device seed (an integer).
            temperature_K: the programming temperature, K: write-verify reaches the targets
                at this temperature, and a read at another temperature moves them by each
                state's activation energy (docs/physics.md section 4). In
                :data:`~analogsim.units.TEMPERATURE_RANGE_K`.
        """
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        t_prog = check_temperature(temperature_K, "temperature_K", allow_none=False)
        self.seed = int(seed)
        self.programming_temperature_K = t_prog
        by_name = self.plan.by_name()
        for name, layer in self.analog_layers():
            layer.program(self._layer_seed(self.seed, name, by_name.get(name)), t_prog)
        self.age = DeploymentAge()
        self.temperature_K = None
        return self

    def _require_programmed(self) -> None:
        if self.seed is None:
            raise RuntimeError("call program(seed) before setting time")

    def age_keys(self) -> list[AgeKey]:
        """Distinct :attr:`Temperature.age_key` of the analog layers' devices, in layer order."""
        keys: dict[AgeKey, None] = {}
        for _, layer in self.analog_layers():
            keys.setdefault(layer.device_model.temperature.age_key)
        return list(keys)

    def equivalent_time(self, device: DeviceModel) -> float:
        """Drift-equivalent age at the device's reference temperature, seconds."""
        return self.age.equivalent(device.temperature.age_key)

    def device_time(self, device: DeviceModel) -> DeviceTime:
        """The three ages (drift, held, fault) of ``device``'s population, seconds."""
        return self.age.device_time(device.temperature.age_key)

    @torch.no_grad()
    def set_time(
        self,
        time_s: float,
        temperature_K: float | None,
        equivalent: dict[AgeKey, float] | None = None,
        fault: dict[AgeKey, float] | None = None,
    ) -> AnalogModel:
        """Put every analog layer at wall time ``time_s``, reading at ``temperature_K``
        (``None``: the programming temperature).

        ``equivalent`` maps an age key to the drift-equivalent age and ``fault`` to the
        fault age; missing keys are computed as if the chip was held at ``temperature_K``
        (the programming temperature for ``None``) since programming.
        """
        self._require_programmed()
        time_s = _check_time(time_s, "time_s")
        temperature_K = check_temperature(temperature_K, "temperature_K")
        for name, ages in (("equivalent", equivalent), ("fault", fault)):
            for key, value in (ages or {}).items():
                _check_time(value, f"{name}[{key}]")
        held_T = self.programming_temperature_K if temperature_K is None else temperature_K
        age = DeploymentAge(float(time_s), dict(equivalent or {}), dict(fault or {}))
        for _, layer in self.analog_layers():
            key = layer.device_model.temperature.age_key
            age.hold_missing((key,), held_T)
            layer.set_state(age.device_time(key), temperature_K)
        self.age = age
        self.temperature_K = temperature_K
        return self

    def at(self, time_s: float, temperature_K: float | None = None) -> AnalogModel:
        """State ``time_s`` seconds after programming, held at ``temperature_K`` all along
        (``None``: at the programming temperature)."""
        return self.set_time(time_s, temperature_K)

    def advance(self, dt_s: float, temperature_K: float | None = None) -> AnalogModel:
        """Add ``dt_s`` seconds at ``temperature_K`` (``None``: the programming temperature)
        to the history and update the state."""
        self._require_programmed()
        dt_s = _check_time(dt_s, "dt_s")
        temperature_K = check_temperature(temperature_K, "temperature_K")
        held_T = self.programming_temperature_K if temperature_K is None else temperature_K
        age = self.age.copy(self.age_keys())
        age.add_constant(dt_s, held_T)
        return self.set_time(age.time_s, temperature_K, age.equivalent_s, age.fault_s)

    def time_cache_estimate(self) -> int:
        """Memory the layers' time caches take, bytes: 0. A state update is one pass that
        regenerates every device from its seed (:mod:`analogsim.devices.state`); nothing
        per device is cached."""
        return 0

    def enable_time_cache(self, enabled: bool = True, *, max_bytes: int = 2 << 30) -> bool:
        """Accepted for callers of the earlier cached update path (the clock, the workbench):
        sets the layers' flag, holds no memory, changes no number (every update is one
        regenerating pass). On when :meth:`time_cache_estimate` fits in ``max_bytes``;
        returns whether it is on (for at least one layer).
        """
        layers = [inner_layer(layer) for _, layer in self.analog_layers()]
        on = enabled and self.time_cache_estimate() <= max_bytes
        for layer in layers:
            layer.enable_time_cache(on)
        return on and bool(layers)

    def freeze_compensation(self, frozen: bool = True) -> None:
        """Keep each layer's drift-compensation factor fixed between :meth:`recalibrate` calls
        (a chip that recalibrates on a schedule); ``False`` recalibrates at every update."""
        for _, layer in self.analog_layers():
            if isinstance(layer, AnalogLayer):
                layer.frozen_compensation = frozen

    def recalibrate(self) -> None:
        """Recompute every layer's drift-compensation factor at the current state."""
        for _, layer in self.analog_layers():
            if isinstance(layer, AnalogLayer):
                layer.recalibrate()

    # ------------------------------------------------------------------ restore / report
    def restore(self) -> nn.Module:
        """Put the original modules back (weights bit for bit) and return the digital model.

        Every wrapper analogsim puts in place keeps the original as its ``digital`` child
        (analog layers, quantized digital layers, training wrappers); the outermost
        wrapper on each path is replaced by it.
        """
        done: list[str] = []
        for name, mod in list(self.model.named_modules()):
            if not name or any(name == d or name.startswith(d + ".") for d in done):
                continue
            original = mod._modules.get("digital")
            if isinstance(original, nn.Module):
                set_submodule(self.model, name, original)
                done.append(name)
        self._restored = True
        return self.model

    def placement_report(self) -> list[dict[str, Any]]:
        """One dict per weight layer: name, role, placement, device, tiles, params, rule."""
        return [p.as_dict() for p in self.plan.layers]

    def weight_bytes(self) -> int:
        """Bytes of the analog-placed layers' original weights."""
        total = 0
        for _, layer in self.analog_layers():
            w = layer.digital.weight
            total += w.numel() * w.element_size()
        return total

    def state_bytes(self) -> int:
        """Bytes of device state and caches held beyond the original weights."""
        return sum(layer.state_bytes() for _, layer in self.analog_layers())

    # ------------------------------------------------------------------ probes
    def squared_norms_by_role(self) -> dict[str, float]:
        """``||W||^2`` of the target weights per role (float64 sums), analog layers only."""
        plan = self.plan.by_name()
        out: dict[str, float] = {}
        for name, layer in self.analog_layers():
            role = plan[name].role if name in plan else "other"
            w = target_matrix(layer)
            out[role] = out.get(role, 0.0) + float(
                torch.linalg.vector_norm(w, dtype=torch.float64) ** 2
            )
        return out

    def squared_errors_by_role(self) -> dict[str, float]:
        """``||W_eff - W||^2`` per role, one pass over the analog weights (:func:`squared_error`)."""
        plan = self.plan.by_name()
        err: dict[str, float] = {}
        for name, layer in self.analog_layers():
            role = plan[name].role if name in plan else "other"
            err[role] = err.get(role, 0.0) + squared_error(layer)
        return err


def _check_time(value: object, name: str) -> float:
    """``value`` as seconds, finite and >= 0; ``ValueError`` naming ``name`` otherwise."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be seconds >= 0, got {value!r}") from None
    if not math.isfinite(out) or out < 0:
        raise ValueError(f"{name} must be finite seconds >= 0, got {value!r}")
    return out


# --------------------------------------------------------------------------------------
# probes of one analog layer (the only readers of a layer's state outside the tiles)


def inner_layer(layer: nn.Module) -> AnalogLayer:
    """The AnalogLayer that holds the state (an AnalogEmbedding wraps one)."""
    return getattr(layer, "_layer", layer)


def target_matrix(layer: nn.Module) -> Tensor:
    """The ``(out, in)`` weights a layer was programmed to (detached)."""
    return inner_layer(layer).matrix().detach()


def weight_count(layer: nn.Module) -> int:
    """Weights of a layer (each on a differential pair of devices)."""
    return target_matrix(layer).numel()


def effective_state(layer: nn.Module) -> tuple[Tensor, Tensor | None]:
    """The live effective weights of a layer and its digital output scale:
    ``(w_eff, out_mult)``, ``W_eff = w_eff * out_mult[:, None]`` (``out_mult`` is None
    when the scale is folded into ``w_eff``). Writing into ``w_eff`` changes what the
    layer applies until its next state update."""
    inner = inner_layer(layer)
    return inner.w_eff, getattr(inner, "out_mult", None)


def effective_matrix(layer: nn.Module) -> Tensor:
    """Effective ``(out, in)`` weights an analog layer applies now, in weight units.

    ``W_eff = w_eff * out_mult[:, None]`` (normalised weights times the digital output
    scale, drift compensation included) for a tile with converters, ``w_eff`` itself when
    the scale is folded in. Uses ``layer.effective_weight()`` when the layer provides it.
    """
    inner = inner_layer(layer)
    if hasattr(inner, "effective_weight"):
        return inner.effective_weight()
    w, mult = effective_state(layer)
    if mult is not None:
        return w * mult[:, None]
    return w


_ERR_BLOCK = 1 << 16  # elements per block of the weight-error pass (stays in cache)


def squared_error(layer: nn.Module) -> float:
    """``||W_eff - W||^2`` of one layer in one read of ``w_eff`` and ``W`` (float64 sums).

    Works in row blocks of about :data:`_ERR_BLOCK` elements through one small reused
    buffer, so no weight-sized temporary is made.
    """
    inner = inner_layer(layer)
    w = target_matrix(layer)
    if hasattr(inner, "effective_weight"):
        eff, mult = inner.effective_weight(), None
    else:
        eff, mult = effective_state(layer)
    rows = max(1, _ERR_BLOCK // max(1, w.shape[1]))
    buf = torch.empty(min(rows, w.shape[0]), w.shape[1], dtype=eff.dtype, device=eff.device)
    total = 0.0
    for r0 in range(0, w.shape[0], rows):
        r1 = min(r0 + rows, w.shape[0])
        b = buf[: r1 - r0]
        if mult is not None:
            torch.mul(eff[r0:r1], mult[r0:r1, None], out=b)
            b.sub_(w[r0:r1])
        else:
            torch.sub(eff[r0:r1], w[r0:r1], out=b)
        total += float(torch.linalg.vector_norm(b, dtype=torch.float64)) ** 2
    return total


def count_faults(layer: nn.Module, t_eq: float) -> int:
    """Failed devices of a layer at equivalent age ``t_eq`` (the draws of the layer's state
    pass: its ``2 n`` devices have counters ``0 .. 2n - 1``, read in blocks)."""
    inner = inner_layer(layer)
    dev: DeviceModel = inner.device_model
    devices = 2 * weight_count(layer)
    count = 0
    for start in range(0, devices, 2 * CHUNK):
        size = min(2 * CHUNK, devices - start)
        masks = dev.fault_masks((size,), inner.seed, t_eq, counter_base=start)
        count += int(sum(int(m.sum()) for m in masks.values()))
    return count
