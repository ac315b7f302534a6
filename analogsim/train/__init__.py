"""Noise-aware training for deployment on analog hardware.

* :func:`fit` - ``plain``, ``hwa`` (hardware-aware: the device model and tile IO in the
  forward, straight-through gradients to float masters) or ``learned-noise`` (learnable
  weight-noise variances) training of a model from :func:`load_base`; writes nothing
  (the training run with its run directory and checkpoint is
  :func:`analogsim.studies.train.train`);
* :func:`save_checkpoint` / :func:`load_checkpoint`: a safetensors checkpoint with the
  deployment it was trained for.

See ``docs/training.md``.
"""

from __future__ import annotations

from analogsim.train.checkpoint import load_checkpoint, read_sidecar, save_checkpoint
from analogsim.train.hwa import HWAContext, install_hwa, unwrap
from analogsim.train.hwa_config import HWAConfig
from analogsim.train.learned import LearnedNoise, LearnedNoiseConfig, install_learned_noise
from analogsim.train.loop import METHODS, TrainConfig, TrainResult, fit, load_base

__all__ = [
    "METHODS",
    "HWAConfig",
    "HWAContext",
    "LearnedNoise",
    "LearnedNoiseConfig",
    "TrainConfig",
    "TrainResult",
    "fit",
    "install_hwa",
    "install_learned_noise",
    "load_base",
    "load_checkpoint",
    "read_sidecar",
    "save_checkpoint",
    "unwrap",
]
