"""Learnable weight noise ("leaky tensors"), reproduced and completed.

The public "leaky tensors" configuration (REFERENCES.md): one learnable log-variance
``rho`` per layer, initialised at -6 (``sigma = exp(rho/2) ~ 0.05``), ``sigma`` clamped to
``[1e-6, 0.1]``, fresh Gaussian noise on the weights at every training batch,
``w~ = w + sigma xi``, trained jointly with the weights by Adam (learning rate 1e-3 for
the weights, 1e-4 for the log-variances). Nothing in its loss rewards noise, so the
variance can only shrink (it drifted from 0.05 to about 0.045) - the network learns to
switch its regulariser off.

What this module adds:

* **per-channel** log-variances (one per output row) as an option;
* **a reward for noise** (``reward``):

  - ``"entropy"``: ``L += -lambda mean_l log sigma_l``, the entropy of the Gaussian
    weight perturbation (the ``-log sigma`` term of the KL divergence in variational
    inference, Blundell et al. 2015, "Weight uncertainty in neural networks"): larger
    noise lowers the loss, so sigma settles where the task loss pushes back;
  - ``"target"``: ``L += lambda mean_l (log sigma_l - log sigma*)^2``, pulling sigma
    toward a target ``sigma*`` (e.g. the relative spread the deployment device shows);

* **a log** of every layer's sigma over training (``noise_log.csv`` in the run
  directory, and a plot).

Noise scale: ``absolute`` (``sigma`` in weight units, the public configuration) or
``relative`` (``sigma * max|W|`` of the layer, the unit of the analog tile's conductance
range, so one sigma means the same on every layer).

The noise is applied to the analog-placed layers of the mapping through the same
``AnalogLayer.hwa`` hook as hardware-aware training. For 2-D inputs (an MLP: each row one
sample) it is applied on the output side, exactly equivalent in distribution per sample:
``y = x W^T + b + sigma ||x|| z`` (scalar sigma) or ``sigma_i ||x|| z_i`` (per channel),
``z ~ N(0, 1)`` - no weight-sized noise tensor (the house rule), and the gradient to
``rho`` flows through ``sigma``. For sequences and convolutions (the same weights at every
position) one weight sample is drawn per batch: ``F.linear(x, W + sigma xi)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from analogsim.devices.rng import derive_seed
from analogsim.errors import ConfigError
from analogsim.mapping.convert import DigitalQuantized
from analogsim.tiles.embedding import AnalogEmbedding, analog_layers
from analogsim.tiles.kinds import forward_with, set_submodule
from analogsim.tiles.layer import AnalogLayer
from analogsim.train.hwa import model_root

REWARDS = ("none", "entropy", "target")
SCALES = ("absolute", "relative")


@dataclass(frozen=True)
class LearnedNoiseConfig:
    """Settings of learnable weight noise (module docstring).

    Attributes:
        init_log_var: initial log-variance ``rho`` (-6: sigma = e^-3 ~ 0.0498).
        sigma_min, sigma_max: clamp of ``sigma = exp(rho/2)``.
        lr: Adam learning rate of the log-variances (weights use the run's ``lr``).
        per_channel: one log-variance per output row instead of per layer.
        scale: ``"absolute"`` or ``"relative"`` (times the layer's max |W|).
        reward: ``"none"`` (the public configuration), ``"entropy"`` or ``"target"``.
        reward_weight: ``lambda`` of the reward term.
        target_sigma: ``sigma*`` of the ``target`` reward.
    """

    init_log_var: float = -6.0
    sigma_min: float = 1e-6
    sigma_max: float = 0.1
    lr: float = 1e-4
    per_channel: bool = False
    scale: str = "absolute"
    reward: str = "none"
    reward_weight: float = 0.1
    target_sigma: float = 0.05

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min < self.sigma_max:
            raise ConfigError(
                "need 0 < sigma_min < sigma_max",
                key="learned.sigma_min",
                value=(self.sigma_min, self.sigma_max),
            )
        if self.reward not in REWARDS:
            raise ConfigError(
                "unknown noise reward",
                key="learned.reward",
                value=self.reward,
                allowed=", ".join(REWARDS),
            )
        if self.scale not in SCALES:
            raise ConfigError(
                "unknown noise scale",
                key="learned.scale",
                value=self.scale,
                allowed=", ".join(SCALES),
            )
        if self.lr <= 0 or self.reward_weight < 0 or self.target_sigma <= 0:
            raise ConfigError(
                "lr and target_sigma must be > 0, reward_weight >= 0",
                key="learned",
                value=(self.lr, self.reward_weight, self.target_sigma),
            )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class LearnedNoise(nn.Module):
    """The learnable log-variances of a model's noisy layers, and the hook that uses them.

    ``log_vars[key]`` has shape ``(1,)`` or ``(out,)`` (per channel); keys are the layer
    names with dots replaced (``ParameterDict`` keys cannot hold dots).
    """

    def __init__(
        self, layers: list[tuple[str, AnalogLayer]], config: LearnedNoiseConfig, seed: int = 0
    ) -> None:
        super().__init__()
        if not layers:
            raise ConfigError(
                "learned noise needs at least one analog-placed layer",
                key="mapping",
                allowed="a mapping that places some layers analog",
            )
        self.config = config
        self.names = [name for name, _ in layers]
        self.log_vars = nn.ParameterDict()
        for name, layer in layers:
            n = layer.out_features if config.per_channel else 1
            self.log_vars[self.key(name)] = nn.Parameter(
                torch.full((n,), float(config.init_log_var), device=layer.matrix().device)
            )
        self.gen = torch.Generator().manual_seed(derive_seed(seed, "learned-noise"))

    @staticmethod
    def key(name: str) -> str:
        return name.replace(".", "__") or "_root"

    def sigma(self, name: str) -> Tensor:
        """``clamp(exp(rho/2), sigma_min, sigma_max)`` of a layer, differentiable in rho."""
        rho = self.log_vars[self.key(name)]
        return rho.mul(0.5).exp().clamp(self.config.sigma_min, self.config.sigma_max)

    def reward_loss(self) -> Tensor | None:
        """The noise-reward term added to the task loss (None for ``reward = "none"``)."""
        cfg = self.config
        if cfg.reward == "none" or cfg.reward_weight == 0:
            return None
        logs = torch.cat([self.sigma(n).log() for n in self.names])
        if cfg.reward == "entropy":
            return -cfg.reward_weight * logs.mean()
        return cfg.reward_weight * (logs - math.log(cfg.target_sigma)).square().mean()

    @torch.no_grad()
    def snapshot(self) -> dict[str, dict[str, float]]:
        """Per layer: mean, min and max of sigma and the mean log-variance."""
        out = {}
        for name in self.names:
            s = self.sigma(name)
            out[name] = {
                "sigma_mean": float(s.mean()),
                "sigma_min": float(s.min()),
                "sigma_max": float(s.max()),
                "log_var_mean": float(self.log_vars[self.key(name)].mean()),
            }
        return out

    def hook(self, name: str) -> _NoisyForward:
        return _NoisyForward(self, name)


class _NoisyForward:
    """``layer.hwa`` for learned noise: the digital layer plus learnable Gaussian noise."""

    def __init__(self, owner: LearnedNoise, name: str) -> None:
        self.owner = owner
        self.name = name

    def __call__(self, layer: AnalogLayer, x: Tensor) -> Tensor:
        owner = self.owner
        sigma = owner.sigma(self.name)  # (1,) or (N,)
        w = layer.matrix()  # (N, K) view of the master
        if owner.config.scale == "relative":
            sigma = sigma * w.detach().abs().max()
        if layer.kind != "conv2d" and x.dim() == 2:
            # output side: y = x W^T + b + sigma ||x|| z, exact per sample
            y = F.linear(x, w, layer.bias)
            norm = x.norm(dim=1, keepdim=True)  # (B, 1)
            z = torch.randn(y.shape, generator=owner.gen, dtype=y.dtype).to(y.device)
            return y + norm * sigma * z
        xi = torch.randn(w.shape, generator=owner.gen, dtype=w.dtype).to(w.device)
        noisy = w + (sigma[:, None] if sigma.numel() > 1 else sigma) * xi
        return forward_with(layer.digital, x, noisy)


def install_learned_noise(
    model: nn.Module, config: LearnedNoiseConfig | None = None, seed: int = 0
) -> LearnedNoise:
    """Put learnable noise on every analog-placed layer of a converted model (in place).

    Digital int-quantized layers are trained in float (the public configuration has no
    quantization awareness) and analog embedding tables without noise (a lookup is not an
    MVM); :func:`analogsim.train.hwa.unwrap` gives the model back.
    """
    root = model_root(model)
    for name, mod in list(root.named_modules()):
        if isinstance(mod, DigitalQuantized | AnalogEmbedding):
            set_submodule(root, name, mod.digital)
    layers = list(analog_layers(root, embeddings=False))
    noise = LearnedNoise(layers, config or LearnedNoiseConfig(), seed)
    for name, layer in layers:
        layer.hwa = noise.hook(name)
    return noise


__all__ = ["REWARDS", "SCALES", "LearnedNoise", "LearnedNoiseConfig", "install_learned_noise"]
