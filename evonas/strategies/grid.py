"""``grid``: exhaustive enumeration of a small search space, every architecture once.

For spaces that can list their genomes (``all_genomes()`` and ``size``, as
``nb201`` does): a ground truth to compare strategies against, or the whole
table of a narrowed benchmark space.
"""

from __future__ import annotations

import json
from typing import Literal

from evonas.checks import check_choice, check_int
from evonas.registry import is_plugin
from evonas.spaces.base import Genome, SearchSpace, UnsuitedSpace
from evonas.strategies.base import STRATEGIES, BatchedSampling, Candidate, SearchContext

__all__ = ["GridSearch"]


#: each enumerated space's genomes with their keys, by the space's name and parameters: the keys cost most of a
#: short grid search, and a benchmark runs hundreds of them on one space in a process
_KEYED: dict[str, tuple[tuple[Genome, str], ...]] = {}


def _keyed(space: SearchSpace) -> tuple[tuple[Genome, str], ...]:
    """``space.all_genomes()`` in its order, each with its key (cached for spaces of built-in code)."""
    if not is_plugin(type(space)):
        try:
            ident = f"{space.name}:{json.dumps(space.params, sort_keys=True)}"
        except (TypeError, ValueError):
            ident = None
        if ident is not None:
            if ident not in _KEYED:
                _KEYED[ident] = tuple((g, space.key(g)) for g in space.all_genomes())
            return _KEYED[ident]
    return tuple((g, space.key(g)) for g in space.all_genomes())


@STRATEGIES.register("grid")
class GridSearch(BatchedSampling):
    """Evaluates every architecture of the space once, in generations of ``batch``.

    Genomes that share a key (decode to the same network) are asked once, the
    first met. ``order: shuffled`` (default) enumerates in an order shuffled by
    the run's seed, so a budget smaller than the space gives a uniform sample
    without repeats; ``fixed`` keeps the space's own order. Spaces with more
    than ``max_size`` genomes are refused. The population reported per
    generation is the ``batch`` best so far.

    Example (experiment file)::

        space: {name: nb201, params: {ops: [none, skip_connect, nor_conv_3x3]}}
        strategy: {name: grid, params: {batch: 100}}

    Parameters:
        order: ``shuffled`` (an order shuffled by the run's seed: a budget smaller than the space is a uniform
            sample without repeats) or ``fixed`` (the space's own order).
        batch: genomes asked per generation.
        max_size: the most genomes a space may have (a larger one is refused before the run starts).
        hall_of_fame: the best genomes kept in the hall of fame.
    """

    mutates = False
    ranks = False
    asks_saved = False

    def __init__(
        self,
        ctx: SearchContext,
        *,
        order: Literal["shuffled", "fixed"] = "shuffled",
        batch: int = 100,
        max_size: int = 100_000,
        hall_of_fame: int = 10,
    ) -> None:
        super().__init__(ctx, batch=batch, hall_of_fame=hall_of_fame)
        check_choice("order", order, ("shuffled", "fixed"))
        check_int("max_size", max_size, 1)
        space = ctx.space
        if space.size is None:
            why = f"space '{space.name}' cannot be enumerated (its size is None)"
            try:  # the space's own reason, where it gives one
                space.all_genomes()
            except NotImplementedError as exc:
                why = str(exc) or why
            raise UnsuitedSpace(f"strategy 'grid': {why}" + (
                "" if type(space).all_genomes is not SearchSpace.all_genomes else
                "; a space that can list its genomes declares size and all_genomes()"
            ))  # fmt: skip
        if space.size > max_size:
            raise ValueError(
                f"max_size: space '{space.name}' has {space.size} genomes, more than max_size={max_size}; "
                "narrow the space or raise max_size"
            )
        self.order, self.max_size = order, max_size
        self._genomes: list[tuple[Genome, str]] | None = None

    def genomes(self) -> list[tuple[Genome, str]]:
        """Every distinct architecture (genome, key), in the order they will be asked."""
        if self._genomes is None:
            order = list(_keyed(self.ctx.space))
            if self.order == "shuffled":
                self.rng.shuffle(order)
            seen: dict[str, Genome] = {}
            for g, k in order:
                seen.setdefault(k, g)
            self._genomes = [(g, k) for k, g in seen.items()]
        return self._genomes

    def expected_evaluations(self) -> int:
        n = len(self.genomes())
        return min(n, self.ctx.budget) if self.ctx.budget else n

    def is_done(self) -> bool:
        return self.n_asked >= self.expected_evaluations() and not self._pending

    def ask(self, n: int) -> list[Candidate]:
        end = min(self.n_asked + self.batch, self.expected_evaluations())  # the last generation stops at the budget
        if self._pending or self.n_asked >= end:
            return []
        chunk = self.genomes()[self.n_asked : end]
        self._pending = [self.candidate(g, "grid", key=k) for g, k in chunk]
        self.n_asked += len(chunk)
        return list(self._pending)
