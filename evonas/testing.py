"""Contract checks for plugin authors: run them on your own space or operator in your tests.

Example::

    from evonas.testing import check_space, check_mutation

    def test_my_space():
        check_space(MySpace())

    def test_my_op():
        check_mutation(MyOp(), MySpace())
"""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

from evonas.operators.base import Crossover, InvalidChild, Mutation, child_problem, describe_error
from evonas.spaces.base import InvalidGenome, SearchSpace

__all__ = ["check_space", "check_mutation", "check_crossover"]


#: what a build function must do, said where the space answers otherwise when asked again
_SAME_ANSWERS = ("a build function must ask the same choices with the same options for the same answers (no random "
                 "numbers or state of its own)")


def check_space(
    space: SearchSpace, *, n: int = 200, seed: int = 0, input_shape: tuple[int, ...] | None = None, num_classes: int = 10
) -> None:
    """``n`` random genomes: sample -> validate -> JSON round trip (same key) -> decode (twice: the same layers) ->
    forward; and the space's own code never failed on the way (:meth:`~evonas.spaces.base.SearchSpace.faults`: a
    build function that raised anything but ``InvalidGenome`` on some draws, which sampling quietly draws again).

    A space with a categorical view (``reinforce``, ``local_search``, ``surrogate``) must give each genome back from
    its indices, and a valid genome (or ``InvalidGenome``) for any indices; one with a ``size`` (``grid``) must list
    that many distinct valid genomes (checked up to 20,000).
    """
    import torch  # torch: only to run the decoded networks (the operator checks need none)

    before = {(f["kind"], f["name"]): (f["failures"], f["calls"]) for f in space.faults()}
    # a refusal of a genome the space gave itself: for a build function, it asked other choices the second time
    again_hint = f"; asked again, it answers otherwise: {_SAME_ANSWERS}" if space.name == "function" else ""
    shape = tuple(input_shape or space.example_input_shape)
    rng = random.Random(seed)
    again = random.Random(seed)
    draws = random.Random(seed + 1)  # index vectors for the categorical view: the sampling streams stay as they are
    for i in range(n):
        g = space.sample(rng=rng)
        assert g == space.sample(rng=again), ("sample() must depend only on rng (draw with the rng it is given, "
                                              "never the random module; a build function draws no random numbers of "
                                              "its own: its choices are arch.choice, arch.int, arch.float)")  # fmt: skip
        try:
            space.validate(g)
        except InvalidGenome as exc:
            raise AssertionError(f"genome {i}: the space refused a genome it had just sampled ({exc}){again_hint}") from None
        problem = round_trip_problem(space, g)
        assert problem is None, f"genome {i}: {problem}"
        assert space.key(space.canonical(g)) == space.key(g), f"genome {i}: canonical form has another key"
        try:
            net = space.decode(g, input_shape=shape, num_classes=num_classes)
            problem = decode_problem(space, g, shape, num_classes, net)
        except InvalidGenome as exc:
            raise AssertionError(f"genome {i}: decode() refused a genome the space had just sampled ({exc})"
                                 f"{again_hint}") from None  # fmt: skip
        except Exception as exc:  # the space's decode raised: which genome, and where
            raise AssertionError(f"genome {i} ({space.describe(g)}): decode() raised "
                                 f"{describe_error(exc, 300)}") from exc  # fmt: skip
        assert problem is None, f"genome {i}: {problem}"
        net.eval()
        try:
            with torch.no_grad():
                out = net(torch.randn(2, *shape))
        except Exception as exc:  # a network that cannot run on the input (a layer's size worked out wrong)
            raise AssertionError(f"genome {i} ({space.describe(g)}): its network fails on a batch of input shape "
                                 f"{(2, *shape)}: {describe_error(exc, 300, installed=False)}") from exc  # fmt: skip
        assert tuple(out.shape) == (2, num_classes), f"genome {i}: output shape {tuple(out.shape)}"
        try:
            problem = categorical_problem(space, g, draws)
        except ValueError as exc:  # a view that cannot be made (a build function asking a choice with other options)
            raise AssertionError(f"genome {i}: {exc}{again_hint}") from None
        assert problem is None, f"genome {i}: {problem}"
    _check_size(space)
    faults = []
    for f in space.faults():
        failed, calls = before.get((f["kind"], f["name"]), (0, 0))
        if f["failures"] > failed:
            faults.append(f"{f['kind']} '{f['name']}' failed {f['failures'] - failed} of {f['calls'] - calls} calls "
                          f"(first: {f['first_error']})")  # fmt: skip
    assert not faults, "; ".join(faults) + " (raise InvalidGenome to refuse a combination of choices on purpose)"


def round_trip_problem(space: SearchSpace, genome: Any) -> str | None:
    """What goes wrong when ``genome`` is written as JSON and read back (as the journal, resume and the cache do):
    ``"the JSON round trip changed it (act: 'tanh' -> 'relu')"``, a key that changed, a refusal; ``None`` if
    nothing."""
    try:
        data = space.to_dict(genome)
        back = space.from_dict(json.loads(json.dumps(data)))
    except Exception as exc:  # InvalidGenome, or the space's own KeyError for a gene to_dict left out
        if not isinstance(exc, InvalidGenome):
            return (f"the JSON round trip raised {describe_error(exc, 200)}: from_dict(to_dict(genome)) must give the "
                    "genome back (to_dict writes every gene from_dict reads, as JSON)")  # fmt: skip
        return (f"from_dict() refused what to_dict() wrote ({exc})" + (
            f"; asked again, the space answers otherwise: {_SAME_ANSWERS}" if space.name == "function" else
            ": to_dict must write every gene from_dict reads"))  # fmt: skip
    if back != genome:
        after = space.to_dict(back)
        changed = [f"{k}: {data.get(k)!r} -> {after.get(k)!r}" for k in dict.fromkeys([*data, *after])
                   if data.get(k) != after.get(k)]  # fmt: skip
        if not changed and dataclasses.is_dataclass(genome) and dataclasses.is_dataclass(back):  # to_dict leaves it out
            changed = [f"{f.name}: {getattr(genome, f.name)!r} -> {getattr(back, f.name, None)!r}"
                       for f in dataclasses.fields(genome) if getattr(genome, f.name) != getattr(back, f.name, None)]
        return ("the JSON round trip changed it" + (f" ({'; '.join(changed[:3])})" if changed else "")
                + ": from_dict(to_dict(genome)) must give the genome back")  # fmt: skip
    if space.key(back) != space.key(genome):
        return "key changed in the JSON round trip: key() must depend only on the genome (no random numbers or state)"
    return None


