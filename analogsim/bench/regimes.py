"""The benchmark regimes: tile settings and the mapping every benchmark converts with.

* ``state``: device state only (programmed, drifted to 1 h; every tile non-ideality off)
* ``io``: plus 8-bit DAC, 8-bit ADC per 512-row tile (bound 10), output noise 0.04
* ``io+read``: plus per-MVM read noise 0.0175 (aihwkit's torch tile does not support it)
"""

from __future__ import annotations

from typing import Any

from analogsim.mapping.rules import mapping_from_dict

REGIMES = ("state", "io", "io+read")


def tile_settings(regime: str) -> dict[str, Any]:
    """The tile keys of ``regime`` (one of :data:`REGIMES`)."""
    if regime == "state":
        return dict(
            dac_bits=0, adc_bits=0, out_noise=0.0, read_noise=0.0, drift_compensation="global"
        )
    io = dict(dac_bits=8, adc_bits=8, adc_bound=10.0, out_noise=0.04, drift_compensation="global")
    return {**io, "read_noise": 0.0175 if regime == "io+read" else 0.0}


def mapping_for(regime: str, device: str = "pcm") -> Any:
    """Every weight layer analog on 512 x 512 tiles of ``device`` with ``regime``'s
    settings, embeddings digital, a tied head mapped independently."""
    return mapping_from_dict(
        {
            "name": f"bench-{regime}",
            "tied_weights": "independent",
            "default": {
                "placement": "analog",
                "device": device,
                "tile": {"rows": 512, "cols": 512, **tile_settings(regime)},
            },
            "rule": [{"role": "embedding", "placement": "digital", "optional": True}],
        }
    )


__all__ = ["REGIMES", "mapping_for", "tile_settings"]
