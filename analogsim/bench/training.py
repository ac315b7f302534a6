"""Training-step benchmark: hardware-aware (and learned-noise) vs a plain step.

:func:`bench_training_step` times one optimizer step (forward, backward, Adam) of the
same model with ``plain``, ``hwa`` (each engine) and ``learned-noise`` training,
interleaved round by round (so a busy machine slows all alike), and reports the median of
each and its ratio to the plain step. Rows have the columns of ``make bench``
(:data:`analogsim.bench.BENCH_COLUMNS`): ``case, regime, engine, median_ms, digital_ms,
ratio, note`` with ``regime = "train-step"`` and ``digital_ms`` the plain step.
Target (issue 5): hwa at most 1.5x a plain step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from analogsim.bench.timing import interleaved
from analogsim.errors import ConfigError
from analogsim.mapping.convert import convert
from analogsim.models import load_model
from analogsim.train.hwa import install_hwa
from analogsim.train.hwa_config import HWAConfig
from analogsim.train.learned import install_learned_noise

CASES = ("digits-mlp", "tiny-gpt2", "wide-mlp")


def _step_fn(
    net: nn.Module,
    kind: str,
    batch: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    method: str,
    mapping: Any,
    **hwa_kw: Any,
) -> Callable[[], None]:
    model = copy.deepcopy(net)
    ctx = None
    noise = None
    if method != "plain":
        model = convert(model, mapping).model
        if method == "hwa":
            ctx = install_hwa(model, HWAConfig(**hwa_kw), seed=0)
        else:
            noise = install_learned_noise(model, seed=0)
    model.train()
    groups: list[dict[str, Any]] = [{"params": list(model.parameters()), "lr": 1e-4}]
    if noise is not None:
        groups.append({"params": list(noise.parameters()), "lr": 1e-4})
    opt = torch.optim.Adam(groups)

    def step() -> None:
        if ctx is not None:
            ctx.step()
        xb, yb = batch()
        if kind == "classifier":
            loss = F.cross_entropy(model(xb), yb)
        else:
            logits = model(input_ids=xb, use_cache=False).logits
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1))
        reward = None if noise is None else noise.reward_loss()
        if reward is not None:
            loss = loss + reward
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _case(name: str, quick: bool) -> tuple[str, nn.Module, str, Callable[[], Any], Any]:
    """(label, model, kind, batch function, mapping) of a benchmark case."""
    gen = torch.Generator().manual_seed(0)
    if name == "digits-mlp":
        lm = load_model("digits-mlp", progress=False)
        x, y = lm.data.x_train, lm.data.y_train
        bs = 32

        def batch() -> tuple[torch.Tensor, torch.Tensor]:
            idx = torch.randint(0, x.shape[0], (bs,), generator=gen)
            return x[idx], y[idx]

        return f"digits-mlp, batch {bs}", lm.model, "classifier", batch, "all_analog"
    if name == "wide-mlp":
        width, layers, bs = (256, 3, 64) if quick else (1024, 3, 256)
        mods: list[nn.Module] = []
        for i in range(layers):
            lin = nn.Linear(width, width)
            with torch.no_grad():
                lin.weight.copy_(torch.randn(width, width, generator=gen) / width**0.5)
                lin.bias.zero_()
            mods.append(lin)
            if i < layers - 1:
                mods.append(nn.ReLU())
        net = nn.Sequential(*mods)
        xs = torch.randn(bs * 8, width, generator=gen)
        ys = torch.randint(0, width, (bs * 8,), generator=gen)

        def batch_w() -> tuple[torch.Tensor, torch.Tensor]:
            idx = torch.randint(0, xs.shape[0], (bs,), generator=gen)
            return xs[idx], ys[idx]

        return (
            f"wide MLP {layers}x{width}x{width}, batch {bs}",
            net,
            "classifier",
            batch_w,
            "all_analog",
        )
    if name == "tiny-gpt2":
        lm = load_model("tiny-gpt2", progress=False)
        ids = lm.data["train_ids"]
        b, t = (2, 64) if quick else (8, 128)
        off = torch.arange(t + 1)

        def batch_g() -> tuple[torch.Tensor, torch.Tensor]:
            st = torch.randint(0, ids.numel() - t - 1, (b,), generator=gen)
            ch = ids[st[:, None] + off]
            return ch[:, :-1], ch[:, 1:]

        return (
            f"tiny-gpt2, {b}x{t} tokens",
            lm.model,
            "causal-lm",
            batch_g,
            "digital_attention_analog_mlp",
        )
    raise ConfigError("unknown benchmark case", key="case", value=name, allowed=", ".join(CASES))


def _repeat(fn: Callable[[], None], k: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(k):
            fn()

    return run


def bench_training_step(
    cases: Sequence[str] = CASES,
    *,
    quick: bool = False,
    rounds: int | None = None,
    engines: Sequence[str] = ("surrogate", "device"),
    learned: bool = True,
    resample_every: int | None = None,
) -> list[dict[str, Any]]:
    """Median training-step time of plain vs hwa (per engine) vs learned-noise, interleaved.

    Each timed sample is a block of ``k`` consecutive steps (``k`` = the hwa draw period),
    divided by ``k``: the amortised step cost, device draws included. Returns one row per
    (case, engine): ``case, regime, engine, median_ms, digital_ms, ratio, note``
    (``ratio = median_ms / digital_ms``, the plain step; the plain row has ratio 1).
    ``resample_every`` overrides the hwa default (a device draw every k steps).
    """
    k = resample_every if resample_every is not None else HWAConfig().resample_every
    rows: list[dict[str, Any]] = []
    for name in cases:
        label, net, kind, batch, mapping = _case(name, quick)
        fns: dict[str, Callable[[], None]] = {"plain": _step_fn(net, kind, batch, "plain", mapping)}
        for eng in engines:
            fns[f"hwa-{eng}"] = _step_fn(
                net, kind, batch, "hwa", mapping, engine=eng, resample_every=k
            )
        if learned:
            fns["learned-noise"] = _step_fn(net, kind, batch, "learned-noise", mapping)
        # every timed call runs k steps, so that the periodic device draw (every k steps)
        # is inside each sample: the median is then of the amortised cost, not of the
        # cheap steps between draws
        blocks = {name_: _repeat(fn, k) for name_, fn in fns.items()}
        n = rounds if rounds is not None else (5 if quick else (7 if kind == "causal-lm" else 31))
        warm = 1 if kind == "causal-lm" else 5
        med = {e: t / k for e, t in interleaved(blocks, rounds=n, warmup=warm).items()}
        base = med["plain"]
        for eng, sec in med.items():
            note = f"mapping {mapping}, torch threads {torch.get_num_threads()}"
            if eng.startswith("hwa"):
                note += f", device draw every {k} steps"
            rows.append(
                {
                    "case": label,
                    "regime": "train-step",
                    "engine": eng,
                    "median_ms": sec * 1e3,
                    "digital_ms": base * 1e3,
                    "ratio": sec / base,
                    "note": note,
                }
            )
    return rows


__all__ = ["CASES", "bench_training_step"]
