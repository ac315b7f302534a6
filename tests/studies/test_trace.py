"""Tests of the trace format (``analogsim/studies/trace.py``): columns and rows of the
``trace.csv`` of generate and stream, and of ``events.csv``."""

from __future__ import annotations

import math

import pytest
import torch

from analogsim.clock.hook import GenerationResult
from analogsim.clock.records import ClockEvent, StepState
from analogsim.report.rundir import read_csv, write_csv
from analogsim.studies.trace import (
    EVENT_COLUMNS,
    STREAM_BASE_COLUMNS,
    TRACE_BASE_COLUMNS,
    event_rows,
    stream_columns,
    stream_rows,
    trace_columns,
    trace_rows,
)

ROLES = ["attention", "mlp"]


def _step(k: int, *, updated: bool = False) -> StepState:
    return StepState(
        index=k,
        time_s=3600.0 * (k + 1),
        temperature_K=300.0 + k,
        equivalent_s={(300.0, 0.6): 7200.0 * (k + 1)},
        updated=updated,
        reasons=("first",) if updated else (),
        sigma=None,
        weight_error={"attention": 0.01 * k, "mlp": 0.02 * k},
        faults=None,
        faults_expected=None,
        updates_so_far=1,
    )


class _Tok:
    def decode(self, ids):
        return "".join(chr(ord("a") + i) for i in ids)


def test_columns():
    cols = trace_columns(ROLES)
    assert cols[: len(TRACE_BASE_COLUMNS)] == TRACE_BASE_COLUMNS
    assert cols[len(TRACE_BASE_COLUMNS) :] == [
        "weight_error_attention",
        "weight_error_mlp",
        "faults_so_far",
        "faults_expected",
        "updated",
        "update_reason",
    ]
    assert stream_columns(ROLES)[: len(STREAM_BASE_COLUMNS)] == STREAM_BASE_COLUMNS
    assert stream_columns(ROLES)[len(STREAM_BASE_COLUMNS) :] == cols[len(TRACE_BASE_COLUMNS) :]
    assert EVENT_COLUMNS == ["time_s", "kind", "detail"]


def test_trace_rows_from_a_generation():
    res = GenerationResult(
        ids=torch.tensor([[9, 1, 2]]),
        prompt_len=1,
        tokens=[1, 2],
        logprobs=[-0.5, -1.0],
        entropies=[1.0, 2.0],
        steps=[_step(0, updated=True), _step(1)],
        seconds=0.1,
    )
    rows = trace_rows(res, ([-0.25, -3.0], [0.5, 0.75]), ROLES, _Tok())
    assert all(set(r) == set(trace_columns(ROLES)) for r in rows)
    assert rows[0]["token_text"] == "b" and rows[1]["token"] == 2
    assert [r["gap_nats"] for r in rows] == [-0.25, 2.0]
    assert rows[1]["equivalent_age_s"] == 14400.0
    assert rows[0]["updated"] is True and rows[0]["update_reason"] == "first"
    assert rows[1]["weight_error_mlp"] == pytest.approx(0.02)
    # without digital scores or tokenizer: NaN and empty text
    bare = trace_rows(res, None, ROLES)
    assert math.isnan(bare[0]["digital_logprob"]) and bare[0]["token_text"] == ""


def test_stream_rows_and_events_round_trip_through_csv(tmp_path):
    rows = stream_rows(
        [_step(0), _step(1)], [1, 0], [1, 2], [1, 0], [-0.1, -2.0], [1.0, 0.5], ROLES
    )
    assert [r["correct"] for r in rows] == [1, 0]
    assert all(set(r) == set(stream_columns(ROLES)) for r in rows)
    write_csv(tmp_path / "trace.csv", rows, stream_columns(ROLES))
    back = read_csv(tmp_path / "trace.csv")
    assert back[1]["rolling_accuracy"] == "0.5" and back[0]["updated"] == "0"
    assert back[0]["sigma"] == "" and float(back[1]["logprob_label"]) == -2.0
    events = event_rows([ClockEvent(1.0, "update", "first"), ClockEvent(2.5, "recalibration")])
    write_csv(tmp_path / "events.csv", events, EVENT_COLUMNS)
    assert read_csv(tmp_path / "events.csv") == [
        {"time_s": "1.0", "kind": "update", "detail": "first"},
        {"time_s": "2.5", "kind": "recalibration", "detail": ""},
    ]
