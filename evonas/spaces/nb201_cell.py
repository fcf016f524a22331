"""The NAS-Bench-201 cell: its ops, its nodes and the edges between them (no torch).

The ``nb201`` space (:mod:`evonas.spaces.nb201`), its network (:class:`evonas.spaces.layers.NB201Network`)
and its cost table (:mod:`evonas.spaces.nb201_cost`) all read the cell's shape from here.
"""

from __future__ import annotations

__all__ = ["NB201_EDGES", "NB201_OPS", "NUM_EDGES", "NUM_NODES", "OUTPUT_NODE"]

#: every op of the benchmark, in its official order.
NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: ``(source, target)`` node of each genome edge, in the official order.
NB201_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NUM_EDGES = len(NB201_EDGES)
#: nodes of the cell: node 0 is its input, the last node its output.
NUM_NODES = 4
OUTPUT_NODE = NUM_NODES - 1
