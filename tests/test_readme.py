"""README.md, the front page: its relative links resolve in the repository, it links every guide page, and it
holds no Python example (the examples live in the guide pages, where tests/test_examples.py runs them)."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import REPO

README = REPO / "README.md"


def prose(text: str) -> str:
    """``text`` without its fenced code blocks and inline code spans (links there are not links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def links(text: str) -> list[str]:
    """The targets of a Markdown text's inline links and images, reference definitions and HTML href/src."""
    body = prose(text)
    found = re.findall(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", body)
    found += re.findall(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", body, flags=re.M)
    found += re.findall(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""", body)
    return found


def github_anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens, a
    repeated one suffixed ``-1``, ``-2``, ..."""
    seen: dict[str, int] = {}
    out = set()
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def broken_links(markdown: Path, root: Path = REPO) -> list[str]:
    """Each relative link of ``markdown`` whose file is missing (or outside ``root``, the repository), or whose
    ``#anchor`` is not a heading of the Markdown file it names."""
    root = root.resolve()
    broken = []
    for target in links(markdown.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, flags=re.I):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        file = (markdown.parent / path).resolve() if path else markdown
        if not file.is_relative_to(root) or not file.exists():
            broken.append(f"{target}: no such file in the repository")
        elif anchor and file.suffix == ".md" and anchor not in github_anchors(file):
            broken.append(f"{target}: {file.relative_to(root)} has no heading #{anchor}")
    return broken


def test_readme_links_resolve() -> None:
    assert links(README.read_text(encoding="utf-8")), "no links found: the link reader is broken"
    broken = broken_links(README)
    assert not broken, "README.md: broken relative links:\n" + "\n".join(broken)


def test_the_link_check_notices_a_broken_link(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "guide").mkdir(parents=True)
    (repo / "guide" / "spaces.md").write_text("# Spaces\n\n## Add a search space\n", encoding="utf-8")
    (repo / "report.png").write_bytes(b"")
    (tmp_path / "outside.md").write_text("# Outside\n", encoding="utf-8")
    page = repo / "README.md"
    page.write_text(
        "# A heading\n\n[ok](guide/spaces.md) [ok](#a-heading) [ok](guide/spaces.md#add-a-search-space)\n"
        "![img](report.png) [web](https://x.y) `[code](not-a-link.md)`\n\n```\n[code](not-a-link.md)\n```\n"
        "[gone](nowhere.md) [bad anchor](guide/spaces.md#no-such-heading) [out](../outside.md) [self](#nope)\n",
        encoding="utf-8",
    )
    broken = broken_links(page, root=repo)
    assert [b.split(":")[0] for b in broken] == ["nowhere.md", "guide/spaces.md#no-such-heading", "../outside.md", "#nope"]


def test_readme_links_every_guide_page() -> None:
    linked = {(REPO / t.partition("#")[0]).resolve() for t in links(README.read_text(encoding="utf-8"))}
    missing = [p.name for p in sorted((REPO / "docs" / "guide").glob("*.md")) if p.resolve() not in linked]
    assert not missing, f"README.md links no guide page for: {', '.join(missing)}"


def test_readme_has_no_untested_python() -> None:
    # a copy of an example file is allowed: tests/test_doc_copies.py keeps it equal to the file the tests run
    text = re.sub(r"<!-- copy of \S+ -->\n```\w*\n.*?```", "", README.read_text(encoding="utf-8"), flags=re.S)
    blocks = re.findall(r"^```(?:python|py)\s*\n", text, flags=re.M)
    assert not blocks, (
        "README.md has a Python block: put the example in a guide page and run it from tests/test_examples.py"
    )
