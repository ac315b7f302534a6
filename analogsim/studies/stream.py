r"""The ``stream`` study: a classifier over a stream of inputs while the chip ages
(accuracy over deployment time).

Input ``i`` of the stream is classified with the chip at
``start_age + i * input_time`` (one forward per input; the clock advances through the same
forward pre-hook as generation). The inputs are the model's test set in order (cycled when
more inputs are asked for than it has, or permuted with ``shuffle``). ``trace.csv`` has one
row per input (columns in :mod:`analogsim.studies.trace`); the digital model's prediction
of each input is computed before conversion. The setup shared with ``generate`` is
:mod:`analogsim.studies.clocked`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from analogsim.devices.rng import derive_seed
from analogsim.errors import ConfigError
from analogsim.models import LoadedModel, load_model
from analogsim.plasticity.session import PLASTICITY_COLUMNS, PlasticSession
from analogsim.report.rundir import RunDir, read_csv, write_csv
from analogsim.report.trace_plots import plot_stream_trace
from analogsim.studies.clocked import (
    RESULT_COLUMNS,
    RESULT_KEYS,
    ChipOptions,
    chip_config,
    chip_mapping,
    parse_noise_schedule,
    resolve_chip,
    running_chip,
    with_settings,
)
from analogsim.studies.detector import rolling_mean
from analogsim.studies.generate import (
    plasticity_metrics,
    plasticity_setup,
    plasticity_targets,
    plot_plasticity,
)
from analogsim.studies.trace import EVENT_COLUMNS, event_rows, stream_columns, stream_rows

__all__ = ["StreamOptions", "run_stream"]


@dataclass(frozen=True)
class StreamOptions(ChipOptions):
    """Settings of a ``stream`` run (with the chip settings of :class:`ChipOptions`; the
    noise schedule runs over the input index).

    Attributes:
        input_time: simulated time per input, s or ``"1h"`` (> 0).
        inputs: stream length (default: the test set once).
        shuffle: permute the test set (seeded) instead of its order.
        window: rolling-accuracy window, inputs (>= 1).
        plasticity, plasticity_config, plasticity_every: plastic LoRA adapters updated
            once per input (or every N) at that input's time, as in ``generate``
            (default targets: the MLP layers; docs/plasticity.md).
    """

    input_time: float | str = 60.0
    inputs: int | None = None
    shuffle: bool = False
    window: int = 50
    plasticity: str | None = None
    plasticity_config: str | Path | dict[str, Any] | None = None
    plasticity_every: int | None = None


def run_stream(
    model: Any = "digits-mlp",
    options: StreamOptions | None = None,
    *,
    out: str | Path | None = None,
    plots: bool = True,
    **settings: Any,
) -> dict[str, Any]:
    """Classify a stream of test inputs on an aging chip; write a run directory.

    Args:
        model: a classifier name (``digits-mlp``) or a ``LoadedModel`` whose ``data`` has
            ``x_test`` and ``y_test``.
        options: the settings (:class:`StreamOptions`); ``settings`` given as keywords
            (``inputs=200, device="pcm"``) replace its fields.
        out: run directory (default ``runs/<timestamp>-stream``).
        plots: draw the PNGs.

    Returns:
        ``{"run_dir", "rows", "metrics", "clock"}``.
    """
    opts = with_settings(options or StreamOptions(), settings)
    window, inputs = opts.window, opts.inputs
    if not isinstance(window, int) or window < 1:
        raise ConfigError("must be an integer >= 1", key="window", value=window)
    if inputs is not None and (not isinstance(inputs, int) or inputs < 1):
        raise ConfigError("must be an integer >= 1", key="inputs", value=inputs)
    setup, _ = resolve_chip(opts, opts.input_time, "input_time")
    loaded = model if isinstance(model, LoadedModel) else load_model(model, progress=False)
    data = loaded.data
    if loaded.kind != "classifier" or data is None:
        raise ConfigError(
            "stream needs a classifier with a test set",
            key="model",
            value=loaded.name,
            allowed="digits-mlp (text models use `analogsim generate`)",
        )
    x_test, y_test = data["x_test"], data["y_test"]
    n_test = int(x_test.shape[0])
    n = inputs if inputs is not None else n_test
    order = _order(n, n_test, opts.shuffle, opts.seed)
    sched = parse_noise_schedule(opts.noise, opts.schedule, n)
    mapping, mapping_name, cards = chip_mapping(opts.mapping, opts.device)
    pcfg = plasticity_setup(opts, mapping)
    targets = plasticity_targets(pcfg, mapping, loaded.model, ("mlp",)) if pcfg else []
    extra = {}
    if pcfg is not None:
        extra["plasticity"] = pcfg.summary() | {"layers": [t.name for t in targets]}
    config = chip_config(
        opts,
        loaded.name,
        mapping_name,
        setup,
        sched,
        "input_time_s",
        study={"inputs": n, "shuffle": opts.shuffle, "window": opts.window},
        extra=extra or None,
    )
    point = {
        "model": loaded.name,
        "mapping": mapping_name,
        "device": opts.device or "",
        "seed": opts.seed,
    }
    net = loaded.model
    with RunDir(out, "stream", config, RESULT_COLUMNS, RESULT_KEYS, cards=cards) as run:
        if run.done(**point, metric="inputs") and (run.path / "trace.csv").exists():
            rows = read_csv(run.path / "trace.csv")
            metrics = run.manifest.get("metrics", {})
            if plots:
                _plot(run.path, metrics.get("digital_accuracy"), window, loaded.name)
            clock_summary = run.manifest.get("clock", {})
            return {"run_dir": run.path, "rows": rows, "metrics": metrics, "clock": clock_summary}
        with torch.no_grad():
            was = net.training
            net.eval()
            digital_pred = net(x_test).argmax(dim=-1)  # (N,)
            net.train(was)
        digital_acc = float((digital_pred == y_test).float().mean())
        preds: list[int] = []
        lp_label: list[float] = []
        with running_chip(net, opts, setup, mapping, sched) as (am, clock):
            target = am.model if am is not net else net
            target.eval()
            session = PlasticSession(target, pcfg, targets, opts.seed) if pcfg else None
            plastic = session.attach() if session is not None else contextlib.nullcontext()
            with torch.no_grad(), plastic, clock.attach(target):
                for i in range(n):
                    j = int(order[i])
                    logits = am(x_test[j : j + 1])  # (1, C)
                    logp = torch.log_softmax(logits[0].double(), dim=-1)  # (C,)
                    preds.append(int(logits[0].argmax()))
                    lp_label.append(float(logp[int(y_test[j])]))
        labels = [int(y_test[int(j)]) for j in order]
        correct = [float(p == y) for p, y in zip(preds, labels, strict=True)]
        rolling = rolling_mean(correct, window)
        roles = clock.roles
        rows = stream_rows(
            clock.steps[:n],
            labels,
            preds,
            [int(digital_pred[int(j)]) for j in order],
            lp_label,
            rolling,
            roles,
        )
        columns = stream_columns(roles)
        if session is not None:
            for row, rec in zip(rows, session.records, strict=False):
                row.update(rec)
            columns = [*columns, *PLASTICITY_COLUMNS]
        write_csv(run.path / "trace.csv", rows, columns)
        write_csv(run.path / "events.csv", event_rows(clock.events), EVENT_COLUMNS)
        if plots:
            _plot(run.path, digital_acc, window, loaded.name)
            if session is not None:
                plot_plasticity(
                    run.path / "trace.csv", run.path, index="input_index", title=loaded.name
                )
        metrics = {
            "inputs": float(n),
            "accuracy": sum(correct) / n,
            "digital_accuracy": digital_acc,
            "first_window_accuracy": rolling[min(window, n) - 1],
            "last_window_accuracy": rolling[-1],
            "min_rolling_accuracy": min(rolling[min(window, n) - 1 :]),
            "state_updates": float(clock.n_updates),
        }
        if session is not None:
            metrics |= plasticity_metrics(session)
        run.write([{**point, "metric": k, "value": v} for k, v in metrics.items()])
        csum = clock.summary()
        run.note(
            clock=csum,
            metrics=metrics,
            **({"plasticity": session.summary()} if session is not None else {}),
        )
    return {"run_dir": run.path, "rows": rows, "metrics": metrics, "clock": csum}


def _order(n: int, n_test: int, shuffle: bool, seed: int) -> torch.Tensor:
    """Test-set index of each of the ``n`` inputs: in order (cycled), or seeded permutations."""
    if shuffle:
        gen = torch.Generator().manual_seed(derive_seed(seed, "stream-order"))
        order = torch.cat([torch.randperm(n_test, generator=gen) for _ in range(-(-n // n_test))])
    else:
        order = torch.arange(n).remainder(n_test)
    return order[:n]


def _plot(run_path: Path, digital_accuracy: float | None, window: int, title: str) -> list[Path]:
    """Draw the stream plots from ``trace.csv``, with the digital model's rolling accuracy
    on the same inputs."""
    rows = read_csv(run_path / "trace.csv")
    dig = [float(r["digital_prediction"] == r["label"]) for r in rows]
    return plot_stream_trace(
        run_path / "trace.csv",
        run_path,
        digital_accuracy=digital_accuracy,
        digital_rolling=rolling_mean(dig, window) if rows else None,
        title=title,
    )
