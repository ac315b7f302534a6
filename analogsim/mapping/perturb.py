r"""Statistical weight perturbation: select the weights, perturb them, put them back.

Two users share it:

* noise sweeps (:mod:`analogsim.studies.sweep`): every selected weight (and bias) of a
  digital model is set to ``original + sigma * sample`` with a fresh seeded draw per
  level (:func:`select_targets`, :func:`perturb`, :func:`restore`: bit for bit);
* scheduled noise while the clock runs (:class:`WeightNoise`): one fixed draw per weight
  scaled by ``sigma(k)`` at step ``k``, on a digital model's parameters or on the
  effective weights of a converted model's analog layers (through the probes of
  :mod:`analogsim.mapping.analog_model`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from analogsim.devices.noise import STREAM_BLOCK, add_weight_noise, get_noise
from analogsim.devices.rng import derive_seed
from analogsim.errors import ConfigError
from analogsim.mapping.analog_model import effective_state
from analogsim.mapping.roles import ROLES, model_roles
from analogsim.tiles.layer import AnalogLayer

__all__ = ["SigmaSchedule", "Target", "WeightNoise", "perturb", "restore", "select_targets"]


class SigmaSchedule(Protocol):
    """Sigma per step (:class:`analogsim.clock.schedules.Schedule` is one)."""

    def sigma(self, k: int | float | np.ndarray) -> float | np.ndarray: ...


# --------------------------------------------------------------------------------------
# sweeps: fresh seeded noise per level


@dataclass
class Target:
    """A parameter the sweep perturbs and the layer names it belongs to."""

    names: list[str]
    param: nn.Parameter
    original: torch.Tensor
    kind: str = "weight"  # "weight" or "bias": part of the noise seed


def select_targets(
    model: nn.Module,
    roles: Sequence[str] | None = None,
    *,
    include_embeddings: bool = False,
    include_bias: bool = True,
) -> list[Target]:
    """Parameters to perturb: weights (and biases) of layers with the chosen roles.

    Default roles: every weight layer except embeddings. A head whose weight is tied to
    an embedding (GPT-2 ``lm_head`` = ``wte``) is perturbed only with
    ``include_embeddings`` (it is the same tensor). A shared tensor is perturbed once.
    """
    info = model_roles(model)
    wanted = set(roles) if roles else {r for r in ROLES if r != "embedding"}
    unknown = wanted - set(ROLES)
    if unknown:
        raise ConfigError(
            "unknown role", key="roles", value=sorted(unknown), allowed=", ".join(ROLES)
        )
    if include_embeddings:
        wanted.add("embedding")
    by_name = info.by_name()
    targets: dict[int, Target] = {}
    present = set()
    for layer in info.layers:
        if layer.role not in wanted:
            continue
        present.add(layer.role)
        if layer.tied_to is not None and not include_embeddings:
            other = by_name.get(layer.tied_to)
            if other is not None and "embedding" in (other.role, layer.role):
                continue
        mod = model.get_submodule(layer.name)
        params = [("weight", mod.weight)]
        if include_bias and getattr(mod, "bias", None) is not None:
            params.append(("bias", mod.bias))
        for kind, p in params:
            t = targets.get(id(p))
            if t is None:
                targets[id(p)] = Target([layer.name], p, p.detach().clone(), kind)
            else:
                t.names.append(layer.name)
    missing = wanted - present - ({"embedding"} if not include_embeddings else set())
    if roles and missing:
        raise ConfigError(
            "no layer of this model has the role",
            key="roles",
            value=sorted(missing),
            allowed=", ".join(sorted({layer.role for layer in info.layers})),
        )
    if not targets:
        raise ConfigError("the selection perturbs no parameter", key="roles", value=list(wanted))
    return list(targets.values())


@torch.no_grad()
def perturb(
    targets: list[Target],
    noise: str,
    sigma: float,
    seed: int,
    *,
    relative: bool = False,
    **params: Any,
) -> None:
    """Set every target to ``original + noise`` (seeded per parameter name)."""
    for t in targets:
        # a bias gets its own stream (with the layer's name alone it would repeat the
        # first draws of the weight's noise); weights keep the layer-name seed
        key = t.names[0] if t.kind == "weight" else f"{t.names[0]}.{t.kind}"
        gen = torch.Generator(device=t.param.device).manual_seed(derive_seed(seed, "sweep", key))
        # drawn straight into the parameter, block by block, bit-identical to
        # original + weight_noise(original): no weight-sized temporary and one pass over
        # memory (a temporary and three whole-tensor passes per weight made a sweep point
        # on smollm2 cost 1.5x to 1.7x an evaluation)
        add_weight_noise(
            t.param.data, t.original, noise, sigma, generator=gen, relative=relative, **params
        )


@torch.no_grad()
def restore(targets: list[Target]) -> None:
    """Copy the saved originals back (bit for bit), block by block on the calling thread
    (a whole-tensor copy is a parallel pass that waits for every core of a busy machine)."""
    for t in targets:
        p = t.param.data
        if not (p.is_contiguous() and t.original.is_contiguous()):
            p.copy_(t.original)
            continue
        flat_p, flat_o = p.view(-1), t.original.view(-1)
        for s in range(0, flat_p.numel(), STREAM_BLOCK):
            flat_p[s : s + STREAM_BLOCK].copy_(flat_o[s : s + STREAM_BLOCK])


# --------------------------------------------------------------------------------------
# scheduled noise: one fixed draw, scaled by sigma(k)


@dataclass
class _Target:
    name: str
    role: str
    xi: Tensor  # fixed draw times the scale, weight units, shape of the tensor it perturbs
    param: Tensor | None = None  # digital parameter (perturbed in place)
    original: Tensor | None = None
    layer: nn.Module | None = None  # analog layer (effective weights perturbed)
    clean: Tensor | None = None
    xi_n: Tensor | None = None
    xi_sq: float = 0.0
    w_sq: float = 0.0


class WeightNoise:
    r"""Statistical weight noise whose sigma follows a schedule over steps.

    At step ``k`` every selected weight is :math:`W + \sigma(k)\,\xi` with one fixed draw
    :math:`\xi` per weight (from the registered distribution ``noise``, seeded per layer
    from ``seed``; times ``std(W)`` of the layer with ``relative``), so the perturbation at
    step ``k`` is exactly ``schedule.noise_at(k, xi)``: its scale is sigma(k) at every
    step, it is continuous and goes down when the schedule goes down (not the
    accumulate-fresh-increments mistake of REFERENCES.md).

    Digital model (``analog=False``): the parameters of :func:`select_targets`
    (weights and biases of the chosen roles; tied embeddings only with
    ``include_embeddings``) are set to ``original + sigma xi`` in place, one pass per sigma
    change, and :meth:`restore` copies the originals back bit for bit.

    Converted model (``analog=True``): the noise is added to the *effective* weights of
    the analog layers with the chosen roles, on top of the device state (digital layers and
    biases stay exact). A clean copy of each such layer's effective weights is kept
    (1x their bytes) so the perturbation is exact after every state update.

    Args:
        model: the torch model, or an ``AnalogModel`` with ``analog=True``.
        schedule: sigma per step (:mod:`analogsim.clock.schedules`).
        noise: registered distribution name (``gaussian``, ``uniform``, ``cauchy``, ...).
        seed: run seed; each layer draws from ``derive_seed(seed, "schedule", name)``.
        relative: sigma relative to each layer's weight std.
        roles: roles to perturb (default all but embeddings).
        include_embeddings, include_bias: as in :func:`select_targets`.
        noise_params: extra parameters of the distribution (``df`` of student-t).
    """

    def __init__(
        self,
        model: nn.Module,
        schedule: SigmaSchedule,
        noise: str = "gaussian",
        seed: int = 0,
        *,
        relative: bool = False,
        roles: Sequence[str] | None = None,
        include_embeddings: bool = False,
        include_bias: bool = True,
        noise_params: dict[str, Any] | None = None,
        analog: bool = False,
    ) -> None:
        if not callable(getattr(schedule, "sigma", None)):
            raise ConfigError(
                "not a sigma schedule", key="schedule", value=schedule, allowed="a Schedule"
            )
        self.schedule = schedule
        self.noise = noise
        self.seed = int(seed)
        self.relative = relative
        self.analog = analog
        dist = get_noise(noise)
        params = dict(noise_params or {})
        self.targets: list[_Target] = []
        if analog:
            self._init_analog(model, dist, params, roles)
        else:
            self._init_digital(model, dist, params, roles, include_embeddings, include_bias)
        if not self.targets:
            raise ConfigError(
                "the noise selection perturbs no weight",
                key="noise_roles",
                value=list(roles) if roles else None,
            )
        self.sigma: float | None = None
        by_role: dict[str, list[_Target]] = {}
        for t in self.targets:
            by_role.setdefault(t.role, []).append(t)
        self._roles = by_role

    def _draw(self, name: str, like: Tensor, dist: Any, params: dict[str, Any]) -> Tensor:
        gen = torch.Generator(device=like.device).manual_seed(
            derive_seed(self.seed, "schedule", name)
        )
        xi = dist.sample(tuple(like.shape), gen, device=like.device, dtype=like.dtype, **params)
        if self.relative:
            xi.mul_(float(like.detach().float().std()))
        return xi

    def _init_digital(self, model, dist, params, roles, include_embeddings, include_bias) -> None:
        info = model_roles(model).by_name()
        for t in select_targets(
            model, roles, include_embeddings=include_embeddings, include_bias=include_bias
        ):
            name = t.names[0]
            suffix = (
                ".bias" if t.param.dim() == 1 and t.param is not _weight_of(model, name) else ""
            )
            role = info[name].role if name in info else "other"
            xi = self._draw(name + suffix, t.original, dist, params)
            self.targets.append(
                _Target(
                    name + suffix,
                    role,
                    xi,
                    param=t.param,
                    original=t.original,
                    xi_sq=float(torch.linalg.vector_norm(xi, dtype=torch.float64) ** 2),
                    w_sq=float(torch.linalg.vector_norm(t.original, dtype=torch.float64) ** 2),
                )
            )

    def _init_analog(self, am, dist, params, roles) -> None:
        wanted = set(roles) if roles else {r for r in ROLES if r != "embedding"}
        plan = am.plan.by_name()
        for name, layer in am.analog_layers():
            if not isinstance(layer, AnalogLayer):
                continue
            role = plan[name].role if name in plan else "other"
            if role not in wanted:
                continue
            w = layer.matrix().detach()
            xi = self._draw(name, w, dist, params)
            self.targets.append(
                _Target(
                    name,
                    role,
                    xi,
                    layer=layer,
                    w_sq=float(torch.linalg.vector_norm(w, dtype=torch.float64) ** 2),
                )
            )

    # ------------------------------------------------------------------ per step
    @torch.no_grad()
    def refresh(self) -> None:
        """After a device-state update: snapshot the clean effective weights (analog mode)."""
        if not self.analog:
            return
        for t in self.targets:
            w_eff, mult = effective_state(t.layer)
            t.clean = w_eff.clone()
            t.xi_n = t.xi if mult is None else t.xi / mult[:, None]
        self.sigma = None  # force re-application

    @torch.no_grad()
    def apply(self, k: int, *, force: bool = False) -> tuple[float, bool]:
        """Set the perturbation of step ``k``; returns ``(sigma(k), changed)``."""
        sigma = float(self.schedule.sigma(k))
        if not force and self.sigma is not None and sigma == self.sigma:
            return sigma, False
        for t in self.targets:
            if t.layer is None:
                torch.add(t.original, t.xi, alpha=sigma, out=t.param.data)
            else:
                torch.add(t.clean, t.xi_n, alpha=sigma, out=effective_state(t.layer)[0])
        self.sigma = sigma
        return sigma, True

    def weight_error(self, sigma: float) -> dict[str, float]:
        """Digital mode: ``sigma ||xi|| / ||W||`` per role (exact, no pass over the weights)."""
        out = {}
        for role, ts in self._roles.items():
            w = sum(t.w_sq for t in ts)
            x = sum(t.xi_sq for t in ts)
            out[role] = sigma * math.sqrt(x / w) if w > 0 else math.nan
        return out

    @torch.no_grad()
    def restore(self) -> None:
        """Digital parameters back to their originals bit for bit; analog effective weights
        back to the clean device state."""
        for t in self.targets:
            if t.layer is None:
                t.param.data.copy_(t.original)
            elif t.clean is not None:
                effective_state(t.layer)[0].copy_(t.clean)
        self.sigma = None

    def check_restored(self) -> None:
        """Raise if a digital parameter differs from its original (never expected)."""
        for t in self.targets:
            if t.layer is None and not torch.equal(t.param.detach(), t.original):
                raise RuntimeError(f"weight restore failed for {t.name}")


def _weight_of(model: nn.Module, name: str) -> Tensor | None:
    try:
        return model.get_submodule(name).weight
    except AttributeError:
        return None
