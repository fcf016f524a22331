"""Writes the generated reference pages of the site (run by mkdocs-gen-files at every build).

- ``reference/cli.md``: every subcommand of the real ``evonas`` parser (:func:`evonas.cli.build_parser`), with its
  usage, description and arguments (names, defaults, choices, help), read from the argparse objects;
- ``reference/components.md``: every registered component of each registry that ``evonas list`` shows
  (:func:`evonas.listing.registries`), and the loggers, with the parameters an experiment file may give it,
  read by the same introspection as ``evonas list --params`` (:func:`evonas.listing.component_params`);
- ``reference/api/<page>.md``: one page per entry of ``docs/api.yml`` (the extension points), one mkdocstrings
  entry per module, with every public name (its ``__all__`` and the public classes and functions it defines)
  documented once, on the first page and module that exports it.

Nothing in these pages is written by hand: they change when the code does.
"""

from __future__ import annotations

import argparse
import functools
import html
import importlib
import inspect
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable

import mkdocs_gen_files
import yaml

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))

from griffe_rst import _entities, plain_roles  # noqa: E402

API = yaml.safe_load((DOCS / "api.yml").read_text(encoding="utf-8"))


# -- helpers ----------------------------------------------------------------------------------------------------
def md(text: str) -> str:
    """Docstring prose for a Markdown table cell or paragraph: roles as code spans, ``<``, ``|`` and braces
    (which attr_list would read) escaped outside code spans, on one line."""
    text = " ".join(plain_roles(text or "").split())
    parts = re.split(r"(``.+?``|`[^`]+`)", text)
    for k in range(0, len(parts), 2):
        parts[k] = html.escape(parts[k], quote=False).replace("{", "&#123;").replace("}", "&#125;")  # no attr_list
    return "".join(parts).replace("|", "\\|")


def code(text: str) -> str:
    """``text`` as an inline code span that survives a table cell."""
    text = str(text).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def summary(obj: Any) -> str:
    """The first paragraph of ``obj``'s own docstring (not one a class inherits), as Markdown on one line."""
    own = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    doc = inspect.cleandoc(own) if isinstance(own, str) else ""
    first = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)[0] if doc.strip() else ""
    return md(first.rstrip(":"))


def autoref(path: str, shown: str) -> str:
    """A link to ``path``'s entry in the Python API reference, or plain code where the site has none."""
    return f'<autoref identifier="{html.escape(path)}" optional><code>{_entities(shown)}</code></autoref>'


# -- Python API ---------------------------------------------------------------------------------------------------
def public_names(module: Any) -> list[str]:
    """What a module offers: its ``__all__``, then the public classes and functions it defines but leaves out."""
    names = list(getattr(module, "__all__", []))
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or name in names:
            continue
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and getattr(obj, "__module__", None) == module.__name__:
            names.append(name)
    return names


def _canonical(griffe_pkg: Any, module: str, name: str) -> str:
    """The path where ``module.name`` is defined (following imports), as mkdocstrings identifies it."""
    try:
        obj = griffe_pkg[module.removeprefix("evonas.") + "." + name] if module != "evonas" else griffe_pkg[name]
    except Exception:
        return f"{module}.{name}"
    try:
        return obj.final_target.path if obj.is_alias else obj.path
    except Exception:
        return getattr(obj, "target_path", None) or f"{module}.{name}"


def write_api() -> list[tuple[str, str]]:
    """One page per extension point; returns their (title, path) for the overview."""
    import griffe

    pkg = griffe.load("evonas", search_paths=[str(ROOT)], resolve_aliases=False)
    documented: set[str] = set()
    pages = []
    for entry in API:
        path = f"reference/api/{entry['page']}.md"
        lines = [f"# {entry['title']}", "", md(entry["about"]), ""]
        if entry.get("guide"):
            lines += [f"In the guide: [{_guide_title(entry['guide'])}](../../{entry['guide']}).", ""]
        for modname in entry["modules"]:
            module = importlib.import_module(modname)
            members = []
            for name in public_names(module):
                target = _canonical(pkg, modname, name)
                if target in documented:
                    continue
                documented.add(target)
                members.append(name)
            lines += [f"::: {modname}", "    options:"]
            lines += [f"      members: [{', '.join(members)}]" if members else "      members: false", ""]
        with mkdocs_gen_files.open(path, "w") as f:
            f.write("\n".join(lines))
        mkdocs_gen_files.set_edit_path(path, "docs/api.yml")
        pages.append((entry["title"], path))
    return pages


def _guide_title(link: str) -> str:
    page = link.split("#")[0]
    text = (DOCS / page).read_text(encoding="utf-8") if (DOCS / page).exists() else ""
    found = re.search(r"^# (.+)$", text, re.M)
    return found.group(1).strip() if found else page


