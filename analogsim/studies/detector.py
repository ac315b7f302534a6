r"""The degradation (cliff) detector of a clocked generation.

:func:`detect_cliff`: a one-sided CUSUM (Page, Biometrika 41, 1954) on the per-token gap
``x_k = logprob_k - digital_logprob_k``: ``S_k = max(0, S_{k-1} + x_k - k_ref)``, alarm at
the first ``k`` with ``S_k > h``; the change is placed at the token after the last ``S = 0``
before the alarm. Sampling luck affects both models alike (an unlikely sampled token is
unlikely for both), while a degraded chip makes tokens the digital model finds
implausible, so ``x`` rises. Defaults ``k_ref = 0.5`` nat per token and ``h = 5`` nats: a
healthy chip's gap stays well under half a nat, and five nats of accumulated excess is
e.g. ten tokens with the digital model e times less sure than the chip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["CUSUM_H_NATS", "CUSUM_K_NATS", "detect_cliff", "rolling_mean"]

CUSUM_K_NATS = 0.5
"""Reference value (allowance) of the CUSUM, nats per token."""
CUSUM_H_NATS = 5.0
"""Decision interval of the CUSUM, nats."""


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
