r"""A classifier over a stream of inputs while the chip ages: accuracy over deployment time.

Input ``i`` of the stream is classified with the chip at
``start_age + i * input_time`` (one forward per input; the clock advances through the same
forward pre-hook as generation). The inputs are the model's test set in order (cycled when
more inputs are asked for than it has, or permuted with ``shuffle``). ``trace.csv`` has one
row per input:

``input_index, time_s, temperature_K, equivalent_age_s, label, prediction, correct,
digital_prediction, logprob_label, rolling_accuracy, sigma, weight_error_<role>...,
faults_so_far, faults_expected, updated, update_reason``

``rolling_accuracy`` is the fraction correct over the last ``window`` inputs (fewer at
the start). The digital model's prediction of each input is computed before conversion.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from analogsim.clock.core import DEFAULT_TOLERANCE
from analogsim.clock.profile_spec import parse_profile
from analogsim.clock.profiles import Profile
from analogsim.clock.schedules import Schedule, parse_schedule
from analogsim.devices.rng import derive_seed
from analogsim.errors import ConfigError
from analogsim.studies.generate import (
    RESULT_COLUMNS,
    RESULT_KEYS,
    build_clock,
    build_model,
    parse_fault_rates,
)
from analogsim.studies.trace import plot_stream_trace, rolling_mean, write_csv

__all__ = ["STREAM_BASE_COLUMNS", "run_stream", "stream_columns"]

STREAM_BASE_COLUMNS = [
    "input_index",
    "time_s",
    "temperature_K",
    "equivalent_age_s",
    "label",
    "prediction",
    "correct",
    "digital_prediction",
    "logprob_label",
    "rolling_accuracy",
    "sigma",
]


def stream_columns(roles: Sequence[str]) -> list[str]:
    """Columns of a stream ``trace.csv``."""
    return [
        *STREAM_BASE_COLUMNS,
        *(f"weight_error_{r}" for r in roles),
        "faults_so_far",
        "faults_expected",
        "updated",
        "update_reason",
    ]


def run_stream(
    model: Any = "digits-mlp",
    *,
    input_time: float | str = 60.0,
    start_age: float | str = 0.0,
    temperature: str | Profile = "300K",
    mapping: Any = None,
    device: str | None = None,
    fault_rate: str | dict[str, Any] | None = None,
    device_overrides: dict[str, Any] | None = None,
    seed: int = 0,
    inputs: int | None = None,
    shuffle: bool = False,
    window: int = 50,
    tolerance: float = DEFAULT_TOLERANCE,
    recalibrate_every: float | str | None = None,
    time_cache: bool = True,
    noise: str | None = None,
    schedule: str | Schedule | None = None,
    relative: bool = False,
    noise_roles: Sequence[str] | None = None,
    out: str | Path | None = None,
    plots: bool = True,
) -> dict[str, Any]:
    """Classify a stream of test inputs on an aging chip; write a run directory.

    Args:
        model: a classifier name (``digits-mlp``) or a ``LoadedModel`` whose ``data`` has
            ``x_test`` and ``y_test``.
        input_time: simulated time per input, s or ``"1h"`` (> 0).
        start_age: deployment age at the first input.
        temperature: temperature profile over deployment time.
        mapping, device, fault_rate, device_overrides, tolerance, recalibrate_every,
        time_cache: as
            for :func:`analogsim.studies.generate.run_generate`.
        seed: programs the chip (and the shuffle and noise draws).
        inputs: stream length (default: the test set once).
        shuffle: permute the test set (seeded) instead of its order.
        window: rolling-accuracy window, inputs (>= 1).
        noise, schedule, relative, noise_roles: statistical weight noise on a schedule over
            the input index.
        out: run directory (default ``runs/<timestamp>-stream``).

    Returns:
        ``{"run_dir", "rows", "metrics", "clock"}``.
    """
    from analogsim.models import LoadedModel, load_model
    from analogsim.report.rundir import RunDir
    from analogsim.units import parse_time

    step = parse_time(input_time, key="input_time")
    if step <= 0:
        raise ConfigError("must be > 0", key="input_time", value=input_time)
    age = parse_time(start_age, key="start_age")
    profile = parse_profile(temperature) if isinstance(temperature, str) else temperature
    recal = (
        None
        if recalibrate_every is None
        else parse_time(recalibrate_every, key="recalibrate_every")
    )
    if not isinstance(window, int) or window < 1:
        raise ConfigError("must be an integer >= 1", key="window", value=window)
    if inputs is not None and (not isinstance(inputs, int) or inputs < 1):
        raise ConfigError("must be an integer >= 1", key="inputs", value=inputs)
    if (noise is None) != (schedule is None):
        raise ConfigError(
            "statistical noise needs both a distribution and a schedule",
            key="noise" if noise is None else "schedule",
            allowed="--noise gaussian --schedule linear:0:0.02 (or neither)",
        )
    overrides = {**parse_fault_rates(fault_rate), **(device_overrides or {})}
    if recal is not None and mapping is None and device is None:
        raise ConfigError(
            "recalibration needs an analog mapping",
            key="recalibrate_every",
            allowed="add --mapping (or --device), or drop --recalibrate-every",
        )
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
    if shuffle:
        gen = torch.Generator().manual_seed(derive_seed(seed, "stream-order"))
        order = torch.cat([torch.randperm(n_test, generator=gen) for _ in range(-(-n // n_test))])
    else:
        order = torch.arange(n).remainder(n_test)
    order = order[:n]
    sched = None
    if schedule is not None:
        from analogsim.devices.noise import get_noise

        get_noise(noise)
        sched = parse_schedule(schedule, n) if isinstance(schedule, str) else schedule

    mapping_name = "digital"
    cards: dict[str, Any] = {}
    if mapping is not None or device is not None:
        from analogsim.mapping.rules import load_mapping
        from analogsim.mapping.rules import cards_of

        m = load_mapping(mapping if mapping is not None else "all_analog")
        mapping_name, cards, mapping = m.name, cards_of(m, device), m
    config = {
        "model": loaded.name,
        "mapping": mapping_name,
        "device": device,
        "device_overrides": overrides,
        "input_time_s": step,
        "start_age_s": age,
        "temperature": _spec(profile),
        "seed": seed,
        "inputs": n,
        "shuffle": shuffle,
        "window": window,
        "tolerance": tolerance,
        "recalibrate_every_s": recal,
        "noise": noise,
        "schedule": sched.spec() if sched is not None else None,
        "relative": relative,
        "noise_roles": list(noise_roles) if noise_roles else None,
    }
    point = {"model": loaded.name, "mapping": mapping_name, "device": device or "", "seed": seed}
    net = loaded.model
    with RunDir(out, "stream", config, RESULT_COLUMNS, RESULT_KEYS, cards=cards) as run:
        if run.done(**point, metric="inputs") and (run.path / "trace.csv").exists():
            from analogsim.studies.trace import read_csv

            rows = read_csv(run.path / "trace.csv")
            metrics = run.manifest.get("metrics", {})
            if plots:
                plot_stream_trace(
                    run.path / "trace.csv",
                    run.path,
                    digital_accuracy=metrics.get("digital_accuracy"),
                    window=window,
                    title=loaded.name,
                )
            clock_summary = run.manifest.get("clock", {})
            return {"run_dir": run.path, "rows": rows, "metrics": metrics, "clock": clock_summary}
        with torch.no_grad():
            was = net.training
            net.eval()
            digital_pred = net(x_test).argmax(dim=-1)  # (N,)
            net.train(was)
        digital_acc = float((digital_pred == y_test).float().mean())
        am = build_model(net, mapping, device, overrides, seed)
        clock = None
        preds: list[int] = []
        lp_label: list[float] = []
        try:
            clock = build_clock(
                am,
                net,
                step,
                age,
                profile,
                schedule=sched,
                noise=noise,
                seed=seed,
                relative=relative,
                roles=noise_roles,
                tolerance=tolerance,
                recalibrate_every_s=recal,
                time_cache=time_cache,
            )
            target = am.model if am is not net else net
            target.eval()
            with torch.no_grad(), clock.attach(target):
                for i in range(n):
                    j = int(order[i])
                    logits = am(x_test[j : j + 1])  # (1, C)
                    logp = torch.log_softmax(logits[0].double(), dim=-1)  # (C,)
                    preds.append(int(logits[0].argmax()))
                    lp_label.append(float(logp[int(y_test[j])]))
        finally:
            if clock is not None:
                clock.close()
            if am is not net:
                am.restore()
        if clock.noise is not None:
            clock.noise.check_restored()
        labels = [int(y_test[int(j)]) for j in order]
        correct = [float(p == y) for p, y in zip(preds, labels, strict=True)]
        rolling = rolling_mean(correct, window)
        roles = clock.roles
        rows = []
        for i, s in enumerate(clock.steps[:n]):
            row = {
                "input_index": i,
                "time_s": s.time_s,
                "temperature_K": s.temperature_K,
                "equivalent_age_s": next(iter(s.equivalent_s.values())) if s.equivalent_s else None,
                "label": labels[i],
                "prediction": preds[i],
                "correct": int(correct[i]),
                "digital_prediction": int(digital_pred[int(order[i])]),
                "logprob_label": lp_label[i],
                "rolling_accuracy": rolling[i],
                **s.trace_fields(roles),
            }
            rows.append(row)
        write_csv(run.path / "trace.csv", rows, stream_columns(roles))
        write_csv(
            run.path / "events.csv",
            [{"time_s": e.time_s, "kind": e.kind, "detail": e.detail} for e in clock.events],
            ["time_s", "kind", "detail"],
        )
        if plots:
            plot_stream_trace(
                run.path / "trace.csv",
                run.path,
                digital_accuracy=digital_acc,
                window=window,
                title=loaded.name,
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
        run.write([{**point, "metric": k, "value": v} for k, v in metrics.items()])
        csum = clock.summary()
        run.note(clock=csum, metrics=metrics)
    return {"run_dir": run.path, "rows": rows, "metrics": metrics, "clock": csum}


def _spec(p: Profile) -> str:
    try:
        return p.spec()
    except ValueError:
        return repr(p)