def decode_problem(
    space: SearchSpace, genome: Any, shape: tuple[int, ...], num_classes: int, net: Any = None
) -> str | None:
    """``None`` when decoding ``genome`` twice gives networks with the same layers (their modules as printed: types
    and settings such as an activation or a dropout rate; parameter names and shapes), else what differs: a network
    drawn at random would train one architecture and report another's."""
    first = net if net is not None else space.decode(genome, input_shape=shape, num_classes=num_classes)
    second = space.decode(genome, input_shape=shape, num_classes=num_classes)
    a = [(k, tuple(v.shape)) for k, v in first.state_dict().items()]
    b = [(k, tuple(v.shape)) for k, v in second.state_dict().items()]
    if a != b or repr(first) != repr(second):
        count = (sum(v.numel() for v in first.parameters()), sum(v.numel() for v in second.parameters()))
        what = f"{count[0]} and {count[1]} parameters" if count[0] != count[1] else _first_difference(first, second)
        return (f"decode() gave two different networks for one genome ({what}): it must depend only on the genome "
                "(no random numbers or state of its own)")  # fmt: skip
    return None


def _first_difference(a: Any, b: Any) -> str:
    """The first line where two modules print differently: ``(1): ReLU() / (1): Tanh()``."""
    for x, y in zip(repr(a).splitlines(), repr(b).splitlines()):
        if x != y:
            return f"{x.strip()} / {y.strip()}"
    return "other layers"


def categorical_problem(space: SearchSpace, genome: Any, rng: random.Random) -> str | None:
    """What is wrong with the space's categorical view (``reinforce``, ``local_search``, ``surrogate`` build genomes
    from it) around ``genome``: indices that do not give it back, random indices (drawn with ``rng``) that give an
    invalid genome or raise anything but ``InvalidGenome`` / ``ValueError``; ``None`` if nothing, or no view."""
    try:
        choices = space.categorical()
    except NotImplementedError:
        return None
    values = space.to_categorical(genome)
    if len(values) != len(choices):
        return f"to_categorical() gave {len(values)} indices for {len(choices)} choices of categorical()"
    try:
        back = space.to_categorical(space.from_categorical(values))  # a number gene's option may be the nearest one
    except Exception as exc:
        return f"from_categorical({list(values)}) of a sampled genome raised {describe_error(exc)}"
    wrong = [f"{c.name}: {values[k]} -> {back[k]}" for k, c in enumerate(choices)
             if k < len(back) and back[k] != values[k]]  # fmt: skip
    if wrong or len(back) != len(values):
        return (f"from_categorical(to_categorical(genome)) gave other indices ({'; '.join(wrong[:3])}): "
                "from_categorical() must read every choice")  # fmt: skip
    drawn = [rng.randrange(len(c)) for c in choices]
    try:
        other = space.from_categorical(drawn)
    except (InvalidGenome, ValueError):  # a combination the space refuses, said as the docstring asks
        return None
    except Exception as exc:
        return (f"from_categorical({drawn}) raised {describe_error(exc)}: give a genome for any option indices, or "
                "raise InvalidGenome for a combination the space refuses")  # fmt: skip
    try:
        space.validate(other)
    except InvalidGenome as exc:
        return (f"from_categorical({drawn}) gave a genome the space refuses ({exc}): offer only valid options in "
                "categorical(), or raise InvalidGenome for a combination")  # fmt: skip
    return None


def _check_size(space: SearchSpace, limit: int = 20_000) -> None:
    size = space.size
    if size is None or size > limit:
        return
    seen = set()  # genomes, not keys: canonical() may merge some (nb201's isomorphic cells)
    for i, g in enumerate(space.all_genomes()):
        try:
            space.validate(g)
        except InvalidGenome as exc:
            raise AssertionError(f"all_genomes() gave genome {i}, which the space refuses ({exc})") from None
        seen.add(json.dumps(space.to_dict(g), sort_keys=True))
        assert len(seen) <= size, f"all_genomes() lists more than size={size} genomes"
    assert len(seen) == size, f"all_genomes() lists {len(seen)} distinct genomes, size says {size}"


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


def check_crossover(op: Crossover, space: SearchSpace, *, n: int = 200, seed: int = 0, min_changed: float = 0.1) -> None:
    """``n`` applications: both children valid, parents unchanged, and of two different parents, children other
    than the parents themselves at least ``min_changed`` of the time; a failure says what was wrong and how often."""
    rng = random.Random(seed)
    problems: dict[str, int] = {}
    changed = differing = 0
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
        elif a != b:
            differing += 1
            changed += tuple(pair) not in ((a, b), (b, a))
    assert not problems, f"{op.name} {_problems(problems, n)}"
    assert changed >= min_changed * differing, (
        f"{op.name} gave back its two parents unchanged in {differing - changed} of {differing} calls with different "
        "parents (does it return the genomes it made?)"
    )
