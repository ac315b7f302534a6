"""Benchmark helpers that can break silently (their output is only read by people)."""

import math

from analogsim.bench.run import peak_memory_rows


def test_peak_memory_rows_measure_a_fresh_process() -> None:
    """The peak-RSS row comes from fresh subprocesses (VmHWM, not an inherited ru_maxrss)."""
    (row,) = peak_memory_rows(1, 64)
    assert "subprocess failed" not in row["note"], row["note"]
    assert math.isfinite(row["ratio"])
    # a converted model holds at least its effective weights on top of the digital ones
    assert row["ratio"] > 0.5, row
    digital_mib = float(row["note"].split(" MiB digital")[0].rsplit(" ", 1)[1])
    # a 1x64 GPT-2 process is a few hundred MiB; a parent's peak would be far larger
    assert digital_mib < 2000, row["note"]
