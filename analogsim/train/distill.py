"""Distillation for analog deployment: the recipe of "Analog Foundation Models".

Büchel et al. (NeurIPS 2025, REFERENCES.md) make a language model robust to analog
in-memory hardware without its pre-training data:

1. **Synthetic data from the model itself** (:func:`synthetic_tokens`): sequences sampled
   from the digital model, each started from one token drawn uniformly from the
   vocabulary (the data-free recipe of LLM-QAT, Liu et al. 2023, that the paper uses);
   seeded, sized by a token budget and cached on disk.
2. **Knowledge distillation** (:func:`kl_loss`): the student (the converted model with
   hardware noise in its forward) matches the frozen digital teacher's next-token
   distribution, ``KL(p_teacher || p_student)`` at temperature ``tau`` times ``tau^2``.
3. **Hardware noise in the forward**: analogsim's hardware-aware forward
   (:mod:`analogsim.train.hwa`): programming noise, drift and 1/f read noise from the
   device card at a deployment age drawn each step, drift compensation, DAC, per-MVM read
   noise, output noise and the ADC - the inference tile's own kernel
   :func:`analogsim.tiles.io.tile_mvm`.
4. **Output quantisation**: the ADC of the tile (bits and bound of the mapping) in the
   forward, straight-through in the backward.
5. **Iterative weight clipping** (:func:`clip_per_channel`): after every optimizer step
   each output channel of every analog layer is clipped to ``+-k std`` of that channel
   (aihwkit's ``LAYER_GAUSSIAN_PER_CHANNEL``; AIHWKIT-Lightning's example uses ``k = 2.5``).
   Fewer outliers: the weight scale (max ``|W|``) falls, and with it the relative weight of
   the additive noises.
6. **Learned static input ranges** (:class:`RangedForward`): each analog layer's DAC range
   ``r`` is a parameter. It starts from data (the mean of ``init_alpha std(x)`` over the
   first ``init_steps`` forwards), then learns: inputs beyond ``r`` are clipped (no
   gradient to ``x``), and ``dL/dr = sum_{|x|>r} sign(x) dL/dx_clipped`` (the
   straight-through gradient of ``clamp(x, -r, r)``), plus a decay ``decay r`` that pulls
   the range in while at least ``min_inside`` of the inputs are inside it (finer DAC
   steps) - the input-range learning of AIHWKIT-Lightning. At deployment the layer's tile
   uses the static range (``dac_range = r``): :func:`apply_input_ranges`.
7. **Full fine-tuning or LoRA** (:func:`install_lora`): ``W = W0 + (alpha/rank) B A`` on
   every analog layer (Hu et al. 2022), ``B = 0`` at the start; only ``A``, ``B`` and the
   input ranges train, and they are merged into the weights at the end.

What differs from the paper is listed in ``docs/training.md``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.nn.utils import parametrize

from analogsim.devices.rng import derive_seed
from analogsim.errors import ConfigError
from analogsim.models._cache import seeded_global_rng
from analogsim.paths import cache_dir
from analogsim.progress import progress_bar
from analogsim.tiles.embedding import analog_layers
from analogsim.tiles.io import IOPlan, tile_mvm
from analogsim.tiles.kinds import module_kind
from analogsim.tiles.layer import AnalogLayer
from analogsim.train.device_stats import NoiseSource
from analogsim.train.hwa import HWAContext, HWAForward, model_root


@dataclass(frozen=True)
class DistillConfig:
    """Settings of distillation training (the recipe is described in the module docstring).

    Attributes:
        tokens: synthetic tokens generated from the teacher (the training set).
        seq_len: tokens per generated sequence (and per training window).
        gen_batch: sequences generated at once.
        gen_temperature: sampling temperature of the generation (1 = the model's own
            distribution, as in the paper).
        kl_temperature: ``tau`` of the distillation loss.
        lora_rank: 0 = full fine-tuning of the analog layers; > 0 = LoRA of that rank.
        lora_alpha: LoRA scale numerator (``alpha / rank``).
        clip_sigma: per-channel iterative clipping at ``+-k std`` after every step;
            ``None`` (default) disables: one clip of smollm2's MLP at 2.5 std takes its
            digital perplexity from 11 to 2.9e5, at 3.5 std to 75, at 5 std to 20 (256
            held-out tokens), so a pre-trained LLM needs a large ``k`` or many steps.
        learn_input_range: learn a static DAC range per analog layer.
        init_steps: forwards whose ``init_alpha std(x)`` initialise the range.
        init_alpha: see ``init_steps``.
        range_decay: decay rate that pulls the range in (per unit range).
        min_inside: fraction of inputs that must stay inside the range for the decay.
        range_lr: learning rate of the input ranges (Adam).
    """

    tokens: int = 8192
    seq_len: int = 128
    gen_batch: int = 32
    gen_temperature: float = 1.0
    kl_temperature: float = 1.0
    lora_rank: int = 0
    lora_alpha: float = 16.0
    clip_sigma: float | None = None
    learn_input_range: bool = True
    init_steps: int = 4
    init_alpha: float = 3.0
    range_decay: float = 0.01
    min_inside: float = 0.95
    range_lr: float = 5e-3

    def __post_init__(self) -> None:
        def bad(key: str, allowed: str) -> ConfigError:
            return ConfigError(
                "invalid distillation setting",
                key=f"distill.{key}",
                value=getattr(self, key),
                allowed=allowed,
            )

        for key in ("tokens", "seq_len", "gen_batch"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 2:
                raise bad(key, "an integer >= 2")
        if self.tokens < self.seq_len:
            raise bad("tokens", f">= seq_len ({self.seq_len})")
        for key in ("gen_temperature", "kl_temperature", "lora_alpha", "init_alpha", "range_lr"):
            v = getattr(self, key)
            if not (v > 0 and math.isfinite(v)):
                raise bad(key, "> 0")
        if self.lora_rank < 0:
            raise bad("lora_rank", ">= 0 (0: full fine-tuning)")
        if self.clip_sigma is not None and not self.clip_sigma > 0:
            raise bad("clip_sigma", "> 0 or None")
        if self.init_steps < 1:
            raise bad("init_steps", ">= 1")
        if self.range_decay < 0:
            raise bad("range_decay", ">= 0")
        if not 0.0 < self.min_inside <= 1.0:
            raise bad("min_inside", "in (0, 1]")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------- data
def model_fingerprint(model: nn.Module) -> str:
    """A short hash of a model's weights (shapes and a strided sample of every tensor):
    the synthetic-data cache key, so a fine-tuned model does not reuse another's data."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        flat = t.detach().reshape(-1)
        step = max(1, flat.numel() // 4096)
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(flat[::step].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def synthetic_tokens(
    model: nn.Module,
    vocab_size: int,
    config: DistillConfig,
    *,
    seed: int = 0,
    cache: bool = True,
    progress: bool = True,
    eos_token_id: int | None = None,
) -> Tensor:
    """``(S, seq_len)`` token ids sampled from ``model`` itself (module docstring, item 1).

    ``S = ceil(tokens / seq_len)``. Each sequence starts from a token drawn uniformly from
    the vocabulary, then ``seq_len - 1`` tokens are sampled at ``gen_temperature``. The
    end-of-sequence token does not stop a sequence (it keeps sampling past it). Same
    model, seed and settings: same tokens; cached under ``<cache>/synthetic/``.
    """
    n_seq = math.ceil(config.tokens / config.seq_len)
    key = (
        f"{model_fingerprint(model)}-s{seed}-n{n_seq}-L{config.seq_len}"
        f"-T{config.gen_temperature:g}-v{vocab_size}"
    )
    path = cache_dir() / "synthetic" / f"{key}.safetensors"
    if cache and path.is_file():
        return load_file(str(path))["ids"]
    gen = torch.Generator().manual_seed(derive_seed(seed, "synthetic-start"))
    starts = torch.randint(0, vocab_size, (n_seq, 1), generator=gen)  # (S, 1)
    dev = next(model.parameters()).device
    chunks = []
    was_training = model.training
    model.eval()
    with (
        torch.no_grad(),
        seeded_global_rng(derive_seed(seed, "synthetic-sample") & 0x7FFFFFFF),
        progress_bar("synthetic data", n_seq * config.seq_len, progress) as advance,
    ):
        for i in range(0, n_seq, config.gen_batch):
            ids = starts[i : i + config.gen_batch].to(dev)  # (B, 1)
            past = None
            seq = [ids]
            for _ in range(config.seq_len - 1):
                out = model(input_ids=ids, past_key_values=past, use_cache=True)
                past = out.past_key_values
                logits = out.logits[:, -1, :vocab_size].float() / config.gen_temperature
                ids = torch.multinomial(torch.softmax(logits, dim=-1), 1)  # (B, 1)
                seq.append(ids)
            chunks.append(torch.cat(seq, dim=1).cpu())
            advance(chunks[-1].numel())
    model.train(was_training)
    del eos_token_id  # sequences run to full length (documented above)
    ids = torch.cat(chunks).to(torch.long).contiguous()  # (S, L)
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file({"ids": ids}, str(tmp))
        tmp.replace(path)
    return ids


def sequence_batches(ids: Tensor, batch_size: int, steps: int, generator: torch.Generator):
    """``steps`` batches of whole synthetic sequences, each epoch a fresh permutation."""
    order = torch.randperm(ids.shape[0], generator=generator)
    pos = 0
    for _ in range(steps):
        if pos + batch_size > order.numel():
            order = torch.randperm(ids.shape[0], generator=generator)
            pos = 0
        idx = order[pos : pos + batch_size]
        pos += batch_size
        yield ids[idx]


def kl_loss(student_logits: Tensor, teacher_logits: Tensor, tau: float = 1.0) -> Tensor:
    """``tau^2 KL(softmax(t/tau) || softmax(s/tau))``, mean over positions."""
    v = min(student_logits.shape[-1], teacher_logits.shape[-1])
    s = F.log_softmax(student_logits[..., :v].reshape(-1, v).float() / tau, dim=-1)
    t = F.log_softmax(teacher_logits[..., :v].reshape(-1, v).float() / tau, dim=-1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean") * (tau * tau)


# ---------------------------------------------------------------------------- clipping
def _is_conv1d(mod: nn.Module) -> bool:
    """GPT-2's ``Conv1D`` (weights stored ``(in, out)``)."""
    return module_kind(mod) == "conv1d"


@torch.no_grad()
def clip_per_channel(model: nn.Module, sigma: float) -> None:
    """Clip every analog layer's weights per output channel to ``+-sigma std`` (in place).

    The bound of a channel is ``sigma`` times the standard deviation of that channel before
    clipping. Works on GPT-2 ``Conv1D`` (weights stored ``(in, out)``) through the layer's
    ``(out, in)`` view. With LoRA the frozen base weights are clipped.
    """
    for _, layer in analog_layers(model_root(model), embeddings=False):
        mod = layer.digital
        if parametrize.is_parametrized(mod, "weight"):
            w = mod.parametrizations.weight.original
            mat = w.t() if _is_conv1d(mod) else w  # (N, K) view
        else:
            mat = layer.matrix()
        rows = mat.reshape(mat.shape[0], -1)  # (N, K) view
        bound = rows.std(dim=1, keepdim=True).mul_(sigma)  # (N, 1)
        torch.maximum(torch.minimum(rows, bound), -bound, out=rows)


# ---------------------------------------------------------------------------- LoRA
class _LoRA(nn.Module):
    """Parametrisation ``W0 + (alpha/rank) B A`` of a weight (``(out, in)`` or transposed)."""

    def __init__(
        self, n_out: int, n_in: int, rank: int, alpha: float, gen: torch.Generator, transposed: bool
    ) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.randn(rank, n_in, generator=gen) / math.sqrt(n_in))
        self.b = nn.Parameter(torch.zeros(n_out, rank))
        self.scale = alpha / rank
        self.transposed = transposed

    def forward(self, w: Tensor) -> Tensor:
        delta = (self.b @ self.a) * self.scale  # (N, K)
        return w + (delta.t() if self.transposed else delta)


def install_lora(model: nn.Module, rank: int, alpha: float, seed: int = 0) -> list[nn.Parameter]:
    """Put LoRA on every analog layer of a converted model; freeze everything else.

    Returns the LoRA parameters. :func:`merge_lora` folds them into the weights.
    """
    root = model_root(model)
    for p in root.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(derive_seed(seed, "lora"))
    params: list[nn.Parameter] = []
    for _, layer in analog_layers(root, embeddings=False):
        mod = layer.digital
        w = mod.weight
        if w.dim() != 2:
            raise ConfigError(
                "LoRA is for linear layers", key="distill.lora_rank", value=layer.name
            )
        n_out, n_in = layer.out_features, layer.in_features
        lora = _LoRA(n_out, n_in, rank, alpha, gen, _is_conv1d(mod)).to(w.device)
        parametrize.register_parametrization(mod, "weight", lora)
        params += [lora.a, lora.b]
    return params


def merge_lora(model: nn.Module) -> None:
    """Fold every LoRA parametrisation into its weight (no-op without LoRA)."""
    root = model_root(model)
    for mod in list(root.modules()):
        if parametrize.is_parametrized(mod, "weight"):
            parametrize.remove_parametrizations(mod, "weight", leave_parametrized=True)
            mod.weight.requires_grad_(True)


# ---------------------------------------------------------------------------- input ranges
class _RangedMVM(torch.autograd.Function):
    """The tile kernel with a learned static DAC range ``r`` (module docstring, item 6).

    ``tile_mvm`` runs on ``x / r`` with a static range of 1 and the output scaled by ``r``:
    the same numbers as a static range ``r`` (the kernel is linear in its range).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x2: Tensor,
        w: Tensor,
        bias: Tensor | None,
        r: Tensor,
        w_dev: Tensor,
        vmat: Tensor | None,
        out_scale: Tensor,
        plan: IOPlan,
        noise: NoiseSource,
        decay: float,
        min_inside: float,
    ) -> Tensor:
        with torch.no_grad():
            rv = r.detach().clamp(min=1e-6)
            y, mask = tile_mvm(
                x2.detach() / rv,
                w_dev,
                plan,
                normals=noise.fill_,
                var=vmat,
                out_scale=out_scale * rv,
                bias=None if bias is None else bias.detach(),
                clip_mask=True,
            )  # (M, N), (M, K)
        ctx.save_for_backward(x2, w_dev, out_scale, mask, rv)
        ctx.has_bias = bias is not None
        ctx.decay, ctx.min_inside = decay, min_inside
        return y

    @staticmethod
    def backward(ctx: Any, gy: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x2, w_dev, out_scale, mask, rv = ctx.saved_tensors
        gxu = (gy * out_scale) @ w_dev  # (M, K): dL/d(clamped x)
        gx = gxu * mask if ctx.needs_input_grad[0] else None
        gw = gb = gr = None
        if ctx.needs_input_grad[1]:
            gw = gy.t() @ torch.maximum(torch.minimum(x2, rv), -rv)  # (N, K)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum(0)
        if ctx.needs_input_grad[3]:
            outside = 1.0 - mask  # (M, K)
            g = (gxu * torch.sign(x2) * outside).sum()
            if float(mask.mean()) >= ctx.min_inside:
                g = g + ctx.decay * rv.squeeze()
            gr = g.reshape(rv.shape).to(rv.dtype)
        return gx, gw, gb, gr, None, None, None, None, None, None, None


class InputRanges(nn.Module):
    """The learned DAC ranges of a model's analog layers, one scalar parameter each."""

    def __init__(self, names: list[str], init: float = 1.0) -> None:
        super().__init__()
        self.names = list(names)
        self.ranges = nn.ParameterDict(
            {self.key(n): nn.Parameter(torch.tensor([float(init)])) for n in names}
        )
        self.seen = {n: 0 for n in names}

    @staticmethod
    def key(name: str) -> str:
        return name.replace(".", "__") or "_root"

    def get(self, name: str) -> nn.Parameter:
        return self.ranges[self.key(name)]

    def values(self) -> dict[str, float]:  # type: ignore[override]
        """``{layer name: range}``."""
        return {n: float(self.get(n).detach()) for n in self.names}


class RangedForward(HWAForward):
    """``layer.hwa`` of distillation: the hardware-aware forward with a learned DAC range."""

    def __init__(self, ctx: HWAContext, name: str, ranges: InputRanges, cfg: DistillConfig):
        super().__init__(ctx, name)
        self.ranges = ranges
        self.cfg = cfg
        self._ranged_plan: IOPlan | None = None

    def ranged_plan(self, layer: AnalogLayer) -> IOPlan:
        if self._ranged_plan is None:
            self._ranged_plan = dataclasses.replace(self.plan(layer), dac_static=1.0)
        return self._ranged_plan

    def __call__(self, layer: AnalogLayer, x: Tensor) -> Tensor:
        plan = self.plan(layer)
        if layer.kind == "conv2d" or not plan.io:
            return super().__call__(layer, x)
        r = self.ranges.get(self.name)
        seen = self.ranges.seen[self.name]
        if seen < self.cfg.init_steps:
            with torch.no_grad():  # range from data: running mean of alpha std(x)
                est = self.cfg.init_alpha * float(x.detach().float().std())
                r.fill_((float(r) * seen + max(est, 1e-6)) / (seen + 1))
            self.ranges.seen[self.name] = seen + 1
        lead = x.shape[:-1]
        x2 = x.reshape(-1, layer.in_features)
        w_dev, vmat, out_scale = self.prepare(layer, x.dim() == 2)
        y = _RangedMVM.apply(
            x2,
            layer.matrix(),
            layer.bias,
            r,
            w_dev,
            vmat,
            out_scale,
            self.ranged_plan(layer),
            self.ctx.noise(self.name),
            self.cfg.range_decay,
            self.cfg.min_inside,
        )
        return y.view(*lead, layer.out_features)


def install_input_ranges(model: nn.Module, ctx: HWAContext, cfg: DistillConfig) -> InputRanges:
    """Replace every analog layer's hardware-aware forward with :class:`RangedForward`."""
    root = model_root(model)
    layers = list(analog_layers(root, embeddings=False))
    ranges = InputRanges([n for n, _ in layers])
    if layers:
        ranges.to(layers[0][1].matrix().device)
    for name, layer in layers:
        layer.hwa = RangedForward(ctx, name, ranges, cfg)
    return ranges


def apply_input_ranges(model: nn.Module, ranges: dict[str, float]) -> int:
    """Give each named analog layer of a converted model its learned static DAC range
    (``tile.dac_range = r``); returns how many layers were set. Unknown names are an error."""
    root = model_root(model)
    layers = dict(analog_layers(root, embeddings=False))
    missing = sorted(set(ranges) - set(layers))
    if missing:
        raise ConfigError(
            "learned input ranges name layers the converted model does not place analog",
            key="input_ranges",
            value=missing[:5],
            allowed="the mapping the model was trained for",
        )
    for name, r in ranges.items():
        layer = layers[name]
        layer.tile = layer.tile.replace(dac_range=float(r))
    return len(ranges)


__all__ = [
    "DistillConfig",
    "InputRanges",
    "RangedForward",
    "apply_input_ranges",
    "clip_per_channel",
    "install_input_ranges",
    "install_lora",
    "kl_loss",
    "merge_lora",
    "model_fingerprint",
    "sequence_batches",
    "synthetic_tokens",
]
