"""Settings of hardware-aware training and the grids of deployment conditions it draws from.

The training model itself (deployment draws, device perturbation, tile IO, straight-through
gradients) is described in :mod:`analogsim.train.hwa`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from analogsim.errors import ConfigError

YEAR_S = 365.25 * 86400.0
ENGINES = ("surrogate", "device")
NOISE_SIDES = ("auto", "weight", "output")


@dataclass(frozen=True)
class HWAConfig:
    """Settings of hardware-aware training (the model is described in :mod:`analogsim.train.hwa`).

    Attributes:
        t_min_s, t_max_s: range of deployment times since programming, seconds
            (default 1 s .. 1 year), drawn log-uniformly from a grid.
        times_per_decade: grid points per decade of time.
        temperature_min_K, temperature_max_K: range of read temperatures (the chip is held
            at T since programming); drawn uniformly from a grid.
        temperature_step_K: spacing of the temperature grid.
        engine: ``"surrogate"`` (Gaussian matched to the device's spread) or
            ``"device"`` (the full device model).
        resample_every: draw a new device perturbation every k steps per layer (between
            draws the perturbation ``w_dev - w`` is reused on the current masters).
        noise_side: ``"auto"``, ``"weight"`` or ``"output"`` (module docstring).
        io: apply the tile's DAC, ADC, output noise and read noise (else only the device).
        faults: apply the card's stuck-at faults, outliers and fault onsets.
        stuck_at_gmin_rate, stuck_at_gmax_rate: override the card's static rates
            (per device) during training; ``None`` keeps the card's.
        levels, table_samples: surrogate table size (weight levels, weights per level).
        clip_sigma: after every optimizer step clip each analog layer's weights to
            ``+-clip_sigma * std(W)`` (aihwkit ``WeightClipType.LAYER_GAUSSIAN``); ``None``
            disables. Applied by the training loop.
        fresh_noise: draw every output/read-noise sample fresh (exact, slower) instead of
            from a reused pool (:class:`NoiseSource`).
        noise_scale: multiply the device perturbation ``w_dev - w`` (and the output-side
            weight-noise std) by this factor during training (1 = the device as it is; > 1
            trains for a noisier chip than the card's).
    """

    t_min_s: float = 1.0
    t_max_s: float = YEAR_S
    times_per_decade: int = 4
    temperature_min_K: float = 300.0
    temperature_max_K: float = 360.0
    temperature_step_K: float = 10.0
    engine: str = "surrogate"
    resample_every: int = 4
    noise_side: str = "auto"
    io: bool = True
    faults: bool = True
    stuck_at_gmin_rate: float | None = None
    stuck_at_gmax_rate: float | None = None
    levels: int = 33
    table_samples: int = 1024
    clip_sigma: float | None = None
    fresh_noise: bool = False
    noise_scale: float = 1.0

    def __post_init__(self) -> None:
        def bad(key: str, allowed: str) -> ConfigError:
            return ConfigError(
                "invalid hardware-aware training setting",
                key=f"hwa.{key}",
                value=getattr(self, key),
                allowed=allowed,
            )

        if not (0.0 <= self.t_min_s <= self.t_max_s and math.isfinite(self.t_max_s)):
            raise bad("t_min_s", "0 <= t_min_s <= t_max_s, finite")
        if self.times_per_decade < 1:
            raise bad("times_per_decade", ">= 1")
        if not (0.0 < self.temperature_min_K <= self.temperature_max_K < 1000.0):
            raise bad("temperature_min_K", "0 < min <= max < 1000 K")
        if self.temperature_step_K <= 0:
            raise bad("temperature_step_K", "> 0")
        if self.engine not in ENGINES:
            raise bad("engine", ", ".join(ENGINES))
        if self.noise_side not in NOISE_SIDES:
            raise bad("noise_side", ", ".join(NOISE_SIDES))
        if self.resample_every < 1:
            raise bad("resample_every", ">= 1")
        if self.levels < 3 or self.table_samples < 16:
            raise bad("levels", "levels >= 3 and table_samples >= 16")
        for key in ("stuck_at_gmin_rate", "stuck_at_gmax_rate"):
            v = getattr(self, key)
            if v is not None and not 0.0 <= v <= 1.0:
                raise bad(key, "a fraction in [0, 1] or None")
        if self.clip_sigma is not None and self.clip_sigma <= 0:
            raise bad("clip_sigma", "> 0 or None")
        if not (self.noise_scale >= 0 and math.isfinite(self.noise_scale)):
            raise bad("noise_scale", ">= 0")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> HWAConfig:
        valid = {f.name for f in fields(self)}
        for k in changes:
            if k not in valid:
                raise ConfigError("unknown hwa setting", key=k, allowed=", ".join(sorted(valid)))
        return HWAConfig(**{**asdict(self), **changes})

    # ---------------------------------------------------------------- grids
    def time_grid(self) -> list[float]:
        """Deployment times (s): ``times_per_decade`` log-spaced points per decade, both ends."""
        lo = max(self.t_min_s, 1e-9)
        hi = max(self.t_max_s, lo)
        if hi == lo:
            return [self.t_max_s]
        n = max(2, math.ceil(math.log10(hi / lo) * self.times_per_decade) + 1)
        return [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]

    def temperature_grid(self) -> list[float]:
        """Read temperatures (K) from min to max in steps of ``temperature_step_K``."""
        lo, hi = self.temperature_min_K, self.temperature_max_K
        n = max(1, math.floor((hi - lo) / self.temperature_step_K + 1e-9) + 1)
        grid = [lo + i * self.temperature_step_K for i in range(n)]
        if hi - grid[-1] > 1e-9:
            grid.append(hi)
        return grid


__all__ = ["ENGINES", "NOISE_SIDES", "YEAR_S", "HWAConfig"]
