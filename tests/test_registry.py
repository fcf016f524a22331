from __future__ import annotations

import pytest

from evonas.registry import Registry, RegistryError


def test_register_get_list() -> None:
    reg: Registry[object] = Registry("widget")

    @reg.register("alpha")
    class Alpha:
        pass

    @reg.register()
    def beta() -> None:
        pass

    assert reg.get("alpha") is Alpha
    assert Alpha.name == "alpha"
    assert reg.list() == ["alpha", "beta"]
    assert reg.list("a*") == ["alpha"]
    assert "beta" in reg and "gamma" not in reg


def test_repeated_name_is_refused() -> None:
    reg: Registry[object] = Registry("widget")
    reg.add("x", 1)
    with pytest.raises(RegistryError, match="already registered"):
        reg.add("x", 2)


def test_unknown_name_lists_the_known_ones() -> None:
    reg: Registry[object] = Registry("widget")
    reg.add("x", 1)
    with pytest.raises(RegistryError, match="unknown widget 'y'; expected one of: x"):
        reg.get("y")


def test_a_plug_in_cannot_take_the_name_of_a_built_in_not_imported_yet(tmp_path, monkeypatch) -> None:
    """A built-in declared lazily (its module not imported yet) still owns its name: a plug-in registering it is
    refused, as for any registered name, instead of silently replacing the built-in."""
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "widgets_builtin_mod.py").write_text(
        "from test_registry_reg import REG\n\n@REG.register('wide')\nclass Wide:\n    pass\n")
    (tmp_path / "test_registry_reg.py").write_text("from evonas.registry import Registry\nREG = Registry('widget')\n")
    import test_registry_reg

    reg = test_registry_reg.REG
    reg.lazy("wide", "widgets_builtin_mod")

    class Mine:
        pass

    with pytest.raises(RegistryError, match="widget 'wide' is already registered .by widgets_builtin_mod.Wide"):
        reg.add("wide", Mine)
    assert reg.get("wide").__module__ == "widgets_builtin_mod"
    reg.lazy("broken", "no_such_module_here_xyz")  # a built-in that cannot be imported: still refused, and said why
    with pytest.raises(RegistryError, match="widget 'broken' is the name of a built-in .no_such_module_here_xyz, which failed"):
        reg.add("broken", Mine)


