"""Statistical weight noise for what-if sweeps, with a registry users extend.

A distribution is registered once under a name and then used everywhere (sweeps,
schedules, mapping rules) by that name:

>>> import torch
>>> from analogsim.devices.noise import register_noise, weight_noise
>>> @register_noise("rademacher", scale_meaning="magnitude a: values are +a or -a")
... def _rademacher(shape, generator, device, dtype, **params):
...     return torch.randint(0, 2, shape, generator=generator, device=device).to(dtype) * 2 - 1
>>> w = torch.zeros(4, 4)
>>> weight_noise(w, "rademacher", 0.1, generator=torch.Generator().manual_seed(0)).abs().max().item()
0.1...

A sampler returns *unit-scale* samples; ``sigma`` multiplies them. With
``relative=True`` the scale is ``sigma * std(weight)`` of the layer.

Built-ins (scale meanings follow the public noisy-LLM study, REFERENCES.md):

* ``gaussian``: ``sigma * N(0, 1)`` (sigma is the standard deviation)
* ``uniform``: ``sigma * (2U - 1)`` (sigma is the half-width)
* ``cauchy``: ``sigma * tan(pi (U - 1/2))`` (sigma is the scale gamma)
* ``laplace``: ``sigma * Laplace(0, 1)`` (sigma is the scale b; std = sqrt(2) b)
* ``student-t``: ``sigma * t_df`` (sigma is the scale; ``df`` parameter, default 3)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from analogsim.errors import ConfigError

Sampler = Callable[..., Tensor]
Filler = Callable[[Tensor, torch.Generator], Tensor]

STREAM_BLOCK = 1 << 14
"""Elements per block when noise is drawn straight into a weight (:func:`add_weight_noise`):
a block stays in cache between its draw, its scaling and its addition."""


@dataclass(frozen=True)
class NoiseDistribution:
    """A registered distribution: a unit-scale sampler and what ``sigma`` means for it.

    ``fill`` (optional): writes the same unit-scale samples in place, ``fill(out,
    generator)``, consuming the generator element by element in order, so that filling
    consecutive blocks gives exactly the samples of one ``sampler`` call over the whole
    tensor (the built-in ``gaussian`` and ``uniform`` have one).
    """

    name: str
    sampler: Sampler
    scale_meaning: str
    defaults: dict[str, Any] = field(default_factory=dict)
    fill: Filler | None = None

    def sample(
        self,
        shape: tuple[int, ...],
        generator: torch.Generator,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        **params: Any,
    ) -> Tensor:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ConfigError(
                f"unknown parameter for noise '{self.name}'",
                key=sorted(unknown)[0],
                allowed=", ".join(self.defaults) or "none",
            )
        merged = {**self.defaults, **params}
        return self.sampler(tuple(shape), generator, torch.device(device), dtype, **merged)


_REGISTRY: dict[str, NoiseDistribution] = {}


def register_noise(
    name: str, *, scale_meaning: str, fill: Filler | None = None, **defaults: Any
) -> Callable[[Sampler], Sampler]:
    """Decorator registering ``sampler(shape, generator, device, dtype, **params)``.

    Registering an existing name replaces it (so users can refine a built-in). ``fill``:
    the optional in-place form (see :class:`NoiseDistribution`).
    """

    def deco(fn: Sampler) -> Sampler:
        _REGISTRY[name] = NoiseDistribution(name, fn, scale_meaning, dict(defaults), fill)
        return fn

    return deco


def get_noise(name: str) -> NoiseDistribution:
    """The registered distribution ``name``; a clear error lists the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            "unknown noise distribution",
            key="noise",
            value=name,
            allowed=", ".join(sorted(_REGISTRY)),
        ) from None


def list_noises() -> list[str]:
    """Names of the registered distributions."""
    return sorted(_REGISTRY)


def weight_noise(
    weight: Tensor,
    name: str,
    sigma: float,
    *,
    generator: torch.Generator,
    relative: bool = False,
    **params: Any,
) -> Tensor:
    """A perturbation for ``weight`` (not added): ``scale * sample``.

    ``scale = sigma`` (absolute) or ``sigma * weight.std()`` (``relative=True``).
    """
    if not math.isfinite(sigma) or sigma < 0:
        raise ConfigError("sigma must be finite and >= 0", key="sigma", value=sigma)
    dist = get_noise(name)
    scale = sigma * float(weight.detach().float().std()) if relative else sigma
    sample = dist.sample(
        tuple(weight.shape), generator, device=weight.device, dtype=weight.dtype, **params
    )
    return sample.mul_(scale)


