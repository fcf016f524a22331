"""The shape of the code (issue 16): no import cycles, plots drawn only by the command line, strategies that
share no logic.

Imports inside functions count: a cycle hidden in a function is still a cycle, and only hides until the day
the import moves to the top.
"""

from __future__ import annotations

import ast
import collections
from pathlib import Path

import evonas

PACKAGE = Path(evonas.__file__).parent
#: the modules that draw; only the command line imports them
PLOTTING = ("evonas.plotting", "evonas.plotting_pareto")
COMMAND_LINE = ("evonas.cli", "evonas.commands")
#: consecutive statements two strategies may not share
SHARED_STATEMENTS = 6


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The evonas modules ``name`` imports, anywhere in its file (a package's ``__init__`` runs on import of any
    of its modules, so ``from evonas.a.b import c`` imports ``evonas.a``, ``evonas.a.b`` and ``evonas.a.b.c``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{a.name}" for a in node.names]
        for target in targets:
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix in modules and prefix != name and not name.startswith(prefix + "."):
                    found.add(prefix)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    """A package importing its own modules from ``__init__`` is not a cycle; modules importing each other are."""
    graph = _graph()
    # a package's __init__ re-exporting its modules, and those modules importing a sibling through the
    # package, is how registries fill; the edge that counts is module -> module
    for name in graph:
        if (PACKAGE / Path(*name.split(".")[1:]) / "__init__.py").exists():
            graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_only_the_command_line_imports_the_plotting_modules() -> None:
    graph = _graph()
    importers = sorted(
        name for name, targets in graph.items()
        if name not in PLOTTING and name not in COMMAND_LINE and any(t in PLOTTING for t in targets)
    )
    assert importers == []


class _Anonymise(ast.NodeTransformer):
    """Local names and constants made alike, so that logic copied with other variable names still matches."""

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.copy_location(ast.Name(id="v", ctx=node.ctx), node)

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        return ast.copy_location(ast.Constant(value="s" if isinstance(node.value, str) else 0), node)


def _statements(body: list[ast.stmt]) -> list[str]:
    """A function body as a flat list of statements (compound statements by their header, local names and
    constants anonymised), docstrings left out."""
    out: list[str] = []
    for i, stmt in enumerate(body):
        if i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            continue
        inner = [getattr(stmt, field, None) for field in ("body", "orelse", "finalbody")]
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue  # a nested function is compared on its own
        if any(isinstance(b, list) and b for b in inner):
            header = ast.unparse(stmt).splitlines()[0]
            out.append(header)
            for block in inner:
                if isinstance(block, list):
                    out.extend(_statements(block))
            for handler in getattr(stmt, "handlers", []):
                out.append(ast.unparse(handler).splitlines()[0])
                out.extend(_statements(handler.body))
        else:
            out.append(ast.unparse(stmt))
    return out


def shared_logic(sources: dict[str, str], window: int = SHARED_STATEMENTS) -> list[tuple[str, str, list[str]]]:
    """Runs of ``window`` consecutive statements (of function bodies) found in two places."""
    seen: dict[tuple[str, ...], str] = {}
    found = []
    for name, source in sources.items():
        for node in ast.walk(_Anonymise().visit(ast.parse(source))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            stmts = _statements(node.body)
            for i in range(len(stmts) - window + 1):
                run = tuple(stmts[i : i + window])
                where = f"{name}:{node.name}"
                if run in seen and seen[run] != where:
                    found.append((seen[run], where, list(run)))
                seen.setdefault(run, where)
    return found


def test_no_two_strategies_share_six_statements_of_logic() -> None:
    sources = {p.name: p.read_text() for p in sorted((PACKAGE / "strategies").glob("*.py"))}
    assert shared_logic(sources) == []


def test_the_duplicate_finder_finds_duplicates() -> None:
    body = "\n".join(f"    x{i} = y{i} + {i}" for i in range(7))
    a, b = f"def f():\n{body}\n", f"def g():\n    z = 1\n{body}\n"
    assert shared_logic({"a.py": a, "b.py": b})
    assert not shared_logic({"a.py": a, "b.py": "def g():\n    z = 1\n"})
