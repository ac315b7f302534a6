"""AnalogModel: a converted model plus its device state, the owner of deployment time.

>>> import torch, analogsim
>>> net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
>>> am = analogsim.convert(net, "all_analog").program(seed=0)
>>> y = am.at(3600.0, 300.0)(torch.randn(2, 8))          # one hour after programming, 300 K
>>> digital = am.restore()                               # original weights, bit for bit

Time
----
An :class:`AnalogModel` keeps the wall time since programming and, per distinct drift
activation energy among its devices, the *equivalent* time at the reference temperature
(``t_eq = integral of exp(-Ea/k (1/T - 1/T_ref)) dt``). ``at(t, T)`` means "held at T
since programming"; ``advance(dt, T)`` adds ``dt`` at ``T``; the clock calls
:meth:`AnalogModel.set_time` with equivalent times integrated over any profile. Device
state is always recomputed from the programmed state at the new equivalent time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from analogsim.devices import DeviceModel
from analogsim.devices.physics import arrhenius_factor
from analogsim.devices.rng import derive_seed
from analogsim.mapping.rules import LayerPlan, PlacementPlan
from analogsim.tiles.embedding import AnalogEmbedding
from analogsim.tiles.layer import AnalogLayer


def set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    """Replace the module at dotted path ``name`` under ``root`` by ``new``."""
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


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
        self.time_s = 0.0
        self.temperature_K: float | None = None
        self._t_eq: dict[tuple[float, float], float] = {}
        self._restored = False

    # ------------------------------------------------------------------ access
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._restored:
            raise RuntimeError("this AnalogModel was restored to digital; convert the model again")
        return self.model(*args, **kwargs)

    def analog_layers(self) -> Iterator[tuple[str, AnalogLayer | AnalogEmbedding]]:
        """(name, layer) of every analog-placed layer."""
        # an AnalogEmbedding's inner AnalogLayer is part of it, not a layer of its own
        inner = {id(m._layer) for m in self.model.modules() if isinstance(m, AnalogEmbedding)}
        for name, mod in self.model.named_modules():
            if isinstance(mod, AnalogLayer | AnalogEmbedding) and id(mod) not in inner:
                yield name, mod

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
    def program(self, seed: int) -> AnalogModel:
        """Program every analog layer from ``seed`` (same seed, same numbers); time goes to 0."""
        self.seed = int(seed)
        by_name = self.plan.by_name()
        for name, layer in self.analog_layers():
            layer.program(self._layer_seed(self.seed, name, by_name.get(name)))
        self.time_s = 0.0
        self.temperature_K = None
        self._t_eq = {}
        return self

    def _require_programmed(self) -> None:
        if self.seed is None:
            raise RuntimeError("call program(seed) before setting time")

    @staticmethod
    def _ea_key(device: DeviceModel) -> tuple[float, float]:
        return (device.temperature.t_ref_K, device.temperature.drift_ea_eV)

    def equivalent_time(self, device: DeviceModel) -> float:
        """Equivalent age at the device's reference temperature, seconds."""
        return self._t_eq.get(self._ea_key(device), self.time_s)

    @torch.no_grad()
    def set_time(
        self,
        time_s: float,
        temperature_K: float | None,
        equivalent: dict[tuple[float, float], float] | None = None,
    ) -> AnalogModel:
        """Put every analog layer at wall time ``time_s``, reading at ``temperature_K``.

        ``equivalent`` maps ``(t_ref_K, drift_ea_eV)`` to the equivalent age; missing keys
        are computed as if the chip was held at ``temperature_K`` since programming.
        """
        self._require_programmed()
        if not math.isfinite(time_s) or time_s < 0:
            raise ValueError(f"time must be finite and >= 0, got {time_s}")
        equivalent = dict(equivalent or {})
        for _, layer in self.analog_layers():
            dev = layer.device_model
            key = self._ea_key(dev)
            if key not in equivalent:
                acc = 1.0 if temperature_K is None else dev.temperature.acceleration(temperature_K)
                equivalent[key] = time_s * acc
            layer.set_state(equivalent[key], temperature_K)
        self.time_s = float(time_s)
        self.temperature_K = temperature_K
        self._t_eq = equivalent
        return self

    def at(self, time_s: float, temperature_K: float | None = None) -> AnalogModel:
        """State ``time_s`` seconds after programming, held at ``temperature_K`` all along."""
        return self.set_time(time_s, temperature_K)

    def advance(self, dt_s: float, temperature_K: float | None = None) -> AnalogModel:
        """Add ``dt_s`` seconds at ``temperature_K`` to the history and update the state."""
        self._require_programmed()
        if not math.isfinite(dt_s) or dt_s < 0:
            raise ValueError(f"dt must be finite and >= 0, got {dt_s}")
        eq: dict[tuple[float, float], float] = {}
        for _, layer in self.analog_layers():
            key = self._ea_key(layer.device_model)
            if key in eq:
                continue
            t_ref, ea = key
            acc = 1.0 if temperature_K is None else arrhenius_factor(temperature_K, t_ref, ea)
            eq[key] = self._t_eq.get(key, self.time_s) + dt_s * acc
        return self.set_time(self.time_s + dt_s, temperature_K, eq)

    def enable_time_cache(self, enabled: bool = True, *, max_bytes: int = 2 << 30) -> bool:
        """Keep per-device components in memory so moving in time is a few elementwise passes.

        The cache of a layer is up to 10 tensors twice the size of its weights (20x the
        weight bytes at most, 16x for the PCM cards); it is only enabled when the estimate
        fits in ``max_bytes``. Results are identical with or without it. Returns
        whether it is on.
        """
        layers = [layer for _, layer in self.analog_layers() if isinstance(layer, AnalogLayer)]
        estimate = sum(
            20 * layer.w_eff.numel() * layer.w_eff.element_size()
            for layer in layers
            if layer.w_eff is not None
        )
        on = enabled and estimate <= max_bytes
        for layer in layers:
            layer.enable_time_cache(on)
        return on

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