def test_a_real_plug_in_shadowing_a_built_in_fitness_is_refused(tmp_path, write_experiment, capsys) -> None:
    from evonas.cli import main

    (tmp_path / "shadow_fitness.py").write_text(
        "from evonas.fitness import FITNESSES, FitnessFunction\n\n"
        "@FITNESSES.register('nb201_table')\nclass Mine(FitnessFunction):\n    needs_dataset = False\n")
    exp = write_experiment({"name": "shadow", "plugins": ["shadow_fitness.py"], "space": {"name": "nb201"},
                            "fitness": {"name": "toy"}, "strategy": {"name": "random", "params": {"samples": 2}},
                            "workers": 0})  # fmt: skip
    assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fitness 'nb201_table' is already registered (by evonas.fitness.table." in err[0], err
    assert not (tmp_path / "run").exists()


def test_a_subclass_of_a_space_registered_under_its_own_name_is_that_space(tmp_path, write_experiment, capsys) -> None:
    """A plug-in space deriving from ``mlp`` with a deeper network: its name is its own (best.json, the exported
    genome.json, keys), so the export loads again; the parent's operators and declared defaults are its own too."""
    import json
    import sys

    from evonas.cli import main
    from evonas.export import load_model
    from evonas.spaces import SPACES, make_space

    (tmp_path / "deep_mlp.py").write_text(
        "import torch.nn as nn\nfrom evonas.spaces import SPACES\nfrom evonas.spaces.mlp import MLPSpace\n\n"
        "@SPACES.register('deep_mlp')\nclass DeepMLP(MLPSpace):\n"
        "    def decode(self, genome, *, input_shape, num_classes):\n"
        "        return nn.Sequential(super().decode(genome, input_shape=input_shape, num_classes=num_classes),\n"
        "                             nn.ReLU(),\n"
        "                             nn.Linear(num_classes, num_classes))\n")  # fmt: skip
    exp = write_experiment({
        "name": "deep", "plugins": ["deep_mlp.py"], "space": {"name": "deep_mlp"},
        "dataset": {"name": "synthetic", "params": {"n_samples": 120, "shape": [6], "num_classes": 3}},
        "fitness": {"name": "train", "params": {"epochs": 1, "amp": "off"}},
        "strategy": {"name": "ga", "params": {"population_size": 4, "offspring": 4, "generations": 1}},
        "workers": 0, "cache": False,
    })  # fmt: skip
    try:
        assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 0
        deep, mlp = SPACES.get("deep_mlp"), SPACES.get("mlp")
        assert (deep.name, mlp.name) == ("deep_mlp", "mlp")
        assert json.loads((tmp_path / "run" / "best.json").read_text())["space"] == "deep_mlp"
        origins = {r["origin"] for r in map(dict, _rows(tmp_path / "run"))}
        assert any(o.startswith("mutation:mlp_") for o in origins), origins  # the parent's operators
        genome = make_space("mlp").sample(rng=__import__("random").Random(0))
        assert make_space("deep_mlp").key(genome) != make_space("mlp").key(genome)  # another space: other keys
        assert main(["export", str(tmp_path / "run"), "--quiet", "--plugins", str(tmp_path / "deep_mlp.py")]) == 0
        assert json.loads((tmp_path / "run" / "export" / "genome.json").read_text())["space"] == "deep_mlp"
        model = load_model(tmp_path / "run" / "export", plugins=[str(tmp_path / "deep_mlp.py")])
        assert isinstance(model[-1], __import__("torch").nn.Linear)  # the subclass's network, weights loaded
    finally:
        SPACES._items.pop("deep_mlp", None)
        sys.modules.pop("deep_mlp", None)
    capsys.readouterr()


def test_a_plug_in_operator_for_a_space_no_one_registered_is_warned(tmp_path, write_experiment, capsys) -> None:
    """``spaces = ("nb210",)`` (a typo) joins no mix, and the run's mix silently lacks it: a warning names it; a
    string instead of a tuple (``spaces = "nb201"``) is that one space, not its letters."""
    import sys

    from evonas.cli import main
    from evonas.operators import MUTATIONS

    (tmp_path / "typo_ops.py").write_text(
        "import dataclasses\nfrom evonas.operators import MUTATIONS, Mutation\n\n"
        "@MUTATIONS.register('t_typo_space')\nclass Typo(Mutation):\n    spaces = ('nb210',)\n"
        "    def _mutate(self, genome, *, space, rng):\n        return space.sample(rng=rng)\n\n"
        "@MUTATIONS.register('t_string_space')\nclass Stringed(Mutation):\n    spaces = 'nb201'\n"
        "    def _mutate(self, genome, *, space, rng):\n        return space.sample(rng=rng)\n")  # fmt: skip
    exp = write_experiment({"name": "typo", "plugins": ["typo_ops.py"], "space": {"name": "nb201"},
                            "fitness": {"name": "toy"}, "mutations": [{"name": "t_string_space", "prob": 1.0}],
                            "strategy": {"name": "ga", "params": {"population_size": 4, "generations": 1}},
                            "workers": 0})  # fmt: skip
    try:
        assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 0
        err = capsys.readouterr().err
        assert "mutation 't_typo_space' (typo_ops) names the space 'nb210'" in err and "registered spaces:" in err, err
        assert "t_string_space" not in err
        assert MUTATIONS.get("t_string_space").applies_to("nb201") and not MUTATIONS.get("t_string_space").applies_to("nb")
    finally:
        MUTATIONS._items.pop("t_typo_space", None)
        MUTATIONS._items.pop("t_string_space", None)
        sys.modules.pop("typo_ops", None)


def _rows(run_dir):
    import sqlite3

    db = sqlite3.connect(run_dir / "journal.sqlite")
    db.row_factory = sqlite3.Row
    return db.execute("SELECT origin FROM evaluations").fetchall()


def test_an_unannotated_plug_in_parameter_is_checked_by_its_default_s_type() -> None:
    """`lam=4` without an annotation took any value (`lam: four` crashed the run later, in the plug-in's code)."""
    from evonas.config import ConfigError
    from evonas.params import check_params

    def make(ctx=None, lam=4, rate=0.5, name="x", flag=False, anything=None):
        return None

    assert check_params(make, {"lam": 3, "rate": 1, "name": "y", "flag": True, "anything": [1]}, None, "p")
    for key, value, expected in (("lam", "four", "expected an integer, got the string 'four'"),
                                 ("lam", 4.5, "expected an integer, got float 4.5"),
                                 ("rate", "fast", "expected a number"), ("flag", 3, "expected true or false")):  # fmt: skip
        with pytest.raises(ConfigError, match=expected):
            check_params(make, {key: value}, None, "p")


def test_a_plug_in_defined_again_takes_its_name_over() -> None:
    """A notebook cell run again (or a module reloaded) defines the class anew under the same module and name: it
    replaces the one registered (it was refused as 'already registered', and only a restart helped); another class
    under that name is still refused."""
    reg: Registry[object] = Registry("widget")
    namespace: dict = {"__name__": "my_notebook"}
    for _ in range(2):
        exec("class Mine:\n    pass\n", namespace)
        reg.add("mine", namespace["Mine"])
        assert reg.get("mine") is namespace["Mine"]
    exec("class Other:\n    pass\n", namespace)
    with pytest.raises(RegistryError, match="already registered"):
        reg.add("mine", namespace["Other"])
