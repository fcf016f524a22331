"""Contract checks for plugin authors: run them on your own space or operator in your tests.

Example::

    from evonas.testing import check_space, check_mutation

    def test_my_space():
        check_space(MySpace())

    def test_my_op():
        check_mutation(MyOp(), MySpace())
"""

from __future__ import annotations

import json
import random
from typing import Any

from evonas.operators.base import Crossover, Mutation
from evonas.spaces.base import SearchSpace

__all__ = ["check_space", "check_mutation", "check_crossover"]


def check_space(
    space: SearchSpace, *, n: int = 200, seed: int = 0, input_shape: tuple[int, ...] | None = None, num_classes: int = 10
) -> None:
    """``n`` random genomes: sample -> validate -> JSON round trip (same key) -> decode -> forward."""
    import torch

    shape = tuple(input_shape or space.example_input_shape)
    rng = random.Random(seed)
    again = random.Random(seed)
    for i in range(n):
        g = space.sample(rng=rng)
        assert g == space.sample(rng=again), "sample() must depend only on rng"
        space.validate(g)
        data = json.loads(json.dumps(space.to_dict(g)))
        back = space.from_dict(data)
        assert back == g, f"genome {i}: JSON round trip changed it"
        assert space.key(back) == space.key(g), f"genome {i}: key changed in the JSON round trip"
        assert space.key(space.canonical(g)) == space.key(g), f"genome {i}: canonical form has another key"
        net = space.decode(g, input_shape=shape, num_classes=num_classes)
        net.eval()
        with torch.no_grad():
            out = net(torch.randn(2, *shape))
        assert tuple(out.shape) == (2, num_classes), f"genome {i}: output shape {tuple(out.shape)}"


def _snapshot(space: SearchSpace, genome: Any) -> str:
    return json.dumps(space.to_dict(genome), sort_keys=True)


def check_mutation(op: Mutation, space: SearchSpace, *, n: int = 200, seed: int = 0, min_changed: float = 0.5) -> None:
    """``n`` applications: children valid, parents unchanged, most children differ from their parent."""
    rng = random.Random(seed)
    changed = 0
    for _ in range(n):
        parent = space.sample(rng=rng)
        before = _snapshot(space, parent)
        child = op(parent, space=space, rng=rng)
        space.validate(child)
        assert _snapshot(space, parent) == before, f"{op.name} modified its parent"
        changed += child != parent
    assert changed >= min_changed * n, f"{op.name} changed only {changed} of {n} parents"


def check_crossover(op: Crossover, space: SearchSpace, *, n: int = 200, seed: int = 0) -> None:
    """``n`` applications: both children valid, parents unchanged."""
    rng = random.Random(seed)
    for _ in range(n):
        a, b = space.sample(rng=rng), space.sample(rng=rng)
        before = (_snapshot(space, a), _snapshot(space, b))
        c1, c2 = op(a, b, space=space, rng=rng)
        space.validate(c1)
        space.validate(c2)
        assert (_snapshot(space, a), _snapshot(space, b)) == before, f"{op.name} modified a parent"
