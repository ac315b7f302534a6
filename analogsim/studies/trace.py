r"""Per-step traces: the CSV files, the degradation (cliff) detector and the plots.

``trace.csv`` of ``analogsim generate`` has one row per generated token:

=========================  =================================================================
column                     meaning
=========================  =================================================================
``token_index``            k = 0, 1, ... (token k is computed with the chip at ``time_s``)
``time_s``                 deployment time, s since programming: ``start_age + k token_time``
``temperature_K``          temperature at ``time_s`` (the profile), K
``equivalent_age_s``       Arrhenius-equivalent age of the first device population, s at its
                           reference temperature (empty for a digital model)
``token``                  the generated token id
``token_text``             its text (empty without a tokenizer)
``logprob``                natural log-probability of the token under the simulated model
                           (softmax of the raw logits, temperature 1), nats
``entropy_bits``           entropy of the simulated model's next-token distribution, bits
``digital_logprob``        the digital model's log-probability of the same token, teacher
                           forced on the generated text after generation, nats
``digital_entropy_bits``   the digital model's next-token entropy at the same position, bits
``gap_nats``               ``logprob - digital_logprob``: how much more the chip believed in
                           the token than the digital model does
``sigma``                  statistical-noise sigma at this token (empty without a schedule)
``weight_error_<role>``    ``||W_eff - W|| / ||W||`` over the role's analog (or perturbed)
                           layers, computed at real state updates and carried between them
``faults_so_far``          failed devices (stuck at programming plus onsets), counted with
                           ``DeviceModel.fault_masks`` at the last update (empty: no faults)
``faults_expected``        expected failed devices at ``time_s`` (rates and onset hazard)
``updated``                1 when the device state was recomputed for this token
``update_reason``          ``first``, ``bound``, ``faults``, ``recalibration`` (``;``-joined)
=========================  =================================================================

Cliff detector (:func:`detect_cliff`): a one-sided CUSUM (Page, Biometrika 41, 1954) on
the per-token gap ``x_k = logprob_k - digital_logprob_k``:
``S_k = max(0, S_{k-1} + x_k - k_ref)``, alarm at the first ``k`` with ``S_k > h``; the
change is placed at the token after the last ``S = 0`` before the alarm. Sampling luck
affects both models alike (an unlikely sampled token is unlikely for both), while a
degraded chip makes tokens the digital model finds implausible, so ``x`` rises. Defaults
``k_ref = 0.5`` nat per token and ``h = 5`` nats: a healthy chip's gap stays well under
half a nat, and five nats of accumulated excess is e.g. ten tokens with the digital model
e times less sure than the chip.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "CUSUM_H_NATS",
    "CUSUM_K_NATS",
    "TRACE_BASE_COLUMNS",
    "detect_cliff",
    "plot_stream_trace",
    "plot_trace",
    "read_csv",
    "rolling_mean",
    "trace_columns",
    "write_csv",
]

CUSUM_K_NATS = 0.5
"""Reference value (allowance) of the CUSUM, nats per token."""
CUSUM_H_NATS = 5.0
"""Decision interval of the CUSUM, nats."""

TRACE_BASE_COLUMNS = [
    "token_index",
    "time_s",
    "temperature_K",
    "equivalent_age_s",
    "token",
    "token_text",
    "logprob",
    "entropy_bits",
    "digital_logprob",
    "digital_entropy_bits",
    "gap_nats",
    "sigma",
]
_TAIL_COLUMNS = ["faults_so_far", "faults_expected", "updated", "update_reason"]


def trace_columns(roles: Sequence[str]) -> list[str]:
    """Columns of a generation ``trace.csv`` with one weight-error column per role."""
    return [*TRACE_BASE_COLUMNS, *(f"weight_error_{r}" for r in roles), *_TAIL_COLUMNS]


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    return str(v)


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> Path:
    """Write ``rows`` (dicts) with ``columns`` in order; floats round-trip (``repr``)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for r in rows:
            w.writerow([_fmt(r.get(c)) for c in columns])
    tmp.replace(path)
    return path


