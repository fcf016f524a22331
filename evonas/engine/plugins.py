"""Where an experiment's files are found and how its plug-ins are imported.

A plug-in is a module name or a ``.py`` file listed under ``plugins:``; importing it registers its
components. Files an experiment names (a space declaration, a dataset file, saved genomes) are looked for
as given, then next to the experiment file, then among the files shipped with evonas.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

from evonas.config import ConfigError, Experiment
from evonas.registry import RegistryError
from evonas.spaces.defaults import genomes_dir

__all__ = ["import_plugin", "import_plugins", "is_plugin_file", "plugin_paths", "resolve_path"]


def plugin_paths(experiment: Experiment) -> list[str]:
    """Folders searched for plugin modules: the working directory and the experiment file's folder."""
    paths = [os.getcwd()]
    if experiment.source:
        paths.append(str(Path(experiment.source).resolve().parent))
    return paths


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
            from evonas.operators.base import describe_error  # the line of the plug-in that raised

            raise ConfigError(experiment.source, f"plugins[{i}]", f"cannot import module '{name}' ({describe_error(exc, 300)})") from None


def is_plugin_file(name: str) -> bool:
    """Whether the plug-in entry ``name`` is a file (``my_ops.py``, ``lib/ops``) rather than a module name."""
    return name.endswith(".py") or os.sep in name or "/" in name


def import_plugin(name: str, source: str | None = None) -> None:
    """Import one plug-in: a module name, or a ``.py`` file (from the working directory, else next to the
    experiment file ``source``) as the module named by its stem; importing the same file again does nothing.
    A ``sys.exit()`` while it is imported is an ``ImportError`` saying where (not the end of the process)."""
    try:
        _import_plugin(name, source)
    except SystemExit as exc:
        raise ImportError(exit_text(exc) + " while the module was imported") from None


def exit_text(exc: SystemExit) -> str:
    """``sys.exit(2) at my_strategy.py:21``: a ``SystemExit`` that plug-in code raised, with the line that raised."""
    from evonas.operators.base import raised_at

    where = raised_at(exc)
    return f"sys.exit({'' if exc.code is None else repr(exc.code)})" + (f" at {where}" if where else "")


def _import_plugin(name: str, source: str | None = None) -> None:
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
    loaded = getattr(module, "__file__", None) if module is not None else None
    if loaded and Path(loaded).resolve() == path:
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
