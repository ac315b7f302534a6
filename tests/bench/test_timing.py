"""Tests for analogsim.bench.timing: round-robin timing, median of each function."""

from __future__ import annotations

from analogsim.bench.timing import interleaved


def test_interleaved_calls_each_function_warmup_plus_rounds_times_in_turn() -> None:
    calls: list[str] = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    med = interleaved(fns, rounds=3, warmup=2)
    assert calls == ["a", "b"] * 5  # interleaved, never one function's rounds in a block
    assert set(med) == {"a", "b"} and all(t >= 0.0 for t in med.values())
