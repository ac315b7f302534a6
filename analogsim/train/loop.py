"""``analogsim.train.train``: plain, hardware-aware or learned-noise training, one API.

>>> from analogsim.train import train
>>> res = train("digits-mlp", "all_analog", "pcm", method="hwa", epochs=20, seed=0,
...             out="runs/hwa-digits")                                   # doctest: +SKIP
>>> res.checkpoint                                  # runs/hwa-digits/checkpoint

Methods
-------
* ``plain``: the digital model trained as usual (the baseline).
* ``hwa``: the model is converted with the mapping; every analog-placed layer's forward
  sees the device model and the tile's IO (:mod:`analogsim.train.hwa`); digital int-
  quantized layers train with a straight-through quantizer; weights are clipped to
  ``+-clip_sigma std(W)`` after every step.
* ``learned-noise``: learnable Gaussian weight noise on the analog-placed layers
  (:mod:`analogsim.train.learned`); its sigmas are logged to ``noise_log.csv``.

All three start from the same weights (the built-in model's, a Hugging Face model's, or
an analogsim checkpoint's; ``from_scratch`` re-initialises an MLP) and see the same
batches for the same seed, so their comparison isolates the method.

The run directory holds ``results.csv`` (``step, epoch, metric, value``: training loss
every ``log_every`` steps and the digital held-out metric each epoch),
``noise_log.csv`` (learned noise), ``manifest.json``, plots, and ``checkpoint/`` (see
:mod:`analogsim.train.checkpoint`). Re-running a finished run with the same ``out`` loads
its checkpoint instead of training again; an interrupted run trains again (training is
deterministic for a seed, so the rows it had written are reproduced, not duplicated).
"""

from __future__ import annotations

import copy
import csv
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from analogsim.devices.rng import derive_seed
from analogsim.errors import ConfigError
from analogsim.models.base import LoadedModel
from analogsim.train.hwa import HWAConfig, clip_weights, install_hwa, unwrap
from analogsim.train.learned import LearnedNoiseConfig, install_learned_noise

METHODS = ("plain", "hwa", "learned-noise")
TRAIN_COLUMNS = ["step", "epoch", "metric", "value"]
TRAIN_KEYS = ["step", "metric"]
NOISE_COLUMNS = ["step", "layer", "sigma_mean", "sigma_min", "sigma_max", "log_var_mean"]


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; ``None`` means the default for the model kind.

    Defaults: classifiers 20 epochs, batch 32, lr 3e-4 (Adam); causal LMs 2 epochs of
    random windows (an epoch = train tokens / (batch x block)), batch 8, block 128,
    lr 1e-4, gradient-norm clip 1.0. Learned log-variances use ``learned.lr``.
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
        return TrainConfig(
            method=self.method,
            epochs=self.epochs if self.epochs is not None else (2 if lm else 20),
            steps=self.steps,
            lr=self.lr if self.lr is not None else (1e-4 if lm else 3e-4),
            batch_size=self.batch_size if self.batch_size is not None else (8 if lm else 32),
            block_size=self.block_size,
            seed=self.seed,
            from_scratch=self.from_scratch,
            grad_clip=self.grad_clip if self.grad_clip is not None else (1.0 if lm else None),
            dropout=self.dropout,
            log_every=self.log_every,
            hwa=self.hwa,
            learned=self.learned,
        )

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hwa"] = self.hwa.as_dict()
        d["learned"] = self.learned.as_dict()
        return d


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    loaded: LoadedModel  # the trained digital model with its data and tokenizer
    checkpoint: Path | None
    run_dir: Path | None
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    noise_log: list[dict[str, Any]]
    config: TrainConfig
    seconds: float

    @property
    def model(self) -> nn.Module:
        return self.loaded.model


