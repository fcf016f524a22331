"""REINFORCE: a policy-gradient controller over the genome's categorical choices.

The reinforcement-learning baseline of the NAS benchmarks (as in NAS-Bench-201's
REINFORCE): an independent softmax over the options of each choice of the
space's categorical view (:mod:`evonas.spaces.encoding`; for ``nb201`` the 6
edges' ops), trained by REINFORCE with an exponential-moving-average reward
baseline. Written in numpy: the policy is a vector of logits.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from evonas.checks import check_choice, check_number
from evonas.evolution import Individual
from evonas.spaces.encoding import require_categorical
from evonas.strategies.base import STRATEGIES, Candidate, Proposal, SearchContext, SteadyState, scalar_fitness

__all__ = ["Reinforce"]

_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8


@STRATEGIES.register("reinforce")
class Reinforce(SteadyState):
    """REINFORCE with a moving-average baseline, asynchronous (one sample per free worker).

    Each candidate samples every choice from its softmax (saved genomes are
    asked first). On each result, in arrival order: the reward ``r`` is the
    (weighted) objective value, a failure counting as the worst reward seen so
    far; the baseline ``b`` is the bias-corrected moving average of rewards
    with ``momentum``; the logits of the choices the genome uses take one
    ``optimizer`` step (``adam`` or ``sgd``, learning rate ``lr``) on
    ``-(r - b) * log p(genome)``. ``samples`` architectures in all (default:
    the run's budget). A logbook record every ``log_every`` results, over the
    last ``log_every`` results.

    A draw the run has already evaluated, or one over a cheap limit of the
    experiment's ``constraints``, is drawn again (up to ``max_retries``
    times); a policy that has converged on evaluated architectures explores
    by changing single choices of its draw at random (origin ``explore``), so
    the budget keeps going to new architectures. The default ``lr`` suits runs
    of a few hundred evaluations; NATS-Bench uses 0.01 for thousands.

    Example (experiment file)::

        strategy: {name: reinforce, params: {lr: 0.05, momentum: 0.9}}
        budget: 200

    Parameters:
        lr: the policy's learning rate (0.05 suits a few hundred evaluations; NATS-Bench uses 0.01 for thousands).
        momentum: the decay of the reward baseline's moving average.
        optimizer: the policy's optimizer: ``adam`` or ``sgd``.
    """

    mutates = False

    def __init__(
        self, ctx: SearchContext, *, lr: float = 0.05, momentum: float = 0.9,
        optimizer: Literal["adam", "sgd"] = "adam", **common: Any,
    ) -> None:
        check_number("lr", lr, above=0.0)
        check_number("momentum", momentum, minimum=0.0, below=1.0)
        check_choice("optimizer", optimizer, ("adam", "sgd"))
        super().__init__(ctx, **common)
        self.choices = require_categorical(ctx.space, "reinforce")
        self.lr, self.momentum, self.optimizer = float(lr), float(momentum), optimizer
        sizes = [len(c.options) for c in self.choices]
        self._offsets = np.cumsum([0] + sizes)
        self.logits = np.zeros(int(self._offsets[-1]))
        self._m = np.zeros_like(self.logits)
        self._v = np.zeros_like(self.logits)
        self._steps = 0
        self._avg_num = self._avg_den = 0.0  # bias-corrected moving average of rewards
        self._worst = math.inf
        self._values: dict[int, tuple[int, ...]] = {}  # candidate index -> sampled option indices

    # -- the policy ---------------------------------------------------------------------------
    def probabilities(self) -> list[np.ndarray]:
        """The current softmax of each choice."""
        out = []
        for i in range(len(self.choices)):
            z = self.logits[self._offsets[i] : self._offsets[i + 1]]
            e = np.exp(z - z.max())
            out.append(e / e.sum())
        return out

    def _draw(self, probs: list[np.ndarray]) -> tuple[int, ...]:
        values = []
        for p in probs:
            u = self.rng.random()
            values.append(min(int(np.searchsorted(np.cumsum(p), u, side="right")), len(p) - 1))
        return tuple(values)

    def propose(self) -> Proposal | None:
        space = self.ctx.space
        genome = self.saved()
        if genome is not None:
            self._values[self.next_index] = space.to_categorical(genome)
            return genome, "saved", ()
        probs = self.probabilities()
        values: tuple[int, ...] = ()

        def draw() -> Proposal:
            nonlocal values
            values = self._draw(probs)
            return space.from_categorical(values), "policy", ()

        def explore() -> Proposal:  # a policy that only repeats itself: a random single-choice change of its draw
            nonlocal values
            changed = list(values)
            i = self.rng.randrange(len(changed))
            changed[i] = self.rng.randrange(len(self.choices[i].options))
            values = tuple(changed)
            return space.from_categorical(values), "explore", ()

        proposal = self.redraw(explore, first=self.redraw(draw))
        self._values[self.next_index] = values
        return proposal

    def learn(self, candidate: Candidate, individual: Individual) -> None:
        self.population.append(individual)
        if len(self.population) > self.log_every:
            del self.population[0]
        values = self._values.pop(candidate.index)
        reward = scalar_fitness(individual)
        if math.isfinite(reward):
            self._worst = min(self._worst, reward)
        else:  # a failure: as bad as the worst result so far
            reward = self._worst if math.isfinite(self._worst) else 0.0
        self._avg_num = self.momentum * self._avg_num + (1 - self.momentum) * reward
        self._avg_den = self.momentum * self._avg_den + (1 - self.momentum)
        advantage = reward - self._avg_num / self._avg_den
        active = self.ctx.space.categorical_active(values)
        grad = np.zeros_like(self.logits)  # of the loss -(advantage * log p(values))
        for i, (p, v, on) in enumerate(zip(self.probabilities(), values, active)):
            if on:
                g = p.copy()
                g[v] -= 1.0
                grad[self._offsets[i] : self._offsets[i + 1]] = advantage * g
        self._step(grad)

    def _step(self, grad: np.ndarray) -> None:
        if self.optimizer == "sgd":
            self.logits -= self.lr * grad
            return
        self._steps += 1
        self._m = _BETA1 * self._m + (1 - _BETA1) * grad
        self._v = _BETA2 * self._v + (1 - _BETA2) * grad * grad
        m_hat = self._m / (1 - _BETA1**self._steps)
        v_hat = self._v / (1 - _BETA2**self._steps)
        self.logits -= self.lr * m_hat / (np.sqrt(v_hat) + _EPS)
