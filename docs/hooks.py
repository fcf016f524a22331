"""MkDocs hook: puts the generated Python API pages (one per entry of ``docs/api.yml``) in the navigation, under
the "Python API" section of ``mkdocs.yml``, so the list of extension points is written down once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

API = Path(__file__).resolve().parent / "api.yml"


def _section(nav: list[Any], title: str) -> list[Any] | None:
    for item in nav:
        if isinstance(item, dict):
            for key, value in item.items():
                if key == title and isinstance(value, list):
                    return value
                if isinstance(value, list):
                    found = _section(value, title)
                    if found is not None:
                        return found
    return None


def on_config(config: Any, **kwargs: Any) -> Any:
    section = _section(config.nav or [], "Python API")
    if section is None:
        raise ValueError("mkdocs.yml: the nav has no 'Python API' section for the pages of docs/api.yml")
    listed = {v for item in section for v in (item.values() if isinstance(item, dict) else [item])}
    for entry in yaml.safe_load(API.read_text(encoding="utf-8")):
        page = f"reference/api/{entry['page']}.md"
        if page not in listed:
            section.append({entry["title"]: page})
    return config
