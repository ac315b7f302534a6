"""The training loop: plain, hardware-aware or learned-noise training, one API, no files.

>>> from analogsim.train import TrainConfig, fit, load_base
>>> base, _ = load_base("digits-mlp")                                  # doctest: +SKIP
>>> res = fit(base, load_mapping("all_analog").with_device("pcm"),
...           TrainConfig(method="hwa", epochs=20))                     # doctest: +SKIP

The training *run* (run directory, checkpoint, plots, resume) is
:func:`analogsim.studies.train.train`; this module only trains and reports back through
callbacks (``on_row`` for each logged row, ``on_noise`` for learned-noise snapshots,
``on_interrupt`` with the weights trained so far on Ctrl-C).

Methods
-------
* ``plain``: the digital model trained as usual (the baseline).
* ``hwa``: the model is converted with the mapping; every analog-placed layer's forward
  sees the device model and the tile's IO (:mod:`analogsim.train.hwa`); digital int-
  quantized layers train with a straight-through quantizer; weights are clipped to
  ``+-clip_sigma std(W)`` after every step.
* ``learned-noise``: learnable Gaussian weight noise on the analog-placed layers
  (:mod:`analogsim.train.learned`); its sigmas are reported to ``on_noise``.

All three start from the same weights (the built-in model's, a Hugging Face model's, or
an analogsim checkpoint's; ``from_scratch`` re-initialises an MLP) and see the same
batches for the same seed, so their comparison isolates the method.

The logged rows are ``step, epoch, metric, value``: training loss every ``log_every``
steps and the digital held-out metric each epoch. Training is deterministic for a seed.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from analogsim.devices.rng import derive_seed
from analogsim.errors import ConfigError
from analogsim.mapping.convert import convert
from analogsim.mapping.rules import Mapping
from analogsim.metrics import accuracy
from analogsim.metrics._util import context_length
from analogsim.models import load_model
from analogsim.models._cache import seeded_global_rng
from analogsim.models.base import LoadedModel
from analogsim.models.digits import make_digits_mlp
from analogsim.models.quality import quality_metric
from analogsim.progress import progress_bar
from analogsim.tiles.kinds import set_submodule
from analogsim.tiles.layer import AnalogLayer
from analogsim.train.checkpoint import SIDECAR, load_checkpoint
from analogsim.train.data import classification_data, classifier_batches, lm_batches, text_data
from analogsim.train.distill import (
    DistillConfig,
    clip_per_channel,
    install_input_ranges,
    install_lora,
    kl_loss,
    merge_lora,
    sequence_batches,
    synthetic_tokens,
)
from analogsim.train.hwa import WRAPPERS, clip_weights, install_hwa, unwrap
from analogsim.train.hwa_config import HWAConfig
from analogsim.train.learned import LearnedNoiseConfig, install_learned_noise

METHODS = ("plain", "hwa", "learned-noise", "distill")
DISTILL_SCORE_TOKENS = 1024
"""Held-out tokens of the digital perplexity ``distill`` logs before and after training
(the full evaluation is ``analogsim robustness``'s)."""
NOISE_COLUMNS = ["step", "layer", "sigma_mean", "sigma_min", "sigma_max", "log_var_mean"]
"""Columns of a learned-noise snapshot row (``on_noise``)."""


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; ``None`` means the default for the model kind.

    Defaults: classifiers 20 epochs, batch 32, lr 3e-4 (Adam); causal LMs 2 epochs of
    random windows (an epoch = train tokens / (batch x block)), batch 8, block 128,
    lr 1e-4, gradient-norm clip 1.0. Learned log-variances use ``learned.lr``.
    ``distill`` (causal LMs): one epoch over ``distill.tokens`` synthetic tokens in
    sequences of ``distill.seq_len``, batch 4, lr 2e-5 (full fine-tuning) or 2e-4 (LoRA);
    input ranges use ``distill.range_lr``.
    ``dropout`` overrides the model's dropout probabilities during training only (the
    saved model keeps its own); ``None`` leaves them.
    """

    method: str = "hwa"
    epochs: int | None = None
    steps: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    block_size: int = 128
    seed: int = 0
    from_scratch: bool = False
    grad_clip: float | None = None
    dropout: float | None = None
    log_every: int = 10
    hwa: HWAConfig = field(default_factory=HWAConfig)
    learned: LearnedNoiseConfig = field(default_factory=LearnedNoiseConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(
                "unknown training method",
                key="method",
                value=self.method,
                allowed=", ".join(METHODS),
            )
        for key in ("epochs", "steps", "batch_size"):
            v = getattr(self, key)
            if v is not None and v < 1:
                raise ConfigError("must be >= 1", key=key, value=v)
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError("learning rate must be > 0", key="lr", value=self.lr)
        if self.block_size < 2:
            raise ConfigError("block size must be >= 2", key="block_size", value=self.block_size)
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ConfigError(
                "dropout out of range", key="dropout", value=self.dropout, allowed="[0, 1)"
            )

    def resolved(self, kind: str) -> TrainConfig:
        """A copy with the kind's defaults filled in."""
        lm = kind == "causal-lm"
        distill = self.method == "distill"
        lora = self.distill.lora_rank > 0
        lr = (1e-4 if lm else 3e-4) if not distill else (2e-4 if lora else 2e-5)
        epochs = (2 if lm else 20) if not distill else 1
        return TrainConfig(
            method=self.method,
            epochs=self.epochs if self.epochs is not None else epochs,
            steps=self.steps,
            lr=self.lr if self.lr is not None else lr,
            batch_size=self.batch_size
            if self.batch_size is not None
            else ((4 if distill else 8) if lm else 32),
            block_size=self.block_size,
            seed=self.seed,
            from_scratch=self.from_scratch,
            grad_clip=self.grad_clip if self.grad_clip is not None else (1.0 if lm else None),
            dropout=self.dropout,
            log_every=self.log_every,
            hwa=self.hwa,
            learned=self.learned,
            distill=self.distill,
        )

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hwa"] = self.hwa.as_dict()
        d["learned"] = self.learned.as_dict()
        d["distill"] = self.distill.as_dict()
        return d


