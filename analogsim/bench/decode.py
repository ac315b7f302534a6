"""Batch-1 decoding with io tiles (issue 18): SmolLM2-135M on a chip against plain generate.

The digital model and the same model converted with the ``io`` regime
(:mod:`analogsim.bench.regimes`: 8-bit DAC and ADC per 512-row tile, output noise 0.04,
PCM devices programmed and drifted to 1 h, embeddings digital, the tied head analog)
generate the same number of new tokens from the same 8-token prompt, greedy, batch 1,
timed round-robin (:func:`analogsim.bench.timing.interleaved`). Each token is one forward
of one position: a few small products per layer, so the cost is the dispatch of the
tile's operations per layer and call, not arithmetic. Both epilogues are timed (``fused``,
the default, and ``torch``), and the split of one decode step
(:mod:`analogsim.bench.split`) says where the time goes. Target: at least 0.7x the tokens/s
of plain generate.
"""

from __future__ import annotations

from typing import Any

import torch

from analogsim.bench.regimes import mapping_for
from analogsim.bench.split import split_rows, split_times
from analogsim.bench.timing import interleaved
from analogsim.clock.hook import generation_config
from analogsim.mapping.convert import convert
from analogsim.models import load_model
from analogsim.tiles.io import get_epilogue, set_epilogue

__all__ = ["decode_rows"]


def decode_rows(
    *,
    model: str = "smollm2",
    tokens: int = 32,
    rounds: int = 3,
    regime: str = "io",
    device: str = "pcm",
    split: bool = True,
    console: Any = None,
) -> list[dict[str, Any]]:
    """Tokens/s of batch-1 greedy decoding on io tiles against plain generate; bench rows
    (``ratio`` = analog time / digital time per token, so tokens/s is ``1 / ratio`` of
    plain generate). ``device``: the card of the chip (the forward's cost does not depend
    on it: the state is one effective weight matrix per layer)."""
    loaded = load_model(model, progress=console is not None)
    digital = loaded.model.eval()
    am = convert(digital, mapping_for(regime, device)).program(0).at(3600.0)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, digital.config.vocab_size, (1, 8), generator=g)
    mask = torch.ones_like(ids)
    gc = generation_config(tokens)

    def gen(model_: Any, epilogue: str | None = None) -> Any:
        def run() -> None:
            if epilogue is not None:
                set_epilogue(epilogue)
            with torch.no_grad():
                model_.generate(input_ids=ids, attention_mask=mask, generation_config=gc)

        return run

    before = get_epilogue()
    try:
        med = interleaved(
            {
                "digital": gen(digital),
                "fused": gen(am.model, "fused"),
                "torch": gen(am.model, "torch"),
            },
            rounds=rounds,
            warmup=1,
        )
    finally:
        set_epilogue(before)
    threads = torch.get_num_threads()
    case = f"{loaded.name}, batch-1 decoding, {tokens} tokens"
    rows = []
    for engine, name in (("fused", "analogsim"), ("torch", "analogsim-torch-epilogue")):
        ratio = med[engine] / med["digital"]
        rows.append(
            {
                "case": case,
                "regime": regime,
                "engine": name,
                "median_ms": med[engine] / tokens * 1e3,
                "digital_ms": med["digital"] / tokens * 1e3,
                "ratio": ratio,
                "note": f"{engine} epilogue: tokens/s {1 / ratio:.2f}x plain generate (target "
                f">= 0.7x); ms per token; median of {rounds} interleaved rounds, {threads} threads",
            }
        )
    if split:
        step_ids = ids[:, :1]

        def step(model_: Any) -> Any:
            return lambda: model_(input_ids=step_ids, use_cache=False)

        times = split_times(am, step(digital), step(am.model), rounds=max(5, rounds))
        rows += split_rows(f"{loaded.name}, one decode step (1 token)", regime, times, threads)
    return rows
