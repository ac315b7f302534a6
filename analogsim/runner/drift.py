"""The ``drift`` study's point: noise that grows *during* generation.

A process is one of:

* a sigma schedule (``linear:0:0.02``, ``exp:...``; :func:`analogsim.clock.schedules.parse_schedule`):
  one fixed noise draw per weight scaled by ``sigma(k)`` at token ``k``
  (:class:`analogsim.mapping.perturb.WeightNoise` through ``generate``'s clock): at every
  token the weights' error has exactly the scheduled std. This is the public study's
  schedule done correctly;
* ``published:<schedule>``: what the public study's implementation did instead (REFERENCES.md):
  at each token it added *independent* noise whose std is the schedule's increment, so
  after ``k`` tokens the error's std is ``sqrt(sigma(0)^2 + sum_j (sigma(j) - sigma(j-1))^2)``,
  ``sigma_end / sqrt(n)`` for a linear schedule, not ``sigma_end``. It is reproduced here as
  a schedule with that std at every token (same marginal std per weight; the draw is one
  fixed direction scaled, not a random walk);
* ``device:<card>``: physical drift of the chip (``[chip] mapping``, ``all_analog`` by
  default) programmed at ``start_age``, ``token_time`` of deployment per token, held at
  the point's temperature.

Each prompt of ``[generation] prompts`` is continued greedily for ``tokens`` tokens by
:func:`analogsim.studies.generate.run_generate` (its trace is written to a temporary
folder and dropped). Rows: the means over prompts of the per-token entropy (bits) and of
the log-probability gap to the digital model on the same tokens (nats), the share of
prompts where the cliff detector fired, Distinct-2 of the continuations and a sample.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from typing import Any

from analogsim.runner.points import Point

__all__ = ["drift_point", "published_schedule"]


def published_schedule(spec: str, n: int) -> Any:
    """The per-token std of the public study's independent increments of ``spec`` over
    ``n`` tokens, as a :class:`~analogsim.clock.schedules.StepSchedule` (one value per token)."""
    from analogsim.clock.schedules import StepSchedule, parse_schedule

    sched = parse_schedule(spec, n)
    sig = [float(sched.sigma(k)) for k in range(n)]
    acc, out = sig[0] ** 2, [sig[0]]
    for k in range(1, n):
        acc += (sig[k] - sig[k - 1]) ** 2
        out.append(math.sqrt(acc))
    return StepSchedule(tuple(out), 1)


def drift_point(settings: Mapping[str, Any], point: Point) -> list[dict[str, Any]]:
    """Generate under the point's process; see the module docstring."""
    from analogsim.metrics import distinct_n
    from analogsim.runner.cache import get_model
    from analogsim.studies.generate import GenerateOptions, run_generate

    c = point.as_dict()
    spec = str(c["model"])
    loaded = get_model(spec)
    process = str(c["process"])
    tokens = int(settings["tokens"])
    base = GenerateOptions(tokens=tokens, seed=int(point.seed % (2**31)), raw_prompt=True)
    if process.startswith("device:"):
        opts = dict(
            device=process.removeprefix("device:"),
            mapping=settings.get("mapping", "all_analog"),
            temperature=str(c["temperature"]),
            start_age=settings.get("start_age", 0),
            token_time=settings["token_time"],
        )
    elif process.startswith("published:"):
        opts = dict(
            noise=settings.get("noise", "gaussian"),
            schedule=published_schedule(process.removeprefix("published:"), tokens),
        )
    else:
        opts = dict(noise=settings.get("noise", "gaussian"), schedule=process)
    texts, metrics = [], []
    for prompt in settings["prompts"]:
        with tempfile.TemporaryDirectory(prefix="analogsim-drift-") as tmp:
            res = run_generate(loaded, base, out=tmp, plots=False, prompt=prompt, **opts)
        texts.append(res["text"])
        metrics.append(res["metrics"])

    def mean(key: str) -> float:
        vals = [
            float(m[key])
            for m in metrics
            if m.get(key) is not None and math.isfinite(float(m[key]))
        ]
        return sum(vals) / len(vals) if vals else math.nan

    cliffs = [m for m in metrics if math.isfinite(float(m.get("cliff_token", math.nan)))]
    rows = [
        {"metric": "entropy_bits", "value": mean("mean_entropy_bits")},
        {"metric": "gap_nats", "value": mean("mean_gap_nats")},
        {"metric": "logprob", "value": mean("mean_logprob")},
        {"metric": "cliff_share", "value": len(cliffs) / len(metrics)},
        {"metric": "distinct_2", "value": distinct_n(texts, 2)},
        {"metric": "sample", "value": None, "text": texts[0]},
    ]
    for r in rows:
        r.setdefault("text", None)
    return rows
