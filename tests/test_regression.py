"""Numbers that a restructuring must not move.

``tests/data/regression_golden.json`` was written by this module's ``main`` at commit
eccd422 (before the one-way-layers restructuring of issue 9) and is checked against the
current code: a seeded MLP on PCM and RRAM at four (time, temperature) points and after
``advance``, clocked generation on a random tiny GPT-2 over a sine temperature profile,
and 15 hardware-aware training steps. Inference and generation were bit-identical after
the move on the machine that wrote the file; the tolerance below only absorbs float
reassociation between CPUs (vectorised matmul kernels differ). hwa training steps moved
by 7e-8 relative when training took the inference tile's operation order (commit
9a7f972), inside the same tolerance. Regenerate (only after a deliberate change of the
numbers, said in the commit): ``python -m tests.test_regression``.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import analogsim
from analogsim.clock import Clock
from analogsim.clock.hook import generate_with_clock
from analogsim.train.hwa import install_hwa
from analogsim.train.hwa_config import HWAConfig
from tests.clock.conftest import tiny_gpt2
from tests.conftest import analog_mapping, make_mlp

GOLDEN = Path(__file__).parent / "data" / "regression_golden.json"
REL = 1e-5  # float reassociation across CPUs; a real change of the physics moves >1e-3


def _summary(t: torch.Tensor) -> list[float]:
    return [float(v) for v in t.reshape(-1)[:8]] + [float(t.sum()), float(t.abs().sum())]


def compute() -> dict[str, list[float]]:
    """Every number of the golden file, from the code as it is now."""
    out: dict[str, list[float]] = {}
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = torch.randn(32, 12, generator=torch.Generator().manual_seed(0))
        for dev in ("pcm", "rram"):
            for seed in (0, 1):
                am = analogsim.convert(make_mlp(), "all_analog", device=dev).program(seed=seed)
                for t, T in ((1.0, 300.0), (3600.0, 300.0), (86400.0, 358.0), (3.15e7, 300.0)):
                    with torch.no_grad():
                        out[f"mlp/{dev}/{seed}/{t:g}/{T:g}"] = _summary(am.at(t, T)(x))
                am.at(3600.0, 300.0).advance(86400.0, 340.0)
                with torch.no_grad():
                    out[f"mlp/{dev}/{seed}/advance"] = _summary(am(x))
        mapping = analog_mapping("pcm", None, name="g")  # the device's default tiles
        am = analogsim.convert(tiny_gpt2(), mapping, inplace=True).program(seed=0)
        clock = Clock(am, 86400.0, 3600.0, "sine:300K:360K:7d")
        res = generate_with_clock(am, torch.tensor([[1, 2, 3, 4]]), clock, 10)
        out["generate/tokens"] = [float(v) for v in res.tokens]
        out["generate/logprobs"] = [float(v) for v in res.logprobs]
        am = analogsim.convert(make_mlp(), "all_analog", device="pcm").program(seed=0)
        ctx = install_hwa(am.model, HWAConfig(), seed=0)
        opt = torch.optim.SGD(am.model.parameters(), lr=0.05)
        gen = torch.Generator().manual_seed(1)
        losses = []
        for _ in range(15):
            xb = torch.randn(16, 12, generator=gen)
            yb = torch.randint(0, 5, (16,), generator=gen)
            ctx.step()
            loss = nn.functional.cross_entropy(am.model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        out["hwa/losses"] = losses
    finally:
        torch.set_num_threads(before)
    return out


@pytest.fixture(scope="module")
def now() -> dict[str, list[float]]:
    return compute()


GOLD = json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("key", sorted(GOLD))
def test_numbers_did_not_move(key: str, now: dict[str, list[float]]) -> None:
    want, got = GOLD[key], now[key]
    assert len(got) == len(want)
    if key == "generate/tokens":
        assert got == want
        return
    for w, g in zip(want, got, strict=True):
        assert math.isclose(g, w, rel_tol=REL, abs_tol=REL * 1e-3), (key, w, g)


def test_the_golden_file_covers_every_computed_number(now: dict[str, list[float]]) -> None:
    assert set(now) == set(GOLD)


def main() -> None:
    GOLDEN.write_text(json.dumps(compute(), indent=1) + "\n")
    print(f"wrote {GOLDEN}", file=sys.stderr)


if __name__ == "__main__":
    main()
