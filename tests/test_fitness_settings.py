"""A fitness's settings (the evaluation cache's key) are the arguments its constructor got, wherever it keeps them."""

from __future__ import annotations

from typing import Any

import pytest

from evonas.fitness import FITNESSES, FitnessFunction


class KeepsItsOwnAttribute(FitnessFunction):
    needs_dataset = False

    def __init__(self, *, scale: float = 1.0, label: str = "a") -> None:
        self.scale = scale  # not in self.params: the README's plug-in style
        self.label = label

    def evaluate(self, genome: Any, *, space: Any, dataset: Any, seed: int) -> dict[str, float]:
        return {"score": self.scale}


class Child(KeepsItsOwnAttribute):
    def __init__(self, *, scale: float = 1.0, depth: int = 2) -> None:
        super().__init__(scale=scale)
        self.depth = depth


def test_settings_are_the_constructor_arguments_with_defaults() -> None:
    assert KeepsItsOwnAttribute().settings() == {"scale": 1.0, "label": "a"}
    assert KeepsItsOwnAttribute(scale=2.0).settings() == {"scale": 2.0, "label": "a"}
    assert Child(depth=5).settings() == {"scale": 1.0, "depth": 5}


def test_two_settings_are_two_problems_for_the_cache(tmp_path) -> None:
    from evonas.config import parse_experiment
    from evonas.engine.build import build
    from evonas.engine.cache import problem_fingerprint

    name = "keeps_its_own_attribute"
    if name not in FITNESSES:
        FITNESSES.add(name, KeepsItsOwnAttribute)

    def fingerprint(scale: float) -> str:
        exp = parse_experiment({"space": {"name": "nb201"}, "fitness": {"name": name, "params": {"scale": scale}},
                                "objectives": [{"metric": "score"}], "workers": 0})  # fmt: skip
        return problem_fingerprint(build(exp))

    assert fingerprint(1.0) != fingerprint(2.0)
    assert fingerprint(2.0) == fingerprint(2.0)


@pytest.mark.parametrize("name", ["train", "toy", "nb201_table"])
def test_built_ins_keep_their_checked_signatures(name: str) -> None:
    import inspect

    cls = FITNESSES.get(name)
    assert "self" in inspect.signature(cls.__init__).parameters
    assert cls().settings()  # every built-in has settings
