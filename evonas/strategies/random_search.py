"""Random search: the baseline every strategy must beat."""

from __future__ import annotations

from evonas.strategies.base import STRATEGIES, BatchedSampling, Candidate, SearchContext

__all__ = ["RandomSearch"]


@STRATEGIES.register("random")
class RandomSearch(BatchedSampling):
    """Samples ``batch`` new genomes per generation until ``samples`` (or the run's budget) are evaluated.

    The population reported per generation is the ``batch`` best evaluated so far.
    """

    def __init__(
        self, ctx: SearchContext, *, samples: int = 100, batch: int = 10, max_retries: int = 10, hall_of_fame: int = 10
    ) -> None:
        if samples < 1 or batch < 1:
            raise ValueError("samples, batch: expected integers >= 1")
        super().__init__(ctx, batch=batch, hall_of_fame=hall_of_fame)
        self.samples = min(samples, ctx.budget) if ctx.budget else samples
        self.max_retries = max_retries
        self._seen: set[str] = set()

    def expected_evaluations(self) -> int:
        return self.samples

    def is_done(self) -> bool:
        return self.asked >= self.samples and not self._pending

    def ask(self, n: int) -> list[Candidate]:
        if self._pending or self.asked >= self.samples:
            return []
        size = min(self.batch, self.samples - self.asked)
        initial = list(self.ctx.initial)
        for i in range(size):
            space = self.ctx.space
            if self.asked < len(initial):
                g, origin = initial[self.asked], "saved"
                key = space.key(g)
            else:
                g, origin = space.sample(rng=self.rng), "sample"
                key = space.key(g)
                for _ in range(self.max_retries):  # a seen key or a broken cheap limit: draw again
                    if key not in self._seen and self.ctx.feasible(g):
                        break
                    g = space.sample(rng=self.rng)
                    key = space.key(g)
            cand = Candidate(g, key, self.gen, i, origin)
            self._seen.add(key)
            self._pending.append(cand)
            self.asked += 1
        return list(self._pending)
