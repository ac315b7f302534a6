"""Noise-aware training for deployment on analog hardware.

* :func:`train` - ``plain``, ``hwa`` (hardware-aware: the device model and tile IO in the
  forward, straight-through gradients to float masters) or ``learned-noise`` (learnable
  weight-noise variances) training, with a run directory and a safetensors checkpoint;
* :func:`save_checkpoint` / :func:`load_checkpoint`;

See ``docs/training.md``.
"""

from __future__ import annotations

from analogsim.train.checkpoint import load_checkpoint, read_sidecar, save_checkpoint
from analogsim.train.hwa import HWAConfig, HWAContext, install_hwa, unwrap
from analogsim.train.learned import LearnedNoise, LearnedNoiseConfig, install_learned_noise
from analogsim.train.loop import METHODS, TrainConfig, TrainResult, train

__all__ = [
    "METHODS",
    "HWAConfig",
    "HWAContext",
    "LearnedNoise",
    "LearnedNoiseConfig",
    "TrainConfig",
    "TrainResult",
    "install_hwa",
    "install_learned_noise",
    "load_checkpoint",
    "read_sidecar",
    "save_checkpoint",
    "train",
    "unwrap",
]
