"""Responsiveness of ``analogsim ui`` (issue 15 item 2), measured on the API calls the page
makes, not on the page (the bench layer sits below ``analogsim.ui``).

* ``restate``: a move of the age or temperature slider. The page keeps one converted and
  programmed chip per structure (mapping, device, tiles, seed) and a slider move calls
  only :meth:`AnalogModel.at <analogsim.mapping.analog_model.AnalogModel.at>` on it (the
  programmed state is kept; conductances are recomputed at the new ages), after
  :meth:`~analogsim.mapping.analog_model.AnalogModel.enable_time_cache` when the cache
  fits. Target: under 2 s per move on smollm2. Timed per move over a fixed path of
  (age, temperature) settings; the conversion and programming (``build``) are timed
  once, as a reference: that is what a move would cost without the re-state path.
* ``first-token``: the time to the first token of an answer (prefill of the chat prompt
  and one decode step, Hugging Face ``generate`` with one new token) of the chip at
  1 y and 85 C against the digital model, timed round-robin. Target: at most 1.5x.

Rows are in the format of :mod:`analogsim.bench.run` (``case, regime, engine,
median_ms, digital_ms, ratio, note``). Run alone: ``python -m analogsim.bench.ui``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from analogsim.bench.timing import interleaved
from analogsim.clock.hook import generation_config
from analogsim.mapping.convert import convert
from analogsim.models import LoadedModel, load_model, prompt_ids
from analogsim.units import ZERO_CELSIUS_K, format_time

__all__ = ["SLIDER_PATH", "first_token_rows", "restate_rows", "run_ui_bench"]

YEAR = 365.25 * 86400.0
#: Slider moves, (age s, temperature K): age and temperature moves, both directions.
SLIDER_PATH = (
    (YEAR, 358.15),
    (10 * YEAR, 358.15),
    (86400.0, 358.15),
    (86400.0, 300.15),
    (3600.0, 300.15),
    (YEAR, 330.15),
    (1.0, 300.15),
)
PROMPT = "What is an analog in-memory computing chip?"


def restate_rows(
    loaded: LoadedModel, mapping: str = "all_analog", device: str = "pcm"
) -> tuple[list[dict[str, Any]], Any]:
    """Build the chip once (timed), then time each slider move of :data:`SLIDER_PATH`;
    returns the rows and the chip (at the last setting)."""
    t0 = time.perf_counter()
    am = convert(loaded.model, mapping, device=device)  # a copy, as the page keeps one
    am.program(0)
    cache = am.enable_time_cache()
    build = time.perf_counter() - t0
    moves = []
    for age, temp in SLIDER_PATH:
        t0 = time.perf_counter()
        am.at(age, temp)
        moves.append(time.perf_counter() - t0)
    med = statistics.median(moves)
    case = f"{loaded.name}, {mapping} on {device}"
    path = ", ".join(f"{format_time(a)}@{t - ZERO_CELSIUS_K:g}C" for a, t in SLIDER_PATH)
    return [
        {
            "case": case,
            "regime": "restate",
            "engine": "slider move (at)",
            "median_ms": med * 1e3,
            "digital_ms": float("nan"),
            "ratio": float("nan"),
            "note": f"target < 2 s; max {max(moves):.2f} s over {len(moves)} moves ({path}); "
            f"time cache {'on' if cache else 'off (does not fit 2 GiB)'}; "
            f"{torch.get_num_threads()} threads",
        },
        {
            "case": case,
            "regime": "restate",
            "engine": "build (convert + program)",
            "median_ms": build * 1e3,
            "digital_ms": float("nan"),
            "ratio": float("nan"),
            "note": "once per mapping/device/tile/seed change, not per slider move; one run",
        },
    ], am


@torch.no_grad()
def first_token_rows(
    loaded: LoadedModel, chip: Any, *, rounds: int = 3, age_s: float = YEAR, temp_K: float = 358.15
) -> list[dict[str, Any]]:
    """Time to the first token of the chip (at ``age_s``, ``temp_K``) and of the digital
    model on the same chat prompt, round-robin."""
    chip.at(age_s, temp_K)
    ids = prompt_ids(loaded.tokenizer, PROMPT).view(1, -1)
    eos = getattr(loaded.tokenizer, "eos_token_id", None)
    gc = generation_config(1, eos=eos)

    def first(model: torch.nn.Module) -> None:
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=gc)

    med = interleaved(
        {"digital": lambda: first(loaded.model), "chip": lambda: first(chip.model)},
        rounds=rounds,
        warmup=1,
    )
    return [
        {
            "case": f"{loaded.name}, chip at {format_time(age_s)} and {temp_K - ZERO_CELSIUS_K:g} C",
            "regime": "first-token",
            "engine": "chip generate (1 token)",
            "median_ms": med["chip"] * 1e3,
            "digital_ms": med["digital"] * 1e3,
            "ratio": med["chip"] / med["digital"],
            "note": f"target <= 1.5x; prompt of {ids.shape[1]} tokens (chat template); median of "
            f"{rounds} interleaved rounds, {torch.get_num_threads()} threads",
        }
    ]


def run_ui_bench(
    *, model: str = "smollm2", quick: bool = False, console: Any = None
) -> list[dict[str, Any]]:
    """Both measurements on ``model`` (default smollm2); bench rows."""
    loaded = load_model(model, progress=console is not None)
    rows, chip = restate_rows(loaded)
    rows += first_token_rows(loaded, chip, rounds=1 if quick else 3)
    return rows


def main() -> None:  # pragma: no cover - a manual entry point
    import sys

    model = sys.argv[1] if len(sys.argv) > 1 else "smollm2"
    for r in run_ui_bench(model=model):
        print(
            f"{r['regime']:12s} {r['engine']:28s} {r['median_ms']:10.1f} ms "
            f"(digital {r['digital_ms']:.1f} ms, ratio {r['ratio']:.2f}) {r['case']}; {r['note']}"
        )


if __name__ == "__main__":  # pragma: no cover
    main()
