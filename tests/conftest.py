"""Fixtures shared by the whole test suite: a seeded generator and small models.

Statistical tests state their tolerance as a number of standard errors of the sample they
draw; the helpers for those standard errors live in ``tests/devices/_stats.py``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import torch
from torch import nn

SEED = 1234


@pytest.fixture(autouse=True)
def _one_torch_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """Run tests with one intra-op thread (benchmarks keep the machine's setting).

    The tests use small tensors, where a second OpenMP thread only adds synchronisation;
    on a loaded shared machine its spin-waits make each small op up to 100x slower.
    analogsim's numbers do not depend on the thread count (tests/devices/test_rng.py).
    """
    if request.node.get_closest_marker("bench") is not None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def gen() -> torch.Generator:
    """A CPU generator seeded with a fixed seed (fresh per test)."""
    return torch.Generator().manual_seed(SEED)


def make_mlp(seed: int = 0, sizes: tuple[int, ...] = (12, 24, 16, 5)) -> nn.Sequential:
    """A small MLP ``Linear -> ReLU -> ... -> Linear`` with seeded initialisation.

    The global RNG is left as it was.
    """
    layers: list[nn.Module] = []
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


@pytest.fixture
def small_mlp() -> nn.Sequential:
    """``Linear(12, 24) - ReLU - Linear(24, 16) - ReLU - Linear(16, 5)``, seeded."""
    return make_mlp()


class Block(nn.Module):
    """Two Linear layers under one parent, for placement rules that name a parent."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d, 2 * d)
        self.fc2 = nn.Linear(2 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class TwoBlockNet(nn.Module):
    """``encoder`` (Block) -> ``decoder`` (Block) -> ``head`` (Linear): named modules for rules.

    Plain torch roles: every Linear is ``mlp`` except the last one (``head``).
    """

    def __init__(self, d: int = 8, n_out: int = 3) -> None:
        super().__init__()
        self.encoder = Block(d)
        self.decoder = Block(d)
        self.head = nn.Linear(d, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.decoder(self.encoder(x)))


@pytest.fixture
def two_block_net() -> TwoBlockNet:
    """A :class:`TwoBlockNet` with seeded initialisation."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return TwoBlockNet().eval()
