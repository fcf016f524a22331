"""Every registered component meets its contract (parametrised over the registries, so new ones are covered)."""

from __future__ import annotations


import pytest

from evonas.operators import CROSSOVERS, MUTATIONS
from evonas.spaces import SPACES, make_space
from evonas.testing import check_crossover, check_mutation, check_space


@pytest.mark.parametrize("name", SPACES.list())
def test_space_contract(name: str) -> None:
    check_space(make_space(name), n=200)


def _ops(registry) -> list[tuple[str, str]]:
    return [(op, sp) for op in registry.list() for sp in SPACES.list() if registry.get(op).applies_to(sp)]


@pytest.mark.parametrize("op,space", _ops(MUTATIONS))
def test_mutation_contract(op: str, space: str) -> None:
    check_mutation(MUTATIONS.get(op)(), make_space(space), n=200)


@pytest.mark.parametrize("op,space", _ops(CROSSOVERS))
def test_crossover_contract(op: str, space: str) -> None:
    check_crossover(CROSSOVERS.get(op)(), make_space(space), n=200)


def test_every_space_has_operators() -> None:
    for name in SPACES.list():
        assert any(MUTATIONS.get(m).applies_to(name) for m in MUTATIONS), name
