"""Every registered component meets its contract (parametrised over the registries, so new ones are covered)."""

from __future__ import annotations


import math
from typing import Any

import pytest
import yaml

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


@pytest.fixture
def broken_spaces():
    """The spaces of tests/plugins/broken_spaces.py, registered for one test and unregistered after it."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "plugins"))
    import broken_spaces

    try:
        yield broken_spaces
    finally:
        sys.path.remove(str(Path(__file__).parent / "plugins"))
        for name in broken_spaces.NAMES:
            SPACES._items.pop(name, None)
        MUTATIONS._items.pop("tiny_flip", None)
        sys.modules.pop("broken_spaces", None)


@pytest.mark.parametrize("name, message", [
    ("tiny_lossy", "the JSON round trip changed it (act: 'tanh' -> 'relu')"),
    ("tiny_random_decode", "decode() gave two different networks for one genome"),
    ("tiny_random_activation", "decode() gave two different networks for one genome ("),
    ("tiny_global_random", "sample() must depend only on rng"),
    ("tiny_bad_categorical", "from_categorical(to_categorical(genome)) gave other indices (width: "),
    ("tiny_invalid_options", "gave a genome the space refuses"),
    ("tiny_categorical_raises", "raised IndexError: tuple index out of range at broken_spaces.py:"),
    ("tiny_bad_size", "all_genomes() lists 6 distinct genomes, size says 7"),
    ("tiny_silent_to_dict", "the JSON round trip changed it (act: "),
    ("tiny_raising_decode", "decode() raised RuntimeError: shape mismatch in my head at broken_spaces.py:"),
    ("tiny_keyerror_from_dict", "the JSON round trip raised KeyError: 'act' at broken_spaces.py:"),
])  # fmt: skip
def test_check_space_names_what_a_space_gets_wrong(broken_spaces, name: str, message: str) -> None:
    with pytest.raises(AssertionError) as caught:
        check_space(make_space(name), n=30, num_classes=3)
    assert message in str(caught.value), str(caught.value)
    check_space(make_space("tiny_ok"), n=30, num_classes=3)  # the same space without the fault passes


@pytest.mark.parametrize("name, message", [
    ("tiny_lossy", "the JSON round trip changed it (act: 'tanh' -> 'relu')"),
    ("tiny_random_decode", "decode() gave two different networks for one genome"),
    ("tiny_global_random", "sample() gave other genomes for the same rng"),
    ("tiny_keyerror_from_dict", "the JSON round trip raised KeyError: 'act'"),
    ("tiny_bad_categorical", "from_categorical(to_categorical(genome)) gave other indices (width: "),
])  # fmt: skip
def test_a_run_on_a_plug_in_space_breaking_its_contract_is_refused(broken_spaces, name, message, write_experiment,
                                                                     tmp_path, capsys) -> None:  # fmt: skip
    """Silent wrong results otherwise (a best.json of another genome than its key's, the size of another network,
    a resume that cannot replay): refused in one line before a run folder exists."""
    from evonas.cli import main

    exp = write_experiment({
        "name": "broken", "plugins": [broken_spaces.__file__], "space": {"name": name},
        "dataset": {"name": "synthetic", "params": {"n_samples": 60, "shape": [6], "num_classes": 3}},
        "fitness": {"name": "train", "params": {"epochs": 1, "amp": "off"}},
        "strategy": {"name": "random", "params": {"samples": 2}}, "workers": 0, "cache": False,
    })  # fmt: skip
    assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"space: plug-in space '{name}': " in err[0] and message in err[0], err
    assert not (tmp_path / "run").exists()
    if name in ("tiny_lossy", "tiny_global_random"):  # with a fitness that reads no data (toy) too
        config = yaml.safe_load(exp.read_text())
        config.update(fitness={"name": "toy"}, objectives=[{"metric": "val_acc"}])
        exp.write_text(yaml.safe_dump(config))
        assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 2
        assert message in capsys.readouterr().err


def test_a_space_without_mutations_runs_the_strategies_that_never_mutate(broken_spaces, write_experiment, tmp_path,
                                                                           capsys) -> None:  # fmt: skip
    """random, grid and reinforce never call a mutation: a plug-in space with none runs them; ga is refused in one
    line saying what to do. A genome the space's own categorical view makes invalid is blamed on the space."""
    from evonas.cli import main

    def experiment(space: str, strategy: dict) -> Any:
        return write_experiment({
            "name": "nomut", "plugins": [broken_spaces.__file__], "space": {"name": space},
            "dataset": {"name": "synthetic", "params": {"n_samples": 60, "shape": [6], "num_classes": 3}},
            "fitness": {"name": "train", "params": {"epochs": 1, "amp": "off"}},
            "strategy": strategy, "workers": 0, "cache": False, "budget": 6,
        })  # fmt: skip

    for i, strategy in enumerate(({"name": "random", "params": {"samples": 3}}, {"name": "grid"}, {"name": "reinforce"})):
        assert main(["run", str(experiment("tiny_ok", strategy)), "--out", str(tmp_path / f"r{i}"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["run", str(experiment("tiny_ok", {"name": "ga"})), "--out", str(tmp_path / "ga"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "mutations: no mutation operator for space 'tiny_ok'; strategy 'ga' mutates" in err[0], err
    for strategy in ("reinforce", "grid"):  # a strategy that cannot search the space: its name, not its parameters
        assert main(["run", str(experiment("tiny_no_views", {"name": strategy})), "--out", str(tmp_path / "n"),
                     "--quiet"]) == 2  # fmt: skip
        err = capsys.readouterr().err
        assert f"strategy.name: strategy '{strategy}'" in err, err
    code = main(["run", str(experiment("tiny_invalid_options", {"name": "reinforce"})), "--out", str(tmp_path / "x"),
                 "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    if code == 2:  # the start-up check drew an index of the invalid option (it draws a few, seeded)
        assert "from_categorical([" in err and "gave a genome the space refuses" in err, err
    else:  # it did not: the genome reinforce made of it is blamed on the space's code
        assert code == 1 and "strategy 'reinforce' proposed an invalid genome" in err
        assert "came from the code of the plug-in space 'tiny_invalid_options'" in err, err



def test_cxpb_on_a_space_without_crossover_is_said(broken_spaces, write_experiment, tmp_path, capsys) -> None:
    from evonas.cli import main

    exp = write_experiment({
        "name": "cx", "plugins": [broken_spaces.__file__], "space": {"name": "tiny_mutable"},
        "dataset": {"name": "synthetic", "params": {"n_samples": 60, "shape": [6], "num_classes": 3}},
        "fitness": {"name": "train", "params": {"epochs": 1, "amp": "off"}}, "workers": 0, "cache": False,
        "strategy": {"name": "ga", "params": {"population_size": 2, "offspring": 2, "generations": 1, "cxpb": 1.0,
                                              "mutpb": 0.0, "elitism": 0}},
    })  # fmt: skip
    assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert ("strategy.params.cxpb: 1, but space 'tiny_mutable' has no crossover operator: those children are made "
            "by mutation") in capsys.readouterr().err  # fmt: skip


def test_an_invalid_genome_a_built_in_strategy_made_from_a_plug_in_space_blames_the_space(broken_spaces) -> None:
    import random

    from evonas.config import Objective
    from evonas.evolution import Variation
    from evonas.strategies import STRATEGIES, SearchContext

    space = make_space("tiny_invalid_options")
    ctx = SearchContext(space, Variation.default(space, required=False), (Objective("val_acc", "max"),), random.Random(0))
    strategy = STRATEGIES.get("reinforce")(ctx)
    with pytest.raises(ValueError) as caught:
        strategy.candidate(space.from_categorical([3, 0]), "policy")  # width 999: the space's own option
    message = str(caught.value)
    assert message.startswith("strategy 'reinforce' proposed an invalid genome: expected a width in (4, 8, 16)")
    assert "came from the code of the plug-in space 'tiny_invalid_options': its sample(), from_categorical()" in message


def test_an_empty_crossovers_list_turns_crossover_off(write_experiment) -> None:
    """`crossovers: []` is none, not the space's defaults (which leaving the key out takes)."""
    from evonas.config import load_experiment
    from evonas.engine.build import build, resolved_experiment

    from conftest import toy_experiment

    off = build(load_experiment(write_experiment(toy_experiment(crossovers=[]), name="off")))
    assert not off.variation.crossovers and off.variation.mutations
    assert resolved_experiment(off)["crossovers"] == []
    assert build(load_experiment(write_experiment(toy_experiment(), name="on"))).variation.crossovers