@dataclass
class TrainResult:
    """What :func:`fit` (and the run, :func:`analogsim.studies.train.train`) returns.

    ``checkpoint`` and ``run_dir`` are ``None`` unless a run wrote them; ``extra`` holds
    what the checkpoint sidecar records beside the metrics (the learned noise).
    """

    loaded: LoadedModel  # the trained digital model with its data and tokenizer
    checkpoint: Path | None
    run_dir: Path | None
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    noise_log: list[dict[str, Any]]
    config: TrainConfig
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> nn.Module:
        return self.loaded.model


# ---------------------------------------------------------------------------- helpers
def _is_checkpoint(name: str) -> bool:
    p = Path(name)
    return p.is_dir() and (p / SIDECAR).is_file()


def load_base(
    model: str | LoadedModel,
    *,
    data: str | Path | None = None,
    text: str | Path | None = None,
    image_size: int | None = None,
    from_scratch: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> tuple[LoadedModel, dict[str, Any]]:
    """The starting model and its training data: ``(loaded, data record for the sidecar)``.

    ``loaded.data`` holds the training data (a :class:`ClassificationData`, or the causal-LM
    dict with ``train_ids``); the record says how to rebuild it.
    """
    if isinstance(model, LoadedModel):
        base = model
    elif _is_checkpoint(model):
        base = load_checkpoint(model, with_data=False)
    else:
        base = load_model(model, progress=progress)
    base = LoadedModel(
        base.name, base.kind, copy.deepcopy(base.model), base.tokenizer, base.data, dict(base.info)
    )
    if base.kind == "classifier":
        cdata = classification_data(data, image_size=image_size)
        record = {"source": cdata.source, "image_size": image_size}
        net = base.model
        first = next((m for m in net.modules() if isinstance(m, nn.Linear)), None)
        last = [m for m in net.modules() if isinstance(m, nn.Linear)][-1:]
        fits = (
            first is not None
            and first.in_features == cdata.n_features
            and last
            and last[0].out_features == cdata.n_classes
        )
        if from_scratch or not fits:
            hidden = [m.out_features for m in net.modules() if isinstance(m, nn.Linear)][:-1]
            gen = torch.Generator().manual_seed(derive_seed(seed, "init"))
            net = make_digits_mlp(
                tuple(hidden) or (128, 64),
                generator=gen,
                n_in=cdata.n_features,
                n_out=cdata.n_classes,
            )
            base.info["from_scratch"] = True
        base.model = net.eval()
        base.data = cdata
        return base, record
    if base.kind == "causal-lm":
        tdata = text_data(base.tokenizer, text)
        base.data = tdata.as_dict()
        if from_scratch:
            raise ConfigError(
                "from_scratch is for MLP classifiers; language models are fine-tuned",
                key="from_scratch",
            )
        return base, {"source": tdata.source, "heldout_fraction": 0.1}
    raise ConfigError(
        "training supports classifiers and causal language models",
        key="model",
        value=base.name,
        allowed="digits-mlp, tiny-gpt2, a local causal LM folder, or a checkpoint",
    )


def digital_score(loaded: LoadedModel, max_tokens: int | None = None) -> tuple[str, float]:
    """``(metric name, value)`` of the digital model on its held-out data (language
    models: the first ``max_tokens`` held-out tokens, default the evaluation's 4,096)."""
    q = (
        quality_metric(loaded)
        if max_tokens is None
        else quality_metric(loaded, max_tokens=max_tokens)
    )
    with torch.no_grad():
        return q.name, float(q.score(loaded.model))


def _loss(model: nn.Module, kind: str, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    if kind == "classifier":
        return F.cross_entropy(model(xb), yb)
    out = model(input_ids=xb, use_cache=False) if hasattr(model, "config") else model(xb)
    logits = out.logits if hasattr(out, "logits") else out
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1))


