"""The ``chip`` study's point: a partition of the model on a device, at an age and a
temperature: perplexity (the model's quality metric) and energy per token.

The chip is converted and programmed from the point's seed, which is derived without
the age and temperature (:data:`analogsim.runner.config.SHARED_DRAW`), so one seed is one
programmed chip read at every age and temperature, as in
:func:`analogsim.studies.evaluate.evaluate`. A worker keeps its last programmed chip
(one at a time: a converted copy of the model) for the next point of the same chip. The
energy per token is :func:`analogsim.cost.estimate.estimate_cost` of the placement, with
the attention MACs of the model's context, as ``analogsim compare`` prices it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from analogsim.runner.points import Point

__all__ = ["chip_point"]

_CHIP: dict[str, Any] = {}  # the worker's last programmed chip: {"key": ..., "model": ...}


def chip_point(settings: Mapping[str, Any], point: Point) -> list[dict[str, Any]]:
    """Perplexity of the programmed chip at ``age`` and ``temperature``; its energy per
    token and analog shares (the same for every age and temperature)."""
    import torch

    from analogsim.cost.attention import attention_macs_per_token
    from analogsim.cost.estimate import estimate_cost
    from analogsim.mapping.convert import convert
    from analogsim.mapping.rules import load_mapping, resolve_plan
    from analogsim.runner.cache import cached, get_model
    from analogsim.runner.pointfns import quality_of
    from analogsim.studies.compare import _context_tokens  # compare's pricing, as is
    from analogsim.units import parse_temperature, parse_time

    c = point.as_dict()
    spec = str(c["model"])
    loaded = get_model(spec)
    m = load_mapping(str(c["mapping"])).with_device(str(c["device"]))
    key = (spec, str(c["mapping"]), str(c["device"]), point.seed)
    if _CHIP.get("key") != key:
        _CHIP.clear()
        _CHIP["model"] = convert(loaded.model, m).program(int(point.seed % (2**31)))
        _CHIP["key"] = key
    am = _CHIP["model"]
    am.at(
        parse_time(c["age"], key="age"), parse_temperature(str(c["temperature"]), key="temperature")
    )
    q = quality_of(spec, loaded, settings)
    with torch.no_grad():
        value = float(q.score(am))
    if math.isnan(value):
        value = math.inf

    def cost() -> dict[str, float]:
        plan = resolve_plan(loaded.model, m)
        att = attention_macs_per_token(loaded.model, _context_tokens(loaded))
        rep = estimate_cost(plan, attention_macs_per_token=att)
        totals = plan.totals()
        return {
            "energy_per_token_J": float(rep.energy_per_token_J),
            "analog_param_share": float(totals["analog_param_share"]),
        }

    costs = cached(spec, ("cost", str(c["mapping"]), str(c["device"])), cost)
    return [
        {"metric": q.name, "value": value, "text": None},
        *({"metric": k, "value": v, "text": None} for k, v in costs.items()),
    ]
