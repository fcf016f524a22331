"""The search-space contract: sample -> validate -> decode, plus a canonical key.

A genome is plain, frozen data (a frozen dataclass of tuples, strings and
numbers). It round-trips through JSON with :meth:`SearchSpace.to_dict` /
:meth:`SearchSpace.from_dict`, and :meth:`SearchSpace.key` gives a stable hash
of its *canonical* form, so two genomes that provably decode to the same network
share a key (used for de-duplication and caching).

A space is configured by keyword parameters. Its defaults are declared in
``genomes/<name>.yaml`` (shipped with the package as ``evonas.genomes``), which
a user can copy and edit; see :func:`load_space_params`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Iterator, Mapping, Sequence

from evonas.spaces.cost import network_costs

__all__ = [
    "BUILD_FUNCTION",
    "Choice",
    "Genome",
    "InvalidGenome",
    "SearchSpace",
    "UnsuitedSpace",
    "canonical_json",
    "one_hot",
    "to_data",
]


#: the ``kind`` of the fault counts a space's build function reports, beside the operators' "mutation" and "crossover"
BUILD_FUNCTION = "build function"


class InvalidGenome(ValueError):
    """A genome that does not fit its search space; the message says why."""


class UnsuitedSpace(ValueError):
    """A strategy cannot search the space (it has no categorical view, or cannot list its genomes): the choice of
    strategy or space is at fault, not a parameter's value."""


@dataclasses.dataclass(frozen=True)
class Genome:
    """Base class of every space's genome: a frozen dataclass of plain values."""


def to_data(obj: Any) -> Any:
    """A genome (or any nest of frozen dataclasses / tuples) as JSON-ready lists and dicts."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_data(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_data(v) for k, v in obj.items()}
    return obj


def canonical_json(data: Any) -> str:
    """Deterministic JSON text: sorted keys, no whitespace, floats by ``repr``."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclasses.dataclass(frozen=True)
class Choice:
    """One categorical decision of a genome: a ``name`` (``edge[1<-0]``, ``layers[0].width``) and its options."""

    name: str
    options: tuple[Any, ...]

    def __len__(self) -> int:
        return len(self.options)


