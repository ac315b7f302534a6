"""The training run: ``analogsim train`` as an API, with its run directory and checkpoint.

>>> from analogsim.studies.train import train
>>> res = train("digits-mlp", "all_analog", "pcm", method="hwa", epochs=20, seed=0,
...             out="runs/hwa-digits")                                   # doctest: +SKIP
>>> res.checkpoint                                  # runs/hwa-digits/checkpoint

The training itself is :func:`analogsim.train.fit` (methods ``plain``, ``hwa``,
``learned-noise``: see :mod:`analogsim.train.loop`); this module loads the model and its
data, and writes what the run leaves behind.

The run directory holds ``results.csv`` (``step, epoch, metric, value``: training loss
every ``log_every`` steps and the digital held-out metric each epoch),
``noise_log.csv`` (learned noise), ``manifest.json``, plots, and ``checkpoint/`` (see
:mod:`analogsim.train.checkpoint`). Re-running a finished run with the same ``out`` loads
its checkpoint instead of training again; an interrupted run trains again (training is
deterministic for a seed, so the rows it had written are reproduced, not duplicated).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

from torch import nn

from analogsim.mapping.rules import cards_of, load_mapping
from analogsim.models.base import LoadedModel
from analogsim.report.rundir import RunDir
from analogsim.report.train_plots import plot_learned_sigma, plot_training
from analogsim.train.checkpoint import load_checkpoint, save_checkpoint
from analogsim.train.distill import DistillConfig
from analogsim.train.hwa_config import HWAConfig
from analogsim.train.learned import LearnedNoiseConfig
from analogsim.train.loop import NOISE_COLUMNS, TrainConfig, TrainResult, fit, load_base

TRAIN_COLUMNS = ["step", "epoch", "metric", "value"]
TRAIN_KEYS = ["step", "metric"]


class _NoiseLog:
    """``noise_log.csv``: learned-noise snapshot rows, flushed as they come (the file is
    created with the first snapshot)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: Any = None
        self._w: Any = None

    def add(self, rows: list[dict[str, Any]]) -> None:
        if self._fh is None:
            self._fh = self.path.open("w", newline="")
            self._w = csv.DictWriter(self._fh, fieldnames=NOISE_COLUMNS)
            self._w.writeheader()
        for row in rows:
            self._w.writerow(row)
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


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
    distill: DistillConfig | None = None,
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
        method: ``plain``, ``hwa``, ``learned-noise`` or ``distill`` (causal LMs).
        epochs, steps, lr, batch_size, seed: see :class:`TrainConfig` (``steps`` overrides
            ``epochs`` for language models).
        out: run directory (``None``: ``runs/<timestamp>-train``); ``save=False`` writes
            nothing at all.
        data: classifier data (``"digits"`` or an image-folder path).
        text: a UTF-8 text file for language models (default: the tiny-gpt2 corpus).
        image_size: resize images of an image folder to this size.
        from_scratch: re-initialise an MLP instead of fine-tuning it.
        dropout: the models' dropout probability during training (``None``: its own).
        hwa, learned, distill: method settings; ``config`` gives everything at once.
    """
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
        distill=distill or DistillConfig(),
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
    if not save:
        res = fit(base, m, cfg, progress=progress)
        res.seconds = time.perf_counter() - t_start
        return res

    model_name = base.name
    run_config = {
        "model": model_name if isinstance(model, LoadedModel) else str(model),
        "mapping": m.name,
        "mapping_path": str(m.path or ""),
        "device": device,
        "data": data_record,
        "train": cfg.as_dict(),
    }
    cards = cards_of(m, device)
    run = RunDir(out, "train", run_config, TRAIN_COLUMNS, TRAIN_KEYS, cards=cards)
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

    def checkpoint(model: nn.Module, folder: Path, metrics: dict[str, Any], extra: dict) -> Path:
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

    def on_row(row: dict[str, Any]) -> None:
        if not run.done(step=row["step"], metric=row["metric"]):
            run.write([row])

    def on_interrupt(model: nn.Module, step: int, ema: float) -> None:
        # keep the weights trained so far: a checkpoint beside the run, which stays
        # unfinished (running again with the same --out trains from the start)
        checkpoint(
            model,
            run.path / "checkpoint-interrupted",
            {"steps": step, "final_loss_ema": ema, "interrupted": True},
            {},
        )
        run.note(interrupted_after_steps=step)
        run.finish("interrupted")

    noise_log = _NoiseLog(run.path / "noise_log.csv")
    try:
        res = fit(
            base,
            m,
            cfg,
            on_row=on_row,
            on_noise=noise_log.add,
            on_interrupt=on_interrupt,
            progress=progress,
        )
    finally:
        noise_log.close()
    res.checkpoint = checkpoint(res.loaded.model, ck, res.metrics, res.extra)
    plot_training(
        res.history, run.path / "training.png", title=f"{model_name}: {cfg.method} training"
    )
    if res.noise_log:
        plot_learned_sigma(
            res.noise_log,
            run.path / "learned_sigma.png",
            title=f"{model_name}: learned noise ({cfg.learned.reward} reward)",
        )
    run.note(metrics=res.metrics, status_final="complete", **res.extra)
    run.finish("complete")
    res.run_dir = run.path
    res.seconds = time.perf_counter() - t_start
    return res


__all__ = ["TRAIN_COLUMNS", "TRAIN_KEYS", "train"]
