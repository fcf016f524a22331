"""The strategy template: what the base class does for every strategy, and what a strategy declares."""

from __future__ import annotations

import ast
import inspect
import json
import pkgutil
import random
import sys

import pytest

import evonas.strategies
from conftest import toy_experiment
from evonas.config import ConfigError, parse_experiment
from evonas.engine.build import build
from evonas.evolution import Variation
from evonas.listing import format_listing
from evonas.params import check_params
from evonas.spaces import make_space
from evonas.strategies import STRATEGIES, SearchContext, SteadyState, Strategy
from evonas.strategies.base import Candidate, evaluation_key


def _context(**changes) -> SearchContext:
    from evonas.config import Objective

    space = make_space("nb201")
    ctx = SearchContext(space, Variation.default(space), (Objective("val_acc", "max"),), random.Random(0))
    for name, value in changes.items():
        setattr(ctx, name, value)
    return ctx


def test_every_module_of_the_package_is_imported_and_none_is_named() -> None:
    """A new built-in strategy is one module: the package imports whatever modules it holds."""
    modules = [m.name for m in pkgutil.iter_modules(evonas.strategies.__path__)]
    assert {"ga", "aging", "surrogate", "base"} <= set(modules)
    assert all(f"evonas.strategies.{m}" in sys.modules for m in modules)
    tree = ast.parse(inspect.getsource(evonas.strategies))
    imported = {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    named = {m for m in modules if m != "base"} & {name.rpartition(".")[2] for name in imported}
    assert named == set()


@pytest.mark.parametrize("name", STRATEGIES.list())
def test_capabilities_are_declared_class_attributes(name: str) -> None:
    cls = STRATEGIES.get(name)
    assert isinstance(cls.generational, bool) and isinstance(cls.multi_objective, bool)
    params = inspect.signature(cls.__init__).parameters
    assert cls.run_length in params or (name == "grid" and cls.run_length == "")
    assert isinstance(inspect.getattr_static(Strategy, "uses_fidelity"), property)
    assert Strategy.reference_point is None


def test_a_forwarded_parameter_is_checked_and_listed_like_an_own_one() -> None:
    ga, nsga2 = STRATEGIES.get("ga"), STRATEGIES.get("nsga2")
    assert {"population_size", "generations", "max_retries", "hall_of_fame", "elitism"} <= set(
        inspect.signature(ga.__init__).parameters
    )
    assert check_params(ga, {"population_size": 6, "max_retries": 2}, None, "strategy.params")
    with pytest.raises(ConfigError, match="strategy.params.elitism: unknown parameter"):
        check_params(nsga2, {"elitism": 1}, None, "strategy.params")
    with pytest.raises(ConfigError, match="strategy.params.generations: expected an integer"):
        check_params(ga, {"generations": "many"}, None, "strategy.params")
    text = format_listing(["strategies"], params=True)
    assert "    max_retries: an integer = 10" in text and "    log_every: an integer = 10" in text


def test_a_forwarding_constructor_gets_the_parameters_it_forwards() -> None:
    class Plain(SteadyState):
        def __init__(self, ctx: SearchContext, *, width: int = 3, **common: object) -> None:
            super().__init__(ctx, **common)
            self.width = width

        def propose(self):
            return self.sample()

        def learn(self, candidate, individual):
            pass

    names = list(inspect.signature(Plain.__init__).parameters)
    # the base's parameters, the strategy's own, then the bookkeeping every strategy shares
    assert names == ["self", "ctx", "samples", "width", "log_every", "max_retries", "hall_of_fame"]
    strategy = Plain(_context(), width=4, samples=5)
    assert strategy.width == 4 and strategy.expected_evaluations() == 5


def test_redraw_asks_again_until_new_and_feasible_at_most_max_retries_times() -> None:
    space = make_space("nb201")
    strategy = STRATEGIES.get("aging")(_context(feasibility=lambda g: False), max_retries=3)
    calls = []

    def make():
        calls.append(1)
        return space.sample(rng=strategy.rng), "sample", ()

    strategy.redraw(make)
    assert len(calls) == 4  # the first draw and three more: none feasible
    calls.clear()
    strategy = STRATEGIES.get("aging")(_context())
    first = strategy.candidate(*strategy.sample())
    again = strategy.redraw(make, first=(first.genome, "sample", ()))
    assert len(calls) == 1 and again[0] != first.genome  # the asked genome is drawn again once, the new one kept


def test_candidates_are_numbered_and_their_keys_recorded() -> None:
    strategy = STRATEGIES.get("random")(_context(), samples=4, batch=2)
    batch = strategy.ask(2)
    assert [c.index for c in batch] == [0, 1] and {c.key for c in batch} == strategy.asked_keys
    assert not strategy.is_new(batch[0].key)
    cand = Candidate(batch[0].genome, "abc", 0, fidelity=0.25)
    assert cand.evaluation_key == evaluation_key("abc", 0.25) == "abc@0.25"
    assert evaluation_key("abc", None) == "abc"


def test_the_engine_reads_the_declared_capabilities() -> None:
    mo = [{"metric": "val_acc", "direction": "max"}, {"metric": "size", "direction": "min"}]
    with pytest.raises(ConfigError, match="'tournament' ranks one objective"):
        build(parse_experiment(toy_experiment(objectives=mo, selection={"name": "tournament"})))
    nsga2 = {"name": "nsga2", "params": {"population_size": 6}}
    with pytest.raises(ConfigError, match="selection: strategy 'nsga2' chooses its own selection"):  # it would be ignored
        build(parse_experiment(toy_experiment(objectives=mo, selection={"name": "tournament"}, strategy=nsga2)))
    built = build(parse_experiment(toy_experiment(objectives=mo, strategy=nsga2)))
    assert built.strategy_cls.multi_objective and not built.make_strategy().uses_fidelity


def test_list_selections_shows_the_selections_nsga2_chooses_itself() -> None:
    line = format_listing(["selections"])
    assert "tournament" in line and "nsga3 (strategy nsga2: params.selection)" in line


MISPROPOSING = '''
from evonas.strategies import STRATEGIES
from evonas.strategies.base import SteadyState


@STRATEGIES.register("misproposing")
class Misproposing(SteadyState):
    def __init__(self, ctx, *, mode: str = "ok", **common):
        super().__init__(ctx, **common)
        self.mode = mode

    def propose(self):
        genome, origin, parents = self.sample()
        if self.mode == "dict":
            return self.ctx.space.to_dict(genome), origin, parents
        if self.mode == "bare":
            return genome
        if self.mode == "origin":
            return genome, 42, parents
        if self.mode == "parents":
            return genome, origin, "nokey"
        if self.mode == "invalid":
            return type(genome)(("conv_9x9",) + tuple(genome.edges[1:])), origin, parents
        return genome, origin, list(parents)  # a list is a sequence of keys too

    def learn(self, candidate, individual):
        pass
'''


@pytest.mark.parametrize("mode, said", [
    ("dict", "strategy 'misproposing' proposed a dict, not a genome of the space 'nb201' (to make one from a dict: "
             "self.ctx.space.from_dict(...))"),
    ("bare", "strategy 'misproposing': propose() returned NB201Genome; expected (genome, origin, parents), or None"),
    ("origin", "strategy 'misproposing' proposed a genome whose origin is a int (42); expected a string"),
    ("parents", "strategy 'misproposing' proposed a genome whose parents are 'nokey'; expected a tuple of the parents' keys"),
    ("invalid", "strategy 'misproposing' proposed an invalid genome: nb201: "),
    ("ok", None),
])  # fmt: skip
def test_what_a_strategy_proposes_is_checked_and_it_is_named(mode: str, said: str | None, tmp_path, write_experiment,
                                                             capsys) -> None:
    from evonas.cli import main

    sys.modules.pop("misproposing_strategy", None)
    STRATEGIES._items.pop("misproposing", None)
    (tmp_path / "misproposing_strategy.py").write_text(MISPROPOSING)
    exp = write_experiment(toy_experiment(plugins=["misproposing_strategy.py"],
                                          strategy={"name": "misproposing", "params": {"samples": 4, "mode": mode}}))  # fmt: skip
    try:
        code = main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"])
    finally:
        STRATEGIES._items.pop("misproposing", None)
        sys.modules.pop("misproposing_strategy", None)
    err = capsys.readouterr().err.strip().splitlines()
    if said is None:
        assert code == 0 and err == [], err
        return
    assert code == 1 and len(err) == 1 and f"the run crashed: TypeError: {said}" in err[0].replace("ValueError", "TypeError"), err
    # the message names no plug-in file: the way on still says to fix a plug-in first (a resume replays into it)
    assert "; if it lies in a plug-in, fix that first (the resume replays the journal through the same code), then " \
           "resume with: evonas resume" in err[0], err


ONE_PLUS_LAMBDA = '''
from evonas.strategies import STRATEGIES, Strategy


@STRATEGIES.register("t_one_plus_lambda")
class OnePlusLambda(Strategy):
    """(1+lambda): a generation of ``lam`` mutants of the best so far (random samples first)."""

    run_length = "generations"

    def __init__(self, ctx, *, generations: int = 3, lam: int = 4, keep: bool = True, **common):
        super().__init__(ctx, **common)
        self.generations, self.lam, self.keep = generations, lam, keep
        self.parent, self.waiting, self.results = None, 0, []

    def ask(self, n):
        if self.waiting or self.is_done():
            return []
        out = []
        for _ in range(self.lam):
            if self.parent is None:
                genome, origin, parents = self.sample()
            else:
                genome, op = self.ctx.variation.mutate(self.parent.genome, rng=self.rng)
                origin, parents = f"mutation:{op}", (self.parent.key,)
            out.append(self.candidate(genome, origin, parents))
        self.waiting = len(out)
        return out

    def tell(self, candidate, individual):
        self.results.append(individual)
        if self.keep:
            self.record_evaluated([individual])
        self.waiting -= 1
        if self.waiting == 0:
            best = max(self.results + ([self.parent] if self.parent else []), key=lambda ind: ind.fitness)
            self.parent, self.population, nevals, self.results = best, [best], len(self.results), []
            self.end_generation(nevals)

    def is_done(self):
        return self.gen >= self.generations
'''


@pytest.mark.parametrize("keep", [True, False])
def test_a_generational_plugin_strategy_fills_its_hall_of_fame_through_record_evaluated(
    keep: bool, tmp_path, write_experiment, capsys
) -> None:
    """The guide's way: tell passes results to record_evaluated, and hall_of_fame.json and the logbook's best so far
    have them; a plug-in that never does gets a line at the run's end (it had an empty hall of fame silently)."""
    import csv as csv_module

    from evonas.cli import main

    sys.modules.pop("t_one_plus_lambda", None)
    STRATEGIES._items.pop("t_one_plus_lambda", None)
    (tmp_path / "t_one_plus_lambda.py").write_text(ONE_PLUS_LAMBDA)
    exp = write_experiment(toy_experiment(plugins=["t_one_plus_lambda.py"], strategy={
        "name": "t_one_plus_lambda", "params": {"generations": 3, "lam": 4, "keep": keep}}))  # fmt: skip
    try:
        code = main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"])
    finally:
        STRATEGIES._items.pop("t_one_plus_lambda", None)
        sys.modules.pop("t_one_plus_lambda", None)
    err = capsys.readouterr().err
    assert code == 0, err
    hof = json.loads((tmp_path / "run" / "hall_of_fame.json").read_text())
    with open(tmp_path / "run" / "logbook.csv") as f:
        rows = list(csv_module.DictReader(f))
    if keep:
        assert len(hof) == 10 and err == "", err
        assert [r["evals"] for r in rows] == ["4", "8", "12"] and all(r["val_acc_best_so_far"] for r in rows), rows
    else:
        assert hof == [] and err.strip() == (
            "evonas: strategy 't_one_plus_lambda' kept no hall of fame: hall_of_fame.json is empty and the logbook "
            "has no best so far (its tell gives its results to self.record_evaluated(...), see the strategies guide); "
            "best.json is the journal's best"
        ), err


def test_a_budget_that_ends_the_first_generation_says_why_there_are_no_plots(tmp_path, write_experiment,
                                                                               capsys) -> None:
    from evonas.cli import main

    sys.modules.pop("t_one_plus_lambda", None)
    STRATEGIES._items.pop("t_one_plus_lambda", None)
    (tmp_path / "t_one_plus_lambda.py").write_text(ONE_PLUS_LAMBDA)
    exp = write_experiment(toy_experiment(plugins=["t_one_plus_lambda.py"], budget=5, strategy={
        "name": "t_one_plus_lambda", "params": {"generations": 3, "lam": 8}}))  # fmt: skip
    try:
        code = main(["run", str(exp), "--out", str(tmp_path / "run")])
    finally:
        STRATEGIES._items.pop("t_one_plus_lambda", None)
        sys.modules.pop("t_one_plus_lambda", None)
    out, err = capsys.readouterr()
    assert code == 0 and "evaluated 5 genomes" in out, out + err
    assert err.strip() == ("evonas: no plots: the logbook has no generation (the budget of 5 evaluations ended the run "
                           "inside the strategy's first one: raise the budget or ask fewer candidates per generation)"), err
