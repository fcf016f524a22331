"""Turn a validated :class:`~evonas.config.Experiment` into live components, with one-line errors.

Everything a run needs is built (and so checked) here before anything is
written: plugins imported, component names looked up, parameters checked
against each component's signature, the dataset loaded, saved genomes read and
validated against the space.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

from evonas.config import Component, ConfigError, Experiment
from evonas.params import check_params
from evonas.constraints import ConstraintChecker
from evonas.datasets import DATASETS, Dataset
from evonas.evolution import SELECTIONS, Variation
from evonas.fitness import FITNESSES, FitnessFunction
from evonas.operators import CROSSOVERS, MUTATIONS
from evonas.registry import RegistryError
from evonas.spaces import SPACES, SearchSpace, load_space_params
from evonas.spaces.base import Genome, InvalidGenome
from evonas.spaces.defaults import genomes_dir
from evonas.strategies import SINGLE_OBJECTIVE_SELECTIONS, STRATEGIES, SearchContext, Strategy

__all__ = [
    "Built",
    "build",
    "build_space",
    "build_fitness",
    "build_dataset",
    "import_plugins",
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

        Example::

            with build(load_experiment("experiments/nb201_toy.yaml")).toolbox() as tb:
                pop, log = deap.algorithms.eaMuPlusLambda(tb.population(n=10), tb, 10, 20, 0.3, 0.7, ngen=5)
        """
        from evonas.engine.deap_map import IsolatedMap, IsolatedToolbox
        from evonas.evolution import make_toolbox

        exp = self.experiment
        isolated = IsolatedMap(self, workers=workers, cache=cache, quiet=quiet)
        tb = make_toolbox(
            self.space,
            self.variation,
            exp.weights,
            isolated.evaluate,
            selection=exp.selection.name,
            selection_params=dict(exp.selection.params),
            rng=rng or random.Random(exp.seed),
            toolbox=IsolatedToolbox(isolated),
        )
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


