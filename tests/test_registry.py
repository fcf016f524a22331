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
