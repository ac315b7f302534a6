"""Plots of a clocked run's ``trace.csv`` (drawn from the file, so they can be redrawn).

Drawing only: the cliff of a generation (:func:`analogsim.studies.detector.detect_cliff`)
and the digital model's rolling accuracy of a stream are computed by the study and
passed in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analogsim.report.figure import new_figure, save_figure
from analogsim.report.rundir import read_csv

__all__ = ["plot_stream_trace", "plot_trace"]

_DPI = 110


def _num(x: Any) -> float:
    if x is None or x == "":
        return math.nan
    return float(x)


def _time_unit(seconds: Sequence[float]) -> tuple[float, str]:
    span = max((s for s in seconds if math.isfinite(s)), default=1.0)
    for unit, name in ((365.25 * 86400, "years"), (86400.0, "days"), (3600.0, "hours")):
        if span >= 2 * unit:
            return unit, name
    if span >= 120:
        return 60.0, "minutes"
    return 1.0, "s"


def _mark_cliff(ax: Any, cliff: dict[str, Any] | None, x: Sequence[float]) -> None:
    if not cliff or cliff.get("alarm_index") is None:
        return
    i = int(cliff["alarm_index"])
    if 0 <= i < len(x):
        ax.axvline(x[i], color="crimson", ls="--", lw=1.0, label="cliff alarm")
    j = cliff.get("onset_index")
    if j is not None and 0 <= int(j) < len(x) and int(j) != i:
        ax.axvline(x[int(j)], color="crimson", ls=":", lw=1.0, label="estimated onset")


def _roles(rows: Sequence[dict[str, str]]) -> list[str]:
    return [
        c[len("weight_error_") :]
        for c in (rows[0] if rows else {})
        if c.startswith("weight_error_")
    ]


def plot_trace(
    trace_csv: str | Path,
    out_dir: str | Path,
    *,
    cliff: dict[str, Any] | None = None,
    title: str = "",
) -> list[Path]:
    """Draw the four generation plots from ``trace.csv`` into ``out_dir``.

    ``temperature_time.png`` (temperature and deployment time against token index, state
    updates marked), ``logprob.png`` (analog vs digital log-probability of the generated
    tokens, rolling gap, cliff), ``entropy.png`` (next-token entropy, analog and digital),
    ``weight_error.png`` (relative weight error per role; sigma and faults when present).
    ``cliff`` is the detector's result on the trace (its rolling gap and alarm are drawn);
    None draws neither.
    """
    rows = read_csv(trace_csv)
    out = Path(out_dir)
    x = [int(r["token_index"]) for r in rows]
    t = [_num(r["time_s"]) for r in rows]
    temp = [_num(r["temperature_K"]) for r in rows]
    lp = [_num(r["logprob"]) for r in rows]
    dlp = [_num(r["digital_logprob"]) for r in rows]
    upd = [i for i, r in zip(x, rows, strict=True) if r.get("updated") == "1"]
    paths = []
    head = f"{title}: " if title else ""

    # 1. temperature and time
    fig, ax = new_figure((8, 4))
    ax.plot(x, temp, color="tab:red", label="temperature")
    ax.set_xlabel("token index")
    ax.set_ylabel("temperature (K)", color="tab:red")
    if upd:
        lo = min(temp) if temp else 0
        ax.plot(upd, [lo] * len(upd), "|", color="grey", ms=8, label="state update")
    ax2 = ax.twinx()
    unit, uname = _time_unit(t)
    ax2.plot(x, [v / unit for v in t], color="tab:blue", label="time since programming")
    ax2.set_ylabel(f"time since programming ({uname})", color="tab:blue")
    _mark_cliff(ax, cliff, x)
    ax.set_title(head + "temperature and deployment time per token")
    ax.legend(loc="upper left", fontsize=8)
    paths.append(save_figure(fig, out / "temperature_time.png", dpi=_DPI))

    # 2. logprob analog vs digital
    fig, ax = new_figure((8, 4))
    ax.plot(x, lp, ".", ms=3, color="tab:orange", alpha=0.6, label="analog (chip)")
    ax.plot(x, dlp, ".", ms=3, color="tab:green", alpha=0.6, label="digital, same token")
    if cliff:
        ax.plot(
            x, cliff["rolling_gap"], color="black", lw=1.2, label="rolling gap (analog-digital)"
        )
    _mark_cliff(ax, cliff, x)
    ax.set_xlabel("token index")
    ax.set_ylabel("log-probability of the generated token (nats)")
    ax.set_title(head + "log-probability, analog vs digital")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    paths.append(save_figure(fig, out / "logprob.png", dpi=_DPI))

    # 3. entropy
    fig, ax = new_figure((8, 4))
    ax.plot(x, [_num(r["entropy_bits"]) for r in rows], color="tab:orange", label="analog")
    if rows and "digital_entropy_bits" in rows[0]:
        ax.plot(
            x, [_num(r["digital_entropy_bits"]) for r in rows], color="tab:green", label="digital"
        )
    _mark_cliff(ax, cliff, x)
    ax.set_xlabel("token index")
    ax.set_ylabel("next-token entropy (bits)")
    ax.set_title(head + "next-token entropy")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    paths.append(save_figure(fig, out / "entropy.png", dpi=_DPI))

    # 4. weight error
    fig, ax = new_figure((8, 4))
    roles = _roles(rows)
    for role in roles:
        ax.plot(x, [_num(r[f"weight_error_{role}"]) for r in rows], label=role)
    ax.set_xlabel("token index")
    ax.set_ylabel("||W_eff - W|| / ||W||")
    has_sigma = rows and any(r.get("sigma") not in ("", None) for r in rows)
    has_faults = rows and any(r.get("faults_so_far") not in ("", None) for r in rows)
    if has_sigma or has_faults:
        ax2 = ax.twinx()
        if has_sigma:
            ax2.plot(x, [_num(r["sigma"]) for r in rows], "k--", lw=1, label="sigma")
            ax2.set_ylabel("sigma")
        else:
            ax2.plot(x, [_num(r["faults_so_far"]) for r in rows], "k--", lw=1, label="faults")
            ax2.set_ylabel("failed devices")
        ax2.legend(loc="lower right", fontsize=8)
    _mark_cliff(ax, cliff, x)
    ax.set_title(head + "relative weight error per role")
    if roles:
        ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    paths.append(save_figure(fig, out / "weight_error.png", dpi=_DPI))
    return paths


def plot_stream_trace(
    trace_csv: str | Path,
    out_dir: str | Path,
    *,
    digital_accuracy: float | None = None,
    digital_rolling: Sequence[float] | None = None,
    title: str = "",
) -> list[Path]:
    """Draw ``accuracy_vs_time.png`` (rolling accuracy against deployment time, the
    digital model's rolling accuracy on the same inputs when ``digital_rolling`` is given
    (one value per row), its whole-set accuracy, and the temperature) and
    ``weight_error.png`` from a stream ``trace.csv``."""
    rows = read_csv(trace_csv)
    out = Path(out_dir)
    t = [_num(r["time_s"]) for r in rows]
    unit, uname = _time_unit(t)
    tx = [v / unit for v in t]
    head = f"{title}: " if title else ""
    fig, ax = new_figure((8, 4))
    ax.plot(tx, [_num(r["rolling_accuracy"]) for r in rows], color="tab:orange", label="analog")
    if digital_rolling is not None and rows:
        ax.plot(tx, digital_rolling, color="tab:green", lw=1, label="digital, same inputs")
    if digital_accuracy is not None:
        ax.axhline(digital_accuracy, color="tab:green", ls="--", label="digital (whole set)")
    ax.set_xlabel(f"time since programming ({uname})")
    ax.set_ylabel("rolling accuracy")
    ax2 = ax.twinx()
    ax2.plot(tx, [_num(r["temperature_K"]) for r in rows], color="tab:red", lw=0.8, alpha=0.6)
    ax2.set_ylabel("temperature (K)", color="tab:red")
    ax.set_title(head + "accuracy over deployment time")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    paths = [save_figure(fig, out / "accuracy_vs_time.png", dpi=_DPI)]
    roles = _roles(rows)
    if roles:
        fig, ax = new_figure((8, 4))
        for role in roles:
            ax.plot(tx, [_num(r[f"weight_error_{role}"]) for r in rows], label=role)
        ax.set_xlabel(f"time since programming ({uname})")
        ax.set_ylabel("||W_eff - W|| / ||W||")
        ax.set_title(head + "relative weight error per role")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        paths.append(save_figure(fig, out / "weight_error.png", dpi=_DPI))
    return paths
