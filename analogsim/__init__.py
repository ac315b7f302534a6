"""analogsim: neural networks on simulated analog in-memory-computing hardware.

>>> import torch, analogsim
>>> net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
>>> am = analogsim.convert(net, "all_analog", device="pcm").program(seed=0)
>>> y = am.at(3600.0, 300.0)(torch.randn(2, 8))
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "AnalogModel",
    "ConfigError",
    "DeviceModel",
    "TileConfig",
    "__version__",
    "convert",
    "list_devices",
    "list_mappings",
    "load_device",
    "load_mapping",
    "load_model",
]


def __getattr__(name: str) -> Any:
    # Lazy: `import analogsim` stays cheap; torch loads on first use of the API.
    if name in ("convert", "AnalogModel"):
        from analogsim.mapping import convert as _c

        return getattr(_c, name)
    if name in ("load_device", "list_devices", "DeviceModel"):
        import analogsim.devices as _d

        return getattr(_d, name)
    if name in ("load_mapping", "list_mappings"):
        from analogsim.mapping import rules as _r

        return getattr(_r, name)
    if name == "TileConfig":
        from analogsim.tiles.config import TileConfig

        return TileConfig
    if name == "load_model":
        from analogsim.models import load_model

        return load_model
    if name == "ConfigError":
        from analogsim.errors import ConfigError

        return ConfigError
    raise AttributeError(f"module 'analogsim' has no attribute {name!r}")