def write_api_index(pages: list[tuple[str, str]]) -> None:
    lines = [
        "# Python API",
        "",
        "The extension points of evonas: the classes and functions a plug-in subclasses, registers or calls, "
        "and the Python way to load, build and run an experiment. Each page is generated from the code's "
        "docstrings (the list of modules is `docs/api.yml`).",
        "",
        "| page | modules |",
        "| --- | --- |",
    ]
    for entry, (title, path) in zip(API, pages):
        mods = ", ".join(code(m) for m in entry["modules"])
        lines.append(f"| [{title}]({Path(path).name}) | {mods} |")
    with mkdocs_gen_files.open("reference/api/index.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    mkdocs_gen_files.set_edit_path("reference/api/index.md", "docs/api.yml")


# -- components and their parameters ---------------------------------------------------------------------------
KIND_TITLES = {
    "spaces": "Search spaces", "mutations": "Mutations", "crossovers": "Crossovers", "strategies": "Strategies",
    "selections": "Selections", "datasets": "Datasets", "fitness": "Fitness functions", "pruners": "Pruners",
    "backends": "Backends", "loggers": "Loggers",
}  # fmt: skip
KIND_KEYS = {
    "spaces": "space", "mutations": "mutations", "crossovers": "crossovers", "strategies": "strategy",
    "selections": "selection", "datasets": "dataset", "fitness": "fitness", "pruners": "pruner",
    "backends": "backend", "loggers": "loggers",
}  # fmt: skip


def all_registries() -> dict[str, Any]:
    """The registries ``evonas list`` shows, and the loggers' where it does not show them (yet)."""
    from evonas.listing import registries

    regs = dict(registries())
    if "loggers" not in regs:
        try:
            from evonas.loggers import LOGGERS
        except ImportError:
            pass
        else:
            regs["loggers"] = LOGGERS
    return regs


def component_block(kind: str, name: str, reg: Any) -> list[str]:
    """One component's entry: where it is defined, what it is, and its parameters' table."""
    from evonas.listing import _space_params, component_params

    lines = [f"### `{name}` {{#{kind}-{name}}}", ""]
    try:
        obj = reg.get(name)
    except Exception as exc:  # an optional extra that is not installed here (a logger's tracker)
        peek = reg.peek(name)
        error = " ".join(f"{type(exc).__name__}: {exc}".split())
        lines += [f"Defined in `{getattr(peek, '__module__', '?')}`; its module could not be imported where this "
                  f"page was built ({md(error)}), so its parameters are not listed here.", ""]  # fmt: skip
        return lines
    target, bound = obj, ""
    if isinstance(obj, functools.partial):  # a DEAP selection with its defaults bound (tournament)
        target = obj.func
        bound = " with " + ", ".join(f"{k}={v!r}" for k, v in obj.keywords.items()) if obj.keywords else ""
    where = f"{target.__module__}.{getattr(target, '__qualname__', name)}"
    facts = [autoref(where, where) + bound]
    spaces = getattr(obj, "spaces", ())
    if spaces:
        facts.append("for " + ", ".join(f"[`{s}`](#spaces-{s})" for s in spaces))
    lines += [" · ".join(facts), ""]
    about = summary(target)
    if about:
        lines += [about, ""]
    found = component_params(obj) or (_space_params(name) if kind == "spaces" else [])
    if not found:
        return lines + ["No parameters.", ""]
    lines += ["| parameter | type | default | what it does |", "| --- | --- | --- | --- |"]
    for p in found:
        default = code(p.default) if p.default else "required"
        lines.append(f"| `{p.name}` | {md(p.type)} | {default} | {md(p.doc)} |")
    return lines + [""]


def write_components() -> None:
    from evonas.listing import KINDS, _own_selections

    regs = all_registries()
    lines = [
        "# Components and their parameters",
        "",
        "Every built-in component, by registry, with the parameters an experiment file may give it "
        "(`params:` of its key), their types, defaults and what they do. The page is generated from the "
        "registries and the components' signatures and docstrings, as `evonas list --params` prints them, "
        "and the experiment checker reads the same signatures: a parameter not listed here is an error. "
        "Plug-ins are listed by `evonas list --params --plugins my_module.py`.",
        "",
    ]
    lines += [f"- [{KIND_TITLES.get(k, k)}](#{k}): {len(reg.list())}" for k, reg in regs.items()] + [""]
    for kind, reg in regs.items():
        key = KIND_KEYS.get(kind, kind)
        lines += [f"## {KIND_TITLES.get(kind, kind)} {{#{kind}}}", ""]
        shell = f" In the shell: `evonas list {kind} --params`." if kind in KINDS else ""
        lines += [f"In an experiment file: `{key}:`.{shell}", ""]
        if kind == "selections":
            own = _own_selections()
            if own:
                lines += ["Strategies that choose their own selection take it as a parameter: "
                          + ", ".join(code(o) for o in own) + ".", ""]  # fmt: skip
        for name in reg.list():
            lines += component_block(kind, name, reg)
    with mkdocs_gen_files.open("reference/components.md", "w") as f:
        f.write("\n".join(lines))
    mkdocs_gen_files.set_edit_path("reference/components.md", "docs/gen_ref.py")


# -- the command line ---------------------------------------------------------------------------------------------
def _subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    out = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                out[name] = (sub, helps.get(name, ""))
    return out


def _argument(action: argparse.Action) -> str:
    if action.option_strings:
        forms = ", ".join(action.option_strings)
        if action.nargs == 0:
            return code(forms)
        metavar = action.metavar or (("{" + ",".join(map(str, action.choices)) + "}") if action.choices else action.dest.upper())
        if isinstance(metavar, tuple):
            metavar = " ".join(metavar)
        repeat = {"+": f" {metavar} [{metavar} ...]", "*": f" [{metavar} ...]", "?": f" [{metavar}]"}
        return code(forms + repeat.get(action.nargs, f" {metavar}"))  # type: ignore[arg-type]
    metavar = action.metavar or action.dest
    return code(metavar + (" ..." if action.nargs in ("+", "*") else ""))


def _details(action: argparse.Action, formatter: argparse.HelpFormatter) -> str:
    text = formatter._expand_help(action) if action.help else ""  # %(default)s and the like, as --help prints it
    facts = []
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        facts.append("one of " + ", ".join(code(c) for c in action.choices))
    if action.nargs == "?" and not action.option_strings:
        facts.append("optional")
    if action.option_strings and action.default not in (None, False, argparse.SUPPRESS) and action.nargs != 0:
        facts.append(f"default {code(action.default)}")
    if isinstance(action, argparse._AppendAction):
        facts.append("may be repeated")
    return md(text) + ("; " if text and facts else "") + "; ".join(facts)


def _command_lines(prog: str, parser: argparse.ArgumentParser, summary_text: str, level: int) -> list[str]:
    anchor = prog.replace(" ", "-")
    lines = [f"{'#' * level} `{prog}` {{#{anchor}}}", ""]
    about = parser.description or (summary_text[:1].upper() + summary_text[1:] + "." if summary_text else "")
    if about:
        lines += [md(about), ""]
    lines += ["```text", parser.format_usage().strip().removeprefix("usage: "), "```", ""]
    rows = [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]
    if rows:
        formatter = parser._get_formatter()
        lines += ["| argument | what it does |", "| --- | --- |"]
        lines += [f"| {_argument(a)} | {_details(a, formatter)} |" for a in rows]
        lines.append("")
    for name, (sub, text) in _subcommands(parser).items():
        lines += _command_lines(f"{prog} {name}", sub, text, level + 1)
    return lines


def write_cli() -> None:
    os.environ["COLUMNS"] = "80"  # usage lines wrapped the same wherever the site is built
    from evonas.cli import build_parser

    parser = build_parser()
    parser.prog = "evonas"
    commands = _subcommands(parser)
    lines = [
        "# Command line",
        "",
        f"{md(parser.description or '')} Every subcommand, its arguments and what they do, generated from the "
        "parser `evonas` itself uses (`evonas COMMAND --help` prints the same).",
        "",
        "```text",
        parser.format_usage().strip().removeprefix("usage: "),
        "```",
        "",
        "| command | what it does |",
        "| --- | --- |",
    ]
    lines += [f"| [`{name}`](#evonas-{name}) | {md(text)} |" for name, (_, text) in commands.items()] + [""]
    top = [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]
    if top:
        formatter = parser._get_formatter()
        lines += ["Options of `evonas` itself:", "", "| argument | what it does |", "| --- | --- |"]
        lines += [f"| {_argument(a)} | {_details(a, formatter) or md(str(a.help or ''))} |" for a in top] + [""]
    for name, (sub, text) in commands.items():
        lines += _command_lines(f"evonas {name}", sub, text, 2)
    with mkdocs_gen_files.open("reference/cli.md", "w") as f:
        f.write("\n".join(lines))
    mkdocs_gen_files.set_edit_path("reference/cli.md", "evonas/cli.py")


# -- the keys of an experiment file -------------------------------------------------------------------------------
def _yaml_value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


def write_experiment_keys() -> None:
    from evonas.config import EXPERIMENT_KEYS

    lines = [
        "# Experiment file keys",
        "",
        "Every key of an experiment file, what it holds and what a file that leaves it out gets, generated from "
        "the experiment reader's own table (`evonas.config.EXPERIMENT_KEYS`). A component key takes a name or "
        "`{name: ..., params: {...}}`: the [components reference](components.md) lists the parameters. "
        "[Experiment files](../guide/experiment-files.md) explains them.",
        "",
        "| key | what it holds | default |",
        "| --- | --- | --- |",
    ]
    for k in EXPERIMENT_KEYS:
        name = f"{k.name}.{k.within}" if k.within else k.name
        if k.required:
            default = "required: " + md(k.required)
        elif k.default is None:
            default = "none"
        else:
            default = code(_yaml_value(k.default))
        lines.append(f"| `{name}` {{#{name.replace('.', '-')}}} | {md(k.description)} | {default} |")
    with mkdocs_gen_files.open("reference/experiment-keys.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    mkdocs_gen_files.set_edit_path("reference/experiment-keys.md", "evonas/config.py")


def main() -> None:
    write_cli()
    write_experiment_keys()
    write_components()
    write_api_index(write_api())


main()
