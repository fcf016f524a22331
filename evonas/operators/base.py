"""Variation operators: :class:`Mutation` and :class:`Crossover`, the classes plugins subclass.

The public ``__call__`` does the bookkeeping (the child is valid, the parent is
untouched because genomes are frozen); the subclass writes the small protected
``_mutate`` / ``_crossover`` (the pymoo ``do()`` / ``_do()`` pattern). The
random generator is always passed in.

Example, a plugin module named in an experiment file as ``plugins: [my_ops]``::

    import dataclasses
    from evonas.operators import MUTATIONS, Mutation

    @MUTATIONS.register("halve_lr")
    class HalveLR(Mutation):
        spaces = ("chain",)

        def _mutate(self, genome, *, space, rng):
            return dataclasses.replace(genome, lr=genome.lr / 2)
"""

from __future__ import annotations

import copy
import dataclasses
import os
import random
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Mapping

from evonas.codehash import is_under, library_dirs
from evonas.registry import Registry, is_plugin
from evonas.spaces.base import Genome, InvalidGenome, SearchSpace

__all__ = [
    "Operator", "Mutation", "Crossover", "MUTATIONS", "CROSSOVERS", "MAX_TRIES", "InvalidChild", "child_problem",
    "describe_error",
]  # fmt: skip

#: attempts an operator gets to produce a valid, changed child before the parent is returned.
MAX_TRIES = 10


class InvalidChild(ValueError):
    """An operator gave no valid child: it returned ``None``, a dict, or only genomes the space refuses.

    The message says which, in the words :func:`evonas.testing.check_mutation` and a run's summary use
    (``returned None``, ``returned a dict, not a genome``, ``returned an invalid genome: <why>``).
    """


def _what(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, Mapping):
        return "a dict"
    name = type(value).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def child_problem(child: Any, space: SearchSpace) -> str | None:
    """Why ``child`` is not a valid genome of ``space`` (``None`` if it is), as an operator's fault reads.

    ``returned None`` / ``returned a dict, not a genome`` / ``returned an invalid genome: <the space's reason>``.
    """
    try:
        space.validate(child)
        return None
    except Exception as exc:  # InvalidGenome, or a validate that chokes on what it was given
        reason = " ".join(str(exc).split()) or type(exc).__name__
    if child is None:
        return "returned None"
    if isinstance(child, Mapping) or not dataclasses.is_dataclass(child) or isinstance(child, type):
        return f"returned {_what(child)}, not a genome"
    return f"returned an invalid genome: {reason}"


def _refused(exc: InvalidGenome) -> str:
    """An operator's try that the space refused while it made the child, as an operator's fault reads."""
    return f"returned no genome the space accepts in {MAX_TRIES} tries: {' '.join(str(exc).split()) or 'InvalidGenome'}"


def _not_a_genome(child: Any) -> bool:
    return child is None or isinstance(child, Mapping) or not dataclasses.is_dataclass(child) or isinstance(child, type)


def describe_error(exc: BaseException, limit: int = 200, *, installed: bool = True) -> str:
    """One line for an exception an operator (or other plug-in code) raised: its type, message and the line of
    the plug-in's own file that raised (``ValueError: boom at my_ops.py:12``; the line: :func:`raised_at`). An
    :class:`InvalidChild` is its message alone.
    """
    message = " ".join(str(exc).split())
    if len(message) > limit:
        message = message[: limit - 3] + "..."
    if isinstance(exc, InvalidChild):
        return message
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    where = raised_at(exc, installed=installed)
    return f"{text} at {where}" if where else text


def raised_at(exc: BaseException, *, installed: bool = True) -> str | None:
    """``my_ops.py:12``: the innermost traceback frame of ``exc`` whose file lies outside evonas, the standard
    library and installed packages; failing that (a plug-in installed as a package), the innermost in an installed
    package other than evonas (unless ``installed`` is false: a fitness failing inside torch has no line of its
    own); else ``None``."""
    return line_of(traceback_frames(exc), installed=installed)


