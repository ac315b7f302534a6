r"""Per-step traces of the clocked studies: the columns and rows of ``trace.csv`` and
``events.csv`` (written with :func:`analogsim.report.rundir.write_csv`; the cliff detector
is :mod:`analogsim.studies.detector`, the plots :mod:`analogsim.report.trace_plots`).

``trace.csv`` of ``analogsim generate`` has one row per generated token:

=========================  =================================================================
column                     meaning
=========================  =================================================================
``token_index``            k = 0, 1, ... (token k is computed with the chip at ``time_s``)
``time_s``                 deployment time, s since programming: ``start_age + k token_time``
``temperature_K``          temperature at ``time_s`` (the profile), K
``equivalent_age_s``       drift age of the first device population (docs/physics.md §4), s at its
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

``trace.csv`` of ``analogsim stream`` has one row per input:

``input_index, time_s, temperature_K, equivalent_age_s, label, prediction, correct,
digital_prediction, logprob_label, rolling_accuracy, sigma, weight_error_<role>...,
faults_so_far, faults_expected, updated, update_reason``

``rolling_accuracy`` is the fraction correct over the last ``window`` inputs (fewer at
the start).

``events.csv`` (both): ``time_s, kind, detail``, one row per clock event.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from analogsim.clock.hook import GenerationResult
from analogsim.clock.records import ClockEvent, StepState

__all__ = [
    "EVENT_COLUMNS",
    "STREAM_BASE_COLUMNS",
    "TRACE_BASE_COLUMNS",
    "event_rows",
    "stream_columns",
    "stream_rows",
    "trace_columns",
    "trace_rows",
]

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
_TAIL_COLUMNS = ["faults_so_far", "faults_expected", "updated", "update_reason"]
EVENT_COLUMNS = ["time_s", "kind", "detail"]


def trace_columns(roles: Sequence[str]) -> list[str]:
    """Columns of a generation ``trace.csv`` with one weight-error column per role."""
    return [*TRACE_BASE_COLUMNS, *(f"weight_error_{r}" for r in roles), *_TAIL_COLUMNS]


def stream_columns(roles: Sequence[str]) -> list[str]:
    """Columns of a stream ``trace.csv``."""
    return [*STREAM_BASE_COLUMNS, *(f"weight_error_{r}" for r in roles), *_TAIL_COLUMNS]


def _equivalent_age(s: StepState) -> float | None:
    return next(iter(s.equivalent_s.values())) if s.equivalent_s else None


def trace_rows(
    result: GenerationResult,
    digital: tuple[list[float], list[float]] | None,
    roles: Sequence[str],
    tokenizer: Any = None,
) -> list[dict[str, Any]]:
    """One dict per generated token with the columns of :func:`trace_columns`;
    ``digital`` is :func:`analogsim.clock.hook.digital_scores` of the text (None: NaN)."""
    rows = []
    dlp, dent = digital if digital is not None else ([math.nan] * len(result.tokens),) * 2
    for k, tok in enumerate(result.tokens):
        s = result.steps[k]
        text = ""
        if tokenizer is not None:
            text = tokenizer.decode([tok])
        row = {
            "token_index": k,
            "time_s": s.time_s,
            "temperature_K": s.temperature_K,
            "equivalent_age_s": _equivalent_age(s),
            "token": tok,
            "token_text": text,
            "logprob": result.logprobs[k],
            "entropy_bits": result.entropies[k],
            "digital_logprob": dlp[k],
            "digital_entropy_bits": dent[k],
            "gap_nats": result.logprobs[k] - dlp[k],
            **s.trace_fields(roles),
        }
        rows.append(row)
    return rows


def stream_rows(
    steps: Sequence[StepState],
    labels: Sequence[int],
    predictions: Sequence[int],
    digital_predictions: Sequence[int],
    logprob_label: Sequence[float],
    rolling_accuracy: Sequence[float],
    roles: Sequence[str],
) -> list[dict[str, Any]]:
    """One dict per input (``steps[i]`` the clock's state at input ``i``) with the columns
    of :func:`stream_columns`."""
    rows = []
    for i, s in enumerate(steps):
        row = {
            "input_index": i,
            "time_s": s.time_s,
            "temperature_K": s.temperature_K,
            "equivalent_age_s": _equivalent_age(s),
            "label": labels[i],
            "prediction": predictions[i],
            "correct": int(predictions[i] == labels[i]),
            "digital_prediction": digital_predictions[i],
            "logprob_label": logprob_label[i],
            "rolling_accuracy": rolling_accuracy[i],
            **s.trace_fields(roles),
        }
        rows.append(row)
    return rows


def event_rows(events: Sequence[ClockEvent]) -> list[dict[str, Any]]:
    """The rows of ``events.csv`` (:data:`EVENT_COLUMNS`)."""
    return [{"time_s": e.time_s, "kind": e.kind, "detail": e.detail} for e in events]
