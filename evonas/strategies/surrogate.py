"""``surrogate``: model-based search (the Bayesian-optimisation family of NAS, in the spirit of BANANAS).

A surrogate model predicts fitness from the space's numeric encoding
(``space.encode(genome)``, :mod:`evonas.spaces.encoding`); each evaluation
goes to the most promising of many cheap candidates by an acquisition rule.
The surrogate is scikit-learn's ``ExtraTreesRegressor``: its per-tree
predictions give a mean and a spread, with no hyperparameters to fit, on any
mix of one-hot and numeric features.

As in BANANAS (White et al. 2021) and NPENAS, the candidates are mostly
one-mutation children of the best architectures so far (the acquisition
optimiser that works best on cell spaces; by default of the two best, as in
NASLib's BANANAS), with a few random samples, and the default acquisition is
independent Thompson sampling: one draw per candidate from the ensemble's
Gaussian, which keeps a sequential search exploring without a trade-off
constant to tune.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from evonas.checks import check_choice, check_int, check_number, check_probability
from evonas.evolution import Individual
from evonas.spaces.base import Genome
from evonas.spaces.encoding import require_encoding
from evonas.strategies.base import STRATEGIES, Candidate, Proposal, SearchContext, SteadyState, scalar_fitness

__all__ = ["SurrogateSearch", "expected_improvement"]

ACQUISITIONS = ("its", "ei", "ucb")
#: entries of the genome -> key and key -> encoding caches before they start over (bounded memory in long runs).
_CACHE_SIZE = 50_000


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """Expected improvement over ``best`` of Gaussian predictions (maximising); ``mean - best`` where ``std`` is 0."""
    from scipy.special import ndtr  # here, not at the top: scipy is kept out of `evonas list/status` start-up

    std = np.maximum(std, 1e-12)
    z = (mean - best) / std
    return (mean - best) * ndtr(z) + std * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


@STRATEGIES.register("surrogate")
class SurrogateSearch(SteadyState):
    """Model-based search with an extra-trees surrogate, asynchronous.

    The first ``initial_samples`` candidates are the saved genomes, then random
    samples. After that, each ask refits the surrogate (an ``ExtraTreesRegressor``
    of ``trees`` trees, when ``refit_every`` results arrived since the last fit)
    on every result so far (failures count as the worst result), builds a pool
    of ``pool`` candidates (one mutation each of the ``parents`` best genomes,
    in turn, and a ``random_fraction`` of random samples; those the run has seen
    are dropped), and asks the best of them by the ``acquisition`` rule, the
    trees' mean and spread read as a Gaussian: ``its`` (independent Thompson
    sampling: one draw from each candidate's Gaussian), ``ei`` (expected
    improvement over the best result) or ``ucb`` (mean + ``kappa`` x spread).
    ``samples`` architectures in all (default: the run's budget). A logbook
    record every ``log_every`` results, over the ``parents`` best.

    Example (experiment file)::

        strategy: {name: surrogate, params: {initial_samples: 10, pool: 300, acquisition: its}}
        budget: 100

    Parameters:
        initial_samples: candidates asked before the first fit (the saved genomes, then random samples).
        pool: candidates the surrogate ranks at each ask.
        parents: how many of the best genomes so far the pool's mutations start from.
        random_fraction: the share of the pool that is random samples.
        acquisition: how a candidate's predicted mean and spread are ranked: ``its`` (Thompson sampling), ``ei``
            (expected improvement) or ``ucb`` (mean + ``kappa`` x spread).
        kappa: with ``acquisition: ucb``, the weight of the spread.
        trees: trees of the ``ExtraTreesRegressor``.
        refit_every: refit the surrogate once this many new results have arrived.
    """

    def __init__(
        self, ctx: SearchContext, *, initial_samples: int = 10, pool: int = 300, parents: int = 2,
        random_fraction: float = 0.1, acquisition: Literal["its", "ei", "ucb"] = "its", kappa: float = 1.0,
        trees: int = 30, refit_every: int = 2, **common: Any,
    ) -> None:
        check_int("initial_samples", initial_samples, 1)
        check_int("pool", pool, 1)
        check_int("parents", parents, 1)
        check_int("trees", trees, 2)
        check_int("refit_every", refit_every, 1)
        check_probability("random_fraction", random_fraction)
        check_choice("acquisition", acquisition, ACQUISITIONS)
        check_number("kappa", kappa, minimum=0.0)
        super().__init__(ctx, **common)
        require_encoding(ctx.space, "surrogate")
        self.initial_samples, self.pool, self.parents = initial_samples, pool, parents
        self.random_fraction, self.acquisition, self.kappa = float(random_fraction), acquisition, float(kappa)
        self.trees, self.refit_every = trees, refit_every
        self._x: list[list[float]] = []
        self._y: list[float] = []
        self._model: Any = None  # the fitted ExtraTreesRegressor
        self._fitted_on = 0
        self._queue: list[Proposal] = []  # ranked proposals of the last pool, served within one ask
        self._keys: dict[Genome, str] = {}  # genome -> key: pools repeat the same neighbours many times
        self._codes: dict[str, list[float]] = {}  # key -> encoding

    # -- caches (speed only: they change no result) ---------------------------------------------
    def _key(self, genome: Genome) -> str:
        try:
            key = self._keys.get(genome)
        except TypeError:  # an unhashable genome: no cache
            return self.ctx.space.key(genome)
        if key is None:
            if len(self._keys) >= _CACHE_SIZE:
                self._keys.clear()
            key = self._keys[genome] = self.ctx.space.key(genome)
        return key

    def _encode(self, key: str, genome: Genome) -> list[float]:
        code = self._codes.get(key)
        if code is None:
            if len(self._codes) >= _CACHE_SIZE:
                self._codes.clear()
            code = self._codes[key] = self.ctx.space.encode(genome)
        return code

    # -- proposals ----------------------------------------------------------------------------
    def propose(self) -> Proposal | None:
        if self.next_index < self.initial_samples or len(self._y) < 2:
            if self.next_index >= self.initial_samples and self._pending:
                return None  # too few results to fit on yet: wait for them
            return self.sample()
        proposal = self._next_usable()
        if proposal is None:
            self._fit()
            self._queue = self._ranked_pool()
            proposal = self._next_usable()
        return proposal if proposal is not None else self.sample()

    def _next_usable(self) -> Proposal | None:
        """The queue's best candidate that is new and within the cheap limits (checked here, in ranked order: the
        limits' metrics, FLOPs above all, cost far more than ranking the whole pool)."""
        while self._queue:
            proposal = self._queue.pop(0)
            if self.usable(proposal[0], self._key(proposal[0])):
                return proposal
        return None

    def ask(self, n: int) -> list[Candidate]:
        self._queue = []  # a new ask ranks against the latest results
        return super().ask(n)

    def _fit(self) -> None:
        if self._model is not None and len(self._y) - self._fitted_on < self.refit_every:
            return
        from sklearn.ensemble import ExtraTreesRegressor  # here: sklearn is kept out of `evonas list` start-up

        y = np.asarray(self._y)
        finite = np.isfinite(y)
        y = np.where(finite, y, y[finite].min() if finite.any() else 0.0)
        model = ExtraTreesRegressor(n_estimators=self.trees, random_state=self.rng.getrandbits(31), n_jobs=1)
        self._model = model.fit(np.asarray(self._x, dtype=np.float32), y)
        self._fitted_on = len(self._y)

    def _children(self) -> list[Proposal]:
        """The pool before ranking: one mutation of each of the best genomes in turn, then random samples."""
        space, var = self.ctx.space, self.ctx.variation
        top = self.population  # the `parents` best results
        n_random = round(self.pool * self.random_fraction)
        out: list[Proposal] = []
        for i in range(self.pool - n_random):
            parent = top[i % len(top)]
            child, name = var.mutate(parent.genome, rng=self.rng)
            out.append((child, f"mutation:{name}", (parent.key,)))
        out.extend((space.sample(rng=self.rng), "sample", ()) for _ in range(n_random))
        return out

    def _ranked_pool(self) -> list[Proposal]:
        """The pool's new candidates, best acquisition first (within the cheap limits or not)."""
        keys: set[str] = set()
        pool: list[Proposal] = []
        codes: list[list[float]] = []
        for proposal in self._children():
            key = self._key(proposal[0])
            if key not in keys and self.is_new(key):  # (the cheap limits: checked as the ranked queue is used)
                keys.add(key)
                pool.append(proposal)
                codes.append(self._encode(key, proposal[0]))
        if not pool:
            return []
        x = np.asarray(codes, dtype=np.float32)
        per_tree = np.stack([tree.predict(x, check_input=False) for tree in self._model.estimators_])
        mean, std = per_tree.mean(axis=0), per_tree.std(axis=0)
        if self.acquisition == "ei":
            y = np.asarray(self._y)
            score = expected_improvement(mean, std, float(y[np.isfinite(y)].max(initial=mean.min())))
        elif self.acquisition == "ucb":
            score = mean + self.kappa * std
        else:  # its: seeded from the strategy's rng, so a replay draws the same
            gen = np.random.default_rng(self.rng.getrandbits(63))
            score = mean + std * gen.standard_normal(len(mean))
        ranked = np.argsort(-score, kind="stable")
        return [(pool[i][0], f"surrogate:{pool[i][1]}", pool[i][2]) for i in ranked]

    # -- results ------------------------------------------------------------------------------
    def learn(self, candidate: Candidate, individual: Individual) -> None:
        key = self._key(individual.genome)
        self._x.append(self._encode(key, individual.genome))
        self._y.append(scalar_fitness(individual))
        pool = sorted([*self.population, individual], key=scalar_fitness, reverse=True)  # stable: earlier first
        self.population = pool[: self.parents]
