"""The components an evaluation needs, built from an experiment with one-line errors: the space, the fitness
and the dataset.

The main process builds them to check an experiment (:func:`evonas.engine.build.build`); every worker
process builds them again, once, to evaluate (:class:`evonas.engine.backends.EvalContext`). A problem is a
:class:`~evonas.config.ConfigError` naming the experiment key.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from evonas.config import Component, ConfigError, Experiment, params_error
from evonas.datasets import DATASETS, Dataset
from evonas.engine.plugins import resolve_path
from evonas.fitness import FITNESSES, FitnessFunction
from evonas.params import check_params
from evonas.registry import RegistryError, is_plugin
from evonas.spaces import SPACES, SearchSpace, load_space_params

__all__ = ["PATH_PARAMS", "build_dataset", "build_fitness", "build_space", "construct"]


def construct(registry_get: Any, comp: Component, source: str | None, key: str, **fixed: Any) -> Any:
    """``registry_get(comp.name)(**fixed, **comp.params)``, its name and parameters checked; errors name ``key``."""
    try:
        target = registry_get(comp.name)
    except RegistryError as exc:
        raise ConfigError(source, f"{key}.name", str(exc)) from None
    check_params(target, comp.params, source, f"{key}.params")
    try:
        return target(**fixed, **comp.params)
    except ConfigError:
        raise
    except Exception as exc:
        if is_plugin(target):  # the user's code failed, not their config: say whose, what and where
            from evonas.operators.base import describe_error

            raise ConfigError(source, key, f"the plug-in {key} '{comp.name}' raised "
                              f"{describe_error(exc, 300)} while it was built") from None  # fmt: skip
        if not isinstance(exc, (ValueError, TypeError, ImportError, KeyError, OSError)):
            raise
        msg = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        raise params_error(source, f"{key}.params", comp.params, msg or type(exc).__name__) from None


def build_space(exp: Experiment) -> SearchSpace:
    """The experiment's space: its declaration file (or the shipped defaults) overridden by ``space.params``."""
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
    return construct(lambda _: cls, Component(exp.space.name, params), src, "space")


def build_fitness(exp: Experiment) -> FitnessFunction:
    """The experiment's fitness function."""
    return construct(FITNESSES.get, exp.fitness, exp.source, "fitness")


#: dataset parameters that name a file or folder: looked for as given, else next to the experiment file
PATH_PARAMS = ("path", "root")


def build_dataset(exp: Experiment) -> Dataset:
    """The experiment's dataset, split with the run's seed; file parameters found as :func:`resolve_path` does."""
    comp = exp.dataset
    moved = {}
    for key in PATH_PARAMS:
        given = comp.params.get(key)
        if isinstance(given, str) and given and not Path(given).expanduser().is_absolute():
            found = resolve_path(given, exp)
            if found is not None and str(found) != given:
                moved[key] = str(found)
            elif found is None and key == "path":  # say where it was looked for (a moved run folder, another cwd)
                near = f" or next to the experiment file ({Path(exp.source).parent})" if exp.source else ""
                raise ConfigError(exp.source, "dataset.params.path", f"no file '{given}' in the working directory "
                                  f"({Path.cwd()}){near}; run where it is found, or give its absolute path")  # fmt: skip
    if moved:  # the experiment keeps what the user wrote (config.yaml, the cache's key); the loader gets the file
        comp = dataclasses.replace(comp, params={**comp.params, **moved})
    ds = construct(DATASETS.get, comp, exp.source, "dataset", seed=exp.seed)
    loader = DATASETS.get(comp.name)
    if is_plugin(loader):  # the built-in loaders check their data themselves; a plug-in's is checked here
        if not isinstance(ds, Dataset):
            raise ConfigError(exp.source, "dataset", f"the plug-in dataset '{comp.name}' returned "
                              f"{type(ds).__name__}, not an evonas.datasets.Dataset")  # fmt: skip
        from evonas.datasets.loaders import check_dataset

        try:
            check_dataset(ds, where=f"dataset '{comp.name}'")
        except ValueError as exc:
            raise ConfigError(exp.source, "dataset", str(exc)) from None
    return ds
