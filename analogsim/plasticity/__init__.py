"""On-chip plasticity: LoRA adapters on analog tiles updated by local learning rules
while the chip ages (docs/plasticity.md).

* :mod:`~analogsim.plasticity.rules`: Hebbian, Oja, BCM, predictive coding, energy, and
  :func:`register_rule` for your own;
* :mod:`~analogsim.plasticity.mechanisms`: AGP, TSM, CH;
* :mod:`~analogsim.plasticity.stability`: EWC, spectral cap, clip, adaptive rate, decay;
* :mod:`~analogsim.plasticity.config`: the settings (mapping ``plastic`` table, config
  file, command line);
* :mod:`~analogsim.plasticity.targets`: which layers get adapters;
* :mod:`~analogsim.plasticity.session`: the adapters on a running model.

The device physics of a write is :mod:`analogsim.devices.update`.
"""

from analogsim.plasticity.config import HYBRID_RULES, PlasticityConfig, plasticity_config
from analogsim.plasticity.rules import RULES, Signals, get_rule, register_rule
from analogsim.plasticity.session import PLASTICITY_COLUMNS, PlasticSession
from analogsim.plasticity.targets import Target, resolve_targets

__all__ = [
    "HYBRID_RULES",
    "PLASTICITY_COLUMNS",
    "RULES",
    "PlasticSession",
    "PlasticityConfig",
    "Signals",
    "Target",
    "get_rule",
    "plasticity_config",
    "register_rule",
    "resolve_targets",
]
