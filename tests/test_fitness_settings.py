"""A fitness's settings (the evaluation cache's key) are the arguments its constructor got, wherever it keeps them."""

from __future__ import annotations

import sys
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


def test_the_precision_amp_auto_resolves_to_is_part_of_the_problem(monkeypatch) -> None:
    """bf16 on one CPU and fp32 on another (or under ONEDNN_MAX_CPU_ISA=AVX2) are two problems for the cache."""
    import evonas.fitness.device as device
    from evonas.config import parse_experiment
    from evonas.engine.build import build
    from evonas.engine.cache import problem_fingerprint

    exp = parse_experiment({"space": {"name": "mlp"}, "dataset": {"name": "synthetic"},
                            "fitness": {"name": "train", "params": {"device": "cpu"}}, "workers": 0})  # fmt: skip
    built = build(exp)
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    kernels = device.cpu_kernels()
    assert built.fitness.runtime() == {"device": "cpu", "precision": "bfloat16", "kernels": kernels}
    with_bf16 = problem_fingerprint(built)
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    assert built.fitness.runtime() == {"device": "cpu", "precision": "fp32", "kernels": kernels}
    fp32 = problem_fingerprint(built)
    assert fp32 != with_bf16
    # fp32 on other kernels (another CPU, or oneDNN capped) differs in the last digits: another problem too
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert built.fitness.runtime()["kernels"] == f"{kernels}/oneDNN AVX2"
    assert problem_fingerprint(built) != fp32
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setattr(device.torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert built.fitness.runtime()["kernels"] == "avx2" and (problem_fingerprint(built) != fp32) == (kernels != "avx2")
    assert FITNESSES.get("toy")().runtime() == {}  # a fitness without one keeps the fingerprint it had


@pytest.mark.parametrize("name", ["train", "toy", "nb201_table"])
def test_built_ins_keep_their_checked_signatures(name: str) -> None:
    import inspect

    cls = FITNESSES.get(name)
    assert "self" in inspect.signature(cls.__init__).parameters
    assert cls().settings()  # every built-in has settings


PLUGIN = '''
from evonas.fitness import FITNESSES, FitnessFunction


@FITNESSES.register("scaled_score")
class ScaledScore(FitnessFunction):
    needs_dataset = False
    metrics = ("score",)

    def __init__(self, *, scale: float = 1.0) -> None:
        self._factor = scale  # its own attribute name, as a user may write it

    def evaluate(self, genome, *, space, dataset, seed):
        return {"score": len(space.key(genome)) * self._factor + OFFSET}


OFFSET = 0
'''


def _scores(folder: Any) -> list[tuple[float, int]]:
    import json
    import sqlite3

    with sqlite3.connect(folder / "journal.sqlite") as db:
        rows = db.execute("SELECT metrics, cached FROM evaluations ORDER BY trial").fetchall()
    return [(json.loads(m)["score"], c) for m, c in rows]


def test_one_cache_never_shares_results_between_settings_or_versions_of_a_plugin(tmp_path, monkeypatch) -> None:
    """Runs of a plug-in fitness through one cache file: a second setting trains everything again, the same setting
    again trains nothing, and after the plug-in's code changes its old results are not reused."""
    import yaml

    from evonas.cli import main

    monkeypatch.setenv("EVONAS_CACHE", str(tmp_path / "cache.sqlite"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scaled.py").write_text(PLUGIN)

    def run(name: str, scale: float) -> list[tuple[float, int]]:
        exp = {"name": name, "seed": 0, "plugins": ["scaled.py"], "space": {"name": "nb201"},
               "fitness": {"name": "scaled_score", "params": {"scale": scale}}, "objectives": [{"metric": "score"}],
               "strategy": {"name": "random", "params": {"samples": 6, "batch": 3}}, "workers": 0}  # fmt: skip
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(exp))
        assert main(["run", f"{name}.yaml", "--out", name, "--quiet"]) == 0
        return _scores(tmp_path / name)

    try:
        one = run("one", 1.0)
        two = run("two", 2.0)
        again = run("again", 1.0)
        assert [c for _, c in one] == [0] * 6 and [c for _, c in two] == [0] * 6  # nothing shared between settings
        assert [s for s, _ in two] == [2 * s for s, _ in one]
        assert again == [(s, 1) for s, _ in one]  # the same setting: every result from the cache
        (tmp_path / "scaled.py").write_text(PLUGIN.replace("OFFSET = 0", "OFFSET = 100"))
        sys.modules.pop("scaled", None)  # as a new process would, import the edited file
        FITNESSES._items.pop("scaled_score", None)
        edited = run("edited", 1.0)
        assert [c for _, c in edited] == [0] * 6 and [s for s, _ in edited] == [s + 100 for s, _ in one]
    finally:
        FITNESSES._items.pop("scaled_score", None)


def test_bf16_emulated_on_this_cpu_is_warned(monkeypatch, capsys) -> None:
    import evonas.fitness.device as device
    from evonas.config import parse_experiment
    from evonas.engine.build import build

    exp = parse_experiment({"space": {"name": "mlp"}, "dataset": {"name": "synthetic"}, "workers": 0,
                            "fitness": {"name": "train", "params": {"device": "cpu", "amp": "bf16"}}})  # fmt: skip
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    build(exp)
    assert "fitness.params.amp: bf16 on a CPU without native bf16 (AVX512-BF16 or AMX): torch emulates it" \
        in capsys.readouterr().err
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    build(exp)
    assert "without native bf16" not in capsys.readouterr().err
