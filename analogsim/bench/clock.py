"""Generation benchmark: tokens per second with the event clock against plain ``generate``.

Both run on the SAME converted model (``all_analog`` on PCM, the Rasch 2023 IO preset),
greedy, the same prompt and the same number of new tokens, interleaved round by round
(a busy machine slows both alike). Plain ``generate`` runs on the chip held at the start
age (state set once, untimed); the clocked run is :func:`generate_with_clock` exactly as
``analogsim generate`` uses it (forward pre-hook, token recorder, skipping, weight error
at every update), minus the streamer, the digital teacher-forced pass and file writing.
The clock's start (putting the chip at its start age: one state update, the same work
plain ``generate`` was given for free) is timed apart and reported in its own row.

Regimes:

* ``realistic``: 1 s per token at ages 1 h and 1 y, 300 K (target: at least 0.9x the
  tokens/s of plain generate);
* ``extreme``: 1 day per token from 1 h, so every token changes the state: the ratio, and
  the state updates and extra passes over the analog weights per token (at most 32 tokens
  and 3 rounds: every token pays a full update).

Rows are in the format of :mod:`analogsim.bench`: ``case, regime, engine, median_ms,
digital_ms, ratio, note`` where ``median_ms`` is the clocked time per token,
``digital_ms`` plain ``generate``'s time per token on the same converted model, and
``ratio`` the median over rounds of the paired quotient (time ratio; the tokens/s ratio
is its inverse, in the note). The order of the two runs alternates round by round.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from rich.table import Table
from transformers import GPT2Config, GPT2LMHeadModel

from analogsim.clock.core import Clock
from analogsim.clock.hook import generate_with_clock, generation_config
from analogsim.mapping.convert import convert
from analogsim.metrics._util import context_length
from analogsim.models.tiny_gpt2 import DEFAULT_RECIPE, cached_build_is_valid, load_tiny_gpt2
from analogsim.paths import cache_dir
from analogsim.units import format_time

__all__ = ["bench_model", "run_generation_bench"]

YEAR = 365.25 * 86400.0


def bench_model() -> tuple[Any, str]:
    """``tiny-gpt2`` if it is cached, else a random GPT-2 of the same size (no build)."""
    try:
        if cached_build_is_valid(cache_dir() / "tiny-gpt2", DEFAULT_RECIPE):
            return load_tiny_gpt2(progress=False).model.eval(), "tiny-gpt2"
    except Exception:  # a damaged or stale cache: fall back to a random model
        pass
    r = DEFAULT_RECIPE
    cfg = GPT2Config(
        vocab_size=r.vocab_size,
        n_positions=r.n_positions,
        n_embd=r.n_embd,
        n_layer=r.n_layer,
        n_head=r.n_head,
        bos_token_id=0,
        eos_token_id=0,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = GPT2LMHeadModel(cfg).eval()
    return model, "random GPT-2 (tiny-gpt2 size)"


def run_generation_bench(
    *,
    quick: bool = False,
    tokens: int | None = None,
    rounds: int | None = None,
    model: torch.nn.Module | None = None,
    name: str | None = None,
    threads: int | None = None,
    console: Any = None,
    ages: tuple[float, ...] = (3600.0, YEAR),
    extreme_tokens: int = 32,
    extreme_rounds: int = 3,
) -> list[dict[str, Any]]:
    """Measure clocked generation against plain ``generate``; return bench rows.

    Args:
        quick: fewer tokens and rounds (a smoke run).
        tokens: new tokens per run (default 200, quick 48).
        rounds: timed rounds per case (default 5, quick 2), after one warm-up round.
        model: a causal LM to use instead of :func:`bench_model`.
        name: its name in the rows.
        threads: torch intra-op threads for the measurement (restored after); None keeps
            the current setting. On a small shared machine 1 thread avoids OpenMP
            spin-wait contention that makes every time (plain and clocked) noisy.
        console: a rich console to print a table to.
        ages: start ages of the realistic (1 s/token) cases.
        extreme_tokens, extreme_rounds: at most so many tokens and rounds in the extreme
            (1 d/token) case, where every token pays a full state update.
    """
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        return _bench(
            quick, tokens, rounds, model, name, console, ages, extreme_tokens, extreme_rounds
        )
    finally:
        torch.set_num_threads(before)


def _bench(
    quick, tokens, rounds, model, name, console, ages, extreme_tokens, extreme_rounds
) -> list[dict[str, Any]]:
    if model is None:
        model, name = bench_model()
    name = name or type(model).__name__
    n = tokens or (48 if quick else 200)
    ctx = context_length(model)
    n = min(n, ctx - 8)
    reps = rounds or (2 if quick else 5)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, model.config.vocab_size, (1, 8), generator=g)
    am = convert(model, "all_analog", device="pcm").program(0)
    hf = am.model
    cases = [("realistic", 1.0, a, f"1 s/token, age {format_time(a)}") for a in ages]
    cases.append(("extreme", 86400.0, 3600.0, "1 d/token from age 1 h"))
    rows: list[dict[str, Any]] = []
    threads = torch.get_num_threads()
    for regime, step, age, label in cases:
        # every extreme token pays a full state update: fewer tokens and rounds suffice
        n_case = n if regime == "realistic" else min(n, extreme_tokens)
        reps_case = reps if regime == "realistic" else min(reps, extreme_rounds)
        case = f"{name}, {n_case} tokens, {label}"
        gc = generation_config(n_case)

        def plain(age=age, gc=gc) -> None:
            with torch.no_grad():
                hf.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=gc
                )

        t_plain: list[float] = []
        t_clock: list[float] = []
        t_start: list[float] = []
        paired: list[float] = []
        updates: list[float] = []
        extra: list[float] = []
        for r in range(reps_case + 1):
            am.at(age, 300.0)  # plain generate: chip held at the start age (untimed)
            clock = Clock(am, step, age, "300K")
            t0 = time.perf_counter()
            clock.start()  # the chip put at its start age (timed apart)
            ts = time.perf_counter() - t0
            passes0 = clock.extra_passes
            # alternate the order round by round so drifts in machine load cancel
            tp = 0.0
            if r % 2 == 0:
                t0 = time.perf_counter()
                plain()
                tp = time.perf_counter() - t0
            res = generate_with_clock(am, ids, clock, n_case)
            if r % 2 == 1:
                t0 = time.perf_counter()
                plain()
                tp = time.perf_counter() - t0
            clock.close()
            if r == 0:
                continue  # warm-up
            t_plain.append(tp / n_case)
            t_clock.append(res.seconds / len(res.tokens))
            paired.append(t_clock[-1] / t_plain[-1])
            t_start.append(ts)
            updates.append((clock.n_updates - 1) / len(res.tokens))  # beyond the start update
            extra.append((clock.extra_passes - passes0) / len(res.tokens))
        mp, mc = statistics.median(t_plain), statistics.median(t_clock)
        ratio = statistics.median(paired)
        rows.append(
            {
                "case": case,
                "regime": regime,
                "engine": "clock",
                "median_ms": mc * 1e3,
                "digital_ms": mp * 1e3,
                "ratio": ratio,
                "note": (
                    f"tokens/s {1 / ratio:.3f}x plain generate on the same converted model"
                    + (" (target >= 0.9x)" if regime == "realistic" else "")
                    + f"; state updates per token {statistics.median(updates):.3g}, "
                    f"extra passes over the analog weights per token "
                    f"{statistics.median(extra):.3g} (weight error, fault counts); "
                    f"median of {reps_case} paired rounds, {threads} threads"
                ),
            }
        )
        rows.append(
            {
                "case": case,
                "regime": regime,
                "engine": "clock-start",
                "median_ms": statistics.median(t_start) * 1e3,
                "digital_ms": mp * 1e3,
                "ratio": statistics.median(t_start) / mp,
                "note": "one-off: the chip put at its start age (one state update), "
                "in units of plain generate's time per token",
            }
        )
    if console is not None:
        _print(rows, console)
    return rows


def _print(rows: list[dict[str, Any]], console: Any) -> None:
    table = Table(title="generation with the event clock vs plain generate")
    for col in ("case", "engine", "ms/token", "plain ms/token", "ratio", "note"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["case"],
            r["engine"],
            f"{r['median_ms']:.2f}",
            f"{r['digital_ms']:.2f}",
            f"{r['ratio']:.3f}x",
            r["note"],
        )
    console.print(table)