def add_weight_noise(
    out: Tensor,
    base: Tensor,
    name: str,
    sigma: float,
    *,
    generator: torch.Generator,
    relative: bool = False,
    **params: Any,
) -> None:
    """``out = base + weight_noise(base, name, sigma, ...)``, bit for bit, without a
    weight-sized temporary when the distribution has a ``fill``.

    The noise is drawn straight into ``out`` in blocks of :data:`STREAM_BLOCK` elements
    (draw, scale, add while the block is in cache: one pass over memory, on the calling
    thread, instead of a draw pass, a scaling pass and an addition pass that each wait for
    every core); the generator is consumed exactly as one draw over the whole tensor.
    Other distributions fall back to :func:`weight_noise` and one addition.
    """
    dist = get_noise(name)
    simple = (
        dist.fill is not None
        and not params
        and out.is_contiguous()
        and base.is_contiguous()
        and out.shape == base.shape
        and out.dtype == base.dtype
        and out.device.type == "cpu"
    )
    if not simple:
        eps = weight_noise(base, name, sigma, generator=generator, relative=relative, **params)
        torch.add(base, eps, out=out)
        return
    if not math.isfinite(sigma) or sigma < 0:
        raise ConfigError("sigma must be finite and >= 0", key="sigma", value=sigma)
    scale = sigma * float(base.detach().float().std()) if relative else sigma
    flat_o, flat_b = out.view(-1), base.detach().view(-1)
    n = flat_o.numel()
    starts = list(range(0, n, STREAM_BLOCK))
    if len(starts) > 1 and n - starts[-1] < 16:
        starts.pop()  # a block under 16 elements would be drawn by a different path
    for s, e in zip(starts, [*starts[1:], n], strict=True):
        blk = flat_o[s:e]
        dist.fill(blk, generator)
        blk.mul_(scale).add_(flat_b[s:e])


def _fill_normal(out: Tensor, generator: torch.Generator) -> Tensor:
    return out.normal_(generator=generator)


def _fill_uniform(out: Tensor, generator: torch.Generator) -> Tensor:
    return out.uniform_(generator=generator).mul_(2).sub_(1)


def _uniform_open(shape, generator, device, dtype) -> Tensor:
    # U in (0, 1): avoid the endpoints where tan/log diverge.
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float64)
    return u.clamp_(min=1e-15, max=1 - 1e-15)


@register_noise("gaussian", scale_meaning="standard deviation", fill=_fill_normal)
def _gaussian(shape, generator, device, dtype) -> Tensor:
    return torch.randn(shape, generator=generator, device=device, dtype=dtype)


@register_noise("uniform", scale_meaning="half-width a: values in [-a, a]", fill=_fill_uniform)
def _uniform(shape, generator, device, dtype) -> Tensor:
    return torch.rand(shape, generator=generator, device=device, dtype=dtype).mul_(2).sub_(1)


@register_noise("cauchy", scale_meaning="scale gamma (half width at half maximum)")
def _cauchy(shape, generator, device, dtype) -> Tensor:
    u = _uniform_open(shape, generator, device, dtype)
    return torch.tan(math.pi * (u - 0.5)).to(dtype)


@register_noise("laplace", scale_meaning="scale b (std = sqrt(2) b)")
def _laplace(shape, generator, device, dtype) -> Tensor:
    u = _uniform_open(shape, generator, device, dtype) - 0.5
    return (-torch.sign(u) * torch.log1p(-2 * u.abs())).to(dtype)


@register_noise("student-t", scale_meaning="scale (std = scale sqrt(df/(df-2)) for df > 2)", df=3.0)
def _student_t(shape, generator, device, dtype, df: float) -> Tensor:
    if not (df > 0 and math.isfinite(df)):
        raise ConfigError("student-t needs df > 0", key="df", value=df)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.standard_t(df, size=shape)).to(device=device, dtype=dtype)
