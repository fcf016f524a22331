"""Define-by-run spaces (``function``): a network written as one function whose choices live in loops and branches.

Sampling, validation, canonical keys, JSON, decoding, the mutations and crossover (conditional choices dropped
and drawn as the function asks them), the categorical view and enumeration, the two example spaces, and every
registered strategy searching a space with conditional choices through the engine.
"""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn as nn

import evonas.operators.function as ops  # registers the operators of the space
from evonas.config import load_experiment, parse_experiment
from evonas.engine.build import build
from evonas.engine.runner import Run, search
from evonas.spaces import SPACES, InvalidGenome
from evonas.spaces.encoding import neighbours
from evonas.spaces.function import ArchGenome, ChoiceError, FunctionSpace  # registers the space
from evonas.strategies import STRATEGIES
from evonas.testing import check_crossover, check_mutation, check_space
from test_strategies import PARAMS  # small settings per strategy; the run's budget of 12 bounds them here

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "experiments"
if str(EXPERIMENTS) not in sys.path:
    sys.path.insert(0, str(EXPERIMENTS))


def small_build(arch: Any, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A finite space with conditional choices: ``width_i`` for i < depth, ``skip`` only at depth 3."""
    depth = arch.int("depth", 1, 3)
    act = nn.ReLU if arch.choice("act", ["relu", "tanh"]) == "relu" else nn.Tanh
    layers: list[nn.Module] = [nn.Flatten()]
    n = math.prod(input_shape)
    for i in range(depth):
        width = arch.choice(f"width_{i}", [4, 8])
        layers += [nn.Linear(n, width), act()]
        n = width
    if depth >= 3 and arch.choice("skip", [False, True]):
        layers.append(nn.Identity())
    layers.append(nn.Linear(n, num_classes))
    arch.choice("lr", [0.001, 0.01])
    return nn.Sequential(*layers)


def float_build(arch: Any, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """``small_build`` with numbers: a log-scale learning rate, dropout, and a kernel that exists only at depth 3."""
    net = small_build(arch, input_shape, num_classes)
    arch.float("dropout", 0.0, 0.5)
    arch.float("wd", 1e-5, 1e-2, log=True)
    arch.int("units", 8, 256, step=8)
    if arch.int("depth", 1, 3) >= 3:
        arch.choice("kernel_3", [3, 5])
    arch.choice("optimizer", ["adam", "sgd"])
    return net


def space_of(fn: Any = float_build) -> FunctionSpace:
    return FunctionSpace(build=fn, input_shape=[6], num_classes=3)


def test_sample_validate_keys_json_and_decode() -> None:
    space = space_of()
    check_space(space, n=40)
    rng = random.Random(1)
    for _ in range(40):
        g = space.sample(rng=rng)
        names = set(g.names())
        depth = g["depth"]
        assert {f"width_{i}" for i in range(depth)} <= names and not {f"width_{i}" for i in range(depth, 3)} & names
        assert ("kernel_3" in names) == (depth >= 3) and ("skip" in names) == (depth >= 3)
        data = json.loads(json.dumps(space.to_dict(g)))
        assert data == space.to_dict(g) and space.from_dict(data) == g  # floats kept exactly
        assert type(data["dropout"]) is float and 1e-5 <= data["wd"] <= 1e-2
    assert space.hparams(g) == {"lr": g["lr"], "optimizer": g["optimizer"]}
    net = space.decode(g, input_shape=(6,), num_classes=3)
    assert all(p.device.type == "cpu" for p in net.parameters())
    assert space.cost_metrics(g, input_shape=(6,), num_classes=3)["params"] == sum(p.numel() for p in net.parameters())


def test_validation_names_the_choice() -> None:
    space = space_of()
    g = space.normalise({"depth": 2}, rng=random.Random(0))
    values = g.as_dict()
    with pytest.raises(InvalidGenome, match="kernel_3: inactive"):
        space.validate(ArchGenome.of({**values, "kernel_3": 3}))
    with pytest.raises(InvalidGenome, match="width_1: missing"):
        space.validate(ArchGenome.of({k: v for k, v in values.items() if k != "width_1"}))
    with pytest.raises(InvalidGenome, match="width_0=5 is not one of"):
        space.validate(ArchGenome.of({**values, "width_0": 5}))
    with pytest.raises(InvalidGenome, match="dropout=0.7 is outside"):
        space.from_dict({**values, "dropout": 0.7})
    with pytest.raises(InvalidGenome, match="units=12 is not an int from 8 to 256, step=8"):
        space.from_dict({**values, "units": 12})
    with pytest.raises(InvalidGenome, match="depthh: not a choice of the function"):
        space.from_dict({**values, "depthh": 2})


def test_genomes_differing_only_in_inactive_choices_share_a_key() -> None:
    space = space_of()
    g = space.normalise({"depth": 1}, rng=random.Random(0))
    padded = {**g.as_dict(), "width_1": 8, "width_2": 4, "kernel_3": 5, "skip": True}
    assert space.from_dict(padded) == g  # inactive choices are dropped on the way in
    assert space.key(ArchGenome.of(padded)) == space.key(g)
    assert space.canonical(ArchGenome.of(padded)) == g
    other = space.from_dict({**g.as_dict(), "kernel_3": 3})
    assert space.key(other) == space.key(g) and space.encode(other) == space.encode(g)


def test_a_depth_mutation_drops_inactive_choices_and_draws_the_new_ones() -> None:
    space = space_of()
    rng = random.Random(0)
    grown = 0
    drawn: set[tuple[tuple[str, Any], ...]] = set()
    for _ in range(300):
        parent = space.normalise({"depth": 1}, rng=rng)
        child = ops.FunctionChangeOne()(parent, space=space, rng=rng)
        space.validate(child)
        if child["depth"] == 1:
            continue
        grown += 1
        depth = child["depth"]
        assert set(child.names()) == {n for n, _, _ in space.active_choices(child)}
        assert {f"width_{i}" for i in range(depth)} <= set(child.names())
        assert all(child[n] == parent[n] for n in parent.names() if n != "depth")  # one change, nothing else
        drawn.add(tuple((n, child[n]) for n in sorted(set(child.names()) - set(parent.names()))))
        if depth == 3:
            shrunk = space.normalise({**child.as_dict(), "depth": 1}, rng=rng)
            assert set(shrunk.names()) == set(parent.names()) and space.is_valid(shrunk)
    assert grown > 10 and len(drawn) > 3  # the newly active choices are drawn from the space, not fixed


def test_the_operators_pass_their_contracts() -> None:
    space = space_of()
    check_mutation(ops.FunctionChangeOne(), space, n=60)
    check_mutation(ops.FunctionChangeFew(), space, n=60)
    check_crossover(ops.FunctionUniform(), space, n=60)
    rng = random.Random(2)
    a, b = space.normalise({"depth": 1}, rng=rng), space.normalise({"depth": 3}, rng=rng)
    for _ in range(20):
        c, d = ops.FunctionUniform()(a, b, space=space, rng=rng)
        for child in (c, d):
            assert all(child[n] in (a.get(n), b.get(n)) for n in child.names() if n in a or n in b)


def refusing_build(arch: Any, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """``small_build`` that refuses tanh at depth 3, as the guide says to: ``raise InvalidGenome``."""
    net = small_build(arch, input_shape, num_classes)
    if arch.int("depth", 1, 3) == 3 and arch.choice("act", ["relu", "tanh"]) == "tanh":
        raise InvalidGenome("tanh is not supported at depth 3")
    return net


def test_a_combination_the_function_refuses_is_drawn_again_not_an_operator_fault() -> None:
    """The operators' children are replayed through the function: a refusal is one try of the operator, not its
    fault. Before, ``function_change_few`` raised InvalidGenome in about 1 of 9 calls here (a fault, and the end
    of a ``strict`` run)."""
    space = space_of(refusing_build)
    check_mutation(ops.FunctionChangeOne(), space, n=150)
    check_mutation(ops.FunctionChangeFew(), space, n=150)
    check_crossover(ops.FunctionUniform(), space, n=150)
    exp = parse_experiment({
        "name": "refuse", "fitness": {"name": "toy"}, "workers": 0, "cache": False, "strict": True,
        "space": {"name": "function", "params": {"build": f"{__name__}:refusing_build", "input_shape": [6],
                                                 "num_classes": 3}},
        "strategy": {"name": "ga", "params": {"population_size": 8, "offspring": 8, "generations": 6, "cxpb": 0.4,
                                              "mutpb": 0.6}},
    })  # fmt: skip
    built = build(exp)
    records = search(built).records
    assert len(records) > 8 and built.variation.faults == 0, built.variation.operator_stats()
    assert all(not (r.genome["depth"] == 3 and r.genome["act"] == "tanh") for r in records if r.status == "ok")


def test_a_name_asked_twice() -> None:
    def same(arch: Any, input_shape: Any, num_classes: int) -> nn.Module:
        assert arch.choice("w", [4, 8]) == arch.choice("w", [4, 8])
        return nn.Linear(6, arch.choice("w", [4, 8]))

    def clash(arch: Any, input_shape: Any, num_classes: int) -> nn.Module:
        arch.choice("w", [4, 8])
        return nn.Linear(6, arch.int("w", 1, 9))

    assert space_of(same).sample(rng=random.Random(0)).names() == ("w",)
    with pytest.raises(ChoiceError, match=r"^choice 'w': asked as a choice of \[4, 8\], then as an int from 1 to 9"):
        space_of(clash).sample(rng=random.Random(0))


def test_a_function_that_needs_real_tensors_is_run_on_the_cpu() -> None:
    def sized(arch: Any, input_shape: Any, num_classes: int) -> nn.Module:
        features = nn.Sequential(nn.Flatten(), nn.Linear(6, arch.choice("w", [4, 8])))
        n = int(features(torch.zeros(1, *input_shape)).sum().item() * 0) + features[1].out_features
        return nn.Sequential(features, nn.Linear(n, num_classes))

    space = space_of(sized)
    check_space(space, n=5)
    assert space._device == "cpu"


def test_categorical_view_and_enumeration() -> None:
    space = space_of(small_build)
    names = [c.name for c in space.categorical()]
    assert names[:2] == ["depth", "act"] and {"width_2", "skip"} <= set(names)
    assert space.size == 4 * (2 + 4 + 16) and len({space.key(g) for g in space.all_genomes()}) == space.size
    rng = random.Random(0)
    for _ in range(30):
        g = space.sample(rng=rng)
        values = space.to_categorical(g)
        assert space.from_categorical(values) == g
        active = space.categorical_active(values)
        assert {n for n, on in zip(names, active) if on} == set(g.names())
        assert all(space.is_valid(n) for n in neighbours(space, g))
    floats = space_of()
    assert floats.size is None  # a float choice: infinite, no grid
    choices = {c.name: c.options for c in floats.categorical()}
    assert {"kernel_3", "width_2"} <= set(choices) and len(choices["dropout"]) == 8
    assert choices["wd"][0] == 1e-5 and choices["wd"][-1] == 1e-2 and len(choices["units"]) == 8
    g = floats.sample(rng=rng)
    assert len(floats.encode(g)) == sum(len(o) for o in choices.values()) + 4  # one-hot, then depth, units, dropout, wd
    assert floats.is_valid(floats.from_categorical(floats.to_categorical(g)))


def stepped_build(arch: Any, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    arch.float("dropout", 0.0, 0.55, step=0.1)  # 0.0, 0.1, ..., 0.5: the high is lowered to the last step
    arch.suggest_float("momentum", 0.5, 0.9, step=0.05)  # Optuna's name and keyword
    return nn.Sequential(nn.Flatten(), nn.Linear(6, num_classes))


def test_a_float_an_operator_sets_is_kept_to_3_significant_digits() -> None:
    """A plug-in operator's ``dropout * 1.000001`` through ``normalise`` (or a stored genome read by ``from_dict``) was
    kept with all its digits: a genome a hair from another got another key, so repeats were trained again."""
    space = space_of(float_build)
    genome = space.sample(rng=random.Random(0))
    values = space.to_dict(genome)
    for name in ("dropout", "wd"):
        nudged = {**values, name: values[name] * 1.000001}
        for again in (space.normalise(nudged, rng=random.Random(1)), space.from_dict(nudged)):
            assert space.to_dict(again)[name] == values[name] and space.key(again) == space.key(genome)
    with pytest.raises(InvalidGenome, match=r"dropout=0\.9 is outside"):  # out of range: refused, not clipped
        space.from_dict({**values, "dropout": 0.9})


def test_a_float_with_a_step_takes_only_its_steps() -> None:
    """``arch.float(..., step=)`` (Optuna's ``suggest_float(step=)``): draws, mutations, the grid and validation
    keep to low + k * step, written as 0.3 rather than 0.30000000000000004."""
    from evonas.spaces.function import FloatStep

    space = space_of(stepped_build)
    check_space(space, n=20)
    dropouts = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    momenta = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9]
    assert space.size == len(dropouts) * len(momenta)  # finite: grid searches it
    assert sorted({g["dropout"] for g in space.all_genomes()}) == dropouts
    assert sorted({g["momentum"] for g in space.all_genomes()}) == momenta
    dist = FloatStep(0.5, 0.9, 0.05)
    rng = random.Random(0)
    value = dist.draw(rng)
    for _ in range(200):
        moved = dist.mutate(value, rng)
        assert moved in momenta and moved != value and dist.problem(moved) is None
        value = moved
    assert {dist.draw(rng) for _ in range(300)} == set(momenta)
    assert dist.problem(0.52) == "is not a float from 0.5 to 0.9, step=0.05" and dist.problem(0.95) is not None
    with pytest.raises(InvalidGenome, match=r"dropout=0\.15 is not a float from 0\.0 to 0\.5, step=0\.1"):
        space.from_dict({"dropout": 0.15, "momentum": 0.5})
    assert space.from_dict({"dropout": 0, "momentum": 0.6})["dropout"] == 0.0  # 0 as JSON may store it

    def bad(step: Any, log: bool = False) -> Any:
        def fn(arch: Any, input_shape: Any, num_classes: int) -> nn.Module:
            arch.float("lr", 0.001, 0.1, step=step, log=log)
            return nn.Linear(6, num_classes)
        return fn

    with pytest.raises(ChoiceError, match=r"^float 'lr': step must be a finite number > 0 \(or None\), got 0 at "
                                          r"test_define_by_run\.py:\d+$"):  # the line of the build function that asked
        space_of(bad(0)).sample(rng=rng)
    with pytest.raises(ChoiceError, match=r"^float 'lr': step and log=True cannot be used together"):
        space_of(bad(0.01, log=True)).sample(rng=rng)


def test_the_examples_pass_check_space() -> None:
    import cnn_space
    import mlp_space  # noqa: F401  (a build function is named by its module once the module is imported)

    cnn = FunctionSpace(build=cnn_space.build, input_shape=[1, 8, 8], num_classes=10)
    check_space(cnn, n=25)
    check_space(FunctionSpace(build="mlp_space:build", input_shape=[13], num_classes=3), n=25)
    names = {c.name for c in cnn.categorical()}
    assert {"width_3", "kernel_3", "pool_2", "head", "dropout", "lr", "optimizer", "batch_size"} <= names


def test_the_example_experiment_builds_with_the_space_s_own_operators() -> None:
    exp = load_experiment(EXPERIMENTS / "cnn_search.yaml")
    built = build(exp)
    # the data's shape is the space's, written into the run's space parameters (config.yaml, workers, resume)
    assert exp.space.params["input_shape"] == [1, 8, 8] and exp.space.params["num_classes"] == 10
    assert built.space.input_shape == (1, 8, 8)
    assert isinstance(built.space, FunctionSpace) and SPACES.get("function") is FunctionSpace
    assert {op.name for op, _ in built.variation.mutations} == {"function_change_one", "function_change_few"}
    assert [op.name for op, _ in built.variation.crossovers] == ["function_uniform"]


def test_bad_parameters_are_one_line() -> None:
    with pytest.raises(ValueError, match="parameter 'build' must be 'module:function'"):
        FunctionSpace(build="no_colon")
    # the space imports no code itself: the module is a plug-in the experiment lists (plugins:)
    with pytest.raises(ValueError, match="module .no_such_module_xyz. is not imported: a run imports it when the experiment lists its file under plugins:"):
        FunctionSpace(build="no_such_module_xyz:build")
    with pytest.raises(ValueError, match=r"'json' has no 'dumsp'; did you mean 'dumps?'\?$"):
        FunctionSpace(build="json:dumsp")
    with pytest.raises(ValueError, match=r"'json' has no 'nothing_like_it'$"):
        FunctionSpace(build="json:nothing_like_it")
    with pytest.raises(ValueError, match="parameter 'input_shape' is not set"):
        FunctionSpace(build=small_build).sample(rng=random.Random(0))
    space = space_of(small_build)
    assert space.check_input((6,)) is None and "input_shape is [6]" in space.check_input((1, 8, 8))


def test_a_python_function_as_build_is_named_by_its_module(tmp_path: Path, capsys) -> None:
    """From Python, ``build`` may be the function itself: the experiment (and the run's config.yaml) names it as
    ``module:function``; one that cannot be imported by its name is one line; a script's own function, named
    ``__main__:...``, says where it came from to a process that cannot import it."""
    from evonas.config import ConfigError

    def experiment(fn: Any) -> dict[str, Any]:
        return {"name": "py", "workers": 0, "fitness": {"name": "toy"}, "strategy": {"name": "random", "params": {"samples": 3}},
                "space": {"name": "function", "params": {"build": fn, "input_shape": [6], "num_classes": 3}}}  # fmt: skip

    exp = parse_experiment(experiment(small_build))
    assert exp.space.params["build"] == f"{__name__}:small_build"
    summary = Run(exp, tmp_path / "run", progress=False).execute()
    assert summary.evaluations == 3 and f"build: {__name__}:small_build" in (tmp_path / "run" / "config.yaml").read_text()

    def local(arch: Any, input_shape: Any, num_classes: int) -> nn.Module:
        return small_build(arch, input_shape, num_classes)

    for fn, what in ((local, "function 'test_a_python_function_as_build_is_named_by_its_module.<locals>.local'"),
                     (lambda arch, shape, n: small_build(arch, shape, n), "a lambda")):  # fmt: skip
        with pytest.raises(ConfigError, match="^space.params.build: " + re.escape(what) + " cannot be imported by its "
                                              "name, .* define the build function at the top level of a module"):
            parse_experiment(experiment(fn))
    with pytest.raises(ValueError, match=r"'__main__:build' is a function of the script or notebook that started the "
                                         r"run \(given to it as a Python function\), which this process cannot import"):
        FunctionSpace(build="__main__:build")


@pytest.mark.parametrize("strategy", STRATEGIES.list())
def test_every_strategy_searches_a_define_by_run_space(strategy: str) -> None:
    """``small_build`` is finite (categories and ints only), so ``grid`` runs on it too."""
    params = {"build": f"{__name__}:small_build", "input_shape": [6], "num_classes": 3}
    exp = {
        "name": "dbr", "seed": 3, "workers": 0, "budget": 12,
        "space": {"name": "function", "params": params},
        "fitness": {"name": "toy"},
        "strategy": {"name": strategy, "params": dict(PARAMS.get(strategy, {}))},
    }  # fmt: skip
    if strategy == "nsga2":
        exp["objectives"] = [{"metric": "val_acc", "direction": "max"}, {"metric": "size", "direction": "min"}]
    built = build(parse_experiment(exp))
    records = search(built).records
    space = built.space
    assert 6 <= len(records) <= 12 and all(r.status == "ok" for r in records)
    for r in records:
        genome = space.from_dict(r.genome)
        space.validate(genome)
        assert space.to_dict(genome) == r.genome and space.key(genome) == r.key  # stored with no inactive choice
        out = space.decode(genome, input_shape=(6,), num_classes=3)(torch.zeros(2, 6))
        assert tuple(out.shape) == (2, 3)


BUGGY = '''
import torch.nn as nn


def build(arch, input_shape, num_classes):
    width = arch.choice("width", [4, 8])
    if arch.choice("act", ["relu", "oops"]) == "oops":
        raise RuntimeError("forgot to handle oops")
    arch.choice("lr", [0.001, 0.01])
    return nn.Sequential(nn.Flatten(), nn.Linear(6, width), nn.ReLU(), nn.Linear(width, num_classes))


def always(arch, input_shape, num_classes):
    arch.choice("width", [4, 8])
    raise ValueError("my build is broken")


def floats(arch, input_shape, num_classes):
    arch.float("dropout", 0.0, 0.5)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, num_classes))


def conflict(arch, input_shape, num_classes):
    width = arch.choice("width", [4, 8])
    if arch.choice("deep", [False, True]):
        width = arch.choice("width", [4, 16])
    return nn.Sequential(nn.Flatten(), nn.Linear(6, width), nn.ReLU(), nn.Linear(width, num_classes))


def layers(arch, input_shape, num_classes):
    width = arch.choice("width", [4, 8])
    return [nn.Flatten(), nn.Linear(6, width), nn.ReLU(), nn.Linear(width, num_classes)]  # a list, no Sequential


def nested(arch, input_shape, num_classes):
    width = arch.choice("width", [4, 8])
    if arch.choice("deep", [False, True]):
        width = arch.choice("width2", [4, 8])
    return nn.Sequential(nn.Flatten(), nn.Linear(6, width), nn.ReLU(), nn.Linear(width, num_classes))


def sizes(arch, input_shape, num_classes):
    width = arch.choice("width", [4, 8])
    return nn.Sequential(nn.Flatten(), nn.Linear(6, width), nn.ReLU(), nn.Linear(4, num_classes))  # 4, not width


def typo_optimizer(arch, input_shape, num_classes):
    arch.choice("optimizer", ["adam", "adamm"])
    return nn.Sequential(nn.Flatten(), nn.Linear(6, num_classes))


def zero_batch(arch, input_shape, num_classes):
    arch.choice("batch_size", [0, 32])
    return nn.Sequential(nn.Flatten(), nn.Linear(6, num_classes))
'''


def _buggy_experiment(tmp_path: Path, write_experiment: Any, fn: str, strategy: dict[str, Any]) -> Path:
    (tmp_path / "buggy_space.py").write_text(BUGGY)
    return write_experiment({
        "name": "buggy", "seed": 0, "plugins": ["buggy_space.py"],
        "space": {"name": "function", "params": {"build": f"buggy_space:{fn}"}},
        "dataset": {"name": "synthetic", "params": {"n_samples": 60, "shape": [6], "num_classes": 3}},
        "fitness": {"name": "train", "params": {"epochs": 1}}, "strategy": strategy, "workers": 0, "cache": False,
    })  # fmt: skip


def test_a_build_function_that_raises_is_counted_and_shown_with_its_line(tmp_path: Path, write_experiment, capsys) -> None:
    from evonas.cli import main

    sys.modules.pop("buggy_space", None)
    exp = _buggy_experiment(tmp_path, write_experiment, "build", {"name": "random", "params": {"samples": 4}})
    assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    warned = [line for line in err.splitlines() if "build function" in line]
    assert len(warned) == 1 and "failed (RuntimeError: forgot to handle oops at buggy_space.py:8)" in warned[0], err
    assert "faults    build function 'buggy_space:build' failed " in out and "(first: RuntimeError" in out
    assert "count as invalid" in out and "made by another operator" not in out
    assert main(["status", str(tmp_path / "run")]) == 0
    assert "faults    build function 'buggy_space:build' failed" in capsys.readouterr().out


def test_a_layer_size_that_does_not_fit_names_the_build_function(tmp_path: Path, write_experiment) -> None:
    """Raised inside torch's layers, the error has no line of the user's: it names the function that built them."""
    sys.modules.pop("buggy_space", None)
    exp = _buggy_experiment(tmp_path, write_experiment, "sizes", {"name": "grid"})
    summary = Run(load_experiment(exp), tmp_path / "run", progress=False).execute()
    assert summary.evaluations == 2 and summary.failures == 1
    (reason, n), = summary.failure_reasons
    assert reason.startswith("RuntimeError: mat1 and mat2 shapes cannot be multiplied") and reason.endswith(
        "in the network space 'function' (buggy_space:sizes) built for this genome"), reason


def test_a_build_function_that_always_raises_is_refused_before_the_run_folder(tmp_path: Path, write_experiment, capsys) -> None:
    from evonas.cli import main

    sys.modules.pop("buggy_space", None)
    exp = _buggy_experiment(tmp_path, write_experiment, "always", {"name": "random", "params": {"samples": 4}})
    assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "space: space 'function': no valid genome" in err[0], err
    assert "ValueError: my build is broken at buggy_space.py:15" in err[0]
    assert not (tmp_path / "run").exists()
    sys.modules.pop("buggy_space", None)
    exp = _buggy_experiment(tmp_path, write_experiment, "floats", {"name": "grid"})
    assert main(["run", str(exp), "--out", str(tmp_path / "grid"), "--quiet"]) == 2
    assert "the choice 'dropout' is a float, so the space is infinite" in capsys.readouterr().err
    sys.modules.pop("buggy_space", None)
    exp = _buggy_experiment(tmp_path, write_experiment, "conflict", {"name": "random", "params": {"samples": 4}})
    assert main(["run", str(exp), "--out", str(tmp_path / "conflict"), "--quiet"]) == 2
    assert "space: choice 'width': asked as a choice of [4, 8], then as a choice of [4, 16]" in capsys.readouterr().err
    assert not (tmp_path / "conflict").exists()
    sys.modules.pop("buggy_space", None)  # a function that returns no nn.Module: the same one line, exit 2
    exp = _buggy_experiment(tmp_path, write_experiment, "layers", {"name": "random", "params": {"samples": 4}})
    assert main(["run", str(exp), "--out", str(tmp_path / "layers"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no valid genome" in err[0] and "the build function returned list, not a torch.nn.Module" in err[0]
    assert not (tmp_path / "layers").exists()


def test_a_training_hyperparameter_choice_the_fitness_cannot_train_with_is_refused_before_the_run(
    tmp_path: Path, write_experiment, capsys
) -> None:
    """``arch.choice("optimizer", ["adam", "adamm"])``: every evaluation drawing 'adamm' failed; now one line, exit 2."""
    from evonas.cli import main

    for fn, line in (("typo_optimizer", "choice 'optimizer' offers 'adamm', which fitness 'train' cannot train with "
                                        "(genome optimizer: expected one of"),
                     ("zero_batch", "choice 'batch_size' offers 0, which fitness 'train' cannot train with (genome "
                                    "batch_size: expected an integer >= 1, got 0)")):  # fmt: skip
        sys.modules.pop("buggy_space", None)
        exp = _buggy_experiment(tmp_path, write_experiment, fn, {"name": "random", "params": {"samples": 4}})
        assert main(["run", str(exp), "--out", str(tmp_path / fn), "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and line in err[0], err
        assert not (tmp_path / fn).exists()
    sys.modules.pop("buggy_space", None)


def test_a_resume_without_the_plug_in_names_the_run_folder_s_config(tmp_path: Path, write_experiment, capsys) -> None:
    from evonas.cli import main

    sys.modules.pop("buggy_space", None)
    exp = _buggy_experiment(tmp_path, write_experiment, "floats", {"name": "random", "params": {"samples": 2}})
    assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    capsys.readouterr()
    sys.modules.pop("buggy_space", None)  # a new process: the plug-in is imported only when asked
    assert main(["resume", str(tmp_path / "run"), "--budget", "3", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # the experiment resumed is the folder's copy, not the file it was started from (which may have changed since)
    assert len(err) == 1 and err[0].startswith(f"evonas: {tmp_path / 'run' / 'config.yaml'}: space.params: "), err
    assert "--plugins buggy_space.py or --trust" in err[0]
    # a mistake on the command line is the command line's, not the folder's config.yaml
    assert main(["resume", str(tmp_path / "run"), "--backend", "local", "--address", "1.2.3.4:6379", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == "evonas: --address: joins a Ray cluster; it needs the ray backend, not 'local'"
    from evonas.config import ConfigError
    from evonas.engine.runner import Run

    with pytest.raises(ConfigError) as caught:  # and a resume from Python
        Run.resume(tmp_path / "run", progress=False).continue_run()
    assert str(caught.value).startswith(f"{tmp_path / 'run' / 'config.yaml'}: space.params: ")
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "exported")]) == 2  # so does export
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"evonas: export: {tmp_path / 'run' / 'config.yaml'}: space.params: "), err


def test_the_resume_command_names_the_plug_ins() -> None:
    from evonas.runfolder import resume_command

    assert resume_command("runs/a", ["my_space.py", "ops"]) == "evonas resume runs/a --plugins my_space.py ops"
    assert resume_command("runs/a", []) == resume_command("runs/a", None) == "evonas resume runs/a"
    assert resume_command("runs/a", "damaged") == "evonas resume runs/a"


def test_check_space_fails_a_build_function_that_raises_on_some_draws() -> None:
    def buggy(arch: Any, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        net = small_build(arch, input_shape, num_classes)
        if arch.int("depth", 1, 3) == 3 and arch.choice("width_2", [4, 8]) == 8:
            raise RuntimeError("boom")
        return net

    with pytest.raises(AssertionError, match=r"build function '.*buggy' failed \d+ of \d+ calls \(first: RuntimeError: boom at test_define_by_run.py:\d+\)"):
        check_space(space_of(buggy), n=30, input_shape=(6,), num_classes=3)
    check_space(space_of(small_build), n=30, input_shape=(6,), num_classes=3)  # the same space without the bug passes


def test_check_space_catches_a_build_function_that_answers_differently_when_asked_again() -> None:
    """Random numbers of its own, or state kept between calls, make a build function refuse genomes it sampled
    (in a run: failed evaluations, and a crash writing best.json): check_space says so before a run does."""
    from evonas.spaces.function import FunctionSpace

    def drawing(arch, input_shape, num_classes):
        h = arch.choice("head", random.sample([8, 16, 32, 64], 2))
        return nn.Sequential(nn.Linear(input_shape[0], h), nn.Linear(h, num_classes))

    # caught when two samples differ, or (if the draws happen to agree there) when the sampled genome is refused
    with pytest.raises(AssertionError, match="no random numbers"):
        check_space(FunctionSpace(build=drawing, input_shape=[13], num_classes=3), n=20)
    from evonas.spaces import InvalidGenome

    def refusing(genome):  # a space whose later answers differ from its first (state, a clock, a file it reads)
        raise InvalidGenome("head=64 is not one of [8, 32]")

    space = FunctionSpace(build=lambda arch, i, n: nn.Linear(i[0], n), input_shape=[13], num_classes=3)
    space.validate = refusing
    with pytest.raises(AssertionError, match=r"genome 0: the space refused a genome it had just sampled \(head=64 is "
                                             "not one of .*no random numbers or state of its own"):
        check_space(space, n=5)
    space = FunctionSpace(build=lambda arch, i, n: nn.Linear(i[0], n), input_shape=[13], num_classes=3)
    space.decode = lambda genome, **_: refusing(genome)  # (the random draws above can agree until decode)
    with pytest.raises(AssertionError, match=r"genome 0: decode\(\) refused a genome the space had just sampled "
                                             r"\(head=64 is not one of .*no random numbers or state of its own"):
        check_space(space, n=5)


def test_a_fitness_that_reads_no_data_needs_the_shape_said_before_the_run_folder(tmp_path: Path, write_experiment,
                                                                                 capsys) -> None:
    """The ``toy`` fitness reads no data, so the space is given no input shape: one line before the run folder
    exists (it crashed the run after the folder was made, with a resume that crashed again)."""
    from evonas.cli import main

    sys.modules.pop("buggy_space", None)
    exp = _buggy_experiment(tmp_path, write_experiment, "build", {"name": "random", "params": {"samples": 4}})
    import yaml

    config = yaml.safe_load(exp.read_text())
    config["fitness"] = {"name": "toy"}
    exp.write_text(yaml.safe_dump(config))
    assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "space: space 'function': parameter 'input_shape' is not set" in err[0], err
    assert "(fitness 'toy' reads no data to take them from)" in err[0]
    assert not (tmp_path / "run").exists()


def _wrong_width(arch, input_shape, num_classes):  # the first layer's input size worked out wrong
    width = arch.choice("width", [4, 8])
    return nn.Sequential(nn.Linear(input_shape[0] + 1, width), nn.ReLU(), nn.Linear(width, num_classes))


def test_check_space_names_the_genome_whose_network_cannot_run() -> None:
    """A network that fails on the input (torch's shape error alone named no genome)."""
    with pytest.raises(AssertionError, match=r"genome 0 \(width=\d\): its network fails on a batch of input shape "
                                             r"\(2, 6\): RuntimeError: mat1 and mat2 shapes cannot be multiplied"):
        check_space(FunctionSpace(build=_wrong_width, input_shape=[6], num_classes=3), n=3)


def test_a_value_config_yaml_cannot_hold_in_a_python_mapping_is_refused_before_the_run_folder(tmp_path: Path) -> None:
    """A Python object in a dict crashed writing config.yaml (a TypeError naming no key) and left a folder (a
    function as ``build`` is named ``module:function`` instead: see above)."""
    from evonas.config import ConfigError
    from evonas.engine.runner import Run

    exp = parse_experiment({"name": "x", "seed": 0, "workers": 0, "fitness": {"name": "toy"},
                            "space": {"name": "function", "params": {"build": small_build, "input_shape": [6],
                                                                     "num_classes": 3, "note": object()}},
                            "strategy": {"name": "random", "params": {"samples": 2}}})  # fmt: skip
    with pytest.raises(ConfigError, match=r"space\.params\.note: object is not plain data, which the run's "
                                          r"config\.yaml must hold \(numbers, strings"):
        Run(exp, tmp_path / "run", progress=False).execute()
    assert not (tmp_path / "run").exists()
    with pytest.raises(TypeError, match=r"load_experiment: expected the path of an experiment file, got dict "
                                        r"\(parse_experiment reads a mapping\)"):
        load_experiment({"name": "x"})


EDITED_SPACE = '''
import torch.nn as nn


def build(arch, input_shape, num_classes):
    n = input_shape[0]
    layers = []
    for i in range(arch.int("depth", 1, 3)):
        w = arch.choice(f"width_{i}", [4, 8, 16])
        layers += [nn.Linear(n, w), nn.ReLU()]
        n = w
    return nn.Sequential(*layers, nn.Linear(n, num_classes))
'''


def test_a_resume_after_the_build_function_was_edited_says_so(tmp_path: Path) -> None:
    """A renamed choice makes the replay differ: it was blamed on a non-deterministic sample() or operator; the
    journal keeps a hash of the code the run started with, and the resume names what changed. Restored, it goes on."""
    (tmp_path / "sp.py").write_text(EDITED_SPACE)
    (tmp_path / "e.yaml").write_text(
        "name: e\nseed: 0\nplugins: [sp.py]\nspace: {name: function, params: {build: 'sp:build', input_shape: [6], "
        "num_classes: 3}}\nfitness: {name: toy}\nstrategy: {name: ga, params: {population_size: 6, generations: 2}}\n"
        "workers: 0\ncache: false\n"
    )  # fmt: skip

    def evonas(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "evonas", *args, "--quiet"], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)  # fmt: skip

    assert evonas("run", "e.yaml", "--out", "r").returncode == 0
    (tmp_path / "sp.py").write_text(EDITED_SPACE.replace('"width_', '"widht_'))
    done = evonas("resume", "r", "--generations", "3", "--plugins", "sp.py")
    assert done.returncode == 1 and done.stderr.startswith(
        "evonas: resume: the code of space 'function' (sp:build) changed since the run started, so the journal "
        "cannot be replayed (trial 0 asked for genome "), done.stderr  # fmt: skip
    assert "restore it as it was, or start over with --restart" in done.stderr and "not deterministic" not in done.stderr
    (tmp_path / "sp.py").write_text(EDITED_SPACE)
    assert evonas("resume", "r", "--generations", "3", "--plugins", "sp.py").returncode == 0


def test_show_and_best_give_the_choices_in_the_order_asked_without_the_plug_in(tmp_path: Path, write_experiment,
                                                                               capsys) -> None:
    """The journal keeps a define-by-run genome in the order the function asks (width, act, lr: not sorted), so
    ``evonas show`` and ``best`` print it so without importing the build function's module."""
    from evonas.cli import main

    sys.modules.pop("buggy_space", None)
    exp = _buggy_experiment(tmp_path, write_experiment, "build", {"name": "random", "params": {"samples": 4}})
    assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    sys.modules.pop("buggy_space", None)  # as in a new process: the module is not imported
    capsys.readouterr()
    assert main(["best", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    genome = next(line for line in out.splitlines() if line.startswith("genome"))
    assert re.match(r"genome    width=\d act=relu lr=0\.0\d+  \(key ", genome), out
    assert '{"width": ' in out and '"act": "relu", "lr": ' in out, out
    assert main(["show", str(tmp_path / "run"), "0"]) == 0
    assert re.search(r"^genome    width=\d act=\w+ lr=", capsys.readouterr().out, re.M)


RANDOM_BUILDS = '''
import itertools

import torch.nn as nn

CALLS = itertools.count()  # state of its own, as random.randint would be, but with an answer known for each call


def choices(arch, input_shape, num_classes):  # how many layers is decided by the count, not by arch
    layers, width = [nn.Flatten()], 6
    for i in range(1 + next(CALLS) % 2):  # consecutive calls: 1, 2, 1, ... layers
        w = arch.choice(f"w{i}", [4, 8])
        layers += [nn.Linear(width, w), nn.ReLU()]
        width = w
    return nn.Sequential(*layers, nn.Linear(width, num_classes))


def network(arch, input_shape, num_classes):  # the choices are arch's, a width is not
    arch.choice("act", ["relu", "gelu"])
    width = (4, 8)[next(CALLS) % 2]
    return nn.Sequential(nn.Flatten(), nn.Linear(6, width), nn.ReLU(), nn.Linear(width, num_classes))
'''


@pytest.mark.parametrize(("fn", "expected"), [
    ("choices", "the function asked other choices for the same draws: it must decide through arch.* alone, with no "
                "random numbers of its own (resume replays it)"),
    ("network", "decode() gave two different networks for one genome"),
])  # fmt: skip
def test_a_build_function_that_draws_its_own_random_numbers_is_refused_before_the_run(
    tmp_path: Path, write_experiment, capsys, fn: str, expected: str
) -> None:
    """A build function with state of its own (Python's random, a counter) ran to a best genome the export then
    refused; it is refused up front."""
    from evonas.cli import main

    sys.modules.pop("random_builds", None)
    (tmp_path / "random_builds.py").write_text(RANDOM_BUILDS)
    exp = write_experiment({
        "name": "rnd", "seed": 0, "plugins": ["random_builds.py"],
        "space": {"name": "function", "params": {"build": f"random_builds:{fn}"}},
        "dataset": {"name": "synthetic", "params": {"n_samples": 60, "shape": [6], "num_classes": 3}},
        "fitness": {"name": "train", "params": {"epochs": 1}}, "strategy": {"name": "random", "params": {"samples": 4}},
        "workers": 0, "cache": False,
    })  # fmt: skip
    try:
        assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    finally:
        sys.modules.pop("random_builds", None)
    err = capsys.readouterr().err.strip()
    assert f"space: space 'function' (build function 'random_builds:{fn}'): " in err and expected in err, err
    assert "\n" not in err and not (tmp_path / "run").exists()
    # a fitness that reads no data: the function is checked at the shape its parameters give
    sys.modules.pop("random_builds", None)
    exp = write_experiment({
        "name": "rnd", "seed": 0, "plugins": ["random_builds.py"], "fitness": {"name": "toy"},
        "space": {"name": "function", "params": {"build": f"random_builds:{fn}", "input_shape": [6], "num_classes": 3}},
        "strategy": {"name": "random", "params": {"samples": 4}}, "workers": 0, "cache": False,
    }, name="nodata")  # fmt: skip
    try:
        assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    finally:
        sys.modules.pop("random_builds", None)
    err = capsys.readouterr().err.strip()
    assert expected in err and not (tmp_path / "run").exists(), err


TINY = '''
import torch.nn as nn


def build(arch, input_shape, num_classes):  # 3 x 2 = 6 genomes
    w = arch.choice("w", [4, 8, 16])
    arch.choice("act", ["relu", "gelu"])
    return nn.Sequential(nn.Flatten(), nn.Linear(6, w), nn.ReLU(), nn.Linear(w, num_classes))
'''


@pytest.mark.parametrize("strategy", ["surrogate", "aging"])
def test_a_finite_space_used_up_before_the_budget_ends_the_search_soon(strategy: str, tmp_path: Path,
                                                                       write_experiment) -> None:
    """A strategy that keeps asking genomes the run has seen, in a space all of whose genomes the run has evaluated,
    is stopped after 100 such repeats (it took 10,000: about 20 minutes for surrogate), saying why."""
    from evonas.engine.runner import Run

    sys.modules.pop("tiny_space", None)
    (tmp_path / "tiny_space.py").write_text(TINY)
    exp = load_experiment(write_experiment({
        "name": "tiny", "seed": 0, "plugins": ["tiny_space.py"], "fitness": {"name": "toy"}, "budget": 20,
        "space": {"name": "function", "params": {"build": "tiny_space:build", "input_shape": [6], "num_classes": 3}},
        "strategy": {"name": strategy, "params": {"pool": 30, "trees": 5} if strategy == "surrogate" else {}},
        "workers": 0, "cache": False,
    }))  # fmt: skip
    try:
        summary = Run(exp, tmp_path / "run", progress=False).execute()
    finally:
        sys.modules.pop("tiny_space", None)
    assert summary.evaluations == 6 and summary.duplicates == 100, (summary.evaluations, summary.duplicates)
    assert summary.ended_early == (f"strategy '{strategy}' asked 100 genomes in a row that the run had already "
                                   "evaluated, and the run has evaluated every genome of the space (6): its search "
                                   "space is used up")  # fmt: skip


def test_an_inline_initial_genome_s_inactive_choice_is_said(tmp_path: Path, write_experiment, capsys) -> None:
    """A choice the function does not ask given the others (width2 when deep is false) is left out of an
    initial_population genome, in a line; a name it never asks is refused."""
    import yaml

    from evonas.cli import main

    sys.modules.pop("buggy_space", None)
    exp = _buggy_experiment(tmp_path, write_experiment, "nested", {"name": "random", "params": {"samples": 2}})
    config = yaml.safe_load(exp.read_text())
    config["initial_population"] = [{"width": 4, "deep": False, "width2": 8}]
    exp.write_text(yaml.safe_dump(config))
    assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert "initial_population[0]: 'width2' left out: the build function does not ask for it given the other " \
           "choices" in capsys.readouterr().err
    config["initial_population"] = [{"width": 4, "deep": False, "nope": 8}]
    exp.write_text(yaml.safe_dump(config))
    assert main(["run", str(exp), "--out", str(tmp_path / "run2"), "--quiet"]) == 2
    assert "initial_population[0]: not a genome of space 'function': nope: not a choice" in capsys.readouterr().err


def test_listing_a_large_space_s_genomes_says_how_far_it_has_got(capsys, monkeypatch) -> None:
    """Each genome listed runs the build function (a few ms): a space near the listing limit took minutes in silence
    (grid's size check); a line now says how far it has got, every ENUMERATION_NOTE_S seconds."""
    from evonas.spaces import function

    def build(arch, input_shape, num_classes):
        arch.choice("a", [1, 2, 3])
        arch.choice("b", [1, 2])
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, num_classes))

    monkeypatch.setattr(function, "ENUMERATION_NOTE_S", 0.0)
    assert space_of(build).size == 6
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(re.fullmatch(r"evonas: space 'function': listing its genomes \(each runs the build "
                                      r"function\): \d so far in \d+ s, at most 100,000 are listed", x) for x in lines), lines


def test_a_misspelt_choice_in_a_stored_genome_is_named() -> None:
    """``widht_0`` for ``width_0``: the genome lacks width_0 (said first) and holds a name the function never asks."""
    sys.path.insert(0, str(REPO / "experiments"))
    try:
        import cnn_space

        space = FunctionSpace(build=cnn_space.build, input_shape=[1, 8, 8], num_classes=10)
    finally:
        sys.path.remove(str(REPO / "experiments"))
    stored = space.to_dict(space.sample(rng=random.Random(0)))
    stored["widht_0"] = stored.pop("width_0")
    with pytest.raises(InvalidGenome, match=r"^width_0: missing .*; the genome's 'widht_0' is not a choice of the "
                                            r"function \(misspelt\?\)$"):
        space.from_dict(stored)
