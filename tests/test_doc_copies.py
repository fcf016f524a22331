"""Example files shown in the guides are copies (readable on GitHub as on the docs site); each stays equal to its file."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COPY = re.compile(r"<!-- copy of (\S+) -->\n```\w*\n(.*?)```", re.S)


def copies() -> list[tuple[Path, str, str]]:
    out = []
    for page in sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")]):
        for m in COPY.finditer(page.read_text(encoding="utf-8")):
            out.append((page, m.group(1), m.group(2)))
    return out


def test_every_copy_equals_its_file() -> None:
    found = copies()
    assert len(found) >= 7, [(p.name, f) for p, f, _ in found]  # the guides' example files and the quickstart
    for page, path, text in found:
        assert (REPO / path).is_file(), f"{page.relative_to(REPO)}: no file {path}"
        assert text == (REPO / path).read_text(encoding="utf-8"), f"{page.relative_to(REPO)}: its copy of {path} differs"


def test_no_page_includes_a_file_by_a_snippet_line() -> None:
    # a `--8<--` include shows as that line on GitHub: pages hold copies instead
    for page in [REPO / "README.md", *(REPO / "docs").rglob("*.md")]:
        assert "--8<--" not in page.read_text(encoding="utf-8"), page
