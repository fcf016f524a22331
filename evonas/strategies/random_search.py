"""Random search: the baseline every strategy must beat."""

from __future__ import annotations

from typing import Any

from evonas.checks import check_int
from evonas.spaces.base import Genome
from evonas.strategies.base import STRATEGIES, BatchedSampling, Candidate, SearchContext

__all__ = ["RandomSearch"]


@STRATEGIES.register("random")
class RandomSearch(BatchedSampling):
    """Samples ``batch`` new genomes per generation until ``samples`` (or the run's budget) are evaluated.

    The saved genomes come first. A sample the run has already asked, or one over a cheap limit, is drawn again
    up to ``max_retries`` times. The population reported per generation is the ``batch`` best evaluated so far.

    Parameters:
        samples: genomes to evaluate in all (at most the run's budget).
        batch: genomes asked per generation (evaluated in parallel; one logbook row each).
    """

    mutates = False
    ranks = False

    run_length = "samples"

    def __init__(self, ctx: SearchContext, *, samples: int = 100, batch: int = 10, **common: Any) -> None:
        check_int("samples", samples, 1)
        super().__init__(ctx, batch=batch, **common)
        self.samples = min(samples, ctx.budget) if ctx.budget else samples

    def expected_evaluations(self) -> int:
        return self.samples

    def is_done(self) -> bool:
        return self.n_asked >= self.samples and not self._pending

    def ask(self, n: int) -> list[Candidate]:
        if self._pending or self.n_asked >= self.samples:
            return []
        initial = list(self.ctx.initial)
        for _ in range(min(self.batch, self.samples - self.n_asked)):
            if self.n_asked < len(initial):  # the saved genomes in order
                proposal: tuple[Genome, str, tuple[str, ...]] = initial[self.n_asked], "saved", ()
            else:
                proposal = self.redraw(lambda: (self.ctx.space.sample(rng=self.rng), "sample", ()))
            self._pending.append(self.candidate(*proposal))
            self.n_asked += 1
        return list(self._pending)
