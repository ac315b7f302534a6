"""Tile settings: crossbar size, converters, noise and compensation, as frozen data.

Units: the analog MVM is computed in *normalised* units, where each input vector is
scaled to ``[-1, 1]`` (by its absolute maximum, or by a static ``dac_range``) and each
weight to ``[-1, 1]`` (by the layer's maximum ``|W|``, or per output column). Output
noise, per-MVM read noise and the ADC bound are given in these units, as in aihwkit's
IO parameters, so the same numbers mean the same thing in both tools.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from analogsim.errors import ConfigError

COMPENSATION = ("none", "global", "column")
WEIGHT_SCALE = ("tensor", "column")


@dataclass(frozen=True)
class TileConfig:
    """Settings of the crossbar tiles of one layer.

    Attributes:
        rows: inputs per tile (crossbar rows); a layer with K inputs uses ceil(K/rows)
            tiles along K, each with its own ADCs, summed digitally.
        cols: outputs per tile (crossbar columns); sets the tile count and area only.
        dac_bits: input DAC resolution (signed, ``2^(b-1)-1`` levels per side); 0 = ideal.
        dac_range: ``"dynamic"`` (each input vector scaled by its max |x|, aihwkit's
            abs-max noise management) or a positive number: a static input range, inputs
            clipped at +-dac_range.
        adc_bits: output ADC resolution per tile; 0 = ideal.
        adc_bound: ADC full scale in normalised units; outputs beyond are clipped.
            ``0`` means no clipping.
        out_noise: std of additive Gaussian output noise per tile, normalised units.
        read_noise: per-MVM conductance-dependent read noise ``w`` in
            ``y_i += w sqrt(sum_j |W_ij| x_j^2) xi_i`` (aihwkit PCM_READ form), per tile.
        weight_scale: ``"tensor"`` (one scale for the layer) or ``"column"`` (per output).
        drift_compensation: ``"none"``, ``"global"`` (one digital factor per layer) or
            ``"column"`` (one per output), recalibrated whenever the state is updated.
    """

    rows: int = 512
    cols: int = 512
    dac_bits: int = 8
    dac_range: str | float = "dynamic"
    adc_bits: int = 8
    adc_bound: float = 10.0
    out_noise: float = 0.04
    read_noise: float = 0.0175
    weight_scale: str = "tensor"
    drift_compensation: str = "global"

    def __post_init__(self) -> None:
        validate_tile(asdict(self))

    @property
    def io_enabled(self) -> bool:
        """True when the forward needs the per-tile path (any converter or noise on)."""
        return bool(self.dac_bits or self.adc_bits or self.out_noise > 0 or self.read_noise > 0)

    def replace(self, **changes: Any) -> TileConfig:
        data = asdict(self)
        data.update(changes)
        return TileConfig(**data)

    @classmethod
    def ideal(cls, **changes: Any) -> TileConfig:
        """Every non-ideality off: the tile equals the digital layer."""
        base = dict(
            dac_bits=0,
            adc_bits=0,
            adc_bound=0.0,
            out_noise=0.0,
            read_noise=0.0,
            drift_compensation="none",
        )
        base.update(changes)
        return cls(**base)


TILE_KEYS = tuple(f.name for f in fields(TileConfig))


def _int_in(d: dict, key: str, lo: int, hi: int, file: Any, prefix: str) -> None:
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ConfigError(
            "must be an integer in range",
            file=file,
            key=prefix + key,
            value=v,
            allowed=f"{lo}..{hi}",
        )


def _float_ge0(d: dict, key: str, file: Any, prefix: str) -> None:
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise ConfigError("must be a finite number >= 0", file=file, key=prefix + key, value=v)


def validate_tile(d: dict[str, Any], *, file: Any = None, prefix: str = "tile.") -> None:
    """Check a (complete) dict of tile settings; raise one ConfigError on the first problem."""
    for key in d:
        if key not in TILE_KEYS:
            raise ConfigError(
                f"unknown tile setting '{key}'",
                file=file,
                key=prefix + key,
                allowed=", ".join(TILE_KEYS),
            )
    _int_in(d, "rows", 1, 1 << 20, file, prefix)
    _int_in(d, "cols", 1, 1 << 20, file, prefix)
    _int_in(d, "dac_bits", 0, 24, file, prefix)
    _int_in(d, "adc_bits", 0, 24, file, prefix)
    if d["dac_bits"] == 1 or d["adc_bits"] == 1:
        raise ConfigError(
            "signed converters need at least 2 bits (or 0 for ideal)",
            file=file,
            key=prefix + ("dac_bits" if d["dac_bits"] == 1 else "adc_bits"),
            value=1,
        )
    for key in ("adc_bound", "out_noise", "read_noise"):
        _float_ge0(d, key, file, prefix)
    r = d["dac_range"]
    if r != "dynamic" and (
        isinstance(r, bool) or not isinstance(r, int | float) or not math.isfinite(r) or r <= 0
    ):
        raise ConfigError(
            "invalid input range",
            file=file,
            key=prefix + "dac_range",
            value=r,
            allowed="'dynamic' or a positive number",
        )
    if d["weight_scale"] not in WEIGHT_SCALE:
        raise ConfigError(
            "invalid weight scale",
            file=file,
            key=prefix + "weight_scale",
            value=d["weight_scale"],
            allowed=", ".join(WEIGHT_SCALE),
        )
    if d["drift_compensation"] not in COMPENSATION:
        raise ConfigError(
            "invalid drift compensation",
            file=file,
            key=prefix + "drift_compensation",
            value=d["drift_compensation"],
            allowed=", ".join(COMPENSATION),
        )
