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

from evonas.operators.base import Crossover, InvalidChild, Mutation, child_problem, describe_error
from evonas.spaces.base import InvalidGenome, SearchSpace

__all__ = ["check_space", "check_mutation", "check_crossover"]


def check_space(
    space: SearchSpace, *, n: int = 200, seed: int = 0, input_shape: tuple[int, ...] | None = None, num_classes: int = 10
) -> None:
    """``n`` random genomes: sample -> validate -> JSON round trip (same key) -> decode -> forward; and the space's
    own code never failed on the way (:meth:`~evonas.spaces.base.SearchSpace.faults`: a build function that raised
    anything but ``InvalidGenome`` on some draws, which sampling quietly draws again)."""
    import torch  # torch: only to run the decoded networks (the operator checks need none)

    before = {(f["kind"], f["name"]): (f["failures"], f["calls"]) for f in space.faults()}
    shape = tuple(input_shape or space.example_input_shape)
    rng = random.Random(seed)
    again = random.Random(seed)
    for i in range(n):
        g = space.sample(rng=rng)
        assert g == space.sample(rng=again), ("sample() must depend only on rng (a build function draws no random "
                                              "numbers of its own: its choices are arch.choice, arch.int, arch.float)")
        try:
            space.validate(g)
            data = json.loads(json.dumps(space.to_dict(g)))
            back = space.from_dict(data)
        except InvalidGenome as exc:
            raise AssertionError(
                f"genome {i}: the space refused a genome it had just sampled ({exc}); asked again, it answers "
                "otherwise: a build function must ask the same choices with the same options for the same answers "
                "(no random numbers or state of its own)"
            ) from None
        assert back == g, f"genome {i}: JSON round trip changed it"
        assert space.key(back) == space.key(g), f"genome {i}: key changed in the JSON round trip"
        assert space.key(space.canonical(g)) == space.key(g), f"genome {i}: canonical form has another key"
        net = space.decode(g, input_shape=shape, num_classes=num_classes)
        net.eval()
        with torch.no_grad():
            out = net(torch.randn(2, *shape))
        assert tuple(out.shape) == (2, num_classes), f"genome {i}: output shape {tuple(out.shape)}"
    faults = []
    for f in space.faults():
        failed, calls = before.get((f["kind"], f["name"]), (0, 0))
        if f["failures"] > failed:
            faults.append(f"{f['kind']} '{f['name']}' failed {f['failures'] - failed} of {f['calls'] - calls} calls "
                          f"(first: {f['first_error']})")  # fmt: skip
    assert not faults, "; ".join(faults) + " (raise InvalidGenome to refuse a combination of choices on purpose)"


def _snapshot(space: SearchSpace, genome: Any) -> str:
    return json.dumps(space.to_dict(genome), sort_keys=True)


def _problems(counts: dict[str, int], n: int) -> str:
    """``raised ValueError: boom at my_ops.py:12 in 17 of 50 calls; returned None in 3 of 50 calls``."""
    shown = sorted(counts.items(), key=lambda kv: -kv[1])
    text = "; ".join(f"{p} in {c} of {n} calls" for p, c in shown[:3])
    return text + (f"; and {len(shown) - 3} other problems" if len(shown) > 3 else "")


def _call(fn: Any) -> tuple[Any, str | None]:
    """``(fn(), None)``, or ``(None, what went wrong)`` in the words a run's summary uses."""
    try:
        return fn(), None
    except InvalidChild as exc:
        return None, str(exc)
    except Exception as exc:
        return None, f"raised {describe_error(exc)}"


def check_mutation(op: Mutation, space: SearchSpace, *, n: int = 200, seed: int = 0, min_changed: float = 0.5) -> None:
    """``n`` applications: children valid, parents unchanged, most children differ from their parent.

    A failure says what was wrong and how often: ``raised ValueError: boom at my_ops.py:12 in 17 of 50 calls``,
    ``returned a dict, not a genome``, ``returned None``, ``returned an invalid genome: <the space's reason>``.
    """
    rng = random.Random(seed)
    changed = 0
    problems: dict[str, int] = {}
    for _ in range(n):
        parent = space.sample(rng=rng)
        before = _snapshot(space, parent)
        child, problem = _call(lambda: op(parent, space=space, rng=rng))
        problem = problem or child_problem(child, space)
        assert _snapshot(space, parent) == before, f"{op.name} modified its parent"
        if problem:
            problems[problem] = problems.get(problem, 0) + 1
            continue
        changed += child != parent
    assert not problems, f"{op.name} {_problems(problems, n)}"
    assert changed >= min_changed * n, f"{op.name} changed only {changed} of {n} parents (the others came back unchanged)"


def check_crossover(op: Crossover, space: SearchSpace, *, n: int = 200, seed: int = 0) -> None:
    """``n`` applications: both children valid, parents unchanged; a failure says what was wrong and how often."""
    rng = random.Random(seed)
    problems: dict[str, int] = {}
    for _ in range(n):
        a, b = space.sample(rng=rng), space.sample(rng=rng)
        before = (_snapshot(space, a), _snapshot(space, b))
        pair, problem = _call(lambda: op(a, b, space=space, rng=rng))
        if problem is None:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                problem = "returned None, not a pair of genomes" if pair is None else f"returned a {type(pair).__name__}, not a pair of genomes"
            else:
                problem = child_problem(pair[0], space) or child_problem(pair[1], space)
        assert (_snapshot(space, a), _snapshot(space, b)) == before, f"{op.name} modified a parent"
        if problem:
            problems[problem] = problems.get(problem, 0) + 1
    assert not problems, f"{op.name} {_problems(problems, n)}"
