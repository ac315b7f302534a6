r"""Plastic LoRA adapters on a running model: forward hooks that add ``s (x A) B`` to the
chosen layers, and one local-rule update after every ``every``-th forward.

The model is never forked: each adapted layer (``nn.Linear``, GPT-2 ``Conv1D`` or the
:class:`~analogsim.tiles.layer.AnalogLayer` that replaced one) gets a forward hook that
reads its input ``x (..., d_in)`` and output ``y0 (..., d_out)`` and returns
``y0 + s (x A) B`` (on an output slice for GPT-2's fused ``c_attn``); a forward hook on
the whole model then updates every adapter from what its layer saw in that forward.
Token ``k``'s forward runs with the chip at token ``k``'s time (the clock's pre-hook), so
update ``k`` is written at that time.

Adapters on analog tiles
------------------------
``A (d_in, r)`` starts as LoRA starts (uniform in ``+-1/sqrt(d_in)``), ``B (r, d_out)`` at
zero, so the model starts unchanged. Both are held on devices of the adapted layer's card
(digital layers: exact floats). A weight ``W`` is ``unit * w`` with ``w`` in the device
units of the update model (:mod:`analogsim.devices.update`) and ``unit`` chosen so that
``A``'s initial range spans half the device range (``B`` uses the same unit: both on one
card). Writes go through the update model (pulses, asymmetry, soft bounds, variation) or
exactly (``update = "ideal"``). Between writes the read value drifts with the card's drift
law, ``w (t_w) ((t - t_w + t0)/t0)^{-nu}`` with per-device ``nu`` drawn from the card's
``nu_mean``/``nu_std`` at the written state, ``t`` the adapted layer's drift age; a write
acts on the drifted state. Assumptions: the adapter's MVMs are exact (no DAC/ADC or
read noise of their own), its output is not drift-compensated, and the age since a write
is the difference of drift ages (exact at constant temperature).

Per forward the session appends one record (the ``plasticity_*`` trace columns,
:data:`PLASTICITY_COLUMNS`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from analogsim.devices.physics import drift_factor
from analogsim.devices.rng import derive_seed
from analogsim.devices.update import (
    DeviceSpread,
    UpdateModel,
    apply_update,
    draw_spread,
)
from analogsim.plasticity.config import PlasticityConfig
from analogsim.plasticity.mechanisms import (
    SurpriseGate,
    attention_focus,
    homeostasis_direction,
)
from analogsim.plasticity.rules import Signals, check_direction, get_rule
from analogsim.plasticity.stability import (
    activation_importance,
    adaptive_rate,
    clip_update,
    ewc_pull,
    spectral_norm,
)
from analogsim.plasticity.targets import Target

__all__ = ["PLASTICITY_COLUMNS", "Adapter", "PlasticSession"]

PLASTICITY_COLUMNS = [
    "plasticity_updated",
    "plasticity_adapter_norm",
    "plasticity_update_norm",
    "plasticity_spectral_norm",
    "plasticity_rate",
    "plasticity_gain",
    "plasticity_clipped",
    "plasticity_pulses",
    "plasticity_refreshes",
]
"""Trace columns: 1 when this step updated; ``sqrt(sum ||s A B||_F^2)`` over adapters;
``sqrt(sum ||dA||^2 + ||dB||^2)`` of the change written (read values); the largest
``sigma_max(s A B)``; the mean effective rate ``eta_t`` (adaptive rate); the mechanisms'
gain (AGP x TSM); updates clipped or capped (clip, spectral cap); pulses fired; PCM pair
refreshes."""


@dataclass
class _Matrix:
    """One adapter matrix on devices: hidden (device units), read values, drift state."""

    w: Tensor
    read: Tensor
    spread: DeviceSpread | None
    pair: tuple[Tensor, Tensor] | None
    xi_nu: Tensor | None
    nu: Tensor | None = None
    write_age_s: float = 0.0


@dataclass
class Adapter:
    """A plastic LoRA adapter on one layer (module docstring)."""

    target: Target
    rank: int
    scale: float
    unit: float
    model: UpdateModel
    device: Any
    a: _Matrix
    b: _Matrix
    gen: torch.Generator
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    capture: tuple[Tensor, Tensor, Tensor, Tensor] | None = None
    eff: tuple[float, Tensor, Tensor] | None = None
    module: nn.Module | None = None
    v: Tensor | None = None
    v_rate: float = 0.0
    updates: int = 0
    ch_target: Tensor | None = None
    ch_ema: Tensor | None = None
    ewc_pre: dict[str, Tensor] = field(default_factory=dict)
    anchor: tuple[Tensor, Tensor] | None = None

    # ---------------------------------------------------------------- reading
    def age(self) -> float:
        """The adapted layer's drift age now (0 for a digital layer)."""
        return float(getattr(self.module, "time_s", 0.0) or 0.0)

    def _drifted(self, m: _Matrix, age: float) -> Tensor:
        if m.nu is None or self.device is None or self.device.drift is None:
            return m.read
        dt = max(age - m.write_age_s, 0.0)
        return m.read * drift_factor(m.nu, dt, self.device.drift.t0_s)

    def effective(self) -> tuple[Tensor, Tensor]:
        """``(A, B)`` as read now, real units (cached per drift age)."""
        age = self.age()
        if self.eff is not None and self.eff[0] == age:
            return self.eff[1], self.eff[2]
        a = self._drifted(self.a, age) * self.unit
        b = self._drifted(self.b, age) * self.unit
        self.eff = (age, a, b)
        return a, b

    def _draw_nu(self, m: _Matrix) -> None:
        if m.xi_nu is None or self.device is None or self.device.drift is None:
            m.nu = None
            return
        d = self.device.drift
        lo, hi = self.model.weight_range
        g = (m.read.abs() / max(abs(lo), abs(hi))).clamp_(min=1e-6, max=1.0)
        m.nu = (d.nu_mean(g) + d.nu_std(g) * m.xi_nu).abs_().mul_(d.scale)

    # ---------------------------------------------------------------- writing
    def write(self, which: str, delta: Tensor) -> tuple[Tensor, int, int]:
        """Write the real-unit change ``delta`` to matrix ``which`` at the current age;
        return ``(written change in real units, pulses, refreshes)``."""
        m = self.a if which == "a" else self.b
        age = self.age()
        before = self._drifted(m, age)
        factor = None
        if m.nu is not None and self.device is not None and self.device.drift is not None:
            factor = drift_factor(m.nu, max(age - m.write_age_s, 0.0), self.device.drift.t0_s)
        w_now = m.w if factor is None else m.w * factor
        if m.pair is not None and factor is not None:
            m.pair[0].mul_(factor)
            m.pair[1].mul_(factor)
        res = apply_update(
            self.model, w_now, delta / self.unit, m.spread, self.gen, m.pair, prev_read=before
        )
        m.w, m.read = res.w, res.read
        m.write_age_s = age
        self._draw_nu(m)
        self.eff = None
        return (m.read - before) * self.unit, res.pulses, res.refreshed


