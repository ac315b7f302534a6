"""Where an analog forward spends its time: rest, DAC, product, noise, ADC, sum, overhead.

For one case and regime, every analog layer's input is captured during one forward, then
these are timed round-robin in one run (:func:`analogsim.bench.timing.interleaved`, so a
busy machine slows them alike), each a loop over the captured layers or the whole model:

==============  ===========================================================================
``digital``     the digital model's forward
``layers``      the digital products of the analog layers (``F.linear`` on ``w_eff``)
``dac``         the DAC of every layer (:func:`analogsim.tiles.io.dac_codes`)
``product``     the per-tile products (:func:`analogsim.tiles.io.tile_products`)
``full``        every layer's tile MVM as the model runs it (``AnalogLayer.mvm``)
``quiet``       the same with output and read noise off
``no_adc``      the same with the ADC off too (no rounding, no clipping)
``analog``      the converted model's forward
==============  ===========================================================================

The split of the analog forward (``analog = rest + dac + product + noise + adc + sum +
overhead``): ``rest = digital - layers`` (attention, norms: the same in both models),
``noise = full - quiet`` (normals, and with read noise the variance products), ``adc =
quiet - no_adc`` (rounding, clipping), ``sum = no_adc - dac - product`` (the tile sum,
scales, bias and what the epilogue pass costs without noise or ADC), ``overhead = analog -
(everything else)`` (wrappers, dispatch, allocation; negative when the isolated loops ran
slower than inside the model, caches differ). Each epilogue (``fused`` and ``torch``) gets
its own ``full`` / ``quiet`` / ``no_adc`` / ``analog``; the rest are shared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from analogsim.bench.timing import interleaved
from analogsim.tiles.io import dac_codes, get_epilogue, set_epilogue, tile_products

STAGES = ("rest", "dac", "product", "noise", "adc", "sum", "overhead")
"""The parts of an analog forward, in the order of the table."""


def _capture(am: Any, run_analog: Callable[[], Any]) -> list[tuple[Any, Tensor]]:
    """(layer, its (M, K) input) for every io-tile MVM of one forward."""
    captured: list[tuple[Any, Tensor]] = []

    def hook(layer: Any, args: tuple) -> None:
        x = args[0]
        captured.append((layer, x.detach().reshape(-1, layer.in_features).clone()))

    handles = [
        layer.register_forward_pre_hook(hook)
        for _, layer in am.analog_layers()
        if getattr(layer, "kind", None) in ("linear", "conv1d") and layer.tile.io_enabled
    ]
    try:
        with torch.no_grad():
            run_analog()
    finally:
        for h in handles:
            h.remove()
    return captured


def split_times(
    am: Any,
    run_digital: Callable[[], Any],
    run_analog: Callable[[], Any],
    *,
    epilogues: tuple[str, ...] = ("fused", "torch"),
    rounds: int = 5,
) -> dict[str, dict[str, float]]:
    """Seconds per stage (:data:`STAGES`) of the analog forward for each epilogue, plus
    ``digital`` and ``analog`` (module docstring); ``{epilogue: {stage: seconds}}``."""
    captured = _capture(am, run_analog)
    layers = [layer for layer, _ in captured]
    tiles = {id(layer): layer.tile for layer in layers}
    variants = {
        "quiet": {
            id(la): t.replace(out_noise=0.0, read_noise=0.0)
            for la in layers
            for t in [tiles[id(la)]]
        },
        "no_adc": {
            id(la): t.replace(out_noise=0.0, read_noise=0.0, adc_bits=0, adc_bound=0.0)
            for la in layers
            for t in [tiles[id(la)]]
        },
    }
    codes = [dac_codes(x, layer.io_plan)[0].clone() for layer, x in captured]
    parts = [
        torch.empty((-(-x.shape[1] // layer.io_plan.rows), x.shape[0], layer.out_features))
        for layer, x in captured
    ]

    def layers_digital() -> None:
        for layer, x in captured:
            F.linear(x, layer.w_eff)

    def dac() -> None:
        for layer, x in captured:
            dac_codes(x, layer.io_plan)

    def product() -> None:
        for (layer, _), xs, p in zip(captured, codes, parts, strict=True):
            tile_products(xs, layer.w_eff, layer.io_plan, p)

    def mvms(variant: str | None, epilogue: str) -> Callable[[], None]:
        def run() -> None:
            set_epilogue(epilogue)
            try:
                for layer, x in captured:
                    if variant is not None:
                        layer.tile = variants[variant][id(layer)]
                    layer.mvm(x, layer.w_eff, out_scale=layer.out_mult, bias=layer.bias)
            finally:
                for layer in layers:
                    layer.tile = tiles[id(layer)]

        return run

    def analog(epilogue: str) -> Callable[[], None]:
        def run() -> None:
            set_epilogue(epilogue)
            run_analog()

        return run

    fns: dict[str, Callable[[], Any]] = {
        "digital": run_digital,
        "layers": layers_digital,
        "dac": dac,
        "product": product,
    }
    for e in epilogues:
        fns[f"{e}:full"] = mvms(None, e)
        fns[f"{e}:quiet"] = mvms("quiet", e)
        fns[f"{e}:no_adc"] = mvms("no_adc", e)
        fns[f"{e}:analog"] = analog(e)
    before = get_epilogue()
    try:
        with torch.no_grad():
            med = interleaved(fns, rounds=rounds, warmup=1)
    finally:
        set_epilogue(before)
    out: dict[str, dict[str, float]] = {}
    for e in epilogues:
        s = {
            "digital": med["digital"],
            "analog": med[f"{e}:analog"],
            "rest": med["digital"] - med["layers"],
            "dac": med["dac"],
            "product": med["product"],
            "noise": med[f"{e}:full"] - med[f"{e}:quiet"],
            "adc": med[f"{e}:quiet"] - med[f"{e}:no_adc"],
            "sum": med[f"{e}:no_adc"] - med["dac"] - med["product"],
        }
        s["overhead"] = s["analog"] - sum(s[k] for k in STAGES if k != "overhead")
        out[e] = s
    return out


def split_rows(
    case: str, regime: str, times: dict[str, dict[str, float]], threads: int
) -> list[dict[str, Any]]:
    """Bench rows of :func:`split_times`: engine ``split:<epilogue>:<stage>``, the stage's
    milliseconds, the digital forward's, and the stage as a fraction of it."""
    rows = []
    for e, s in times.items():
        for stage in ("analog", *STAGES):
            rows.append(
                {
                    "case": case,
                    "regime": regime,
                    "engine": f"split:{e}:{stage}",
                    "median_ms": s[stage] * 1e3,
                    "digital_ms": s["digital"] * 1e3,
                    "ratio": s[stage] / s["digital"],
                    "note": f"{e} epilogue; medians of interleaved rounds, {threads} threads",
                }
            )
    return rows


__all__ = ["STAGES", "split_rows", "split_times"]
