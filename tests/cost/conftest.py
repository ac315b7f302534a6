"""Fixtures of the cost tests: the shipped cost table, small MLPs."""

from __future__ import annotations

import itertools

import pytest
from torch import nn

from analogsim.cost.table import CostTable, load_costs

pJ = 1e-12


def mlp(*sizes: int, bias: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b, bias=bias), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


@pytest.fixture(scope="module")
def costs() -> CostTable:
    return load_costs()
