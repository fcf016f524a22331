"""Turn a validated :class:`~evonas.config.Experiment` into live components, with one-line errors.

Everything a run needs is built (and so checked) here before anything is
written: plugins imported, component names looked up, parameters checked
against each component's signature, the dataset loaded, saved genomes read and
validated against the space. The space, fitness and dataset are built by
:mod:`evonas.engine.components` (as every worker process builds them), plug-ins
imported by :mod:`evonas.engine.plugins`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import json
import os
import random
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping, cast

import numpy as np
from deap import tools

from evonas.checks import check_int
from evonas.config import ConfigError, Experiment, check_workers, params_error
from evonas.constraints import CHEAP_METRICS, ConstraintChecker, unmeetable
from evonas.datasets import DATASETS, Dataset
from evonas.engine.backends import BACKENDS, _cuda_count, evaluation_seed
from evonas.engine.components import build_dataset, build_fitness, build_space, construct
from evonas.engine.deap_map import IsolatedMap, IsolatedToolbox
from evonas.engine.plugins import import_plugin, import_plugins, is_plugin_file, plugin_paths, resolve_path
from evonas.engine.resolved import NOT_PLAIN, plain, resolved_params
from evonas.evolution import SELECTIONS, FaultLines, Individual, Variation, make_toolbox, select
from evonas.fitness import FITNESSES, FitnessFunction
from evonas.operators import CROSSOVERS, MUTATIONS
from evonas.operators.base import describe_error, line_of
from evonas.params import check_params
from evonas.loggers import LOGGERS, Logger, missing_packages
from evonas.pruners import PRUNERS, Pruner
from evonas.registry import Declared, RegistryError, is_plugin
from evonas.spaces import SPACES, SearchSpace
from evonas.spaces.base import Genome, InvalidGenome, UnsuitedSpace
from evonas.strategies import SINGLE_OBJECTIVE_SELECTIONS, STRATEGIES, SearchContext, Strategy

__all__ = [
    "Built",
    "build",
    "build_space",
    "build_fitness",
    "build_dataset",
    "check_backend",
    "cost_input",
    "import_plugin",
    "import_plugins",
    "is_plugin_file",
    "load_genome_file",
    "resolve_path",
    "evaluation_seed",
    "plugin_paths",
    "resolved_experiment",
    "resolved_params",
]


@dataclasses.dataclass
class Built:
    """The live components of an experiment."""

    experiment: Experiment
    space: SearchSpace
    fitness: FitnessFunction
    dataset: Dataset | None
    variation: Variation
    strategy_cls: type[Strategy]
    initial: list[Genome]
    #: the experiment's constraints with the input shape cheap metrics are counted at (``None``: no constraints)
    checker: ConstraintChecker | None = None
    #: the experiment's pruner (``None``: ``pruner: none``, every evaluation trains in full)
    pruner: Pruner | None = None
    #: the experiment's loggers (``loggers:``), not set up yet: a run calls their ``setup`` when it starts
    loggers: tuple[Logger, ...] = ()

    def toolbox(
        self,
        rng: random.Random | None = None,
        *,
        workers: int | str | None = None,
        cache: bool | None = None,
        quiet: bool = False,
    ) -> Any:
        """A DEAP toolbox for this experiment whose ``map`` and ``evaluate`` run on the experiment's backend.

        ``toolbox.map(toolbox.evaluate, individuals)`` (what DEAP's algorithms call) evaluates in
        evonas's worker processes, as ``evonas run`` does: ``workers`` of them (default: the
        experiment's ``workers:``; ``0``: in this process), with its ``timeout:``, retries, the
        evaluation cache (``cache``: default the experiment's ``cache:``) and constraints. A failed
        evaluation gets the worst fitness and is listed in ``toolbox.failures`` (and on stderr unless
        ``quiet``). See :mod:`evonas.engine.deap_map`. The workers start on the first evaluation and
        stop at ``toolbox.close()``, at the end of a ``with`` block, or when the toolbox is gone.

        DEAP's algorithms (``varOr``, ``varAnd``, its selections) draw from Python's ``random`` module, so without
        ``rng`` the toolbox seeds that module with the experiment's ``seed`` too: the same experiment gives the
        same search. With ``rng`` (the toolbox's own draws) the module is left as it is.

        Example::

            with build(load_experiment("experiments/nb201_toy.yaml")).toolbox() as tb:
                pop, log = deap.algorithms.eaMuPlusLambda(tb.population(n=10), tb, 10, 20, 0.3, 0.7, ngen=5)
        """
        exp = self.experiment
        workers = None if workers is None else check_workers(workers)
        if exp.loggers and not quiet:  # said, never silently dropped: loggers follow a run's journal
            names = ", ".join(c.name for c in exp.loggers)
            print(f"evonas: loggers ({names}) log runs of `evonas run`; the DEAP toolbox does not use them",
                  file=sys.stderr)  # fmt: skip
        if workers is not None and exp.workers == 0:  # build() looked at the experiment's workers: 0
            check_main_defined(exp, self.space, self.fitness, workers)
        isolated = IsolatedMap(self, workers=workers, cache=cache, quiet=quiet)
        if rng is None:
            random.seed(exp.seed)  # what DEAP's algorithms draw from (see above)
        variation = self.variation.fresh(strict=exp.strict)  # its own fault counts; strict: true raises OperatorFault
        tb = make_toolbox(
            self.space,
            variation,
            exp.weights,
            isolated.evaluate,
            selection=exp.selection.name,
            selection_params=dict(exp.selection.params),
            rng=rng or random.Random(exp.seed),
            toolbox=IsolatedToolbox(isolated),
        )
        # an operator (or the build function) that fails is said once, as `evonas run` says it
        lines = FaultLines(variation, self.space, lambda line: None if quiet else print(line, file=sys.stderr),
                           counted=False)  # fmt: skip
        for name in ("individual", "mutate", "mate"):
            tb.register(name, _then(getattr(tb, name), lines.check))
        tb.register("population", tools.initRepeat, list, tb.individual)
        tb.register("operator_stats", lines.stats)
        if self.strategy_cls.multi_objective and callable(getattr(self.strategy_cls, "select", None)):
            # a strategy with its own multi-objective selection (nsga2): the experiment's selection: is not its
            tb.register("select", getattr(self.make_strategy(), "select"))
        tb.register("evaluate", isolated.evaluate)
        tb.register("map", isolated)
        return tb

    def make_strategy(self, budget: int | None = None) -> Strategy:
        """A fresh strategy seeded from the run's seed (same seed, same strategy: resumable by replay)."""
        exp = self.experiment
        ctx = SearchContext(
            space=self.space,
            variation=self.variation,
            objectives=exp.objectives,
            rng=random.Random(exp.seed),
            selection=exp.selection.name,
            selection_params=dict(exp.selection.params),
            initial=list(self.initial),
            budget=budget if budget is not None else exp.budget,
            feasibility=self.checker.feasible if self.checker is not None else None,
        )
        return self.strategy_cls(ctx, **exp.strategy.params)


def cost_input(space: SearchSpace, fitness: FitnessFunction, dataset: Dataset | None) -> tuple[tuple[int, ...], int]:
    """The input shape and number of classes cheap metrics are counted at: the dataset's, else the fitness's
    ``cost_input`` (a table's networks), else the space's example input shape and 10 classes."""
    if dataset is not None:
        return tuple(dataset.input_shape), int(dataset.num_classes)
    given = fitness.cost_input
    if given is not None:
        return tuple(given[0]), int(given[1])
    return tuple(space.example_input_shape), 10


def check_backend(exp: Experiment) -> None:
    """Check the experiment's ``backend`` name and parameters (before anything starts)."""
    try:
        cls = BACKENDS.get(exp.backend.name)
    except RegistryError as exc:
        raise ConfigError(exp.source, "backend.name", str(exc)) from None
    check_params(cls, exp.backend.params, exp.source, "backend.params")
    try:
        cls.check(**exp.backend.params)
    except ImportError as exc:
        raise ConfigError(exp.source, "backend.name", str(exc)) from None
    except ValueError as exc:
        name, _, message = str(exc).partition(": ")
        if name in exp.backend.params and message:  # "num_gpus: expected ..." names its parameter
            raise ConfigError(exp.source, f"backend.params.{name}", message) from None
        raise params_error(exp.source, "backend.params", exp.backend.params, str(exc)) from None


def load_genome_file(path: Path, space: SearchSpace) -> Genome:
    """A saved genome: ``{"space": ..., "genome": {...}}`` or a run's ``best.json``. Raises ValueError/InvalidGenome."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read a genome ({exc})") from None
    if not isinstance(data, dict) or "genome" not in data:
        raise ValueError("expected a JSON object with a 'genome' entry")
    declared = data.get("space", space.name)
    if declared != space.name:
        raise InvalidGenome(f"genome of space '{declared}', the experiment's space is '{space.name}'")
    genome = space.from_dict(data["genome"])
    space.validate(genome)
    return genome


def _then(fn: Callable[..., Any], after: Callable[[], None]) -> Callable[..., Any]:
    """``fn``, calling ``after()`` once it has returned."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        out = fn(*args, **kwargs)
        after()
        return out

    return call


#: seconds the command line waits for an experiment to build when its backend sets no ``startup_timeout``
STARTUP_TIMEOUT = 300.0


@contextlib.contextmanager
def startup_watchdog(exp: Experiment) -> Any:
    """For the command line: ends the process (exit code 2, one line naming where it waits) when building ``exp``
    (importing its plug-ins, constructing its space, dataset and fitness) takes longer than its backend's
    ``startup_timeout``, as a worker that does not finish starting ends a run. Nothing is written while an
    experiment builds; a library caller (a notebook) is never ended, so :func:`build` itself has no limit."""
    given = exp.backend.params.get("startup_timeout") if isinstance(exp.backend.params, dict) else None
    ok = isinstance(given, (int, float)) and not isinstance(given, bool) and given > 0
    limit = float(cast(float, given)) if ok else STARTUP_TIMEOUT  # (a bad value is refused when the backend is built)
    waiting = threading.get_ident()

    def stuck() -> None:
        frame = sys._current_frames().get(waiting)
        stack = traceback.extract_stack(frame) if frame is not None else []
        where = line_of([(f.filename, f.lineno or 0) for f in stack])
        source = f"{exp.source}: " if exp.source else ""
        print(f"evonas: {source}the experiment did not finish building within {limit:g} s"
              + (f" (waiting at {where})" if where else "") + ": a plug-in module, or a space, dataset or fitness "
              "constructor, waits on something that never answers? backend.params.startup_timeout sets the limit",
              file=sys.stderr, flush=True)  # fmt: skip
        os._exit(2)

    timer = threading.Timer(limit, stuck)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def build(exp: Experiment, *, load_data: bool = True) -> Built:
    """Build and check every component of ``exp``; raises :class:`ConfigError` naming the key."""
    if not isinstance(exp, Experiment):
        raise TypeError(f"build: expected an Experiment (evonas.config.load_experiment or parse_experiment), got "
                        f"{type(exp).__name__}")  # fmt: skip
    _check_plain(exp.to_dict(), exp.source)
    import_plugins(exp)
    _say_unknown_spaces()
    space = build_space(exp)
    fitness = build_fitness(exp)
    _check_fitness(exp, space, fitness)
    _check_device_here(exp, fitness)
    _say_emulated_bf16(exp, fitness)
    check_main_defined(exp, space, fitness)
    _check_stop(exp)
    dataset = _dataset(exp, space, fitness, load_data)
    strategy_cls = _strategy_class(exp)
    variation = _variation(exp, space, strategy_cls.mutates)
    check_backend(exp)
    initial = _initial_population(exp, space)
    checker = None
    if exp.constraints:
        shape, classes = cost_input(space, fitness, dataset)
        checker = ConstraintChecker(exp.constraints, space, shape, classes)
    pruner = _pruner(exp, fitness)
    loggers = _loggers(exp)
    built = Built(exp, space, fitness, dataset, variation, strategy_cls, initial, checker, pruner, loggers)
    _check_selection(exp, space, strategy_cls)
    _check_strategy(built)
    return built


def _check_plain(value: Any, source: str | None, key: str = "") -> None:
    """Refuse (:class:`ConfigError` naming the key) a value the run's ``config.yaml`` and journal cannot hold: an
    experiment built from Python may hold a function or an object where a file holds only plain data."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_plain(v, source, f"{key}.{k}" if key else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, source, f"{key}[{i}]")
    elif not isinstance(value, float) and plain(value) is NOT_PLAIN:  # (YAML holds .inf and .nan too)
        how = (" (name a function as 'module:function', its file listed under plugins:)" if callable(value)
               else " (numbers, strings, booleans, lists and mappings)")  # fmt: skip
        raise ConfigError(source, key, f"{type(value).__name__} is not plain data, which the run's config.yaml "
                          f"must hold{how}")  # fmt: skip


def _loggers(exp: Experiment) -> tuple[Logger, ...]:
    """The experiment's loggers, each checked for the packages it needs before anything is imported."""
    out = []
    for i, comp in enumerate(exp.loggers):
        where = f"loggers[{i}]"
        try:
            cls = LOGGERS.get(comp.name)
        except RegistryError as exc:
            raise ConfigError(exp.source, f"{where}.name", str(exc)) from None
        missing = missing_packages(cls)
        if missing:
            extra = getattr(cls, "extra", None) or comp.name
            raise ConfigError(exp.source, f"{where}.name", f"logger '{comp.name}' needs the package"
                              f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}: pip install \"evonas[{extra}]\"")  # fmt: skip
        logger = construct(LOGGERS.get, comp, exp.source, where)
        logger.name = comp.name
        out.append(logger)
    return tuple(out)


def _pruner(exp: Experiment, fitness: FitnessFunction) -> Pruner | None:
    """The experiment's pruner (``None`` for ``none``), and what pruning and inheritance need of the fitness."""
    pruner = construct(PRUNERS.get, exp.pruner, exp.source, "pruner")
    name = exp.fitness.name
    if pruner.points() and not fitness.supports_pruning:
        raise ConfigError(exp.source, "pruner.name", f"fitness '{name}' reports no learning curve to prune on "
                          "(its supports_pruning is False); use pruner: none")  # fmt: skip
    if exp.inherit is not None and not fitness.supports_inheritance:
        raise ConfigError(exp.source, "inherit", f"fitness '{name}' trains no weights a child could inherit (its "
                          "supports_inheritance is False); use inherit: false")  # fmt: skip
    return pruner if pruner.points() else None


def _check_fitness(exp: Experiment, space: SearchSpace, fitness: FitnessFunction) -> None:
    """The fitness accepts the space and reports every metric the objectives and trained constraints name."""
    src = exp.source
    try:
        fitness.check_space(space)
    except ValueError as exc:
        raise ConfigError(src, "fitness.name", str(exc)) from None
    def switch(metric: str) -> str:  # a metric the fitness reports once a parameter turns it on: say which
        how = getattr(fitness, "optional_metrics", {}).get(metric)
        return f" ({metric} is reported with fitness.params.{how})" if how else ""

    for i, obj in enumerate(exp.objectives):
        if fitness.metrics and obj.metric not in fitness.metrics:
            raise ConfigError(
                src, f"objectives[{i}].metric",
                f"fitness '{exp.fitness.name}' reports {', '.join(fitness.metrics)}; got '{obj.metric}'"
                + switch(obj.metric),
            )  # fmt: skip
    ranges = metric_ranges(exp, fitness)
    for i, con in enumerate(exp.constraints):
        if not con.cheap and fitness.metrics and con.metric not in fitness.metrics:
            raise ConfigError(
                src, f"constraints[{i}]",
                f"fitness '{exp.fitness.name}' reports {', '.join(fitness.metrics)} (and params, flops are counted "
                f"before training); got '{con.metric}'" + switch(con.metric),
            )  # fmt: skip
        span = ranges.get(con.metric)
        if span is not None and unmeetable(con, *span):
            raise ConfigError(
                src, f"constraints[{i}]",
                f"'{con}': fitness '{exp.fitness.name}' reports {con.metric} from {span[0]:g} to {span[1]:g}, so no "
                f"result meets it" + (" (a fraction, not a percentage)" if span == (0.0, 1.0) and con.limit > 1 else ""),
            )  # fmt: skip


def metric_ranges(exp: Experiment, fitness: FitnessFunction) -> dict[str, tuple[float, float]]:
    """The fitness's declared ``{metric: (low, high)}`` (``metric_ranges``), checked once before the run (the
    constraints are measured against it, and each result the fitness returns): a malformed declaration (a plug-in's),
    or one for a metric the fitness does not report (a typo would leave it unchecked), is a configuration error."""
    def wrong(what: str) -> ConfigError:
        return ConfigError(exp.source, "fitness.name", f"fitness '{exp.fitness.name}': {what}")

    ranges = getattr(fitness, "metric_ranges", None) or {}
    if not isinstance(ranges, Mapping):
        raise wrong(f"metric_ranges must be a dict such as {{'val_acc': (0.0, 1.0)}}, got {type(ranges).__name__}")
    out = {}
    for metric, span in ranges.items():
        if (
            not isinstance(span, tuple) or len(span) != 2
            or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in span) or not span[0] <= span[1]
        ):  # fmt: skip
            raise wrong(f"metric_ranges['{metric}'] must be (low, high) numbers, low <= high; got {span!r}")
        out[metric] = (float(span[0]), float(span[1]))
    reported = tuple(getattr(fitness, "metrics", ()))
    unknown = [m for m in out if m not in {*reported, *getattr(fitness, "optional_metrics", {}), *CHEAP_METRICS}]
    if reported and unknown:
        raise wrong(f"metric_ranges names '{unknown[0]}', which it does not report (it reports {', '.join(reported)})")
    return out


#: genomes drawn from a space when an experiment is built, to find a space that cannot give any (or whose build
#: function asks a choice wrongly) before the run starts
SPACE_CHECK_DRAWS = 20


def check_main_defined(exp: Experiment, space: SearchSpace, fitness: FitnessFunction, workers: Any = None) -> None:
    """A space, fitness or build function that worker processes cannot have: defined in an interactive session (a
    notebook), or inside a script's ``if __name__ == '__main__':`` block (spawned workers import the script without
    running it). Refused before the run; with ``workers: 0`` (the experiment's, or ``workers`` that overrides it)
    they run in this process and need no import."""
    if (exp.workers if workers is None else workers) == 0:
        return
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    for key, kind, name, obj in (("space.name", "space", exp.space.name, type(space)),
                                 ("fitness.name", "fitness", exp.fitness.name, type(fitness)),
                                 ("space.params.build", "build function", space.params.get("build"),
                                  getattr(space, "build_function", None))):  # fmt: skip
        if obj is None or getattr(obj, "__module__", None) != "__main__":
            continue
        if not script:
            raise ConfigError(exp.source, key, f"{kind} '{name}' is defined in this interactive session (a notebook or "
                                               "the Python prompt), which worker processes cannot import: move it to "
                                               "a module file and list that under plugins:, or set workers: 0")  # fmt: skip
        line = _main_block_line(script, obj)
        if line is not None:
            raise ConfigError(exp.source, key, f"{kind} '{name}' is defined inside the `if __name__ == '__main__':` "
                                               f"block of {Path(script).name} (line {line}), which worker processes do "
                                               "not run when they import the script: define it above that block (or "
                                               "in a module listed under plugins:), or set workers: 0")  # fmt: skip


def _main_block_line(script: str, obj: Any) -> int | None:
    """The line where ``obj`` (a class or function of ``__main__``) is defined, if it lies inside ``script``'s
    top-level ``if __name__ == '__main__':`` block."""
    import ast

    try:
        line = obj.__code__.co_firstlineno if hasattr(obj, "__code__") else inspect.getsourcelines(obj)[1]
        tree = ast.parse(Path(script).read_bytes())
    except (OSError, TypeError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and len(node.test.ops) == 1 \
                and isinstance(node.test.ops[0], ast.Eq):  # fmt: skip
            sides = {ast.dump(node.test.left), ast.dump(node.test.comparators[0])}
            if sides == {ast.dump(ast.Name("__name__", ast.Load())), ast.dump(ast.Constant("__main__"))}:
                if node.lineno <= line <= (node.end_lineno or node.lineno):
                    return int(line)
    return None


def _check_hparam_choices(exp: Experiment, space: SearchSpace, fitness: FitnessFunction, drawn: list[Genome]) -> None:
    """Every value a define-by-run space's training-hyperparameter choice offers (``optimizer``, ``batch_size``, the
    ends of an ``lr`` range, ...) that the fitness cannot train with: refused before the run, not failed in each
    evaluation that draws it. Choices are looked up on the genomes ``drawn`` (a conditional one may be missed)."""
    check = getattr(fitness, "check_hparams", None)
    if check is None or not callable(getattr(space, "active_choices", None)):
        return
    seen = set()
    for genome in drawn:
        try:
            asked = space.active_choices(genome)  # type: ignore[attr-defined]
        except Exception:  # the space's own failure: said where it is checked
            return
        for name, dist, _ in asked:
            if name in seen:
                continue
            seen.add(name)
            options = getattr(dist, "options", None)
            ends = (getattr(dist, "low", None), getattr(dist, "high", None))
            for value in options if options is not None else [v for v in ends if v is not None]:
                try:
                    check({name: value})
                except ValueError as exc:
                    why = f"choice '{name}' offers {value!r}, which fitness '{exp.fitness.name}' cannot train with"
                    raise ConfigError(exp.source, "space", f"{why} ({exc})") from None


def _say_emulated_bf16(exp: Experiment, fitness: FitnessFunction) -> None:
    """``amp: bf16`` where the evaluations train on this machine's CPU and it has no native bf16: torch emulates it,
    many times slower than fp32 (9x to 20x measured on small CNNs); said, and the setting is kept."""
    if getattr(fitness, "amp", None) != "bf16" or exp.backend.name != "local":
        return
    try:
        runtime = fitness.runtime()
    except Exception:  # a plug-in fitness's own method
        return
    from evonas.fitness.device import cpu_has_native_bf16

    if runtime.get("device") == "cpu" and not cpu_has_native_bf16():
        print("evonas: warning: fitness.params.amp: bf16 on a CPU without native bf16 (AVX512-BF16 or AMX): torch "
              "emulates it, many times slower than fp32 here; amp: auto picks fp32 on this CPU", file=sys.stderr)  # fmt: skip


def _check_device_here(exp: Experiment, fitness: FitnessFunction) -> None:
    """A ``device: cuda`` this machine has no GPU for (or an ``mps``, ``xpu``, ... torch cannot use here), where the
    evaluations run on this machine (the local backend): refused before the run, not failed in every evaluation. A
    Ray cluster's nodes may have GPUs the head has not."""
    device = getattr(fitness, "device", None)
    if exp.backend.name != "local" or not isinstance(device, str) or device == "auto" or device.startswith("cpu"):
        return
    import torch  # (the fitness that trains has it loaded already)

    if device.startswith("mps") and not torch.backends.mps.is_available():
        raise ConfigError(exp.source, "fitness.params.device", f"{device!r} asked for, but MPS is not available here "
                                                               "(Apple silicon only); use auto, cpu or cuda")  # fmt: skip
    if not device.startswith("cuda"):  # xpu, ...: a tensor made there says whether this torch can use it
        try:
            torch.empty(1, device=device)
        except Exception as exc:
            why = " ".join(str(exc).split()).split(". ")[0][:200] or type(exc).__name__  # torch's first sentence
            refusal = f"{device!r} asked for, but torch cannot use it here ({why}); use auto, cpu or cuda"
            raise ConfigError(exp.source, "fitness.params.device", refusal) from None
        return
    have = _cuda_count()
    index = torch.device(device).index
    if have == 0 or (index is not None and index >= have):
        why = ("CUDA is not available here (a CPU build of torch, or no GPU)" if have == 0 else
               f"this machine has {have} GPU{'s' if have != 1 else ''} (cuda:0{f' to cuda:{have - 1}' if have > 1 else ''})")
        raise ConfigError(exp.source, "fitness.params.device", f"{device!r} asked for, but {why}; use auto, or cpu")


def _check_plugin_space(exp: Experiment, space: SearchSpace, shape: tuple[int, ...], classes: int) -> None:
    """A plug-in space's contract on a few genomes, before a run folder exists: ``sample`` draws only from its rng
    (resume replays it), the JSON round trip keeps the genome and its key (the journal, resume and the cache read
    genomes back), ``decode`` gives one network per genome (the size a run reports is the network it trains), and
    a categorical view gives genomes back from their indices (the strategies that build from it).
    ``evonas.testing.check_space`` checks more; user code that raises is left to the evaluations to report."""
    from evonas.testing import categorical_problem, decode_problem, round_trip_problem

    build_function = getattr(space, "build_name", None) if not is_plugin(type(space)) else None
    # the built-in define-by-run space runs the user's build function: its draws and networks are checked too (its
    # categorical view is evonas's own)
    name = f"space '{space.name}' (build function '{build_function}')" if build_function else f"plug-in space '{space.name}'"
    try:
        drawn = [space.sample(rng=random.Random(exp.seed + k)) for k in range(3)]
        if drawn != [space.sample(rng=random.Random(exp.seed + k)) for k in range(3)]:
            must = ("the function asked other choices for the same draws: it must decide through arch.* alone, with no "
                    "random numbers of its own" if build_function else
                    "sample() gave other genomes for the same rng: it must draw only with the rng it is given")
            raise ConfigError(exp.source, "space", f"{name}: {must} (resume replays it)")  # fmt: skip
        draws = random.Random(exp.seed)
        for genome in drawn:
            problem = round_trip_problem(space, genome) or decode_problem(
                space, genome, shape, classes
            ) or (None if build_function else categorical_problem(space, genome, draws))
            if problem:
                raise ConfigError(exp.source, "space", f"{name}: {problem} (evonas.testing.check_space checks a space)")
    except ConfigError:
        raise
    except Exception:  # the space's own failures: each evaluation says them, with the line
        return


#: the share of the validation split one class may hold before a search on val_acc is warned
SKEWED_SHARE = 0.8


def _say_skewed(exp: Experiment, fitness: FitnessFunction, dataset: Dataset) -> None:
    """A warning when a search scores ``val_acc`` on a validation split one class dominates: a network that always
    answers that class scores its share, and the search may pick one."""
    y = np.asarray(dataset.y_val)
    if "val_acc" not in exp.metrics or len(y) == 0 or dataset.num_classes < 2:
        return
    counts = np.bincount(y, minlength=dataset.num_classes)
    top = int(counts.argmax())
    share = counts[top] / len(y)
    if share < SKEWED_SHARE:
        return
    name = dataset.classes[top] if dataset.classes else str(top)
    weigh = (", and weigh the classes in training (fitness.params.class_weight: balanced)"
             if getattr(fitness, "class_weight", None) == "none" else "")  # fmt: skip
    path = exp.dataset.params.get("path") if isinstance(exp.dataset.params, Mapping) else None
    data = f"dataset '{exp.dataset.name}'" + (f" ({path})" if isinstance(path, str) else "")
    print(f"evonas: warning: {data}: class {name!r} is {share:.0%} of the validation split, so a network that always answers "
          f"it scores val_acc {share:.2f}; search val_balanced_acc instead (objectives: val_balanced_acc){weigh}",
          file=sys.stderr)  # fmt: skip


def _check_stop(exp: Experiment) -> None:
    """``stop:``'s targets name objectives (their direction says which way a target is reached)."""
    if exp.stop is None:
        return
    for metric, _ in exp.stop.targets:
        if metric not in exp.metrics:
            import difflib

            near = difflib.get_close_matches(metric, [*exp.metrics, "patience", "time_budget_s", "failures"], n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(exp.source, f"stop.{metric}", f"not an objective{hint}; a target is set for one of the "
                                                           f"objectives' metrics ({', '.join(exp.metrics)}), "
                                                           "or the key is patience, time_budget_s or failures")  # fmt: skip


def _say_no_test(exp: Experiment, dataset: Dataset) -> None:
    """A line when the dataset has no test split: ``evonas export`` scores the network a search finds on it, and
    would refuse only after the whole search."""
    if len(dataset.y_test):
        return
    path = exp.dataset.params.get("path") if isinstance(exp.dataset.params, Mapping) else None
    data = f"dataset '{exp.dataset.name}'" + (f" ({path})" if isinstance(path, str) else "")
    fix = ("a file that gives its own splits needs x_test and y_test" if exp.dataset.name == "npz"
           else "set dataset.params.test_fraction above 0")  # fmt: skip
    print(f"evonas: warning: {data} has no test split: evonas export, which retrains the network this search finds "
          f"and scores it on that split, will refuse this run; {fix}", file=sys.stderr)  # fmt: skip


def _dataset(exp: Experiment, space: SearchSpace, fitness: FitnessFunction, load_data: bool) -> Dataset | None:
    """The dataset when the fitness needs one and ``load_data`` (its inputs checked against the space); else
    ``None``, the dataset's name still checked."""
    src = exp.source
    if fitness.needs_dataset and load_data:
        dataset = build_dataset(exp)
        problem = space.check_input(dataset.input_shape)
        if problem:
            raise ConfigError(src, "dataset", problem)
        try:
            taken = space.bind_input(tuple(dataset.input_shape), int(dataset.num_classes))
        except ValueError as exc:
            raise ConfigError(src, "dataset", str(exc)) from None
        try:  # a space that gives no genome for this data, or a build function that asks a choice wrongly on a
            # common branch: said here, before a run folder exists, not as a crash of the run
            rng = random.Random(exp.seed)
            drawn = [space.sample(rng=rng) for _ in range(SPACE_CHECK_DRAWS)]
        except ValueError as exc:
            raise ConfigError(src, "space", str(exc)) from None
        if is_plugin(type(space)) or space.name == "function":
            _check_plugin_space(exp, space, tuple(dataset.input_shape), int(dataset.num_classes))
        _check_hparam_choices(exp, space, fitness, drawn)
        # config.yaml, the workers and resume build the space bound the same way
        cast(dict[str, Any], exp.space.params).update(taken)
        _say_skewed(exp, fitness, dataset)
        _say_no_test(exp, dataset)
        return dataset
    if not fitness.needs_dataset:
        try:
            DATASETS.get(exp.dataset.name)
        except RegistryError as exc:
            raise ConfigError(src, "dataset.name", str(exc)) from None
        try:  # no data to bind the space to (a build function then needs input_shape and num_classes): said here
            space.sample(rng=random.Random(exp.seed))
        except ValueError as exc:
            unbound = getattr(space, "input_shape", "") is None or getattr(space, "num_classes", "") is None
            why = f" (fitness '{exp.fitness.name}' reads no data to take them from)" if unbound else ""
            raise ConfigError(src, "space", f"{exc}{why}") from None
        if space.name == "function" or is_plugin(type(space)):  # the user's code, at the shape and classes its
            shape, classes = cost_input(space, fitness, None)  # parameters give (or the fitness's, or defaults)
            _check_plugin_space(exp, space, shape, getattr(space, "num_classes", None) or classes)
    return None


_SAID_SPACES: set[tuple[str, str]] = set()


def _say_unknown_spaces() -> None:
    """A plug-in operator whose ``spaces`` names a space that is not registered (a typo) joins no space's mix, and
    nothing else would say so: one warning per operator and process."""
    for kind, registry in (("mutation", MUTATIONS), ("crossover", CROSSOVERS)):
        for name in registry:
            op = registry.peek(name)
            if isinstance(op, Declared) or not is_plugin(op) or (kind, name) in _SAID_SPACES:
                continue
            named = getattr(op, "spaces", ()) or ()
            unknown = [s for s in ((named,) if isinstance(named, str) else named) if s not in SPACES]
            if unknown:
                _SAID_SPACES.add((kind, name))
                print(f"evonas: warning: {kind} '{name}' ({op.__module__}) names the space "
                      f"{', '.join(map(repr, unknown))} in its spaces, and no space of that name is registered, so it "
                      f"joins no experiment's mix there; registered spaces: {', '.join(SPACES)}", file=sys.stderr)  # fmt: skip


def _variation(exp: Experiment, space: SearchSpace, required: bool = True) -> Variation:
    """The experiment's mutations and crossovers (the space's defaults for those it names none of); ``required``: a
    space without a mutation is refused (the strategy mutates)."""
    src = exp.source

    def ops(specs: Any, registry: Any, key: str) -> list:
        out = []
        for i, spec in enumerate(specs):
            op = construct(registry.get, spec, src, f"{key}[{i}]")
            if not op.applies_to(space):
                raise ConfigError(
                    src, f"{key}[{i}].name", f"operator '{spec.name}' applies to {', '.join(op.spaces)}, not '{space.name}'"
                )
            out.append((op, spec.prob))
        return out

    try:
        no_crossover = "crossovers" in exp.given and not exp.crossovers  # `crossovers: []`: none, not the defaults
        if exp.mutations or exp.crossovers or no_crossover:
            default = Variation.default(space, required=False)
            muts = ops(exp.mutations, MUTATIONS, "mutations") if exp.mutations else default.mutations
            cxs = ops(exp.crossovers, CROSSOVERS, "crossovers") if exp.crossovers else [] if no_crossover else default.crossovers
            return Variation(space, muts, cxs, required=required)
        return Variation.default(space, required=required)
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        able = ["random", *(["grid"] if space.size is not None else []), *(["reinforce"] if _has_view(space) else [])]
        how = (f"; strategy '{exp.strategy.name}' mutates: register a Mutation with spaces = ('{space.name}',) in a "
               f"plug-in (see the operators guide), or use {' or '.join(able)}, which never "
               f"mutate{'s' if len(able) == 1 else ''}")  # fmt: skip
        raise ConfigError(src, "mutations", str(exc) + how) from None


def _has_view(space: SearchSpace) -> bool:
    """Whether ``space`` has a categorical view (what ``reinforce``, ``surrogate`` and ``local_search`` need)."""
    try:
        return bool(tuple(space.categorical()))
    except Exception:  # NotImplementedError, or the space's own failure
        return False


def _strategy_class(exp: Experiment) -> type[Strategy]:
    """The strategy's class, with the selection and both their parameters checked by name."""
    src = exp.source
    try:
        sel = SELECTIONS.get(exp.selection.name)
    except RegistryError as exc:
        raise ConfigError(src, "selection.name", str(exc)) from None
    check_params(sel, exp.selection.params, src, "selection.params")
    try:
        strategy_cls = STRATEGIES.get(exp.strategy.name)
    except RegistryError as exc:
        raise ConfigError(src, "strategy.name", str(exc)) from None
    own_selection = strategy_cls.multi_objective  # e.g. nsga2: its own selection parameter
    if own_selection and "selection" in exp.given:  # it would be ignored: say so rather than run without it
        raise ConfigError(src, "selection", f"strategy '{exp.strategy.name}' chooses its own selection"
                          f"{_own_selection_choices(strategy_cls)}; remove the selection: key")  # fmt: skip
    if (len(exp.objectives) > 1 and exp.selection.name in SINGLE_OBJECTIVE_SELECTIONS and not own_selection
            and strategy_cls.ranks):  # fmt: skip
        which = f"'{exp.selection.name}'" if "selection" in exp.given else f"the default selection, '{exp.selection.name}',"
        raise ConfigError(src, "selection.name", f"{which} ranks one objective; with several use nsga2 or spea2 (or "
                          "strategy nsga2, or random)")  # fmt: skip
    check_params(strategy_cls, exp.strategy.params, src, "strategy.params")
    return strategy_cls


def _own_selection_choices(strategy_cls: type[Strategy]) -> str:
    """`` (its params.selection: nsga2, nsga3 or spea2)``: the choices of the strategy's ``selection`` parameter."""
    from evonas.listing import component_params

    for p in component_params(strategy_cls):
        if p.name == "selection" and p.choices:
            words = list(p.choices)
            listed = f"{', '.join(words[:-1])} or {words[-1]}" if len(words) > 1 else words[0]
            return f" (its params.selection: {listed})"
    return ""


#: how many made-up individuals a selection is tried on, and how many it is asked to pick of them
_TRIAL_POPULATION, _TRIAL_PICKS = 6, 3


def _check_selection(exp: Experiment, space: SearchSpace, strategy_cls: type[Strategy]) -> None:
    """Try the experiment's selection once, with its parameters, on a few made-up individuals (finite fitness
    values of the experiment's objectives): DEAP's selections declare no parameter types, so a bad value
    (``tournsize: three``, ``tournsize: 0``) would otherwise first fail after generation 0 was evaluated."""
    if strategy_cls.multi_objective:  # the strategy selects by its own parameter; the experiment's is not used
        return
    rng = random.Random(exp.seed)
    try:  # genomes of the space (a plug-in selection may look at them); a space that cannot sample fails in the run
        genomes = [space.sample(rng=rng) for _ in range(_TRIAL_POPULATION)]
        population = [Individual(g, space.key(g), exp.weights, origin="sample") for g in genomes]
    except Exception:  # noqa: BLE001 - the space's fault, reported where the run samples
        return
    for ind in population:
        ind.fitness.values = tuple(rng.uniform(0.0, 1.0) for _ in exp.objectives)
    sel, params = exp.selection, dict(exp.selection.params)
    if sel.name == "tournament" and "tournsize" in params:  # DEAP's own error would be "max() arg is an empty sequence"
        try:
            check_int("tournsize", params["tournsize"], 1)
        except ValueError as exc:
            raise params_error(exp.source, "selection.params", params, str(exc)) from None
    try:
        select(sel.name, population, _TRIAL_PICKS, rng=rng, **params)
    except Exception as exc:  # noqa: BLE001 - whatever the selection (a plug-in's too) raises, in one line
        given = ", ".join(f"{k}={v!r}" for k, v in params.items())
        raise ConfigError(
            exp.source, "selection.params" if params else "selection.name",
            f"{sel.name}{f' with {given}' if given else ''} failed: {describe_error(exc)}",
        ) from None  # fmt: skip


def _initial_population(exp: Experiment, space: SearchSpace) -> list[Genome]:
    """The genomes of ``initial_population``, read and checked against the space."""
    src = exp.source
    initial: list[Genome] = []
    for i, entry in enumerate(exp.initial_population):
        if isinstance(entry, dict) and set(entry) == {"space", "genome"} and isinstance(entry["genome"], dict):
            if entry["space"] != space.name:  # a saved genome file's contents pasted in: its genome, of its space
                raise ConfigError(src, f"initial_population[{i}]", f"a genome of space '{entry['space']}', the "
                                  f"experiment's space is '{space.name}'")  # fmt: skip
            entry = entry["genome"]
        if isinstance(entry, dict):  # a genome written in the experiment file
            try:
                genome = space.from_dict(entry)
                space.validate(genome)
            except Exception as exc:  # (a plug-in space's from_dict or validate may raise anything)
                reason = describe_error(exc, 300)  # with the line of a build function that asked, where one did
                if isinstance(exc, (ValueError, InvalidGenome)):
                    reason = reason.removeprefix(f"{type(exc).__name__}: ")
                raise ConfigError(src, f"initial_population[{i}]", f"not a genome of space '{space.name}': {reason}"
                                  ) from None  # fmt: skip
            kept = space.to_dict(genome)
            dropped = [k for k in entry if k not in kept] if isinstance(kept, Mapping) and space.name == "function" else []
            if dropped:  # a define-by-run genome keeps the choices its function asks: a typo, or an inactive choice
                print(f"evonas: initial_population[{i}]: {', '.join(map(repr, dropped))} left out: the build function "
                      "does not ask for it given the other choices", file=sys.stderr)  # fmt: skip
            _say_repeat(initial, genome, space, i)
            initial.append(genome)
            continue
        path = resolve_path(entry, exp)
        if path is None:
            raise ConfigError(src, f"initial_population[{i}]", f"no such genome file '{entry}'")
        try:
            genome = load_genome_file(path, space)
        except (ValueError, InvalidGenome) as exc:
            raise ConfigError(src, f"initial_population[{i}]", f"{entry}: {exc}") from None
        _say_repeat(initial, genome, space, i)
        initial.append(genome)
    return initial


def _say_repeat(earlier: list[Genome], genome: Genome, space: SearchSpace, i: int) -> None:
    """A line when ``initial_population[i]`` is a genome an earlier entry gave (its key): it is asked once."""
    key = space.key(genome)
    same = next((j for j, g in enumerate(earlier) if space.key(g) == key), None)
    if same is not None:
        print(f"evonas: initial_population[{i}] is the genome of initial_population[{same}] (key {key}): it is "
              "asked once", file=sys.stderr)  # fmt: skip


def _check_strategy(built: Built) -> None:
    """Construct the strategy once: that checks its parameters' values, and what it needs of the fitness."""
    exp, fitness, src = built.experiment, built.fitness, built.experiment.source
    name = exp.strategy.name
    if inspect.isabstract(built.strategy_cls):  # a plug-in class that lacks a method: said before it is built
        raise ConfigError(src, "strategy.name", f"strategy '{name}': Can't instantiate abstract class "
                          f"{built.strategy_cls.__name__} with abstract method"
                          f"{'s' if len(built.strategy_cls.__abstractmethods__) > 1 else ''} "
                          f"{', '.join(sorted(built.strategy_cls.__abstractmethods__))} (a strategy class writes "
                          "them: see the strategies guide)")  # fmt: skip
    try:  # constructing the strategy checks its parameters' values
        strategy = built.make_strategy()
    except Exception as exc:
        if is_plugin(built.strategy_cls) and _raised_in_plugin(exc):  # the user's code failed, not their config
            raise ConfigError(src, "strategy", f"the plug-in strategy '{name}' raised {describe_error(exc, 300)} "
                              "while it was built") from None  # fmt: skip
        if isinstance(exc, UnsuitedSpace):  # the strategy cannot search this space: its name, not its parameters
            raise ConfigError(src, "strategy.name", str(exc)) from None
        if not isinstance(exc, (ValueError, TypeError)):
            raise
        raise params_error(src, "strategy.params", exp.strategy.params, str(exc)) from None
    if strategy.uses_fidelity and not fitness.supports_fidelity:
        raise ConfigError(
            src, "strategy.params.fidelity", f"fitness '{exp.fitness.name}' always evaluates in full (no lower fidelity)"
        )


def _raised_in_plugin(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc``'s traceback is outside evonas (plug-in code raised it, not a check of
    evonas's that the plug-in's ``super().__init__`` called)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    path = Path(tb.tb_frame.f_code.co_filename).resolve()
    return not path.is_relative_to(Path(__file__).resolve().parents[1])


# -- the resolved experiment (config.yaml) ----------------------------------------------------------------

#: parameters a component's signature declares that the run itself fills in, so they are never written out
#: (the local backend's ``log`` is the run folder's ``native.log``: ``make_backend`` sets it only when absent)
_SET_BY_THE_RUN = {"backend": frozenset({"log"})}
def _registry_name(registry: Any, op: Any) -> str:
    """The name ``op``'s class is registered under (its ``name``, unless it was registered under another)."""
    try:
        if op.name in registry and registry.get(op.name) is type(op):
            return op.name
    except RegistryError:
        pass
    return next((n for n, cls in registry.items() if cls is type(op)), op.name)


def resolved_experiment(built: Built) -> dict[str, Any]:
    """The experiment exactly as the run uses it, as plain data: what ``config.yaml`` holds.

    :meth:`Experiment.to_dict` with every default filled in: the space's parameters as the space was built with
    them (its declaration file merged with the experiment's), each component's parameters completed from the same
    signatures the config checker reads (the dataset's ``val_fraction`` / ``test_fraction`` included when the
    fitness loads one; the split and the strategy are seeded with the top-level ``seed``), and the mutations and
    crossovers actually used with their probabilities (the space's defaults, each with ``prob`` 1.0, when the
    experiment named none). A strategy that chooses its own selection (``nsga2``) gets no ``selection`` key: it
    uses none, and names it in its own parameters. ``parse_experiment`` of the result builds an experiment that
    asks the same genomes in the same order; resolving that again gives the same mapping.

    Example::

        built = build(load_experiment("experiments/quickstart.yaml"))
        resolved_experiment(built)["dataset"]   # {'name': 'digits', 'params': {'val_fraction': 0.2, 'test_fraction': 0.2}}
    """
    exp = built.experiment
    out = exp.to_dict()

    def fill(key: str, target: Any, params: Any) -> None:
        out[key]["params"] = resolved_params(target, params, _SET_BY_THE_RUN.get(key, ()))

    space_params = plain(dict(built.space.params))
    if space_params is not NOT_PLAIN:
        out["space"]["params"] = space_params
    if built.dataset is not None:
        fill("dataset", DATASETS.get(exp.dataset.name), exp.dataset.params)
    fill("fitness", FITNESSES.get(exp.fitness.name), exp.fitness.params)
    fill("strategy", built.strategy_cls, exp.strategy.params)
    fill("selection", SELECTIONS.get(exp.selection.name), exp.selection.params)
    fill("backend", BACKENDS.get(exp.backend.name), exp.backend.params)
    fill("pruner", PRUNERS.get(exp.pruner.name), exp.pruner.params)

    def operators(specs: Any, used: Any, registry: Any) -> list[dict[str, Any]]:
        if specs:  # as the experiment names them (an operator with prob 0 is listed and never picked)
            return [{"name": s.name, "prob": s.prob, "params": resolved_params(registry.get(s.name), s.params)}
                    for s in specs]  # fmt: skip
        return [{"name": _registry_name(registry, op), "prob": float(p), "params": resolved_params(type(op), {})}
                for op, p in used]  # fmt: skip

    out["mutations"] = operators(exp.mutations, built.variation.mutations, MUTATIONS)
    out["crossovers"] = operators(exp.crossovers, built.variation.crossovers, CROSSOVERS)
    for key in ("dataset", "fitness", "strategy", "selection", "backend", "pruner"):
        params = plain(out[key]["params"])
        out[key]["params"] = params if params is not NOT_PLAIN else dict(getattr(exp, key).params)
    if built.strategy_cls.multi_objective:  # the selection it never uses is not written (nor refused on resume)
        del out["selection"]
    if not built.fitness.needs_dataset:  # (nb201_table, toy): no dataset is loaded, so none is named
        del out["dataset"]
    return out
