"""A griffe extension that reads evonas's reST-flavoured docstrings as Markdown, for mkdocstrings.

evonas's docstrings are written for reading in a terminal, in a little reST:

- roles: ``:class:`Strategy```, ``:meth:`Registry.lazy```, ``:func:`~evonas.engine.build.build```: each becomes
  a code span linked to the object's entry when the site documents it (an optional cross-reference, resolved
  in the docstring's own scope: its class, then its module and what the module imports), else a plain code span;
- literal blocks: a paragraph ending in ``::`` followed by an indented block: the ``::`` becomes ``:`` and the
  block a fenced code block (Python, YAML or plain text, by its look);
- ``#:`` comments above an attribute (Sphinx's attribute docstrings): the attribute's docstring where it has none.

Double-backtick literals are Markdown code spans already; ``:param x:`` fields are parsed by mkdocstrings'
Sphinx docstring parser. ``docs/gen_ref.py`` uses :func:`plain_roles` for the text it copies from docstrings.
"""

from __future__ import annotations

import functools
import html
import re
from pathlib import Path
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(class|func|meth|attr|data|mod|exc|obj|const):`(~?)([^`]+)`")
_TARGET = re.compile(r"^(.*?)\s*<([^>]+)>$")  # :class:`text <target>`


def _split(target: str, tilde: str) -> tuple[str, str]:
    """The text to show and the dotted path a role names."""
    explicit = _TARGET.match(target)
    if explicit:
        return explicit.group(1), explicit.group(2).lstrip("~")
    path = target.lstrip(".")
    return (path.rsplit(".", 1)[-1] if tilde else path), path


def plain_roles(text: str) -> str:
    """``text`` with each reST role as a plain Markdown code span (``:class:`~a.B``` -> `` `B` ``)."""
    return ROLE.sub(lambda m: f"`{_split(m.group(3), m.group(2))[0]}`", text)


def _resolve(obj: Any, path: str) -> str | None:
    """The full path of ``path`` as seen from ``obj``'s scope, or ``None`` when it names nothing griffe knows."""
    if path.startswith("evonas.") or path == "evonas":
        return path
    first, _, rest = path.partition(".")
    try:
        full = obj.resolve(first)
    except Exception:
        return None
    return f"{full}.{rest}" if rest else full


def _entities(text: str) -> str:
    """``text`` for inside raw HTML in Markdown: escaped, with ``_`` and ``*`` as entities (Markdown would read
    ``__call__`` in raw HTML as bold)."""
    return html.escape(text).replace("_", "&#95;").replace("*", "&#42;")


def link_roles(text: str, obj: Any) -> str:
    """``text`` with each reST role as an optional cross-reference (a code span when it resolves to nothing)."""

    def repl(m: re.Match[str]) -> str:
        shown, path = _split(m.group(3), m.group(2))
        code = f"<code>{_entities(shown)}</code>"
        target = _resolve(obj, path)
        if target is None:
            return f"`{shown}`"
        return f'<autoref identifier="{html.escape(target)}" optional>{code}</autoref>'

    return ROLE.sub(repl, text)


def _language(intro: str, block: list[str]) -> str:
    """Python, YAML or plain text: what a literal block looks like (its intro may say "experiment file")."""
    text = "\n".join(block)
    if re.search(r"^\s*(from \S+ import|import \S+|def |class |@\w|with |for |assert |print\()", text, re.M):
        return "python"
    yaml_lines = all(re.match(r"^\s*([\w.-]+:(\s|$)|- |#)", line) for line in block if line.strip())
    if yaml_lines or "experiment file" in intro.lower() or "yaml" in intro.lower():
        return "yaml"
    if re.search(r"\w\(.*\)", text):
        return "python"
    return "text"


def literal_blocks(text: str) -> str:
    """reST literal blocks (``Example::`` and an indented block) as fenced Markdown code blocks."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.rstrip().endswith("::"):
            out.append(line)
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        block_start = j
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
            j += 1
        block = lines[block_start:j]
        while block and not block[-1].strip():
            block.pop()
        if not block:  # a "::" with nothing indented after it: leave the line alone
            out.append(line)
            i += 1
            continue
        stripped = line.rstrip()
        # "Example::" -> "Example:"; "text ::" -> "text" (reST's own reading of the two forms)
        intro = stripped[:-2].rstrip() if stripped[:-2].endswith(" ") else stripped[:-1]
        cut = min(len(b) - len(b.lstrip()) for b in block if b.strip())
        pad = " " * indent
        if intro.strip():
            out += [intro, ""]
        out.append(f"{pad}```{_language(intro, block)}")
        out += [pad + b[cut:] if b.strip() else "" for b in block]
        out += [f"{pad}```", ""]
        i = j
    return "\n".join(out)


def convert(text: str, obj: Any = None) -> str:
    """A docstring's text as Markdown (see the module)."""
    text = literal_blocks(text)
    parts = re.split(r"(```.*?```)", text, flags=re.S)  # roles only outside the code blocks
    for k in range(0, len(parts), 2):
        parts[k] = link_roles(parts[k], obj) if obj is not None else plain_roles(parts[k])
    return "".join(parts)


@functools.lru_cache(maxsize=None)
def _source_lines(path: str) -> tuple[str, ...]:
    try:
        return tuple(Path(path).read_text(encoding="utf-8").splitlines())
    except (OSError, ValueError):
        return ()


def _comment_doc(attr: Any) -> str | None:
    """The ``#:`` comment lines right above an attribute, joined (Sphinx's attribute docstrings)."""
    try:
        lines = _source_lines(str(attr.filepath))
    except (TypeError, ValueError):  # no single file (a namespace package)
        return None
    k = attr.lineno - 2 if attr.lineno else -1
    found = []
    while k >= 0 and lines[k].strip().startswith("#:"):
        found.append(lines[k].strip()[2:].strip())
        k -= 1
    return " ".join(reversed(found)) or None


def _walk(obj: Any, seen: set[int]) -> Any:
    for member in list(obj.members.values()):
        if member.is_alias or id(member) in seen:
            continue
        seen.add(id(member))
        yield member
        if member.is_module or member.is_class:
            yield from _walk(member, seen)


class ReSTDocstrings(griffe.Extension):
    """Converts every docstring of a loaded package once the whole package is known (so names resolve)."""

    def on_package(self, *, pkg: Any, **kwargs: Any) -> None:
        for obj in [pkg, *_walk(pkg, set())]:
            if obj.is_attribute and obj.docstring is None:
                comment = _comment_doc(obj)
                if comment:
                    obj.docstring = griffe.Docstring(comment, lineno=obj.lineno, parent=obj)
            if obj.is_attribute and obj.parent is not None and obj.parent.is_class:
                if obj.labels == {"instance-attribute"}:  # set in __init__: the expression says nothing to a reader
                    obj.value = None
            if obj.docstring is not None:
                obj.docstring.value = convert(obj.docstring.value, obj)
