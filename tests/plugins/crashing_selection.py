"""A selection for tests with a bug: it raises once it selects among genomes the run evaluated (from the run's
second generation on: they have metrics; the few made-up individuals the build tries a selection on have none),
a plug-in crash that escapes the engine loop."""

from __future__ import annotations

from typing import Any

from evonas.evolution import SELECTIONS


def explode(individuals: list, k: int, **params: Any) -> list:
    if any(ind.metrics for ind in individuals):
        raise ZeroDivisionError("selection exploded")
    return list(individuals[:k])


if "explode" not in SELECTIONS:
    SELECTIONS.add("explode", explode)