def read_csv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a trace (or any) CSV as dicts of strings."""
    with Path(path).open(newline="") as fh:
        return list(csv.DictReader(fh))


def _num(x: Any) -> float:
    if x is None or x == "":
        return math.nan
    return float(x)


def rolling_mean(values: Sequence[float], window: int) -> list[float]:
    """Mean of the last ``window`` finite values at each index (fewer at the start)."""
    if window < 1:
        raise ValueError("window must be >= 1")
    out: list[float] = []
    buf: list[float] = []
    for v in values:
        buf.append(v)
        if len(buf) > window:
            buf.pop(0)
        finite = [b for b in buf if math.isfinite(b)]
        out.append(sum(finite) / len(finite) if finite else math.nan)
    return out


def detect_cliff(
    logprob: Sequence[float],
    digital_logprob: Sequence[float],
    *,
    k_ref: float = CUSUM_K_NATS,
    h: float = CUSUM_H_NATS,
    window: int = 16,
) -> dict[str, Any]:
    """One-sided CUSUM on ``x_k = logprob_k - digital_logprob_k`` (nats); see module doc.

    A non-finite gap (an overflowing model) adds ``2 h`` (it alarms at once).

    Returns:
        ``{"method", "k_ref_nats", "h_nats", "window", "alarm_index", "onset_index",
        "cusum", "gap", "rolling_gap"}``; ``alarm_index`` / ``onset_index`` are None when
        the CUSUM never exceeds ``h``.
    """
    if k_ref < 0 or h <= 0:
        raise ValueError("CUSUM needs k_ref >= 0 and h > 0")
    gap = [a - b for a, b in zip(logprob, digital_logprob, strict=True)]
    s = 0.0
    cusum: list[float] = []
    alarm = onset = None
    last_zero = -1
    for i, x in enumerate(gap):
        inc = x - k_ref if math.isfinite(x) else 2.0 * h
        s = max(0.0, s + inc)
        cusum.append(s)
        if s == 0.0:
            last_zero = i
        if alarm is None and s > h:
            alarm = i
            onset = last_zero + 1
    return {
        "method": "one-sided CUSUM on logprob - digital_logprob (Page 1954)",
        "k_ref_nats": k_ref,
        "h_nats": h,
        "window": window,
        "alarm_index": alarm,
        "onset_index": onset,
        "cusum": cusum,
        "gap": gap,
        "rolling_gap": rolling_mean(gap, window),
    }


# --------------------------------------------------------------------------------------
# plots (from the CSV rows, so they can be redrawn)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _time_unit(seconds: Sequence[float]) -> tuple[float, str]:
    span = max((s for s in seconds if math.isfinite(s)), default=1.0)
    for unit, name in ((365.25 * 86400, "years"), (86400.0, "days"), (3600.0, "hours")):
        if span >= 2 * unit:
            return unit, name
    if span >= 120:
        return 60.0, "minutes"
    return 1.0, "s"


def _mark_cliff(ax, cliff: dict[str, Any] | None, x: Sequence[float]) -> None:
    if not cliff or cliff.get("alarm_index") is None:
        return
    i = int(cliff["alarm_index"])
    if 0 <= i < len(x):
        ax.axvline(x[i], color="crimson", ls="--", lw=1.0, label="cliff alarm")
    j = cliff.get("onset_index")
    if j is not None and 0 <= int(j) < len(x) and int(j) != i:
        ax.axvline(x[int(j)], color="crimson", ls=":", lw=1.0, label="estimated onset")


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
    ``cliff`` defaults to :func:`detect_cliff` on the trace.
    """
    plt = _plt()
    rows = read_csv(trace_csv)
    out = Path(out_dir)
    x = [int(r["token_index"]) for r in rows]
    t = [_num(r["time_s"]) for r in rows]
    temp = [_num(r["temperature_K"]) for r in rows]
    lp = [_num(r["logprob"]) for r in rows]
    dlp = [_num(r["digital_logprob"]) for r in rows]
    if cliff is None and rows:
        cliff = detect_cliff(lp, dlp)
    upd = [i for i, r in zip(x, rows, strict=True) if r.get("updated") == "1"]
    paths = []
    head = f"{title}: " if title else ""

    # 1. temperature and time
    fig, ax = plt.subplots(figsize=(8, 4))
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
    fig.tight_layout()
    paths.append(_save(fig, out / "temperature_time.png", plt))

    # 2. logprob analog vs digital
    fig, ax = plt.subplots(figsize=(8, 4))
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
    fig.tight_layout()
    paths.append(_save(fig, out / "logprob.png", plt))

    # 3. entropy
    fig, ax = plt.subplots(figsize=(8, 4))
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
    fig.tight_layout()
    paths.append(_save(fig, out / "entropy.png", plt))

    # 4. weight error
    fig, ax = plt.subplots(figsize=(8, 4))
    roles = [
        c[len("weight_error_") :]
        for c in (rows[0] if rows else {})
        if c.startswith("weight_error_")
    ]
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
    fig.tight_layout()
    paths.append(_save(fig, out / "weight_error.png", plt))
    return paths


def plot_stream_trace(
    trace_csv: str | Path,
    out_dir: str | Path,
    *,
    digital_accuracy: float | None = None,
    window: int | None = None,
    title: str = "",
) -> list[Path]:
    """Draw ``accuracy_vs_time.png`` (rolling accuracy against deployment time, with the
    digital model's rolling accuracy on the same inputs when ``window`` is given, and the
    temperature) and ``weight_error.png`` from a stream ``trace.csv``."""
    plt = _plt()
    rows = read_csv(trace_csv)
    out = Path(out_dir)
    t = [_num(r["time_s"]) for r in rows]
    unit, uname = _time_unit(t)
    tx = [v / unit for v in t]
    head = f"{title}: " if title else ""
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(tx, [_num(r["rolling_accuracy"]) for r in rows], color="tab:orange", label="analog")
    if window is not None and rows:
        dig = [float(r["digital_prediction"] == r["label"]) for r in rows]
        ax.plot(
            tx, rolling_mean(dig, window), color="tab:green", lw=1, label="digital, same inputs"
        )
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
    fig.tight_layout()
    paths = [_save(fig, out / "accuracy_vs_time.png", plt)]
    roles = [
        c[len("weight_error_") :]
        for c in (rows[0] if rows else {})
        if c.startswith("weight_error_")
    ]
    if roles:
        fig, ax = plt.subplots(figsize=(8, 4))
        for role in roles:
            ax.plot(tx, [_num(r[f"weight_error_{role}"]) for r in rows], label=role)
        ax.set_xlabel(f"time since programming ({uname})")
        ax.set_ylabel("||W_eff - W|| / ||W||")
        ax.set_title(head + "relative weight error per role")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        paths.append(_save(fig, out / "weight_error.png", plt))
    return paths


def _save(fig, path: Path, plt) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
