"""A steady-state strategy for tests with a bug: it proposes ``proposals`` samples, then nothing, although it is
not done and nothing of its is in flight (a user's strategy that waits for a result that never comes)."""

from __future__ import annotations

from evonas.evolution import Individual
from evonas.strategies.base import STRATEGIES, Candidate, Proposal, SearchContext, SteadyState


class IdleStrategy(SteadyState):
    def __init__(self, ctx: SearchContext, *, proposals: int = 0, samples: int | None = None) -> None:
        super().__init__(ctx, samples=samples)
        self.proposals = proposals

    def propose(self) -> Proposal | None:
        if len(self.asked_keys) >= self.proposals:
            return None
        return self.sample()

    def learn(self, candidate: Candidate, individual: Individual) -> None:
        pass


if "idle" not in STRATEGIES:
    STRATEGIES.add("idle", IdleStrategy)