# ---------------------------------------------------------------------------- helpers
def _is_checkpoint(name: str) -> bool:
    from analogsim.train.checkpoint import SIDECAR

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
    from analogsim.models import load_model
    from analogsim.train.checkpoint import load_checkpoint
    from analogsim.train.data import classification_data, text_data

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
            from analogsim.models.digits import make_digits_mlp

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


def digital_score(loaded: LoadedModel) -> tuple[str, float]:
    """``(metric name, value)`` of the digital model on its held-out data."""
    from analogsim.studies.evaluate import quality_metric

    q = quality_metric(loaded)
    with torch.no_grad():
        return q.name, float(q.score(loaded.model))


def _loss(model: nn.Module, kind: str, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    if kind == "classifier":
        return F.cross_entropy(model(xb), yb)
    out = model(input_ids=xb, use_cache=False) if hasattr(model, "config") else model(xb)
    logits = out.logits if hasattr(out, "logits") else out
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1))


class _NoiseLog:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self._fh = None
        if path is not None:
            self._fh = path.open("w", newline="")
            self._w = csv.DictWriter(self._fh, fieldnames=NOISE_COLUMNS)
            self._w.writeheader()

    def add(self, step: int, snap: dict[str, dict[str, float]]) -> None:
        for layer, v in snap.items():
            row = {"step": step, "layer": layer, **v}
            self.rows.append(row)
            if self._fh is not None:
                self._w.writerow(row)
        if self._fh is not None:
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


