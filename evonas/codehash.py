"""Which user code a component runs, as a hash: what the evaluation cache and ``resume`` compare.

:func:`user_code` hashes the source file of a plug-in's module together with the files of the user modules it
imports, transitively (a fitness that does ``from helper import SCALE`` runs ``helper.py`` too). User modules are
those whose file lies outside evonas, the standard library and installed packages. Where the files cannot say
which code runs, it says why instead of giving a hash:

- the component has no source file (a class defined in a notebook cell, on stdin, by ``python -c`` or ``exec``);
- a file changed since this process first hashed it, and its module was not imported again (a notebook that edits
  a plug-in between two runs): this process still runs the code as it was.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any

__all__ = ["user_code", "library_dirs", "is_user_file", "is_under"]

_PACKAGE = os.path.realpath(Path(__file__).resolve().parent)
#: file -> (id of the module object that was loaded from it, the file's hash then): the code this process runs
_FIRST_SEEN: dict[str, tuple[int, str]] = {}


def library_dirs() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the standard library's folders, installed packages' folders): their files are not a plug-in's own."""
    paths = sysconfig.get_paths()
    std = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib") if paths.get(k)}
    site = {os.path.realpath(paths[k]) for k in ("purelib", "platlib") if paths.get(k)}
    site.update(os.path.realpath(e) for e in sys.path if e.endswith(("site-packages", "dist-packages")))
    return tuple(sorted(std)), tuple(sorted(site))


def is_under(path: str, dirs: Any) -> bool:
    return any(path == d or path.startswith(d + os.sep) for d in dirs)


def is_user_file(path: str) -> bool:
    """Whether ``path`` (a real path) is the user's code: not evonas's, the standard library's or a package's."""
    std, site = library_dirs()
    return not is_under(path, (_PACKAGE, *std, *site))


def _imported(module: Any, path: str) -> list[str]:
    """The names of the modules ``path`` (``module``'s file) imports, absolute."""
    try:
        tree = ast.parse(Path(path).read_bytes(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return []
    package = getattr(module, "__package__", None) or ""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            try:
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level \
                    else (node.module or "")  # fmt: skip
            except (ImportError, ValueError):
                continue
            names += [base, *(f"{base}.{a.name}" for a in node.names)]
    return names


def _located(name: str) -> str | None:
    """The source file module ``name`` would be imported from, found without importing it (a module imported only
    inside a function, or only by the worker processes, is not loaded here)."""
    from importlib.machinery import PathFinder

    spec = None
    locations: list[str] | None = None
    for part in name.split("."):
        try:
            spec = PathFinder.find_spec(part, locations)
        except (ImportError, ValueError, OSError):
            return None
        if spec is None:
            return None
        locations = list(spec.submodule_search_locations or [])
    return spec.origin if spec is not None and isinstance(spec.origin, str) else None


def _files(module_name: str) -> list[tuple[str, Any]]:
    """``(real path, module)`` of ``module_name``'s file and of the user modules it imports, transitively (the
    module ``None`` for one this process has not loaded)."""
    out: list[tuple[str, Any]] = []
    todo, seen = [module_name], set()
    while todo:
        name = todo.pop()
        if name in seen or not name:
            continue
        seen.add(name)
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None) if module is not None else _located(name)
        if not isinstance(file, str) or not file.endswith(".py"):
            continue
        path = os.path.realpath(file)
        if not is_user_file(path) or not os.path.isfile(path):
            continue
        out.append((path, module))
        todo += _imported(module, path)
    return out


def user_code(obj: Any) -> tuple[str | None, str | None]:
    """``(hash, None)`` for a plug-in class or function: its module's file and the user modules that file imports;
    ``(None, why)`` when its files cannot say which code runs (see the module's docstring); ``(None, None)`` for
    evonas's own components and built-ins, which the evonas version stands for."""
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str) or module == "evonas" or module.startswith("evonas."):
        return None, None
    what = f"{module}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"
    try:
        source = inspect.getsourcefile(obj)
    except TypeError:  # a class of a module without a file (__main__ of a notebook, stdin, python -c)
        source = None
    if not source or not os.path.isfile(source):
        if getattr(sys.modules.get(module), "__file__", None) is None or source:
            return None, f"{what} has no source file (defined in a notebook cell, on stdin or by exec)"
        return None, None  # made at run time by code of a package: nothing of the user's to hash
    if not is_user_file(os.path.realpath(source)):
        return None, None  # an installed package's: its version stands for it
    own = os.path.realpath(source)
    files = _files(module) or [(own, sys.modules.get(module))]
    hashes = []
    for path, loaded in files:
        try:
            now = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        except OSError:
            continue
        if loaded is not None:  # loaded here: this process runs the code as it was when it was loaded
            first = _FIRST_SEEN.setdefault(path, (id(loaded), now))
            if first[0] == id(loaded) and first[1] != now:
                return None, (f"{Path(path).name} changed since this process loaded it, so this process runs it as it "
                              "was (and so do its evaluations with workers: 0): which code a result comes from cannot "
                              "be told; restart the process, or importlib.reload the module")  # fmt: skip
            _FIRST_SEEN[path] = (id(loaded), now)
        hashes.append((path != own, Path(path).name, now))
    if not hashes:
        return None, None
    if len(hashes) == 1:  # the file alone: the hash runs and caches have recorded so far
        return hashes[0][2][:16], None
    digest = hashlib.sha256()
    for _, name, now in sorted(hashes):  # the component's own file first, then the modules it imports by name
        digest.update(name.encode() + b"\0" + now.encode())
    return digest.hexdigest()[:16], None
