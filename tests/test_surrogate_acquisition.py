"""The ``surrogate`` strategy's acquisition rules and candidate pool (the generic checks are in test_strategies.py)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import toy_experiment

from evonas.config import ConfigError, parse_experiment
from evonas.engine.build import build
from evonas.engine.runner import search

SMALL = {"initial_samples": 5, "pool": 30, "trees": 10}


def run(params: dict[str, Any], **changes: Any) -> list[Any]:
    exp = toy_experiment(strategy={"name": "surrogate", "params": {**SMALL, **params}}, **changes)
    return search(build(parse_experiment(exp))).records


@pytest.mark.parametrize("acquisition", ["its", "ei", "ucb"])
@pytest.mark.parametrize("space", ["nb201", "chain"])
def test_every_acquisition_is_deterministic_and_spends_the_budget_on_new_architectures(acquisition: str, space: str) -> None:
    records = run({"acquisition": acquisition}, space={"name": space}, budget=20)
    keys = [r.key for r in records]
    assert len(keys) == 20 and len(set(keys)) == 20
    assert keys == [r.key for r in run({"acquisition": acquisition}, space={"name": space}, budget=20)]
    assert all(r.origin.startswith("surrogate:") for r in records[5:])


def test_thompson_sampling_is_the_default_and_draws_from_the_strategy_rng() -> None:
    default = [r.key for r in run({}, budget=20)]
    assert default == [r.key for r in run({"acquisition": "its"}, budget=20)]
    assert default != [r.key for r in run({}, budget=20, seed=4)]


def test_pool_children_come_from_the_best_genomes_and_random_samples() -> None:
    records = run({"random_fraction": 0.5}, budget=30)
    origins = {r.origin for r in records[5:]}
    assert "surrogate:sample" in origins and any(o.startswith("surrogate:mutation:") for o in origins)
    best = {r.key for r in records}
    assert all(set(r.parents) <= best for r in records if r.origin.startswith("surrogate:mutation:"))


def test_a_bad_acquisition_is_a_one_line_error() -> None:
    with pytest.raises(ConfigError, match="acquisition: expected one of 'its', 'ei', 'ucb', got the string 'pi'"):
        build(parse_experiment(toy_experiment(strategy={"name": "surrogate", "params": {"acquisition": "pi"}})))
