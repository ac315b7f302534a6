"""Noise-aware training for deployment on analog hardware.

* :func:`train` - ``plain``, ``hwa`` (hardware-aware: the device model and tile IO in the
  forward, straight-through gradients to float masters) or ``learned-noise`` (learnable
  weight-noise variances) training, with a run directory and a safetensors checkpoint;
* :func:`robustness` - plain vs hwa vs learned-noise checkpoints over deployment time,
  temperature and statistical weight noise, several seeds, normalised accuracy and AUC;
* :func:`save_checkpoint` / :func:`load_checkpoint`;
* :func:`bench_training_step` (in :mod:`analogsim.train.bench`) - hwa vs plain step time.

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


def __getattr__(name: str):  # lazy: robustness and bench pull in the study machinery
    if name in ("robustness", "normalized_accuracy", "auc_log_time"):
        from analogsim.train import robustness as _r

        return getattr(_r, name)
    if name == "bench_training_step":
        from analogsim.train.bench import bench_training_step

        return bench_training_step
    raise AttributeError(name)
