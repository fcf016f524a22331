"""Every registered component meets its contract (parametrised over the registries, so new ones are covered)."""

from __future__ import annotations


import math
from typing import Any

import pytest

from evonas.operators import CROSSOVERS, MUTATIONS
from evonas.spaces import SPACES, SearchSpace, make_space
from evonas.testing import check_crossover, check_mutation, check_space


def _conditional_mlp(arch: Any, input_shape: tuple[int, ...], num_classes: int) -> Any:
    """A define-by-run space with conditional choices (``width_i`` for ``i < depth``) and a float gene."""
    import torch.nn as nn

    layers, n = [nn.Flatten()], math.prod(input_shape)
    for i in range(arch.int("depth", 1, 3)):
        width = arch.choice(f"width_{i}", [4, 8, 16])
        layers += [nn.Linear(n, width), nn.ReLU()]
        n = width
    arch.float("lr", 1e-3, 1e-1, log=True)
    return nn.Sequential(*layers, nn.Linear(n, num_classes))


#: parameters a space cannot do without (it has no default for them)
REQUIRED = {"function": {"build": _conditional_mlp, "input_shape": [6], "num_classes": 3}}


def _space(name: str) -> SearchSpace:
    return make_space(name, REQUIRED.get(name))


@pytest.mark.parametrize("name", SPACES.list())
def test_space_contract(name: str) -> None:
    check_space(_space(name), n=200)


def _ops(registry) -> list[tuple[str, str]]:
    return [(op, sp) for op in registry.list() for sp in SPACES.list() if registry.get(op).applies_to(sp)]


@pytest.mark.parametrize("op,space", _ops(MUTATIONS))
def test_mutation_contract(op: str, space: str) -> None:
    check_mutation(MUTATIONS.get(op)(), _space(space), n=200)


@pytest.mark.parametrize("op,space", _ops(CROSSOVERS))
def test_crossover_contract(op: str, space: str) -> None:
    check_crossover(CROSSOVERS.get(op)(), _space(space), n=200)


def test_every_space_has_operators() -> None:
    for name in SPACES.list():
        assert any(MUTATIONS.get(m).applies_to(name) for m in MUTATIONS), name
