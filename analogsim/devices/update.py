r"""How an analog device takes an incremental update: pulse steps, asymmetry, soft bounds,
cycle-to-cycle and device-to-device variation (the writes of on-chip plasticity).

A crossbar cannot set a weight to an arbitrary new value during use: it fires voltage
pulses, and each pulse moves the conductance by a step that depends on the device, the
direction and the current state. This module is the physics of that write, as pure
functions of tensors plus one frozen parameter record per technology (:class:`UpdateModel`);
the learning rules that decide *what* to write live in :mod:`analogsim.plasticity`.

Weights here are in **device units**: a weight ``w`` of the update model is the
conductance (difference) normalised so that the device range is ``[w_min, w_max]``; the
caller keeps the factor from its own units to these.

The model (soft bounds; Fusi & Abbott 2007, Gokmen & Vlasov 2016, Rasch et al. 2019 give the
same parametrisation)
-------------------------------------------------------------------------------------------

Per device ``ij``, drawn once from the device seed (device-to-device variation, relative
Gaussian spreads):

* step ``dw_ij = dw_min (1 + dw_min_dtod xi)`` (clamped at 0),
* asymmetry ``beta_ij = up_down + up_down_dtod xi``: the up step is ``dw_ij (1 + beta_ij)``,
  the down step ``dw_ij (1 - beta_ij)``, so the up/down ratio is ``(1 + beta)/(1 - beta)``,
* bounds ``w_max_ij = w_max (1 + w_max_dtod xi)``, ``w_min_ij = w_min (1 + w_min_dtod xi)``.

One pulse up moves ``w`` by ``dw_up (1 - w / w_max_ij)`` and one pulse down by
``-dw_down (1 - w / w_min_ij)`` (``kind = "soft_bounds"``): the step shrinks linearly to 0 at
the bound, so repeated pulses saturate *at* the bound. ``kind = "constant_step"`` keeps the
step and clips at the bounds (hard bounds). ``n`` pulses in one direction have the closed
form of the linear recursion ``w_{k+1} = w_k (1 - a/b) + a``:

.. math::  w_n = b - (b - w_0)\,(1 - a/b)^n,

with ``a`` the pulse step and ``b`` the bound in that direction. Cycle-to-cycle variation
multiplies each pulse's step by ``(1 + dw_min_std xi_k)``; for ``n`` pulses the sum of the
``n`` independent step errors is drawn as one Gaussian of standard deviation
``dw_min_std * |mean step| * sqrt(n)`` (exact in the mean and variance to first order in
``a/b``; an assumption, not aihwkit's per-pulse loop). ``write_noise_std`` (in units of
``dw_min``) adds a fresh Gaussian to every written device's read value.

An intended change ``dw`` becomes ``n = floor(|dw| / dw_min + u)`` pulses, ``u`` uniform
(stochastic rounding: unbiased in the pulse count), at most ``max_pulses`` (aihwkit's
default pulse-train length, 31); ``n`` beyond it is cut and counted.

A **one-sided pair** (``kind = "one_sided_pair"``, PCM): each weight is ``g+ - g-`` of two
devices that can only be potentiated (SET pulses; soft bound at ``w_max``); a positive
change pulses ``g+``, a negative one ``g-``. When either device passes ``refresh_at`` of its
bound the pair is *refreshed*: both are reset and the difference reprogrammed onto one of
them, with a relative reset error ``reset_std`` (counted; only pairs with both devices
above zero, where a reset frees range; Nandakumar et al. 2020 describe this refresh for
PCM synapses).

``kind = "ideal"``: the exact float update ``w + dw`` (the comparison baseline).

Presets (numbers from the publications as fitted for IBM aihwkit 1.1.0's pulsed device
presets; the soft-bounds form is our approximation of their step models, stated per preset):

=================  ===========================================================  ============
preset             source                                                        model
=================  ===========================================================  ============
``ideal``          exact float update                                            ideal
``pcm``            GST PCM, Nandakumar et al., Front. Neurosci. 14, 406 (2020):  one-sided
                   dw_min 0.01, range [0, 2] per device, dtod 0.2, up/down dtod   pair
                   0.05, w_max dtod 0.1, c2c 0.6, reset 0.01 (+-0.02); the
                   exponential step is approximated by soft bounds
``reram``          HfO2 ReRAM, Gong et al., Nat. Commun. 9, 2102 (2018) (soft-     soft bounds
                   bounds fit): dw_min 0.002, range [-0.75, 1.25], dtod 0.3,
                   up/down dtod 0.01, bound dtod 0.24 / 0.4, c2c 3.75, write
                   noise 56 dw_min
``ecram``          Li-ECRAM, Tang et al., IEDM 2018: dw_min 0.002, range           soft bounds
                   [-0.83, 1.17], dtod 0.1, up/down dtod 0.01, bound dtod
                   0.05, c2c 0.3 (linear-step model approximated by soft bounds)
``gokmen_vlasov``  RPU specification, Gokmen & Vlasov, Front. Neurosci. 10, 333   constant
                   (2016): dw_min 0.0016 (about 1,200 states), range [-1, 1],     step
                   dtod 0.3, up/down dtod 0.01, bound dtod 0.3, c2c 0.3
=================  ===========================================================  ============
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor

from analogsim.config import check_number
from analogsim.errors import ConfigError

__all__ = [
    "UPDATE_KINDS",
    "UPDATE_PRESETS",
    "DeviceSpread",
    "UpdateModel",
    "UpdateResult",
    "apply_update",
    "draw_spread",
    "pulses",
    "soft_bounds_after",
    "update_model",
]

UPDATE_KINDS = ("ideal", "soft_bounds", "constant_step", "one_sided_pair")


@dataclass(frozen=True)
class UpdateModel:
    """One technology's pulsed update (module docstring: the equations).

    Attributes:
        name: preset name.
        kind: one of :data:`UPDATE_KINDS`.
        dw_min: mean step of one pulse, device units.
        up_down: systematic asymmetry beta (up step ``dw (1+beta)``, down ``dw (1-beta)``).
        w_max, w_min: bounds (per device of a pair for ``one_sided_pair``; then w_min = 0).
        dw_min_dtod, up_down_dtod, w_max_dtod, w_min_dtod: device-to-device spreads
            (relative, except ``up_down_dtod``, which is absolute on beta).
        dw_min_std: cycle-to-cycle spread of a pulse's step, relative to it.
        write_noise_std: read-value noise of a written device, in units of ``dw_min``.
        max_pulses: most pulses one update fires per device (longer trains are cut).
        refresh_at: pair refresh threshold, fraction of ``w_max`` (one-sided pair).
        reset_std: relative error of a reset-and-reprogram (one-sided pair).
        source: where the numbers come from.
    """

    name: str
    kind: str
    dw_min: float = 0.0
    up_down: float = 0.0
    w_max: float = 1.0
    w_min: float = -1.0
    dw_min_dtod: float = 0.0
    up_down_dtod: float = 0.0
    w_max_dtod: float = 0.0
    w_min_dtod: float = 0.0
    dw_min_std: float = 0.0
    write_noise_std: float = 0.0
    max_pulses: int = 31
    refresh_at: float = 0.75
    reset_std: float = 0.02
    source: str = ""

    @property
    def is_ideal(self) -> bool:
        return self.kind == "ideal"

    @property
    def weight_range(self) -> tuple[float, float]:
        """The range of a weight in device units (``(-w_max, w_max)`` for a pair)."""
        if self.kind == "one_sided_pair":
            return (-self.w_max, self.w_max)
        if self.kind == "ideal":
            return (-1.0, 1.0)
        return (self.w_min, self.w_max)

    def up_down_ratio(self) -> float:
        """Mean up step over mean down step, ``(1 + beta)/(1 - beta)``."""
        return (1.0 + self.up_down) / (1.0 - self.up_down)

    def summary(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


UPDATE_PRESETS: dict[str, UpdateModel] = {
    "ideal": UpdateModel("ideal", "ideal", source="exact float update"),
    "pcm": UpdateModel(
        "pcm",
        "one_sided_pair",
        dw_min=0.01,
        w_max=2.0,
        w_min=0.0,
        dw_min_dtod=0.2,
        up_down_dtod=0.05,
        w_max_dtod=0.1,
        dw_min_std=0.6,
        refresh_at=0.75,
        reset_std=0.02,
        source="Nandakumar et al., Front. Neurosci. 14, 406 (2020), as fitted for aihwkit "
        "1.1.0 PCMPresetDevice/PCMPresetUnitCell; exponential step approximated by soft bounds",
    ),
    "reram": UpdateModel(
        "reram",
        "soft_bounds",
        dw_min=0.002,
        w_max=1.25,
        w_min=-0.75,
        dw_min_dtod=0.3,
        up_down_dtod=0.01,
        w_max_dtod=0.3 / 1.25,
        w_min_dtod=0.3 / 0.75,
        dw_min_std=3.75,
        write_noise_std=56.0,
        source="Gong et al., Nat. Commun. 9, 2102 (2018), soft-bounds fit as in aihwkit 1.1.0 "
        "ReRamSBPresetDevice",
    ),
    "ecram": UpdateModel(
        "ecram",
        "soft_bounds",
        dw_min=0.002,
        w_max=1.1724,
        w_min=-0.8276,
        dw_min_dtod=0.1,
        up_down_dtod=0.01,
        w_max_dtod=0.05,
        w_min_dtod=0.05,
        dw_min_std=0.3,
        source="Tang et al., IEDM 2018 (Li-ECRAM), as fitted for aihwkit 1.1.0 "
        "EcRamPresetDevice; linear step approximated by soft bounds",
    ),
    "gokmen_vlasov": UpdateModel(
        "gokmen_vlasov",
        "constant_step",
        dw_min=0.0016,
        w_max=1.0,
        w_min=-1.0,
        dw_min_dtod=0.3,
        up_down_dtod=0.01,
        w_max_dtod=0.3,
        w_min_dtod=0.3,
        dw_min_std=0.3,
        source="Gokmen & Vlasov, Front. Neurosci. 10, 333 (2016), RPU specification as in "
        "aihwkit 1.1.0 GokmenVlasovPresetDevice",
    ),
}

_TECHNOLOGY_PRESET = {"pcm": "pcm", "rram": "reram", "reram": "reram", "ecram": "ecram"}


def update_model(
    spec: str | UpdateModel | dict[str, Any], *, technology: str | None = None, file: Any = None
) -> UpdateModel:
    """An :class:`UpdateModel` from a preset name, a table ``{preset = "reram", dw_min = ...}``
    (overrides of a preset) or ``"device"`` (the preset of ``technology``: pcm -> ``pcm``,
    rram -> ``reram``; ideal otherwise)."""
    if isinstance(spec, UpdateModel):
        return spec
    if spec == "device":
        return UPDATE_PRESETS[_TECHNOLOGY_PRESET.get(str(technology), "ideal")]
    if isinstance(spec, str):
        if spec not in UPDATE_PRESETS:
            raise ConfigError(
                "unknown device update model",
                file=file,
                key="update",
                value=spec,
                allowed="device, " + ", ".join(UPDATE_PRESETS),
            )
        return UPDATE_PRESETS[spec]
    if not isinstance(spec, dict):
        raise ConfigError("must be a preset name or a table", file=file, key="update", value=spec)
    base = update_model(spec.get("preset", "ideal"), technology=technology, file=file)
    valid = [f.name for f in fields(UpdateModel) if f.name not in ("name", "source")]
    changes: dict[str, Any] = {}
    for k, v in spec.items():
        if k == "preset":
            continue
        if k not in valid:
            raise ConfigError(
                f"unknown key '{k}'", file=file, key=f"update.{k}", allowed=", ".join(valid)
            )
        if k == "kind":
            if v not in UPDATE_KINDS:
                raise ConfigError(
                    "unknown kind",
                    file=file,
                    key="update.kind",
                    value=v,
                    allowed=", ".join(UPDATE_KINDS),
                )
            changes[k] = v
        elif k == "max_pulses":
            changes[k] = check_number(
                v, key="update.max_pulses", lo=1, hi=1e6, integer=True, file=file
            )
        elif k in ("up_down",):
            changes[k] = check_number(
                v, key=f"update.{k}", lo=-1, hi=1, lo_inclusive=False, hi_inclusive=False, file=file
            )
        elif k in ("w_min",):
            changes[k] = check_number(v, key=f"update.{k}", lo=-1e6, hi=0, file=file)
        elif k == "refresh_at":
            changes[k] = check_number(
                v, key=f"update.{k}", lo=0, hi=1, lo_inclusive=False, file=file
            )
        else:
            changes[k] = check_number(v, key=f"update.{k}", lo=0, hi=1e6, file=file)
    m = replace(base, name=f"{base.name}+overrides" if changes else base.name, **changes)
    if m.kind != "ideal" and m.dw_min <= 0:
        raise ConfigError(
            "a pulsed update needs dw_min > 0", file=file, key="update.dw_min", value=m.dw_min
        )
    return m


# ---------------------------------------------------------------------------- per device
@dataclass
class DeviceSpread:
    """Per-device parameters drawn once (device-to-device variation), shape of the weights.

    For a one-sided pair, ``dw_up`` / ``w_max`` are the ``g+`` device's and ``dw_down`` /
    ``w_min`` hold the ``g-`` device's step and bound (positive numbers).
    """

    dw_up: Tensor
    dw_down: Tensor
    w_max: Tensor
    w_min: Tensor


def draw_spread(
    model: UpdateModel, shape: tuple[int, ...], generator: torch.Generator
) -> DeviceSpread:
    """Draw the per-device steps, asymmetries and bounds of ``shape`` devices."""

    def normal() -> Tensor:
        return torch.randn(shape, generator=generator)

    dw = (1.0 + model.dw_min_dtod * normal()).clamp_(min=0.0).mul_(model.dw_min)
    if model.kind == "one_sided_pair":
        dw2 = (1.0 + model.dw_min_dtod * normal()).clamp_(min=0.0).mul_(model.dw_min)
        beta = model.up_down + model.up_down_dtod * normal()
        beta2 = model.up_down + model.up_down_dtod * normal()
        up = dw * (1.0 + beta).clamp_(min=0.0)
        down = dw2 * (1.0 + beta2).clamp_(min=0.0)
        wmax = (1.0 + model.w_max_dtod * normal()).clamp_(min=0.1).mul_(model.w_max)
        wmax2 = (1.0 + model.w_max_dtod * normal()).clamp_(min=0.1).mul_(model.w_max)
        return DeviceSpread(up, down, wmax, wmax2)
    beta = model.up_down + model.up_down_dtod * normal()
    up = dw * (1.0 + beta).clamp_(min=0.0)
    down = dw * (1.0 - beta).clamp_(min=0.0)
    wmax = (1.0 + model.w_max_dtod * normal()).clamp_(min=0.1).mul_(model.w_max)
    wmin = (1.0 + model.w_min_dtod * normal()).clamp_(min=0.1).mul_(model.w_min)
    return DeviceSpread(up, down, wmax, wmin)


def pulses(dw: Tensor, dw_min: float, u: Tensor, max_pulses: int) -> tuple[Tensor, int]:
    """``(n, cut)``: the pulse count ``floor(|dw|/dw_min + u)`` (``u`` uniform in [0, 1):
    stochastic rounding, ``E[n] = |dw|/dw_min``) capped at ``max_pulses``, and how many
    devices were cut by the cap."""
    n = torch.floor(dw.abs() / dw_min + u)
    cut = int((n > max_pulses).sum())
    return n.clamp_(max=float(max_pulses)), cut


def soft_bounds_after(w: Tensor, step: Tensor, bound: Tensor, n: Tensor) -> Tensor:
    r"""``n`` soft-bounds pulses of signed size ``step`` (``a``, the sign of ``bound``)
    toward ``bound`` (``b``) from ``w``: :math:`b - (b - w)(1 - a/b)^n` (each pulse moves
    ``a (1 - w/b)``)."""
    ratio = (1.0 - step / bound).clamp_(min=0.0)
    return bound - (bound - w) * ratio.pow(n)


@dataclass
class UpdateResult:
    """What one update did: the new hidden weights, the read values, and counts."""

    w: Tensor
    read: Tensor
    pulses: int
    cut: int
    refreshed: int


def apply_update(
    model: UpdateModel,
    w: Tensor,
    dw: Tensor,
    spread: DeviceSpread | None,
    generator: torch.Generator | None,
    pair: tuple[Tensor, Tensor] | None = None,
    prev_read: Tensor | None = None,
) -> UpdateResult:
    """Write the intended change ``dw`` onto devices holding ``w`` (device units).

    Args:
        model: the update physics.
        w: current (hidden, noise-free) weights; for a pair, ignored in favour of ``pair``.
        dw: the intended change, same shape.
        spread: the devices' drawn parameters (:func:`draw_spread`; None only for ideal).
        generator: draws pulse rounding, cycle-to-cycle and write noise.
        pair: ``(g_plus, g_minus)`` of a one-sided pair, updated in place.
        prev_read: the read values before this update (untouched devices keep their
            write noise; default: the hidden weights).

    Returns:
        :class:`UpdateResult` (``w`` new hidden weights, ``read`` with write noise).
    """
    if model.kind == "ideal":
        new = w + dw
        return UpdateResult(new, new, 0, 0, 0)
    assert spread is not None and generator is not None
    shape = dw.shape
    u = torch.rand(shape, generator=generator)
    n, cut = pulses(dw, model.dw_min, u, model.max_pulses)
    up = dw > 0
    xi = torch.randn(shape, generator=generator)
    refreshed = 0
    if model.kind == "one_sided_pair":
        assert pair is not None
        gp, gm = pair
        n_up = torch.where(up, n, 0.0)
        n_dn = torch.where(up, 0.0, n)
        gp_new = soft_bounds_after(gp, spread.dw_up, spread.w_max, n_up)
        gm_new = soft_bounds_after(gm, spread.dw_down, spread.w_min, n_dn)
        if model.dw_min_std > 0:
            d_p = (gp_new - gp).abs() / n_up.clamp(min=1.0)
            d_m = (gm_new - gm).abs() / n_dn.clamp(min=1.0)
            gp_new = gp_new + model.dw_min_std * d_p * n_up.sqrt() * xi
            gm_new = gm_new + model.dw_min_std * d_m * n_dn.sqrt() * xi
        gp_new.clamp_(min=0.0)
        gm_new.clamp_(min=0.0)
        high = (gp_new > model.refresh_at * spread.w_max) | (
            gm_new > model.refresh_at * spread.w_min
        )
        full = high & (torch.minimum(gp_new, gm_new) > 0)  # a reset frees range only then
        refreshed = int(full.sum())
        if refreshed:
            diff = gp_new - gm_new
            err = 1.0 + model.reset_std * torch.randn(shape, generator=generator)
            gp_new = torch.where(full, diff.clamp(min=0.0) * err, gp_new)
            gm_new = torch.where(full, (-diff).clamp(min=0.0) * err, gm_new)
            gp_new = torch.minimum(gp_new, spread.w_max)
            gm_new = torch.minimum(gm_new, spread.w_min)
        gp.copy_(gp_new)
        gm.copy_(gm_new)
        new = gp - gm
    else:
        step = torch.where(up, spread.dw_up, -spread.dw_down)  # signed, toward the bound
        if model.kind == "soft_bounds":
            bound = torch.where(up, spread.w_max, spread.w_min)
            new = soft_bounds_after(w, step, bound, n)
        else:  # constant_step: hard bounds
            new = torch.minimum(torch.maximum(w + step * n, spread.w_min), spread.w_max)
        if model.dw_min_std > 0:
            mean_step = (new - w).abs() / n.clamp(min=1.0)
            new = new + model.dw_min_std * mean_step * n.sqrt() * xi
            new = torch.minimum(torch.maximum(new, spread.w_min), spread.w_max)
    read = new
    if model.write_noise_std > 0:
        touched = n > 0
        noise = model.write_noise_std * model.dw_min * torch.randn(shape, generator=generator)
        read = torch.where(touched, new + noise, new if prev_read is None else prev_read)
    return UpdateResult(new, read, int(n.sum()), cut, refreshed)
