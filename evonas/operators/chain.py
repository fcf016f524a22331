"""Operators of the ``chain`` space, and the layer-list edits they share with ``mlp``.

The edits (:func:`add_layer`, :func:`remove_layer`, :func:`change_layer`,
:func:`change_hparam`, :func:`one_point_crossover`) work on any
:class:`~evonas.spaces.hparams.LayerListSpace` through its per-layer hooks, so
the ``chain_*`` operators here and the ``mlp_*`` ones in
:mod:`evonas.operators.mlp` are thin named wrappers. An edit may return an
invalid or unchanged genome; the :class:`Mutation` / :class:`Crossover` base
classes retry.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from evonas.operators.base import CROSSOVERS, MUTATIONS, Crossover, Mutation
from evonas.spaces.base import Genome, SearchSpace
from evonas.spaces.hparams import HPARAM_FIELDS
from evonas.spaces.layered import LayeredGenome, LayerListSpace, layered

__all__ = [
    "ChainAddLayer", "ChainChangeLayer", "ChainHParam", "ChainOnePoint", "ChainRemoveLayer",
    "add_layer", "change_hparam", "change_layer", "layer_space", "one_point_crossover", "remove_layer",
]


def layer_space(space: SearchSpace) -> LayerListSpace:
    """``space`` if it is a layer-list space, else a ``TypeError`` (the edits need its hooks)."""
    if not isinstance(space, LayerListSpace):
        raise TypeError(f"operator needs a layer-list space (chain, mlp), got '{space.name}'")
    return space


def add_layer(space: LayerListSpace, genome: LayeredGenome, *, rng: random.Random) -> LayeredGenome:
    """Insert a random layer at a random position (unchanged at ``max_layers``)."""
    layers = genome.layers
    if len(layers) >= space.max_layers:
        return genome
    at = rng.randint(0, len(layers))
    new = space.sample_layer(rng=rng, others=layers)
    return dataclasses.replace(genome, layers=layers[:at] + (new,) + layers[at:])


def remove_layer(space: LayerListSpace, genome: LayeredGenome, *, rng: random.Random) -> LayeredGenome:
    """Drop a random layer (unchanged at ``min_layers``)."""
    layers = genome.layers
    if len(layers) <= space.min_layers:
        return genome
    at = rng.randrange(len(layers))
    return dataclasses.replace(genome, layers=layers[:at] + layers[at + 1 :])


def change_layer(space: LayerListSpace, genome: LayeredGenome, *, rng: random.Random) -> LayeredGenome:
    """Change one field of one random layer."""
    layers = genome.layers
    if not layers:
        return genome
    at = rng.randrange(len(layers))
    new = space.mutate_layer(layers[at], rng=rng, others=layers[:at] + layers[at + 1 :])
    return dataclasses.replace(genome, layers=layers[:at] + (new,) + layers[at + 1 :])


def change_hparam(space: LayerListSpace, genome: LayeredGenome, *, rng: random.Random) -> LayeredGenome:
    """Change one hyperparameter gene (see :meth:`~evonas.spaces.hparams.HParamSpec.mutate_one`)."""
    return dataclasses.replace(genome, **space.hp.mutate_one(genome, rng=rng))


def one_point_crossover(
    space: LayerListSpace, a: LayeredGenome, b: LayeredGenome, *, rng: random.Random
) -> tuple[LayeredGenome, LayeredGenome]:
    """Children ``a[:i] + b[j:]`` and ``b[:j] + a[i:]``; each hyperparameter gene from either parent.

    The cut ``(i, j)`` is drawn among those that keep both children within the
    space's layer constraints and do not just copy the parents' layer lists.
    """
    la, lb = a.layers, b.layers
    cuts = [
        (i, j)
        for i in range(len(la) + 1)
        for j in range(len(lb) + 1)
        if (i, j) not in ((0, 0), (len(la), len(lb)))
        and space.layers_fit(la[:i] + lb[j:])
        and space.layers_fit(lb[:j] + la[i:])
    ]
    l1, l2 = la, lb
    if cuts:
        i, j = rng.choice(cuts)
        l1, l2 = la[:i] + lb[j:], lb[:j] + la[i:]
    h1: dict[str, Any] = {}
    h2: dict[str, Any] = {}
    for name in HPARAM_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if rng.random() < 0.5:
            x, y = y, x
        h1[name], h2[name] = x, y
    return dataclasses.replace(a, layers=l1, **h1), dataclasses.replace(b, layers=l2, **h2)


@MUTATIONS.register("chain_add_layer")
class ChainAddLayer(Mutation):
    """Insert a random layer at a random position (up to ``max_layers``)."""

    spaces = ("chain",)

    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        return add_layer(layer_space(space), layered(genome), rng=rng)


@MUTATIONS.register("chain_remove_layer")
class ChainRemoveLayer(Mutation):
    """Drop a random layer (down to ``min_layers``)."""

    spaces = ("chain",)

    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        return remove_layer(layer_space(space), layered(genome), rng=rng)


@MUTATIONS.register("chain_change_layer")
class ChainChangeLayer(Mutation):
    """Change one field (kernel, width, stride, activation, batch norm, residual) of one layer."""

    spaces = ("chain",)

    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        return change_layer(layer_space(space), layered(genome), rng=rng)


@MUTATIONS.register("chain_hparam")
class ChainHParam(Mutation):
    """Change one hyperparameter: ``lr`` by a log-normal step clipped to range, the others resampled."""

    spaces = ("chain",)

    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        return change_hparam(layer_space(space), layered(genome), rng=rng)


@CROSSOVERS.register("chain_one_point")
class ChainOnePoint(Crossover):
    """One-point crossover of the layer lists within the depth bounds; each hyperparameter from either parent."""

    spaces = ("chain",)

    def _crossover(
        self, a: Genome, b: Genome, *, space: SearchSpace, rng: random.Random
    ) -> tuple[Genome, Genome]:
        return one_point_crossover(layer_space(space), layered(a), layered(b), rng=rng)