# ---------------------------------------------------------------------------- fit
def fit(
    base: LoadedModel,
    mapping: Mapping,
    config: TrainConfig,
    *,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    on_noise: Callable[[list[dict[str, Any]]], None] | None = None,
    on_interrupt: Callable[[nn.Module, int, float], None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``base`` (from :func:`load_base`) for deployment on ``mapping`` (a mapping
    with its device applied) with ``config.method``; nothing is written.

    Args:
        base: the starting model with its training data (``load_base``); not modified.
        mapping: which layers are analog, and on which device.
        config: the training settings (kind defaults are filled in).
        on_row: called with each logged row ``{step, epoch, metric, value}`` as it is made.
        on_noise: called with each learned-noise snapshot (rows of :data:`NOISE_COLUMNS`).
        on_interrupt: called on Ctrl-C with the digital model trained so far, the steps
            done and the loss EMA, before the ``KeyboardInterrupt`` goes on.
        progress: show a progress bar.

    Returns:
        A :class:`TrainResult` (``checkpoint`` and ``run_dir`` are ``None``).
    """
    t_start = time.perf_counter()
    cfg = config.resolved(base.kind)
    model_name = base.name

    # --------------------------------------------------------------- model per method
    if cfg.method == "distill" and base.kind != "causal-lm":
        raise ConfigError(
            "distillation is for causal language models",
            key="method",
            value=cfg.method,
            allowed="plain, hwa or learned-noise for classifiers",
        )
    score_tokens = DISTILL_SCORE_TOKENS if cfg.method == "distill" else None
    start_metric = digital_score(base, score_tokens)
    ctx = None
    noise = None
    ranges = None
    teacher = None
    synthetic = None
    synthetic_seconds = 0.0
    extra_params: list[nn.Parameter] = []
    prepare_seconds = 0.0  # hwa's device tables, built before the first step
    dcfg = cfg.distill
    if cfg.method == "distill":
        teacher = base.model.eval()  # used under no_grad only; base stays as it was
        t_syn = time.perf_counter()
        synthetic = synthetic_tokens(
            teacher, _vocab_size(teacher), dcfg, seed=cfg.seed, progress=progress
        )
        synthetic_seconds = time.perf_counter() - t_syn
    if cfg.method == "plain":
        net = copy.deepcopy(base.model)
    else:
        am = convert(base.model, mapping)
        net = am.model
        if not any(p.placement == "analog" for p in am.plan.layers):
            raise ConfigError(
                f"method {cfg.method} needs analog-placed layers; the mapping places none",
                key="mapping",
                value=mapping.name,
            )
        if cfg.method in ("hwa", "distill"):
            t_prepare = time.perf_counter()
            ctx = install_hwa(net, cfg.hwa, seed=cfg.seed, progress=progress)
            prepare_seconds = time.perf_counter() - t_prepare
            if cfg.method == "distill":
                if dcfg.lora_rank > 0:
                    if dcfg.clip_sigma is not None:
                        clip_per_channel(net, dcfg.clip_sigma)
                    install_lora(net, dcfg.lora_rank, dcfg.lora_alpha, seed=cfg.seed)
                if dcfg.learn_input_range:
                    ranges = install_input_ranges(net, ctx, dcfg)
                    extra_params = list(ranges.parameters())
        else:
            noise = install_learned_noise(net, cfg.learned, seed=cfg.seed)

    weights = [p for p in net.parameters() if p.requires_grad]
    groups: list[dict[str, Any]] = [{"params": weights, "lr": cfg.lr}]
    if noise is not None:
        groups.append({"params": list(noise.parameters()), "lr": cfg.learned.lr})
    if extra_params:
        groups.append({"params": extra_params, "lr": dcfg.range_lr})
    opt = torch.optim.Adam(groups)

    gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "batches"))
    assert cfg.epochs is not None and cfg.batch_size is not None
    if base.kind == "classifier":
        xd, yd = base.data.x_train, base.data.y_train
        per_epoch = math.ceil(xd.shape[0] / cfg.batch_size)
        total = cfg.epochs * per_epoch
    elif synthetic is not None:
        per_epoch = max(1, math.ceil(synthetic.shape[0] / cfg.batch_size))
        total = cfg.steps if cfg.steps is not None else cfg.epochs * per_epoch
    else:
        ids = base.data["train_ids"]
        block = min(cfg.block_size, context_length(base.model))
        per_epoch = max(1, math.ceil(ids.numel() / (cfg.batch_size * block)))
        total = cfg.steps if cfg.steps is not None else cfg.epochs * per_epoch
    history: list[dict[str, Any]] = []
    noise_rows: list[dict[str, Any]] = []

    def log(step: int, epoch: int, metric: str, value: float) -> None:
        row = {"step": step, "epoch": epoch, "metric": metric, "value": value}
        history.append(row)
        if on_row is not None:
            on_row(row)

    def log_noise(step: int) -> None:
        assert noise is not None
        rows = [{"step": step, "layer": layer, **v} for layer, v in noise.snapshot().items()]
        noise_rows.extend(rows)
        if on_noise is not None:
            on_noise(rows)

    metric_name = start_metric[0]
    log(0, 0, f"digital_{metric_name}", start_metric[1])
    if noise is not None:
        log_noise(0)

    def batches() -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        if base.kind == "classifier":
            for ep in range(cfg.epochs):
                for xb, yb in classifier_batches(xd, yd, cfg.batch_size, gen):
                    yield ep, xb, yb
        elif synthetic is not None:
            for i, xb in enumerate(sequence_batches(synthetic, cfg.batch_size, total, gen)):
                yield i // per_epoch, xb, xb
        else:
            for i, (xb, yb) in enumerate(lm_batches(ids, cfg.batch_size, block, total, gen)):
                yield i // per_epoch, xb, yb

    step = 0
    ema = float("nan")
    saved_p = _set_dropout(net, cfg.dropout)
    t_train = time.perf_counter()
    net.train()
    try:
        with (
            progress_bar(f"train {model_name} ({cfg.method})", total, progress) as advance,
            seeded_global_rng(derive_seed(cfg.seed, "dropout") & 0x7FFFFFFF),
        ):
            last_epoch = 0
            for ep, xb, yb in batches():
                if ep != last_epoch:
                    _epoch_end(net, base, log, step, last_epoch, metric_name)
                    last_epoch = ep
                if ctx is not None:
                    ctx.step()
                if teacher is not None:
                    loss = _distill_loss(net, teacher, xb, dcfg.kl_temperature)
                else:
                    loss = _loss(net, base.kind, xb, yb)
                reward = None if noise is None else noise.reward_loss()
                total_loss = loss if reward is None else loss + reward
                opt.zero_grad(set_to_none=True)
                total_loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(weights, cfg.grad_clip)
                opt.step()
                if ctx is not None and cfg.hwa.clip_sigma is not None:
                    clip_weights(net, cfg.hwa.clip_sigma)
                if teacher is not None and dcfg.clip_sigma is not None and not dcfg.lora_rank:
                    clip_per_channel(net, dcfg.clip_sigma)
                step += 1
                value = float(loss.detach())
                ema = value if math.isnan(ema) else 0.9 * ema + 0.1 * value
                if step % cfg.log_every == 0 or step == total:
                    log(step, ep, "loss", ema)
                    if ranges is not None:
                        vals = list(ranges.values().values())
                        log(step, ep, "input_range_mean", sum(vals) / max(len(vals), 1))
                    if noise is not None:
                        log_noise(step)
                advance(1, f"loss {ema:.3f}")
            train_seconds = time.perf_counter() - t_train
            merge_lora(net)
            digital = unwrap(net).eval()
    except KeyboardInterrupt:
        if on_interrupt is not None:
            merge_lora(net)
            on_interrupt(unwrap(net).eval(), step, ema)
        raise
    finally:
        for mod, p in saved_p:
            mod.p = p
    trained = LoadedModel(
        model_name, base.kind, digital, base.tokenizer, base.data, dict(base.info)
    )
    end_metric = digital_score(trained, score_tokens)
    log(step, cfg.epochs, f"digital_{end_metric[0]}", end_metric[1])
    metrics: dict[str, Any] = {
        f"digital_{end_metric[0]}": end_metric[1],
        f"start_digital_{start_metric[0]}": start_metric[1],
        "final_loss_ema": ema,
        "steps": step,
        "train_seconds": train_seconds,
        "seconds_per_step": train_seconds / max(step, 1),
        "prepare_seconds": prepare_seconds,
    }
    extra: dict[str, Any] = {}
    if noise is not None:
        extra["learned_noise"] = noise.snapshot()
    if teacher is not None:
        assert synthetic is not None
        metrics["synthetic_tokens"] = int(synthetic.numel())
        metrics["synthetic_seconds"] = synthetic_seconds
        metrics["train_tokens"] = step * cfg.batch_size * synthetic.shape[1]
        metrics["train_tokens_per_second"] = metrics["train_tokens"] / max(train_seconds, 1e-9)
    if ranges is not None:
        extra["input_ranges"] = ranges.values()
    return TrainResult(
        trained,
        None,
        None,
        metrics,
        history,
        noise_rows,
        cfg,
        time.perf_counter() - t_start,
        extra,
    )


def _vocab_size(model: nn.Module) -> int:
    """Rows of the output head (the logits' width)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and getattr(head, "weight", None) is not None:
        return int(head.weight.shape[0])
    return int(model.config.vocab_size)


def _distill_loss(net: nn.Module, teacher: nn.Module, xb: torch.Tensor, tau: float) -> torch.Tensor:
    """KL of the student's (noisy) next-token distribution to the digital teacher's."""
    with torch.no_grad():
        t = teacher(input_ids=xb, use_cache=False).logits  # (B, T, V)
    s = net(input_ids=xb, use_cache=False).logits  # (B, T, V)
    return kl_loss(s, t, tau)


def _set_dropout(net: nn.Module, p: float | None) -> list[tuple[nn.Module, float]]:
    """Set every dropout module's probability to ``p``; return what to restore."""
    if p is None:
        return []
    saved = []
    for mod in net.modules():
        if isinstance(mod, nn.modules.dropout._DropoutNd):
            saved.append((mod, mod.p))
            mod.p = p
    return saved


def _epoch_end(
    net: nn.Module, base: LoadedModel, log: Any, step: int, epoch: int, metric_name: str
) -> None:
    """Digital held-out accuracy at the end of a classifier epoch (cheap)."""
    if base.kind != "classifier":
        return
    with _digital_view(net) as digital:
        acc = accuracy(digital, base.data.x_test, base.data.y_test)
    log(step, epoch, f"digital_{metric_name}", acc)


class _digital_view:
    """Temporarily unwrap a training model to its digital layers (same parameters)."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.saved: list[tuple[str, nn.Module]] = []

    def __enter__(self) -> nn.Module:
        for name, mod in list(self.net.named_modules()):
            if name and isinstance(mod, (AnalogLayer, *WRAPPERS)) and not name.endswith("_shim"):
                if any(name.startswith(s + ".") for s, _ in self.saved):
                    continue
                self.saved.append((name, mod))
        for name, mod in self.saved:
            set_submodule(self.net, name, mod.digital)
        return self.net

    def __exit__(self, *exc: Any) -> None:
        for name, mod in self.saved:
            set_submodule(self.net, name, mod)
        self.net.train()


__all__ = [
    "METHODS",
    "NOISE_COLUMNS",
    "TrainConfig",
    "TrainResult",
    "digital_score",
    "fit",
    "load_base",
]