def traceback_frames(exc: BaseException) -> list[tuple[str, int]]:
    """``(filename, line)`` of each frame of ``exc``'s traceback, outermost first."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame.f_code.co_filename, tb.tb_lineno))
        tb = tb.tb_next
    return frames


def line_of(frames: list[tuple[str, int]], *, installed: bool = True) -> str | None:
    """:func:`raised_at` of ``(filename, line)`` frames, outermost first (a traceback's, or a stack's)."""
    evonas_dir = os.path.realpath(Path(__file__).resolve().parents[1])
    std, site = library_dirs()
    own, packaged = None, None
    for filename, line in frames:  # outermost to innermost: the last match is the innermost
        if filename.startswith("<"):  # <frozen ...>, <string>
            continue
        path = os.path.realpath(filename)
        if is_under(path, (evonas_dir,)):
            continue
        if is_under(path, site):
            packaged = (filename, line)
        elif not is_under(path, std):
            own = (filename, line)
    where = own or (packaged if installed else None)
    return f"{os.path.basename(where[0])}:{where[1]}" if where else None


class Operator(ABC):
    """Shared plumbing: a registry ``name``, the ``spaces`` it applies to (empty: any), keyword params."""

    name: ClassVar[str] = ""
    spaces: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any) -> None:
        if params:
            raise TypeError(f"{type(self).__name__} takes no parameters, got {sorted(params)}")

    @classmethod
    def applies_to(cls, space: SearchSpace | str) -> bool:
        """Whether the operator works on ``space``: it names the space in ``spaces`` (or names none), or a space
        class the space's class derives from (a subclass of ``chain`` registered under its own name is a chain)."""
        if not cls.spaces:
            return True
        spaces = (cls.spaces,) if isinstance(cls.spaces, str) else cls.spaces  # spaces = "chain": one name, not letters
        if isinstance(space, str):
            return space in spaces
        names = {space.name, *(c.__dict__.get("name") for c in type(space).__mro__)}
        return any(n in spaces for n in names if n)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _given(op: Any, genome: Genome) -> Genome:
    """What operator ``op`` is handed: ``genome`` for one evonas ships (they build new genomes), else a deep copy: a
    plug-in operator that changes a list inside a frozen genome in place and returns it (as DEAP's operators change
    what they are given) would otherwise change the parent, whose key the run's journal holds."""
    return copy.deepcopy(genome) if is_plugin(type(op)) else genome


class Mutation(Operator):
    """``child = mutation(parent, space=space, rng=rng)``: a valid genome, preferably different."""

    def _own(self, genome: Genome) -> Genome:
        return _given(self, genome)

    def __call__(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        """A valid child, else ``genome`` when every try gave it back unchanged. Each try of a plug-in's ``_mutate``
        is given its own copy of ``genome`` (:func:`_given`).

        Raises :class:`InvalidChild` at once when ``_mutate`` returns something that is no genome (``None``, a
        dict), and after :data:`MAX_TRIES` tries that all gave genomes the space refuses.
        """
        invalid = None
        for _ in range(MAX_TRIES):
            try:
                child = self._mutate(self._own(genome), space=space, rng=rng)
            except InvalidGenome as exc:  # the space refused the child it was making (space.normalise): try again
                invalid = _refused(exc) if invalid is None else invalid
                continue
            if child == genome:
                invalid = ""  # a valid (unchanged) answer: the parent is returned if nothing better comes
                continue
            problem = child_problem(child, space)
            if problem is None:
                return child
            if _not_a_genome(child):
                raise InvalidChild(problem)
            invalid = problem if invalid is None else invalid
        if invalid:
            raise InvalidChild(invalid)
        return genome

    @abstractmethod
    def _mutate(self, genome: Genome, *, space: SearchSpace, rng: random.Random) -> Genome:
        """Return a new genome; may be invalid now and then, or raise InvalidGenome (the space's refusal, as
        ``space.normalise`` raises it): the caller tries again. Must not modify ``genome``."""


class Crossover(Operator):
    """``c1, c2 = crossover(p1, p2, space=space, rng=rng)``: two valid children."""

    def _own(self, genome: Genome) -> Genome:
        return _given(self, genome)

    def __call__(
        self, a: Genome, b: Genome, *, space: SearchSpace, rng: random.Random
    ) -> tuple[Genome, Genome]:
        """Two valid children; raises :class:`InvalidChild` at once for an answer that is not two genomes, and
        after :data:`MAX_TRIES` tries that all gave a genome the space refuses. A plug-in's ``_crossover`` is given
        copies of the parents (:func:`_given`)."""
        invalid = None
        for _ in range(MAX_TRIES):
            try:
                pair = self._crossover(self._own(a), self._own(b), space=space, rng=rng)
            except InvalidGenome as exc:  # as in Mutation: a refused child is one try
                invalid = invalid or _refused(exc)
                continue
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise InvalidChild(f"returned {_what(pair)}, not a pair of genomes")
            problems = [child_problem(c, space) for c in pair]
            if problems == [None, None]:
                return pair[0], pair[1]
            for c, problem in zip(pair, problems):
                if problem is not None and _not_a_genome(c):
                    raise InvalidChild(problem)
            invalid = invalid or next(p for p in problems if p is not None)
        raise InvalidChild(invalid or "returned no valid pair of genomes")

    @abstractmethod
    def _crossover(
        self, a: Genome, b: Genome, *, space: SearchSpace, rng: random.Random
    ) -> tuple[Genome, Genome]:
        """Return two new genomes; may be invalid, or raise InvalidGenome (the caller tries again); must not
        modify the parents."""


MUTATIONS: Registry[type[Mutation]] = Registry("mutation")
CROSSOVERS: Registry[type[Crossover]] = Registry("crossover")
