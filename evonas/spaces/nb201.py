"""The NAS-Bench-201 cell search space (``nb201``).

A genome is the op on each of the cell's 6 edges, in the benchmark's order
``node1<-0 | node2<-0, node2<-1 | node3<-0, node3<-1, node3<-2``; it converts
to and from the official architecture string, e.g.
``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``,
so genomes can be looked up in the benchmark's tables.

:meth:`NB201Space.decode` builds the benchmark's macro skeleton: a 3x3 conv stem,
three stages of ``N`` cells with ``C``, ``2C`` and ``4C`` channels joined by two
residual reduction blocks, then BN-ReLU, global average pooling and a linear
classifier.

Example::

    space = make_space("nb201", {"C": 4, "N": 1})
    g = space.from_arch_str("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|none~1|avg_pool_3x3~2|")
    net = space.decode(g, input_shape=(3, 32, 32), num_classes=10)
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from typing import Any, Iterator, Mapping, Sequence

from evonas.checks import check_int
from evonas.spaces import SPACES
from evonas.spaces.base import Choice, Genome, InvalidGenome, SearchSpace
from evonas.spaces.encoding import check_values
from evonas.spaces.nb201_cell import NB201_EDGES, NB201_OPS, NUM_EDGES, NUM_NODES, OUTPUT_NODE
from evonas.spaces.nb201_cost import nb201_costs

__all__ = ["NB201Genome", "NB201Space", "NB201_OPS", "NB201_EDGES", "NUM_EDGES"]


@dataclasses.dataclass(frozen=True)
class NB201Genome(Genome):
    """The op on each of the 6 cell edges, in the order of :data:`NB201_EDGES`."""

    edges: tuple[str, ...]


@SPACES.register("nb201")
class NB201Space(SearchSpace):
    """The NAS-Bench-201 cell: 4 nodes, 6 edges, one op per edge.

    The defaults of its parameters are in ``genomes/nb201.yaml``.

    Parameters:
        C: channels of the first stage (doubled at each of the two reductions).
        N: cells per stage.
        ops: the op set an edge chooses from (any non-empty subset of :data:`NB201_OPS`, to narrow the search).
    """

    input_ranks = (3,)

    def __init__(self, *, C: int = 16, N: int = 5, ops: Sequence[str] = NB201_OPS, **params: Any) -> None:
        if params:
            raise ValueError(f"nb201: unknown parameter(s) {sorted(params)}; expected C, N, ops")
        C = check_int("nb201: parameter 'C'", C, 1)
        N = check_int("nb201: parameter 'N'", N, 1)
        if isinstance(ops, str) or not isinstance(ops, Sequence) or not ops:
            raise ValueError(f"nb201: parameter 'ops' must be a non-empty list of op names, got {ops!r}")
        unknown = [op for op in ops if op not in NB201_OPS]
        if unknown:
            raise ValueError(f"nb201: unknown op(s) {unknown}; expected a subset of {list(NB201_OPS)}")
        if len(set(ops)) != len(ops):
            raise ValueError(f"nb201: repeated op in 'ops': {list(ops)}")
        super().__init__(C=C, N=N, ops=list(ops))
        self.C = C
        self.N = N
        self.ops: tuple[str, ...] = tuple(ops)

    # -- the contract ---------------------------------------------------
    def sample(self, *, rng: random.Random) -> NB201Genome:
        """Each edge's op drawn uniformly from the op set."""
        return NB201Genome(edges=tuple(rng.choice(self.ops) for _ in range(NUM_EDGES)))

    def validate(self, genome: Genome) -> None:
        if not isinstance(genome, NB201Genome):
            raise InvalidGenome(f"nb201: expected an NB201Genome, got {type(genome).__name__}")
        edges = genome.edges
        if not isinstance(edges, tuple) or len(edges) != NUM_EDGES:
            raise InvalidGenome(f"nb201: 'edges' must be a tuple of {NUM_EDGES} op names, got {edges!r}")
        for (src, dst), op in zip(NB201_EDGES, edges):
            if op not in self.ops:
                raise InvalidGenome(f"nb201: edge {dst}<-{src} has op {op!r}, not in the op set {list(self.ops)}")

    def from_dict(self, data: Mapping[str, Any]) -> NB201Genome:
        if not isinstance(data, Mapping):
            raise InvalidGenome(f"nb201: a genome is stored as a mapping, got {type(data).__name__}")
        if set(data) != {"edges"}:
            raise InvalidGenome(f"nb201: a genome has exactly the field 'edges', got fields {sorted(map(str, data))}")
        edges = data["edges"]
        if not isinstance(edges, (list, tuple)) or not all(isinstance(op, str) for op in edges):
            raise InvalidGenome(f"nb201: 'edges' must be a list of op names, got {edges!r}")
        genome = NB201Genome(edges=tuple(edges))
        self.validate(genome)
        return genome

    def decode(self, genome: Genome, *, input_shape: tuple[int, ...], num_classes: int) -> Any:
        """The benchmark's network for ``genome`` (built from its canonical form, so equal keys give equal networks).

        Edges pruned by :meth:`canonical` feed nothing to the output, so the
        network computes the same function as the benchmark's, with fewer
        (unused) parameters.
        """
        self.validate(genome)
        reason = self.check_input(input_shape)
        if reason is not None:
            raise ValueError(reason)
        from evonas.spaces.layers import NB201Network  # torch: imported only to build a network

        return NB201Network(
            self.canonical(genome).edges,
            in_channels=int(input_shape[0]),
            C=self.C,
            N=self.N,
            num_classes=num_classes,
        )

    # -- overrides ------------------------------------------------------
    def canonical(self, genome: Genome) -> NB201Genome:
        """``genome`` with every edge whose target node cannot reach the output set to ``none``.

        Such an edge contributes nothing to the cell's output. Edges fed by a
        node that the input cannot reach are kept: with affine BatchNorm a
        conv of a zero input is a learnable constant, not zero.
        """
        self.validate(genome)
        assert isinstance(genome, NB201Genome)
        edges = list(genome.edges)
        while True:
            live = _reaches_output(edges)
            pruned = [op if live[dst] else "none" for (_, dst), op in zip(NB201_EDGES, edges)]
            if pruned == edges:
                return NB201Genome(edges=tuple(edges))
            edges = pruned

    def cost_metrics(self, genome: Genome, *, input_shape: tuple[int, ...], num_classes: int) -> dict[str, float]:
        """``params`` and ``flops`` of the decoded network, exact, from a per-(edge, op) table built once with torch
        (see :mod:`evonas.spaces.nb201_cost`): no network is decoded per genome."""
        reason = self.check_input(tuple(input_shape))
        if reason is not None:
            raise ValueError(reason)
        return nb201_costs(self, genome, input_shape=tuple(input_shape), num_classes=num_classes)

    def hparams(self, genome: Genome) -> dict[str, Any]:
        """Nothing: nb201 genomes carry no training hyperparameters."""
        return {}

    def describe(self, genome: Genome) -> str:
        """The official architecture string."""
        return self.to_arch_str(genome)

    # -- categorical view (see evonas.spaces.encoding) ------------------
    def categorical(self) -> tuple[Choice, ...]:
        """One choice per edge (``edge[j<-i]``) over the op set."""
        return tuple(Choice(f"edge[{dst}<-{src}]", self.ops) for src, dst in NB201_EDGES)

    def to_categorical(self, genome: Genome) -> tuple[int, ...]:
        self.validate(genome)
        assert isinstance(genome, NB201Genome)
        return tuple(self.ops.index(op) for op in genome.edges)

    def from_categorical(self, values: Sequence[int]) -> NB201Genome:
        values = check_values(self.categorical(), values, self.name)
        return NB201Genome(edges=tuple(self.ops[v] for v in values))

    # -- benchmark helpers ----------------------------------------------
    def to_arch_str(self, genome: Genome) -> str:
        """The official architecture string of ``genome``, e.g. ``|nor_conv_3x3~0|+|...~0|...~1|+|...|``."""
        self.validate(genome)
        assert isinstance(genome, NB201Genome)
        nodes: list[list[str]] = [[] for _ in range(NUM_NODES)]
        for (src, dst), op in zip(NB201_EDGES, genome.edges):
            nodes[dst].append(f"{op}~{src}")
        return "+".join("|" + "|".join(parts) + "|" for parts in nodes[1:])

    def from_arch_str(self, arch: str) -> NB201Genome:
        """The genome written as the official architecture string ``arch``; raises :class:`InvalidGenome`."""
        if not isinstance(arch, str):
            raise InvalidGenome(f"nb201: an architecture string must be a str, got {type(arch).__name__}")
        blocks = arch.strip().split("+")
        if len(blocks) != NUM_NODES - 1:
            raise InvalidGenome(f"nb201: {arch!r} has {len(blocks)} '+'-separated nodes, expected {NUM_NODES - 1}")
        edges: list[str] = []
        for dst, block in enumerate(blocks, start=1):
            if len(block) < 2 or not (block.startswith("|") and block.endswith("|")):
                raise InvalidGenome(f"nb201: node {dst} of {arch!r} must look like '|op~i|...|', got {block!r}")
            parts = block[1:-1].split("|")
            if len(parts) != dst:
                raise InvalidGenome(f"nb201: node {dst} of {arch!r} needs {dst} inputs, got {len(parts)}")
            for src, part in enumerate(parts):
                op, sep, index = part.partition("~")
                if not sep or index != str(src):
                    raise InvalidGenome(f"nb201: input {src} of node {dst} in {arch!r} must be 'op~{src}', got {part!r}")
                if op not in NB201_OPS:
                    raise InvalidGenome(f"nb201: unknown op {op!r} in {arch!r}; expected one of {list(NB201_OPS)}")
                edges.append(op)
        genome = NB201Genome(edges=tuple(edges))
        self.validate(genome)
        return genome

    def all_genomes(self) -> Iterator[NB201Genome]:
        """Every genome of the space (``len(ops) ** 6`` of them), in a fixed order."""
        for edges in itertools.product(self.ops, repeat=NUM_EDGES):
            yield NB201Genome(edges=edges)

    @property
    def size(self) -> int:
        """The number of genomes in the space."""
        return len(self.ops) ** NUM_EDGES


def _reaches_output(edges: Sequence[str]) -> list[bool]:
    """For each node, whether a path of non-``none`` edges leads from it to the output node."""
    live = [False] * NUM_NODES
    live[OUTPUT_NODE] = True
    for node in reversed(range(OUTPUT_NODE)):  # edges go from lower to higher nodes
        live[node] = any(
            live[dst] and op != "none" for (src, dst), op in zip(NB201_EDGES, edges) if src == node
        )
    return live