# ---------------------------------------------------------------------------- train
def train(
    model: str | LoadedModel = "digits-mlp",
    mapping: Any = "all_analog",
    device: str | None = None,
    method: str = "hwa",
    *,
    epochs: int | None = None,
    steps: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    data: str | Path | None = None,
    text: str | Path | None = None,
    image_size: int | None = None,
    from_scratch: bool = False,
    dropout: float | None = None,
    hwa: HWAConfig | None = None,
    learned: LearnedNoiseConfig | None = None,
    config: TrainConfig | None = None,
    save: bool = True,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` for deployment on ``mapping`` / ``device`` with ``method``.

    Args:
        model: ``digits-mlp``, ``tiny-gpt2``, a Hugging Face name / folder, an analogsim
            checkpoint folder, or a :class:`LoadedModel`.
        mapping: mapping name, path or :class:`Mapping` (which layers are analog).
        device: device card for every analog placement (overrides the mapping's).
        method: ``plain``, ``hwa`` or ``learned-noise``.
        epochs, steps, lr, batch_size, seed: see :class:`TrainConfig` (``steps`` overrides
            ``epochs`` for language models).
        out: run directory (``None``: ``runs/<timestamp>-train``); ``save=False`` writes
            nothing at all.
        data: classifier data (``"digits"`` or an image-folder path).
        text: a UTF-8 text file for language models (default: the tiny-gpt2 corpus).
        image_size: resize images of an image folder to this size.
        from_scratch: re-initialise an MLP instead of fine-tuning it.
        dropout: the models' dropout probability during training (``None``: its own).
        hwa, learned: method settings; ``config`` gives everything at once.
    """
    from analogsim.mapping.convert import convert
    from analogsim.mapping.rules import load_mapping
    from analogsim.models._cache import seeded_global_rng
    from analogsim.progress import progress_bar
    from analogsim.report.rundir import RunDir
    from analogsim.studies.evaluate import cards_of
    from analogsim.train.checkpoint import load_checkpoint, save_checkpoint
    from analogsim.train.data import classifier_batches, lm_batches
    from analogsim.train.plots import plot_learned_sigma, plot_training

    t_start = time.perf_counter()
    cfg = config or TrainConfig(
        method=method,
        epochs=epochs,
        steps=steps,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        from_scratch=from_scratch,
        dropout=dropout,
        hwa=hwa or HWAConfig(),
        learned=learned or LearnedNoiseConfig(),
    )
    m = load_mapping(mapping).with_device(device)
    base, data_record = load_base(
        model,
        data=data,
        text=text,
        image_size=image_size,
        from_scratch=cfg.from_scratch,
        seed=cfg.seed,
        progress=progress,
    )
    cfg = cfg.resolved(base.kind)
    model_name = base.name
    run_config = {
        "model": model_name if isinstance(model, LoadedModel) else str(model),
        "mapping": m.name,
        "mapping_path": str(m.path or ""),
        "device": device,
        "data": data_record,
        "train": cfg.as_dict(),
    }
    run = None
    if save:
        run = RunDir(out, "train", run_config, TRAIN_COLUMNS, TRAIN_KEYS, cards=cards_of(m, device))
        ck = run.path / "checkpoint"
        if run.manifest.get("status_final") == "complete" and (ck / "analogsim.json").is_file():
            loaded = load_checkpoint(ck)
            run.finish("complete")
            side = loaded.info["sidecar"]
            return TrainResult(
                loaded,
                ck,
                run.path,
                side.get("metrics", {}),
                list(run.rows),
                [],
                cfg,
                time.perf_counter() - t_start,
            )

    # --------------------------------------------------------------- model per method
    start_metric = digital_score(base)
    ctx = None
    noise = None
    if cfg.method == "plain":
        net = copy.deepcopy(base.model)
    else:
        am = convert(base.model, m)
        net = am.model
        if not any(p.placement == "analog" for p in am.plan.layers):
            raise ConfigError(
                f"method {cfg.method} needs analog-placed layers; the mapping places none",
                key="mapping",
                value=m.name,
            )
        if cfg.method == "hwa":
            ctx = install_hwa(net, cfg.hwa, seed=cfg.seed)
        else:
            noise = install_learned_noise(net, cfg.learned, seed=cfg.seed)

    weights = [p for p in net.parameters() if p.requires_grad]
    groups: list[dict[str, Any]] = [{"params": weights, "lr": cfg.lr}]
    if noise is not None:
        groups.append({"params": list(noise.parameters()), "lr": cfg.learned.lr})
    opt = torch.optim.Adam(groups)

    gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "batches"))
    assert cfg.epochs is not None and cfg.batch_size is not None
    if base.kind == "classifier":
        xd, yd = base.data.x_train, base.data.y_train
        per_epoch = math.ceil(xd.shape[0] / cfg.batch_size)
        total = cfg.epochs * per_epoch
    else:
        from analogsim.metrics._util import context_length

        ids = base.data["train_ids"]
        block = min(cfg.block_size, context_length(base.model))
        per_epoch = max(1, math.ceil(ids.numel() / (cfg.batch_size * block)))
        total = cfg.steps if cfg.steps is not None else cfg.epochs * per_epoch
    history: list[dict[str, Any]] = []

    def log(step: int, epoch: int, metric: str, value: float) -> None:
        row = {"step": step, "epoch": epoch, "metric": metric, "value": value}
        history.append(row)
        if run is not None and not run.done(step=step, metric=metric):
            run.write([row])

    noise_log = _NoiseLog(
        run.path / "noise_log.csv" if run is not None and noise is not None else None
    )
    metric_name = start_metric[0]
    log(0, 0, f"digital_{metric_name}", start_metric[1])
    if noise is not None:
        noise_log.add(0, noise.snapshot())

    def batches():
        if base.kind == "classifier":
            for ep in range(cfg.epochs):
                for xb, yb in classifier_batches(xd, yd, cfg.batch_size, gen):
                    yield ep, xb, yb
        else:
            for i, (xb, yb) in enumerate(lm_batches(ids, cfg.batch_size, block, total, gen)):
                yield i // per_epoch, xb, yb

    def save(model: nn.Module, folder: Path, metrics: dict[str, Any], extra: dict) -> Path:
        return save_checkpoint(
            model,
            folder,
            name=model_name,
            kind=base.kind,
            method=cfg.method,
            mapping=m,
            device=device,
            seed=cfg.seed,
            tokenizer=base.tokenizer,
            metrics=metrics,
            train=cfg.as_dict(),
            data=data_record,
            extra=extra,
        )

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
                step += 1
                value = float(loss.detach())
                ema = value if math.isnan(ema) else 0.9 * ema + 0.1 * value
                if step % cfg.log_every == 0 or step == total:
                    log(step, ep, "loss", ema)
                    if noise is not None:
                        noise_log.add(step, noise.snapshot())
                advance(1, f"loss {ema:.3f}")
            train_seconds = time.perf_counter() - t_train
            digital = unwrap(net).eval()
    except KeyboardInterrupt:
        if run is not None:
            # keep the weights trained so far: a checkpoint beside the run, which stays
            # unfinished (running again with the same --out trains from the start)
            save(
                unwrap(net).eval(),
                run.path / "checkpoint-interrupted",
                {"steps": step, "final_loss_ema": ema, "interrupted": True},
                {},
            )
            run.note(interrupted_after_steps=step)
            run.finish("interrupted")
        raise
    finally:
        noise_log.close()
        for mod, p in saved_p:
            mod.p = p
    trained = LoadedModel(
        model_name, base.kind, digital, base.tokenizer, base.data, dict(base.info)
    )
    end_metric = digital_score(trained)
    log(step, cfg.epochs, f"digital_{end_metric[0]}", end_metric[1])
    metrics: dict[str, Any] = {
        f"digital_{end_metric[0]}": end_metric[1],
        f"start_digital_{start_metric[0]}": start_metric[1],
        "final_loss_ema": ema,
        "steps": step,
        "train_seconds": train_seconds,
        "seconds_per_step": train_seconds / max(step, 1),
    }
    extra: dict[str, Any] = {}
    if noise is not None:
        extra["learned_noise"] = noise.snapshot()
    checkpoint = None
    if run is not None:
        checkpoint = save(digital, run.path / "checkpoint", metrics, extra)
        plot_training(
            history, run.path / "training.png", title=f"{model_name}: {cfg.method} training"
        )
        if noise_log.rows:
            plot_learned_sigma(
                noise_log.rows,
                run.path / "learned_sigma.png",
                title=f"{model_name}: learned noise ({cfg.learned.reward} reward)",
            )
        run.note(metrics=metrics, status_final="complete", **extra)
        run.finish("complete")
    if base.kind == "classifier":
        trained.data = base.data
    return TrainResult(
        trained,
        checkpoint,
        None if run is None else run.path,
        metrics,
        history,
        noise_log.rows,
        cfg,
        time.perf_counter() - t_start,
    )


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
    from analogsim.metrics import accuracy

    with _digital_view(net) as digital:
        acc = accuracy(digital, base.data.x_test, base.data.y_test)
    log(step, epoch, f"digital_{metric_name}", acc)


class _digital_view:
    """Temporarily unwrap a training model to its digital layers (same parameters)."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.saved: list[tuple[str, nn.Module]] = []

    def __enter__(self) -> nn.Module:
        from analogsim.mapping.analog_model import set_submodule
        from analogsim.tiles.layer import AnalogLayer
        from analogsim.train.hwa import WRAPPERS

        for name, mod in list(self.net.named_modules()):
            if name and isinstance(mod, (AnalogLayer, *WRAPPERS)) and not name.endswith("_shim"):
                if any(name.startswith(s + ".") for s, _ in self.saved):
                    continue
                self.saved.append((name, mod))
        for name, mod in self.saved:
            set_submodule(self.net, name, mod.digital)
        return self.net

    def __exit__(self, *exc: Any) -> None:
        from analogsim.mapping.analog_model import set_submodule

        for name, mod in self.saved:
            set_submodule(self.net, name, mod)
        self.net.train()


__all__ = ["METHODS", "TrainConfig", "TrainResult", "digital_score", "load_base", "train"]
