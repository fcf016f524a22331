"""A selection for tests with a bug: it raises once the run selects a second generation (a plug-in crash
that escapes the engine loop)."""

from __future__ import annotations

from typing import Any

from evonas.evolution import SELECTIONS


def explode(individuals: list, k: int, **params: Any) -> list:
    raise ZeroDivisionError("selection exploded")


if "explode" not in SELECTIONS:
    SELECTIONS.add("explode", explode)
