"""``local_search`` (White et al. 2020) on every space: budget, determinism, exact resume, neighbourhoods, quality.

The generic checks mirror ``tests/test_strategies.py``; the rest checks what makes it local search: after the
first samples every candidate is one change from the architecture it moves from, moves happen only to
improvements, and a used-up neighbourhood restarts the search.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from conftest import toy_experiment
from test_strategies import _TogetherBackend, best_found, journal_keys

from evonas.config import ConfigError, parse_experiment
from evonas.engine.build import build
from evonas.engine.runner import Run, search
from evonas.spaces import make_space
from evonas.spaces.nb201 import NB201Space
from evonas.strategies import STRATEGIES

SMALL = {"initial_samples": 4}


def experiment(space: str = "nb201", params: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    params = dict(SMALL if params is None else params)
    return toy_experiment(strategy={"name": "local_search", "params": params}, space={"name": space}, **changes)


def conv_count(params: dict[str, Any] | None = None, space: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """The smooth ``conv_count`` objective (one point per 3x3 convolution), noise-free unless asked."""
    return experiment(
        params=params, fitness={"name": "conv_count", "params": {"noise": changes.pop("noise", 0.0)}},
        plugins=["conv_count_fitness"], **changes,
    ) | ({"space": space} if space else {})  # fmt: skip


def run_keys(exp: dict[str, Any]) -> list[str]:
    return [r.key for r in search(build(parse_experiment(exp))).records]


def test_registered_as_a_steady_state_strategy() -> None:
    assert "local_search" in STRATEGIES.list() and not STRATEGIES.get("local_search").generational


@pytest.mark.parametrize("space", ["nb201", "chain", "mlp"])
def test_a_run_spends_its_budget_on_new_architectures(space: str) -> None:
    result = search(build(parse_experiment(experiment(space, budget=24))))
    keys = [r.key for r in result.records]
    assert len(keys) == 24 and len(set(keys)) == 24
    assert all(r.status == "ok" for r in result.records)
    assert result.strategy.expected_evaluations() == 24
    assert len(result.strategy.logbook) >= 1 and len(result.strategy.hall_of_fame) >= 1
    assert result.strategy.hall_of_fame[0].fitness.values[0] == max(r.fitness[0] for r in result.records)


def test_same_seed_same_keys_other_seed_differs() -> None:
    a = run_keys(experiment(budget=20))
    assert a == run_keys(experiment(budget=20))
    assert a != run_keys(experiment(budget=20, seed=4))


def test_extending_a_run_by_budget_equals_the_longer_run(tmp_path: Path) -> None:
    short = tmp_path / "short"
    Run(parse_experiment(experiment(budget=13)), short, progress=False).execute()
    Run.resume(short, progress=False, overrides={"budget": 31}).continue_run()
    assert journal_keys(short) == run_keys(experiment(budget=31))


def test_resume_is_exact_when_results_arrive_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two results per wait(), the later first; with three ops the walk moves and restarts within 40 evaluations."""
    from evonas.engine import runner

    monkeypatch.setattr(runner, "make_backend", lambda exp, workers=None, context=None, log=None: _TogetherBackend(exp, context))
    space = {"name": "nb201", "params": {"ops": ["skip_connect", "nor_conv_3x3", "avg_pool_3x3"]}}
    # cache off: served from the cache the full run filled, the short run's results would arrive in another order
    # (aging and surrogate then fail this check the same way)
    full, short = tmp_path / "full", tmp_path / "short"
    Run(parse_experiment(conv_count(space=space, budget=40, cache=False)), full, progress=False).execute()
    Run(parse_experiment(conv_count(space=space, budget=12, cache=False)), short, progress=False).execute()  # even
    Run.resume(short, progress=False, overrides={"budget": 40}).continue_run()
    assert journal_keys(short) == journal_keys(full)
    for name in ("population.json", "hall_of_fame.json", "logbook.json", "best.json"):
        assert json.loads((short / name).read_text()) == json.loads((full / name).read_text()), name


def _walk(exp: dict[str, Any]) -> tuple[list[Any], Any]:
    """The records of a one-worker run and its strategy."""
    result = search(build(parse_experiment(exp)))
    return result.records, result.strategy


def test_neighbours_are_one_change_away_and_moves_only_improve() -> None:
    space = make_space("nb201")
    records, strategy = _walk(conv_count(budget=60))
    by_key = {r.key: r for r in records}
    assert [r.origin for r in records[:4]] == ["sample"] * 4
    centre = max(records[:4], key=lambda r: r.fitness[0])  # the first of the best starts the walk
    for r in records[4:]:
        if r.origin == "sample":
            break  # a restart: checked in the next test
        assert r.origin == "neighbour" and r.parents == (centre.key,)
        parent = space.from_dict(by_key[centre.key].genome)
        child = space.from_dict(r.genome)
        assert sum(a != b for a, b in zip(parent.edges, child.edges)) == 1
        if r.fitness[0] > centre.fitness[0]:
            centre = r  # first improvement: the walk moves at once
    assert strategy.current is not None


def test_a_used_up_neighbourhood_restarts_from_new_samples() -> None:
    """Two ops: 64 cells, and the optimum (all convolutions) is found quickly; its neighbourhood runs out."""
    space = {"name": "nb201", "params": {"ops": ["skip_connect", "nor_conv_3x3"]}}
    records, strategy = _walk(conv_count(params={"initial_samples": 3}, space=space, budget=40))
    assert max(r.fitness[0] for r in records) == pytest.approx(6 / 7)
    assert strategy.restarts >= 1
    first_restart = next(i for i, r in enumerate(records) if i >= 3 and r.origin == "sample")
    best_before = max(r.fitness[0] for r in records[:first_restart])
    assert best_before == pytest.approx(6 / 7)  # a restart only ever follows a local optimum
    assert len({r.key for r in records}) == len(records)


def test_without_a_categorical_view_neighbours_are_mutations(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_view(self: NB201Space) -> Any:
        raise NotImplementedError

    monkeypatch.setattr(NB201Space, "categorical", no_view)
    records, _ = _walk(conv_count(budget=30))
    assert len({r.key for r in records}) == 30
    assert {r.origin for r in records[4:]} <= {"mutation:nb201_change_edge", "sample"}
    assert any(r.origin == "mutation:nb201_change_edge" for r in records)


@pytest.mark.parametrize(
    "params,message",
    [
        ({"initial_samples": 0}, "initial_samples: expected an integer >= 1"),
        ({"mutations": 0}, "mutations: expected an integer >= 1"),
        ({"samples": 0}, "samples: expected an integer >= 1"),
    ],
)
def test_bad_params_are_one_line_errors_naming_the_param(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(parse_experiment(experiment(params=params)))


def test_beats_random_sampling_on_a_learnable_objective() -> None:
    """As for the other strategies (tests/test_strategies.py): default settings, 100 evaluations, 6 seeds."""
    seeds = range(6)
    random_mean = statistics.mean(best_found("random", {"samples": 100}, s) for s in seeds)
    mean = statistics.mean(best_found("local_search", {}, s) for s in seeds)
    assert mean > random_mean + 0.5 / 7, (mean * 7, random_mean * 7)