def _new_matrix(init: Tensor, model: UpdateModel, gen: torch.Generator, drifting: bool) -> _Matrix:
    spread = None if model.is_ideal else draw_spread(model, tuple(init.shape), gen)
    pair = None
    if model.kind == "one_sided_pair":
        pair = (init.clamp(min=0.0), (-init).clamp(min=0.0))
    xi = torch.randn(init.shape, generator=gen) if drifting else None
    return _Matrix(init.clone(), init.clone(), spread, pair, xi)


def _is_attention(module: nn.Module) -> bool:
    name = type(module).__name__
    return name.endswith("Attention") and not name.startswith("MultiHead")


class PlasticSession:
    """Adapters on ``model`` (the HF or torch model that runs, analog layers in place),
    updated by the rules of ``config`` (see module docstring).

    Args:
        model: the running model (the modules named by ``targets`` are hooked).
        config: :class:`PlasticityConfig`.
        targets: from :func:`analogsim.plasticity.targets.resolve_targets`.
        seed: seeds the adapters' initial values, devices and writes.
    """

    def __init__(
        self, model: nn.Module, config: PlasticityConfig, targets: Sequence[Target], seed: int
    ) -> None:
        self.model = model
        self.config = config
        self.seed = int(config.seed if config.seed is not None else seed)
        self.rules = [(get_rule(n), w) for n, w in config.rules.items()]
        self.adapters: list[Adapter] = []
        for t in targets:
            module = model.get_submodule(t.name)
            device = getattr(module, "device_model", None)
            tech = getattr(device, "technology", None)
            umodel = config.update_model(tech)
            gen = torch.Generator().manual_seed(derive_seed(self.seed, "plasticity", t.name))
            bound = 1.0 / math.sqrt(t.in_features)
            a0 = (torch.rand((t.in_features, config.rank), generator=gen) * 2.0 - 1.0) * bound
            lo, hi = umodel.weight_range
            unit = bound / (0.5 * min(abs(lo), abs(hi)))
            drifting = device is not None and getattr(device, "drift", None) is not None
            if umodel.is_ideal and device is not None and getattr(device, "is_ideal", False):
                drifting = False
            a = _new_matrix(a0 / unit, umodel, gen, drifting)
            b = _new_matrix(torch.zeros((config.rank, t.d_out)), umodel, gen, drifting)
            wgen = torch.Generator().manual_seed(
                derive_seed(self.seed, "plasticity-writes", t.name)
            )
            ad = Adapter(t, config.rank, config.scale, unit, umodel, device, a, b, wgen)
            ad.module = module
            ad._draw_nu(a)
            ad._draw_nu(b)
            ad.v = torch.ones(t.d_out) / math.sqrt(t.d_out)
            ad.state = {  # a rule's own seed (placebo's draws), per rule and adapter
                name: {"_seed": derive_seed(self.seed, "plasticity-rule", name, t.name)}
                for name in config.rules
            }
            self.adapters.append(ad)
        self.records: list[dict[str, Any]] = []
        self.forwards = 0
        self.n_updates = 0
        self.total_clipped = 0
        mech = config.mechanisms
        self.tsm = SurpriseGate(**mech["tsm"]) if "tsm" in mech else None
        self._focus: list[float] = []
        self._prev_logp: Tensor | None = None
        self._attn_impl: Any = None
        self._learning = True

    @property
    def columns(self) -> list[str]:
        return list(PLASTICITY_COLUMNS)

    # ---------------------------------------------------------------- hooks
    def _layer_hook(self, ad: Adapter):
        sl = ad.target.out_slice

        def hook(module: nn.Module, args: tuple[Any, ...], out: Tensor) -> Tensor:
            x = args[0]
            a, b = ad.effective()
            x2 = x.reshape(-1, x.shape[-1]).to(a.dtype)  # (N, d_in)
            h = x2 @ a  # (N, r)
            delta = (h @ b) * ad.scale  # (N, d_out)
            y_full = out.reshape(-1, out.shape[-1])  # (N, out)
            y0 = y_full if sl is None else y_full[:, sl[0] : sl[1]]
            y = y0 + delta.to(y0.dtype)
            if self._learning:
                ad.capture = (x2.detach(), h.detach(), y0.detach().float(), y.detach().float())
            if sl is None:
                return y.view_as(out)
            new = y_full.clone()
            new[:, sl[0] : sl[1]] = y
            return new.view_as(out)

        return hook

    def _attn_hook(self, module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        weights = out[1] if isinstance(out, tuple) and len(out) > 1 else None
        if isinstance(weights, Tensor) and weights.dim() == 4:
            self._focus.append(attention_focus(weights))

    def _model_hook(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any
    ) -> None:
        logits = getattr(out, "logits", None)
        if logits is None and isinstance(out, Tensor):
            logits = out
        if logits is None and isinstance(out, tuple) and out and isinstance(out[0], Tensor):
            logits = out[0]
        ids = kwargs.get("input_ids")
        self._step(logits, ids)

    @contextlib.contextmanager
    def attach(self, learn: bool = True) -> Iterator[PlasticSession]:
        """Hook the adapters into the model for the ``with`` block (removed after);
        ``learn=False``: the adapters only read (no updates, no records), e.g. to score
        the model with the adapters as they ended."""
        handles = []
        self._learning = learn
        try:
            for ad in self.adapters:
                handles.append(ad.module.register_forward_hook(self._layer_hook(ad)))
            if not learn:
                pass
            elif "agp" in self.config.mechanisms:
                impl = getattr(getattr(self.model, "config", None), "_attn_implementation", None)
                if impl not in (None, "eager") and hasattr(self.model, "set_attn_implementation"):
                    self._attn_impl = impl
                    self.model.set_attn_implementation("eager")
                for mod in self.model.modules():
                    if _is_attention(mod):
                        handles.append(mod.register_forward_hook(self._attn_hook))
            if learn:
                handles.append(self.model.register_forward_hook(self._model_hook, with_kwargs=True))
            yield self
        finally:
            for hnd in handles:
                hnd.remove()
            if self._attn_impl is not None:
                self.model.set_attn_implementation(self._attn_impl)
                self._attn_impl = None

    # ---------------------------------------------------------------- one step
    def _surprise(self, logits: Tensor | None, ids: Tensor | None) -> float:
        if logits is None:
            return math.nan
        row = logits.reshape(-1, logits.shape[-1])[-1].double()  # (V,)
        logp = torch.log_softmax(row, dim=-1)
        s = math.nan
        if ids is not None and self._prev_logp is not None and ids.numel() > 0:
            s = -float(self._prev_logp[int(ids.reshape(-1)[-1])])
        if not math.isfinite(s):
            s = float(torch.special.entr(logp.exp()).nansum())
        self._prev_logp = logp
        return s

    def _step(self, logits: Tensor | None, ids: Tensor | None) -> None:
        cfg = self.config
        k = self.forwards
        self.forwards += 1
        gain = 1.0
        if "agp" in cfg.mechanisms:
            st = float(cfg.mechanisms["agp"]["strength"])
            focus = sum(self._focus) / len(self._focus) if self._focus else 1.0
            gain *= 1.0 - st + st * focus
        self._focus = []
        if self.tsm is not None:
            gain *= self.tsm.gain(self._surprise(logits, ids))
        if k % cfg.every != 0:
            self.records.append(self._record(False, 0.0, math.nan, gain, 0, 0, 0))
            return
        with torch.no_grad():
            upd2, rates, clipped, n_p, n_r = 0.0, [], 0, 0, 0
            for ad in self.adapters:
                if ad.capture is None:
                    continue
                u2, rate, c, p, r = self._update(ad, gain)
                upd2 += u2
                rates.append(rate)
                clipped += c
                n_p += p
                n_r += r
                ad.capture = None
        self.n_updates += 1
        self.total_clipped += clipped
        rate = sum(rates) / len(rates) if rates else math.nan
        self.records.append(self._record(True, math.sqrt(upd2), rate, gain, clipped, n_p, n_r))

    def _update(self, ad: Adapter, gain: float) -> tuple[float, float, int, int, int]:
        cfg, stab = self.config, self.config.stability
        x, h, y0, y = ad.capture
        a, b = ad.effective()
        sig = Signals(x.float(), h.float(), y0, y, a, b, ad.scale)
        d_a = torch.zeros_like(a)
        d_b = torch.zeros_like(b)
        for spec, weight in self.rules:
            ra, rb = spec.fn(sig, ad.state[spec.name], cfg.rule_params.get(spec.name, {}))
            d_a += weight * check_direction(ra, a, spec.name, "A")
            d_b += weight * check_direction(rb, b, spec.name, "B")
        sq = float(d_a.pow(2).sum() + d_b.pow(2).sum())
        rate = cfg.rate
        ar = stab.get("adaptive_rate")
        if ar is not None:
            rate, ad.v_rate = adaptive_rate(cfg.rate, ad.v_rate, sq, ar["ref"], ar["beta"])
        rate *= gain
        delta_a = rate * d_a
        delta_b = rate * d_b
        ad.updates += 1
        ch = cfg.mechanisms.get("ch")
        if ch is not None:
            h2 = (sig.h * sig.h).mean(dim=0)  # (r,)
            if ad.updates <= ch["burn_in"]:
                n = ad.updates
                ad.ch_target = (
                    h2.clone() if ad.ch_target is None else ad.ch_target + (h2 - ad.ch_target) / n
                )
                ad.ch_ema = ad.ch_target.clone()
            else:
                ad.ch_ema = 0.9 * ad.ch_ema + 0.1 * h2
                delta_a += homeostasis_direction(a, ad.ch_target, ad.ch_ema, ch["rate"])
        ewc = stab.get("ewc")
        if ewc is not None:
            m = ewc["momentum"]
            stats = {
                "x2": (sig.x * sig.x).mean(dim=0),
                "h2": (sig.h * sig.h).mean(dim=0),
                "y2": (sig.y * sig.y).mean(dim=0),
            }
            for key, val in stats.items():
                prev = ad.ewc_pre.get(key)
                ad.ewc_pre[key] = val if prev is None else (1 - m) * prev + m * val
            if ad.anchor is None and ad.updates >= ewc["anchor_after"]:
                ad.anchor = (a.clone(), b.clone())
            if ad.anchor is not None:
                om_a = activation_importance(ad.ewc_pre["x2"], ad.ewc_pre["h2"])
                om_b = activation_importance(ad.ewc_pre["h2"], ad.ewc_pre["y2"])
                delta_a += rate * ewc_pull(a, ad.anchor[0], om_a, ewc["lam"])
                delta_b += rate * ewc_pull(b, ad.anchor[1], om_b, ewc["lam"])
        decay = stab.get("decay")
        if decay:
            delta_a -= decay * a
            delta_b -= decay * b
        clipped = 0
        c = stab.get("clip")
        if c is not None:
            delta_a, ca = clip_update(delta_a, c)
            delta_b, cb = clip_update(delta_b, c)
            clipped += int(ca) + int(cb)
        cap = stab.get("spectral_cap")
        if cap is not None:
            na, nb = a + delta_a, b + delta_b
            sigma, ad.v = spectral_norm(na, nb, ad.scale, ad.v)
            if sigma > cap:
                f = math.sqrt(cap / sigma)
                delta_a = na * f - a
                delta_b = nb * f - b
                clipped += 1
        wa, pa, ra_ = ad.write("a", delta_a)
        wb, pb, rb_ = ad.write("b", delta_b)
        u2 = float(wa.pow(2).sum() + wb.pow(2).sum())
        return u2, rate, clipped, pa + pb, ra_ + rb_

    def _norms(self) -> tuple[float, float]:
        n2, smax = 0.0, 0.0
        for ad in self.adapters:
            a, b = ad.effective()
            gram = (a.T @ a) * (b @ b.T)  # (r, r): ||A B||_F^2 = sum(A^T A * B B^T)
            n2 += float(gram.sum()) * ad.scale**2
            sigma, ad.v = spectral_norm(a, b, ad.scale, ad.v, iterations=2)
            smax = max(smax, sigma)
        return math.sqrt(max(n2, 0.0)), smax

    def _record(
        self,
        updated: bool,
        upd: float,
        rate: float,
        gain: float,
        clipped: int,
        pulses: int,
        refreshes: int,
    ) -> dict[str, Any]:
        norm, smax = self._norms()
        return {
            "plasticity_updated": int(updated),
            "plasticity_adapter_norm": norm,
            "plasticity_update_norm": upd,
            "plasticity_spectral_norm": smax,
            "plasticity_rate": rate,
            "plasticity_gain": gain,
            "plasticity_clipped": clipped,
            "plasticity_pulses": pulses,
            "plasticity_refreshes": refreshes,
        }

    def summary(self) -> dict[str, Any]:
        """Facts for the manifest: the config, the adapters, totals."""
        return {
            "config": self.config.summary(),
            "seed": self.seed,
            "adapters": [
                {
                    "layer": ad.target.name,
                    "chosen_by": ad.target.chosen_by,
                    "d_in": ad.target.in_features,
                    "d_out": ad.target.d_out,
                    "out_slice": list(ad.target.out_slice) if ad.target.out_slice else None,
                    "update_model": ad.model.name,
                    "drifts": ad.a.nu is not None,
                    "unit": ad.unit,
                }
                for ad in self.adapters
            ],
            "update_models": {ad.model.name: ad.model.summary() for ad in self.adapters},
            "forwards": self.forwards,
            "updates": self.n_updates,
            "clipped": self.total_clipped,
        }