def evaluation_seed(run_seed: int, key: str) -> int:
    """The seed of one evaluation: a function of the run's seed and the genome key only.

    The same genome gets the same seed whatever the order, number of workers or resumes.
    """
    digest = hashlib.sha256(f"{run_seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def plugin_paths(experiment: Experiment) -> list[str]:
    """Folders searched for plugin modules: the working directory and the experiment file's folder."""
    paths = [os.getcwd()]
    if experiment.source:
        paths.append(str(Path(experiment.source).resolve().parent))
    return paths


def check_backend(exp: Experiment) -> None:
    """Check the experiment's ``backend`` name and parameters (before anything starts)."""
    from evonas.engine.backends import BACKENDS

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
        raise ConfigError(exp.source, "backend.params", str(exc)) from None


def import_plugins(experiment: Experiment) -> None:
    """Import the experiment's ``plugins`` so their components register: module names (searched in the working
    directory, the experiment file's folder and the import path) or ``.py`` files (their folder joins the import
    path, so a plug-in may import its neighbours)."""
    if not experiment.plugins:
        return
    for path in reversed(plugin_paths(experiment)):
        if path not in sys.path:
            sys.path.insert(0, path)
    for i, name in enumerate(experiment.plugins):
        try:
            import_plugin(name, experiment.source)
        except RegistryError as exc:
            raise ConfigError(experiment.source, f"plugins[{i}]", f"module '{name}': {exc}") from None
        except Exception as exc:  # any import-time failure is the user's plugin: say which and why
            raise ConfigError(
                experiment.source, f"plugins[{i}]", f"cannot import module '{name}' ({type(exc).__name__}: {exc})"
            ) from None


def is_plugin_file(name: str) -> bool:
    """Whether the plug-in entry ``name`` is a file (``my_ops.py``, ``lib/ops``) rather than a module name."""
    return name.endswith(".py") or os.sep in name or "/" in name


def import_plugin(name: str, source: str | None = None) -> None:
    """Import one plug-in: a module name, or a ``.py`` file (from the working directory, else next to the
    experiment file ``source``) as the module named by its stem; importing the same file again does nothing."""
    import importlib.util

    if not is_plugin_file(name):
        importlib.import_module(name)
        return
    path = Path(name).expanduser()
    if not path.is_absolute() and not path.is_file() and source:
        path = Path(source).resolve().parent / path
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {name}")
    path = path.resolve()
    module = sys.modules.get(path.stem)
    if module is not None and getattr(module, "__file__", None) and Path(module.__file__).resolve() == path:
        return
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(path.stem, None)
        raise


def resolve_path(path: str, experiment: Experiment) -> Path | None:
    """``path`` as given (from the working directory), else next to the experiment file, else shipped."""
    candidates = [Path(path)]
    if experiment.source:
        candidates.append(Path(experiment.source).parent / path)
    if path.startswith("genomes/"):
        candidates.append(genomes_dir() / path[len("genomes/") :])
    for c in candidates:
        if c.exists():
            return c
    return None


def _construct(registry_get: Any, comp: Component, source: str | None, key: str, **fixed: Any) -> Any:
    try:
        target = registry_get(comp.name)
    except RegistryError as exc:
        raise ConfigError(source, f"{key}.name", str(exc)) from None
    check_params(target, comp.params, source, f"{key}.params")
    try:
        return target(**fixed, **comp.params)
    except ConfigError:
        raise
    except (ValueError, TypeError, ImportError, KeyError, OSError) as exc:
        msg = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        raise ConfigError(source, f"{key}.params", msg or type(exc).__name__) from None


def build_space(exp: Experiment) -> SearchSpace:
    src = exp.source
    try:
        cls = SPACES.get(exp.space.name)
    except RegistryError as exc:
        raise ConfigError(src, "space.name", str(exc)) from None
    file = None
    if exp.space_file:
        file = resolve_path(exp.space_file, exp)
        if file is None:
            raise ConfigError(src, "space.file", f"no such space declaration file '{exp.space_file}'")
    try:
        params = load_space_params(exp.space.name, file)
    except (OSError, ValueError) as exc:
        raise ConfigError(src, "space.file", str(exc)) from None
    except Exception as exc:  # YAML errors in the declaration file
        raise ConfigError(src, "space.file", f"cannot read the space declaration ({exc})".splitlines()[0]) from None
    params.update(exp.space.params)
    return _construct(lambda _: cls, Component(exp.space.name, params), src, "space")


def build_fitness(exp: Experiment) -> FitnessFunction:
    return _construct(FITNESSES.get, exp.fitness, exp.source, "fitness")


#: dataset parameters that name a file or folder: looked for as given, else next to the experiment file
PATH_PARAMS = ("path", "root")


def build_dataset(exp: Experiment) -> Dataset:
    comp = exp.dataset
    moved = {}
    for key in PATH_PARAMS:
        given = comp.params.get(key)
        if isinstance(given, str) and given and not Path(given).expanduser().is_absolute():
            found = resolve_path(given, exp)
            if found is not None and str(found) != given:
                moved[key] = str(found)
    if moved:  # the experiment keeps what the user wrote (config.yaml, the cache's key); the loader gets the file
        comp = dataclasses.replace(comp, params={**comp.params, **moved})
    return _construct(DATASETS.get, comp, exp.source, "dataset", seed=exp.seed)


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


def build(exp: Experiment, *, load_data: bool = True) -> Built:
    """Build and check every component of ``exp``; raises :class:`ConfigError` naming the key."""
    src = exp.source
    import_plugins(exp)
    space = build_space(exp)
    fitness = build_fitness(exp)
    try:
        fitness.check_space(space)
    except ValueError as exc:
        raise ConfigError(src, "fitness.name", str(exc)) from None
    for i, obj in enumerate(exp.objectives):
        if fitness.metrics and obj.metric not in fitness.metrics:
            raise ConfigError(
                src, f"objectives[{i}].metric",
                f"fitness '{exp.fitness.name}' reports {', '.join(fitness.metrics)}; got '{obj.metric}'",
            )  # fmt: skip
    for i, con in enumerate(exp.constraints):
        if not con.cheap and fitness.metrics and con.metric not in fitness.metrics:
            raise ConfigError(
                src, f"constraints[{i}]",
                f"fitness '{exp.fitness.name}' reports {', '.join(fitness.metrics)} (and params, flops are counted "
                f"before training); got '{con.metric}'",
            )  # fmt: skip
    dataset = None
    if fitness.needs_dataset and load_data:
        dataset = build_dataset(exp)
        problem = space.check_input(dataset.input_shape)
        if problem:
            raise ConfigError(src, "dataset", problem)
    elif not fitness.needs_dataset:
        try:
            DATASETS.get(exp.dataset.name)
        except RegistryError as exc:
            raise ConfigError(src, "dataset.name", str(exc)) from None

    def ops(specs: Any, registry: Any, key: str) -> list:
        out = []
        for i, spec in enumerate(specs):
            op = _construct(registry.get, spec, src, f"{key}[{i}]")
            if not op.applies_to(space):
                raise ConfigError(
                    src, f"{key}[{i}].name", f"operator '{spec.name}' applies to {', '.join(op.spaces)}, not '{space.name}'"
                )
            out.append((op, spec.prob))
        return out

    try:
        if exp.mutations or exp.crossovers:
            default = Variation.default(space)
            muts = ops(exp.mutations, MUTATIONS, "mutations") if exp.mutations else default.mutations
            cxs = ops(exp.crossovers, CROSSOVERS, "crossovers") if exp.crossovers else default.crossovers
            variation = Variation(space, muts, cxs)
        else:
            variation = Variation.default(space)
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(src, "mutations", str(exc)) from None

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
    if len(exp.objectives) > 1 and exp.selection.name in SINGLE_OBJECTIVE_SELECTIONS and not own_selection:
        raise ConfigError(src, "selection.name", f"'{exp.selection.name}' ranks one objective; with several use nsga2 or spea2")
    check_params(strategy_cls, exp.strategy.params, src, "strategy.params")
    check_backend(exp)

    initial = []
    for i, entry in enumerate(exp.initial_population):
        path = resolve_path(entry, exp)
        if path is None:
            raise ConfigError(src, f"initial_population[{i}]", f"no such genome file '{entry}'")
        try:
            initial.append(load_genome_file(path, space))
        except (ValueError, InvalidGenome) as exc:
            raise ConfigError(src, f"initial_population[{i}]", f"{entry}: {exc}") from None

    checker = None
    if exp.constraints:
        shape, classes = cost_input(space, fitness, dataset)
        checker = ConstraintChecker(exp.constraints, space, shape, classes)
    built = Built(exp, space, fitness, dataset, variation, strategy_cls, initial, checker)
    try:  # constructing the strategy checks its parameters' values
        strategy = built.make_strategy()
    except (ValueError, TypeError) as exc:
        raise ConfigError(src, "strategy.params", str(exc)) from None
    if strategy.uses_fidelity and not fitness.supports_fidelity:
        raise ConfigError(
            src, "strategy.params.fidelity", f"fitness '{exp.fitness.name}' always evaluates in full (no lower fidelity)"
        )
    return built


# -- the resolved experiment (config.yaml) ----------------------------------------------------------------

#: parameters a component's signature declares that the run itself fills in, so they are never written out
#: (the local backend's ``log`` is the run folder's ``native.log``: ``make_backend`` sets it only when absent)
_SET_BY_THE_RUN = {"backend": frozenset({"log"})}
_NOT_PLAIN = object()


def _plain(value: Any) -> Any:
    """``value`` as YAML-safe plain data (tuples as lists), else ``_NOT_PLAIN``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else _NOT_PLAIN
    if isinstance(value, (list, tuple)):
        out = [_plain(v) for v in value]
        return _NOT_PLAIN if any(v is _NOT_PLAIN for v in out) else out
    if isinstance(value, dict):
        items = {k: _plain(v) for k, v in value.items()}
        ok = all(isinstance(k, str) for k in items) and all(v is not _NOT_PLAIN for v in items.values())
        return items if ok else _NOT_PLAIN
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return _NOT_PLAIN


def resolved_params(target: Any, params: Any, skip: Any = ()) -> dict[str, Any]:
    """``params`` with every parameter ``target``'s signature declares a default for filled in, in signature order.

    The same signature the config checker (:func:`evonas.params.check_params`) reads: named parameters the
    experiment may set (not the internal ``seed``, ``ctx``, ``individuals``, ``k`` ...) whose default is plain
    data the checker accepts again. Given values win; parameters without a default, or named in ``skip``, are
    left as given. Example: ``resolved_params(DATASETS.get("digits"), {"val_fraction": 0.1})`` ->
    ``{"val_fraction": 0.1, "test_fraction": 0.2}``.
    """
    import inspect
    import typing

    from evonas.params import _INTERNAL_PARAMS, _matches

    given = dict(params or {})
    func = target.__init__ if isinstance(target, type) else target
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return given
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable annotations: defaults are still filled, unchecked
        hints = {}
    out: dict[str, Any] = {}
    for name, p in sig.parameters.items():
        if name == "self" or name in _INTERNAL_PARAMS or name in skip:
            continue
        if p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        if name in given:
            out[name] = given[name]
            continue
        if p.default is p.empty:
            continue
        value = _plain(p.default)
        if value is _NOT_PLAIN:
            continue
        hint = hints.get(name)
        try:
            if hint is not None and not _matches(value, hint):
                continue
        except Exception:  # an annotation the checker cannot read: it does not check it either
            pass
        out[name] = value
    out.update({k: v for k, v in given.items() if k not in out})  # **kwargs parameters, as given
    return out


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
    experiment named none). ``parse_experiment`` of the result builds an experiment that asks the same genomes in
    the same order; resolving that again gives the same mapping.

    Example::

        built = build(load_experiment("experiments/quickstart.yaml"))
        resolved_experiment(built)["dataset"]   # {'name': 'digits', 'params': {'val_fraction': 0.2, 'test_fraction': 0.2}}
    """
    from evonas.engine.backends import BACKENDS

    exp = built.experiment
    out = exp.to_dict()

    def fill(key: str, target: Any, params: Any) -> None:
        out[key]["params"] = resolved_params(target, params, _SET_BY_THE_RUN.get(key, ()))

    space_params = _plain(dict(built.space.params))
    if space_params is not _NOT_PLAIN:
        out["space"]["params"] = space_params
    if built.dataset is not None:
        fill("dataset", DATASETS.get(exp.dataset.name), exp.dataset.params)
    fill("fitness", FITNESSES.get(exp.fitness.name), exp.fitness.params)
    fill("strategy", built.strategy_cls, exp.strategy.params)
    fill("selection", SELECTIONS.get(exp.selection.name), exp.selection.params)
    fill("backend", BACKENDS.get(exp.backend.name), exp.backend.params)

    def operators(specs: Any, used: Any, registry: Any) -> list[dict[str, Any]]:
        if specs:  # as the experiment names them (an operator with prob 0 is listed and never picked)
            return [{"name": s.name, "prob": s.prob, "params": resolved_params(registry.get(s.name), s.params)}
                    for s in specs]  # fmt: skip
        return [{"name": _registry_name(registry, op), "prob": float(p), "params": resolved_params(type(op), {})}
                for op, p in used]  # fmt: skip

    out["mutations"] = operators(exp.mutations, built.variation.mutations, MUTATIONS)
    out["crossovers"] = operators(exp.crossovers, built.variation.crossovers, CROSSOVERS)
    for key in ("dataset", "fitness", "strategy", "selection", "backend"):
        params = _plain(out[key]["params"])
        out[key]["params"] = params if params is not _NOT_PLAIN else dict(getattr(exp, key).params)
    return out
