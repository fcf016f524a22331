"""Mutation operators for tests that misbehave on purpose, as a user's buggy plug-in would (``nb201`` space).

- ``every_third``: changes one edge, but raises ``ValueError("boom")`` on every third call of its own;
- ``bad_width``: always returns a genome the space refuses (an op name it does not have);
- ``returns_none`` / ``returns_dict``: forget to return a genome.

``EVONAS_TEST_OPS_FIXED=1`` in the environment "fixes" them all: each then changes one edge like
``nb201_change_edge`` (drawing from ``rng`` exactly as ``every_third`` does on its good calls).
"""

from __future__ import annotations

import dataclasses
import os
import random
from typing import Any

from evonas.operators import MUTATIONS, Mutation


def _fixed() -> bool:
    return os.environ.get("EVONAS_TEST_OPS_FIXED") == "1"


def change_one_edge(genome: Any, space: Any, rng: random.Random) -> Any:
    i = rng.randrange(len(genome.edges))
    edges = list(genome.edges)
    edges[i] = rng.choice([op for op in space.ops if op != edges[i]])
    return dataclasses.replace(genome, edges=tuple(edges))


@MUTATIONS.register("every_third")
class EveryThird(Mutation):
    spaces = ("nb201",)

    def __init__(self) -> None:
        self.calls = 0

    def _mutate(self, genome: Any, *, space: Any, rng: random.Random) -> Any:
        self.calls += 1
        if self.calls % 3 == 0 and not _fixed():
            raise ValueError("boom")
        return change_one_edge(genome, space, rng)


@MUTATIONS.register("bad_width")
class BadWidth(Mutation):
    spaces = ("nb201",)

    def _mutate(self, genome: Any, *, space: Any, rng: random.Random) -> Any:
        if _fixed():
            return change_one_edge(genome, space, rng)
        return dataclasses.replace(genome, edges=("conv_7x7",) * len(genome.edges))


@MUTATIONS.register("returns_none")
class ReturnsNone(Mutation):
    spaces = ("nb201",)

    def _mutate(self, genome: Any, *, space: Any, rng: random.Random) -> Any:
        change_one_edge(genome, space, rng)  # forgot the return


@MUTATIONS.register("returns_parent")
class ReturnsParent(Mutation):
    spaces = ("nb201",)

    def _mutate(self, genome: Any, *, space: Any, rng: random.Random) -> Any:
        change_one_edge(genome, space, rng)  # changed a copy it threw away
        return genome


@MUTATIONS.register("returns_dict")
class ReturnsDict(Mutation):
    spaces = ("nb201",)

    def _mutate(self, genome: Any, *, space: Any, rng: random.Random) -> Any:
        return space.to_dict(change_one_edge(genome, space, rng))
