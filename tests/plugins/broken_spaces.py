"""Plug-in spaces that each break one part of the space contract (a copy of a small finite space, and the fault):
``evonas.testing.check_space`` names each fault, and a run on one is refused in one line before it starts."""

from __future__ import annotations

import dataclasses
import itertools
import random

import torch.nn as nn

from evonas.operators import MUTATIONS, Mutation
from evonas.spaces import SPACES, Choice, Genome, InvalidGenome, SearchSpace


@dataclasses.dataclass(frozen=True)
class TinyGenome(Genome):
    width: int
    act: str


WIDTHS, ACTS = (4, 8, 16), ("relu", "tanh")
_DECODES = itertools.count()


class TinySpace(SearchSpace):
    """Widths and activations of one hidden layer, with a categorical view and a size: correct."""

    input_ranks = (1,)
    example_input_shape = (6,)

    def sample(self, *, rng: random.Random) -> TinyGenome:
        return TinyGenome(rng.choice(WIDTHS), rng.choice(ACTS))

    def validate(self, genome) -> None:
        if not isinstance(genome, TinyGenome) or genome.width not in WIDTHS or genome.act not in ACTS:
            raise InvalidGenome(f"expected a width in {WIDTHS} and an act in {ACTS}")

    def from_dict(self, data) -> TinyGenome:
        genome = TinyGenome(data.get("width"), data.get("act"))
        self.validate(genome)
        return genome

    def decode(self, genome, *, input_shape, num_classes) -> nn.Module:
        act = nn.ReLU() if genome.act == "relu" else nn.Tanh()
        width = self._width(genome)  # asked once: a network whose two layers disagree would fail before the check
        return nn.Sequential(nn.Linear(input_shape[0], width), act, nn.Linear(width, num_classes))

    def _width(self, genome) -> int:
        return genome.width

    def categorical(self):
        return (Choice("width", WIDTHS), Choice("act", ACTS))

    def to_categorical(self, genome):
        return (WIDTHS.index(genome.width), ACTS.index(genome.act))

    def from_categorical(self, values):
        return TinyGenome(WIDTHS[values[0]], ACTS[values[1]])

    @property
    def size(self):
        return len(WIDTHS) * len(ACTS)

    def all_genomes(self):
        return (TinyGenome(w, a) for w in WIDTHS for a in ACTS)


@SPACES.register("tiny_lossy")
class LossyFromDict(TinySpace):
    def from_dict(self, data):
        return TinyGenome(data.get("width"), "relu")  # forgets the activation


@SPACES.register("tiny_silent_to_dict")
class SilentToDict(TinySpace):
    def to_dict(self, genome):
        return {"width": genome.width}  # forgets the activation: the genome's field, not to_dict's, says which

    def from_dict(self, data):
        return TinyGenome(data.get("width"), "relu")


@SPACES.register("tiny_keyerror_from_dict")
class KeyErrorFromDict(TinySpace):
    def to_dict(self, genome):
        return {"width": genome.width}

    def from_dict(self, data):
        return TinyGenome(data["width"], data["act"])


@SPACES.register("tiny_raising_decode")
class RaisingDecode(TinySpace):
    def decode(self, genome, *, input_shape, num_classes):
        raise RuntimeError("shape mismatch in my head")


@SPACES.register("tiny_random_decode")
class RandomDecode(TinySpace):
    def _width(self, genome) -> int:
        # not the genome's width, and another one each call: a random choice gave the same width twice in 1 of 3 calls,
        # and a run's check of 3 genomes passed in 1 of 27 (a flaky test)
        return WIDTHS[next(_DECODES) % len(WIDTHS)]


@SPACES.register("tiny_random_activation")
class RandomActivation(TinySpace):
    def decode(self, genome, *, input_shape, num_classes) -> nn.Module:
        act = random.choice([nn.ReLU(), nn.Tanh()])  # not the genome's activation: the same parameters either way
        return nn.Sequential(nn.Linear(input_shape[0], genome.width), act, nn.Linear(genome.width, num_classes))


@SPACES.register("tiny_global_random")
class GlobalRandom(TinySpace):
    def sample(self, *, rng):
        return TinyGenome(random.choice(WIDTHS), random.choice(ACTS))  # the random module, not rng


@SPACES.register("tiny_bad_categorical")
class BadCategorical(TinySpace):
    def from_categorical(self, values):
        return TinyGenome(WIDTHS[0], ACTS[values[1]])  # ignores the width's index


@SPACES.register("tiny_invalid_options")
class InvalidOptions(TinySpace):
    def categorical(self):
        return (Choice("width", (*WIDTHS, 999)), Choice("act", ACTS))

    def from_categorical(self, values):
        return TinyGenome((*WIDTHS, 999)[values[0]], ACTS[values[1]])


@SPACES.register("tiny_categorical_raises")
class CategoricalRaises(TinySpace):
    def categorical(self):
        return (Choice("width", (*WIDTHS, 32)), Choice("act", ACTS))  # an option from_categorical cannot index


@SPACES.register("tiny_bad_size")
class BadSize(TinySpace):
    @property
    def size(self):
        return 7


@SPACES.register("tiny_ok")
class Correct(TinySpace):
    pass


@SPACES.register("tiny_no_views")
class NoViews(TinySpace):
    """No categorical view, no size."""

    def categorical(self):
        raise NotImplementedError

    @property
    def size(self):
        return None


@SPACES.register("tiny_mutable")
class Mutable(TinySpace):
    """A mutation, no crossover."""


@MUTATIONS.register("tiny_flip")
class Flip(Mutation):
    spaces = ("tiny_mutable",)

    def _mutate(self, genome, *, space, rng):
        return TinyGenome(genome.width, "tanh" if genome.act == "relu" else "relu")


NAMES = ("tiny_categorical_raises", "tiny_mutable", "tiny_random_activation", "tiny_lossy", "tiny_random_decode", "tiny_global_random", "tiny_bad_categorical", "tiny_invalid_options",
         "tiny_bad_size", "tiny_ok", "tiny_silent_to_dict", "tiny_raising_decode",
         "tiny_no_views", "tiny_keyerror_from_dict")
