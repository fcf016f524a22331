"""``evonas list``: plug-ins named by --plugins or an experiment, and every component's parameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from evonas.cli import main

PLUGIN = '''
from evonas.operators import MUTATIONS
from evonas.operators.base import Mutation


@MUTATIONS.register("{name}")
class Widen(Mutation):
    """Widen a layer by ``factor``."""

    spaces = ("chain",)

    def __init__(self, factor: int = 2):
        self.factor = factor

    def _mutate(self, genome, *, space, rng):
        return genome
'''


@pytest.fixture(autouse=True)
def _forget_plugins():
    """The plug-ins these tests register must not join other tests' runs (a run without `mutations:` uses every
    registered operator of its space)."""
    import sys

    from evonas.operators import MUTATIONS

    yield
    for name in ("widen_a", "widen_b"):
        MUTATIONS._items.pop(name, None)
    for module in ("ops_a", "ops_b"):
        sys.modules.pop(module, None)


def test_list_fitness_params_shows_amp_with_its_values(capsys) -> None:
    assert main(["list", "fitness", "--params"]) == 0
    out = capsys.readouterr().out
    assert "  train\n" in out
    assert "    amp: one of 'off', 'bf16', 'fp16', 'auto' = 'auto'" in out
    assert "    epochs: an integer = 3" in out
    assert "`schedule` is `cosine`" in out  # the docstring's sentence about it, its markup plain


def test_every_component_lists_its_params(capsys) -> None:
    assert main(["list", "--params"]) == 0
    out = capsys.readouterr().out
    for kind in ("spaces:", "mutations:", "crossovers:", "strategies:", "selections:", "datasets:", "fitness:", "backends:"):
        assert f"\n{kind}\n" in f"\n{out}"
    assert "    tournsize: " in out and "    population_size: an integer = 20" in out


def test_list_shows_plugins_from_a_file_and_from_an_experiment(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "ops_a.py").write_text(PLUGIN.format(name="widen_a"))
    sub = tmp_path / "exp"
    sub.mkdir()
    (sub / "ops_b.py").write_text(PLUGIN.format(name="widen_b"))
    (sub / "exp.yaml").write_text("space: {name: chain}\nplugins: [./ops_b.py]\n")  # relative to the experiment file
    monkeypatch.chdir(tmp_path)
    assert main(["list", "mutations", "--plugins", "ops_a.py", "--params", "--pattern", "widen_*"]) == 0
    out = capsys.readouterr().out
    assert "  widen_a (chain) [ops_a]\n    factor: an integer = 2" in out
    assert main(["list", "mutations", "--experiment", str(sub / "exp.yaml")]) == 0
    assert "widen_b (chain) [ops_b]" in capsys.readouterr().out


@pytest.mark.parametrize("args", [["--plugins", "no_such_file.py"], ["--experiment", "no_such.yaml"]])
def test_list_with_a_missing_plugin_or_experiment_is_one_line(args, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["list", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("evonas: ") and "no_such" in err


def test_commands_that_train_nothing_do_not_import_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import toy_experiment

    import yaml

    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(toy_experiment()))
    assert main(["run", str(tmp_path / "exp.yaml"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    run = str(tmp_path / "run")
    for args in (["list"], ["list", "mutations", "--pattern", "chain_*"], ["status", run], ["best", run], ["plot", run], ["--help"]):
        code = ("import sys\nfrom evonas.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
                "print('torch' in sys.modules)") % (args,)  # fmt: skip
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             cwd=tmp_path).stdout  # in tmp_path: `plot` writes ./run-plots/ where it runs
        assert out.strip().splitlines()[-1] == "False", (args, out)


def test_declared_built_ins_match_what_their_modules_register() -> None:
    """The names and spaces declared for lazy import are the ones the modules register (checked in a fresh
    process, where nothing is imported yet)."""
    import subprocess
    import sys

    code = """
from evonas.listing import registries
from evonas.registry import Declared
regs = registries()
declared = [(kind, n, reg.peek(n)) for kind, reg in regs.items() for n in reg.list() if isinstance(reg.peek(n), Declared)]
for kind, name, stub in declared:
    real = regs[kind].get(name)
    assert not isinstance(real, Declared), (kind, name)
    assert tuple(getattr(real, "spaces", ())) == tuple(getattr(stub, "spaces", ())), (kind, name)
print(len(declared))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) >= 17  # 3 spaces, 9 mutations, 3 crossovers, 2 fitness functions


def test_google_style_parameter_sections_are_read() -> None:
    """A plug-in documented with an ``Args:`` section gets each parameter's own text, not the section's."""
    from evonas.listing import component_params

    class Scaled:
        """Scale the score.

        Args:
            factor (float): what the score is multiplied by,
                before anything else.
            offset: added after.
        """

        def __init__(self, factor: float = 1.0, offset: float = 0.0) -> None:
            pass

    described = {p.name: p.doc for p in component_params(Scaled)}
    assert described == {"factor": "what the score is multiplied by, before anything else.", "offset": "added after."}


def test_a_parameter_s_own_entry_beats_prose_that_names_it() -> None:
    """A subclass whose prose names ``cxpb`` still shows the base class's entry for it; its own entries come first."""
    from evonas.listing import component_params

    class Base:
        """A base.

        Parameters:
            cxpb: probability of a crossover.
            size: how many.
        """

        def __init__(self, cxpb: float = 0.3, size: int = 2) -> None:
            pass

    class Child(Base):
        """Children are made with ``cxpb`` as in the base, and ``size`` of them.

        Parameters:
            size: how many children.
        """

        def __init__(self, cxpb: float = 0.3, size: int = 2) -> None:
            pass

    described = {p.name: p.doc for p in component_params(Child)}
    assert described == {"cxpb": "probability of a crossover.", "size": "how many children."}
    # the built-ins: ga's parameters each have their own line
    from evonas.strategies import STRATEGIES

    ga = {p.name: p.doc for p in component_params(STRATEGIES.get("ga"))}
    assert ga["population_size"].startswith("the population each generation keeps") and ga["offspring"].startswith("children made")


def test_list_one_component_by_name(capsys) -> None:
    assert main(["list", "strategy", "grid", "--params"]) == 0
    out = capsys.readouterr().out
    assert "  grid\n" in out and "    order: one of 'shuffled', 'fixed'" in out and "  aging\n" not in out
    assert main(["list", "mutation", "chain_*"]) == 0
    assert "chain_add_layer" in capsys.readouterr().out
    assert main(["list", "strategy", "gird"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("evonas: list: no strategies named 'gird' (registered: aging, ga, grid,")
    assert main(["list", "strategy", "grid", "--pattern", "g*"]) == 2