class SearchSpace(ABC):
    """A family of architectures, registered by name in :data:`evonas.spaces.SPACES`.

    Subclasses set ``name`` and implement :meth:`sample`, :meth:`validate`,
    :meth:`decode` and :meth:`from_dict`; they may override :meth:`canonical`
    (to merge equivalent genomes) and :meth:`hparams` (training hyperparameters
    carried in the genome). Every public method is pure: randomness comes in
    through ``rng``.

    What some strategies need has a default here that a space overrides when it can: :attr:`size` and
    :meth:`all_genomes` (enumeration, for ``grid``), the categorical view :meth:`categorical`,
    :meth:`to_categorical`, :meth:`from_categorical`, :meth:`categorical_active` (``reinforce``,
    ``local_search``), :meth:`encode` (``surrogate``), and :meth:`cost_metrics` (constraints on cheap
    metrics). The engine and the strategies read only what is declared here.

    Example::

        space = SPACES.get("chain")(**load_space_params("chain"))
        g = space.sample(rng=random.Random(0))
        space.validate(g)
        net = space.decode(g, input_shape=(1, 8, 8), num_classes=10)
    """

    name: ClassVar[str] = ""
    #: input ranks the decoded networks accept: 3 for (C, H, W) images, 1 for feature vectors.
    input_ranks: ClassVar[tuple[int, ...]] = (3,)
    #: an input shape the space is meant for (used by contract tests and examples).
    example_input_shape: ClassVar[tuple[int, ...]] = (3, 32, 32)
    #: the keyword parameters the space was built with (written to ``config.yaml``, part of the cache's key).
    params: dict[str, Any]

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)

    def faults(self) -> list[dict[str, Any]]:
        """What the space's own calls into user code failed so far, as the operators' fault counts are written:
        ``[{"kind", "name", "calls", "failures", "first_error"}]`` (the ``function`` space: its build function
        raising anything but :class:`InvalidGenome`). The engine shows them with the operators' faults; default none."""
        return []

    # -- the contract ---------------------------------------------------
    @abstractmethod
    def sample(self, *, rng: random.Random) -> Genome:
        """A random valid genome."""

    @abstractmethod
    def validate(self, genome: Genome) -> None:
        """Raise :class:`InvalidGenome` (saying why) if ``genome`` does not fit this space."""

    @abstractmethod
    def decode(self, genome: Genome, *, input_shape: tuple[int, ...], num_classes: int) -> "Any":
        """A fresh ``torch.nn.Module`` for ``genome`` taking a batch of ``input_shape`` inputs."""

    @abstractmethod
    def from_dict(self, data: Mapping[str, Any]) -> Genome:
        """The genome stored as ``data`` (as written by :meth:`to_dict`); raises :class:`InvalidGenome`."""

    # -- overridable defaults ------------------------------------------
    def canonical(self, genome: Genome) -> Genome:
        """An equivalent genome in canonical form; genomes that decode to the same network map to one form."""
        return genome

    def hparams(self, genome: Genome) -> dict[str, Any]:
        """Training hyperparameters carried by the genome (``lr``, ``optimizer``, ``weight_decay``, ``batch_size``)."""
        return {}

    def describe(self, genome: Genome) -> str:
        """A short human-readable one-liner for tables and progress output."""
        return canonical_json(self.to_dict(genome))

    def cost_metrics(self, genome: Genome, *, input_shape: tuple[int, ...], num_classes: int) -> dict[str, float]:
        """Cheap metrics of ``genome``'s network, known before training: ``params`` and ``flops``.

        The default decodes the network and counts (FLOPs with torch's ``FlopCounterMode``, one
        forward pass of a batch of one; see :mod:`evonas.spaces.cost`). Override it with an exact
        shortcut where decoding is slow.

        Example::

            space.cost_metrics(genome, input_shape=(1, 8, 8), num_classes=10)  # {'params': 8139, 'flops': 520192}
        """
        net = self.decode(genome, input_shape=tuple(input_shape), num_classes=num_classes)
        return network_costs(net, tuple(input_shape))

    def check_input(self, input_shape: tuple[int, ...]) -> str | None:
        """``None`` if networks of this space accept ``input_shape``, else the reason they do not."""
        if len(input_shape) not in self.input_ranks:
            want = " or ".join({3: "(C, H, W) images", 1: "feature vectors"}.get(r, f"rank {r}") for r in self.input_ranks)
            return f"space '{self.name}' expects {want}, got input shape {tuple(input_shape)}"
        return None

    def bind_input(self, input_shape: tuple[int, ...], num_classes: int) -> dict[str, Any]:
        """Told the data's input shape and number of classes when a run is built, before any genome is sampled
        (and in every worker). A space whose genomes depend on the data (``function``) keeps them and returns the
        parameters it took from the data: the engine writes them into the run's ``space.params``, so the
        ``config.yaml``, the workers and ``resume`` build the same space. The default takes nothing."""
        return {}

    def fingerprint(self) -> str | None:
        """What the evaluation cache must also tell apart besides the space's parameters (e.g. a hash of the user
        code a ``function`` space runs), or ``None``."""
        return None

    # -- enumeration (exhaustive strategies: ``grid``) ---------------------------------------
    @property
    def size(self) -> int | None:
        """The number of genomes in the space when :meth:`all_genomes` can list them all, else ``None``."""
        return None

    def all_genomes(self) -> Iterator[Genome]:
        """Every genome of the space, once each, in a fixed order; spaces with a :attr:`size` override this."""
        raise NotImplementedError(f"space '{self.name}' cannot list its genomes")

    # -- views for model- and policy-based strategies (see evonas.spaces.encoding) ----------
    def categorical(self) -> tuple[Choice, ...]:
        """The genome as fixed categorical decisions (name and options each); spaces that have one override this."""
        raise NotImplementedError(f"space '{self.name}' has no categorical view")

    def to_categorical(self, genome: Genome) -> tuple[int, ...]:
        """One option index per :meth:`categorical` choice for ``genome``."""
        raise NotImplementedError(f"space '{self.name}' has no categorical view")

    def from_categorical(self, values: Sequence[int]) -> Genome:
        """The valid genome of option indices ``values``; a ValueError names a bad index."""
        raise NotImplementedError(f"space '{self.name}' has no categorical view")

    def categorical_active(self, values: Sequence[int]) -> tuple[bool, ...]:
        """Which choices the genome of ``values`` uses (all, unless some are conditional, like unused layer slots)."""
        return (True,) * len(values)

    def encode(self, genome: Genome) -> list[float]:
        """A fixed-length numeric vector for surrogate models: by default the one-hot of the canonical genome's
        categorical view (inactive choices all zero), so genomes sharing a key share an encoding."""
        return one_hot(self, self.canonical(genome))

    # -- provided ------------------------------------------------------
    def is_valid(self, genome: Genome) -> bool:
        try:
            self.validate(genome)
        except InvalidGenome:
            return False
        return True

    def to_dict(self, genome: Genome) -> dict[str, Any]:
        """JSON-ready form of ``genome``."""
        return to_data(genome)

    def key(self, genome: Genome) -> str:
        """Stable 16-hex-digit hash of the canonical genome, prefixed by nothing (space-scoped)."""
        text = self.name + ":" + canonical_json(self.to_dict(self.canonical(genome)))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def one_hot(space: SearchSpace, genome: Genome) -> list[float]:
    """The one-hot of ``genome``'s categorical values (inactive choices all zero): the default encoding."""
    choices = space.categorical()
    values = space.to_categorical(genome)
    active = space.categorical_active(values)
    out: list[float] = []
    for choice, v, on in zip(choices, values, active):
        block = [0.0] * len(choice.options)
        if on:
            block[v] = 1.0
        out.extend(block)
    return out
