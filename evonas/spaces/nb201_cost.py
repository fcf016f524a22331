"""Exact ``params`` and ``flops`` of ``nb201`` networks without decoding each genome.

The parameters and FLOPs of an nb201 network are a fixed part (stem, reduction blocks, classifier)
plus one term per (edge, op) of its canonical cell, the same in all ``3N`` cells of a stage pattern:
nothing else depends on the genome. :func:`cost_table` measures those terms once per space
configuration with torch (:func:`evonas.spaces.cost.network_costs` on reference networks: the
all-``none`` network, and for each edge and op the network with only that edge set), and
:func:`nb201_costs` adds them up for the canonical edges. The test suite checks the sum against
decoding and counting on random genomes.

Example::

    nb201_costs(space, genome, input_shape=(3, 32, 32), num_classes=10)  # {'params': ..., 'flops': ...}
"""

from __future__ import annotations

import json
from typing import Any

from evonas.spaces.cost import network_costs
from evonas.spaces.nb201_cell import NUM_EDGES

__all__ = ["cost_table", "nb201_costs"]

_TABLES: dict[str, dict[str, Any]] = {}


#: the cost tables measured ahead for the benchmark's configuration (C 16, N 5, its five ops, 3x32x32 inputs,
#: 10 classes): a search of the table then needs no torch forward at start-up (2.5 s on a 2-core CPU)
SHIPPED = "nb201_costs.json"


def _key(space: Any, input_shape: tuple[int, ...], num_classes: int) -> str:
    """A cost table's name, in this process's cache and in :data:`SHIPPED`: the space's C, N and ops, the input shape
    and the classes."""
    return json.dumps([space.C, space.N, list(space.ops), list(input_shape), int(num_classes)])


def _shipped(key: str) -> dict[str, Any] | None:
    from evonas.spaces.defaults import genomes_dir

    try:
        entries = json.loads((genomes_dir() / "benchmarks" / SHIPPED).read_text())
    except (OSError, ValueError):
        return None
    entry = entries.get(key)
    if entry is None:
        return None
    edge = {}
    for name, costs in entry["edge"].items():
        e, op = name.split(":", 1)
        edge[(int(e), op)] = costs
    return {"base": entry["base"], "edge": edge}


def _measure(space: Any, input_shape: tuple[int, ...], num_classes: int) -> dict[str, Any]:
    """The cost table measured with torch on the reference networks (see the module)."""
    from evonas.spaces.layers import NB201Network  # torch: only to measure a new table

    def costs(edges: tuple[str, ...]) -> dict[str, float]:
        net = NB201Network(edges, in_channels=int(input_shape[0]), C=space.C, N=space.N, num_classes=num_classes)
        return network_costs(net, tuple(input_shape))

    none = ("none",) * NUM_EDGES
    base = costs(none)
    edge: dict[tuple[int, str], dict[str, float]] = {}
    for e in range(NUM_EDGES):
        for op in space.ops:
            if op != "none":
                only = costs(none[:e] + (op,) + none[e + 1 :])
                edge[(e, op)] = {m: only[m] - base[m] for m in base}
    return {"base": base, "edge": edge}


def cost_table(space: Any, input_shape: tuple[int, ...], num_classes: int, *, measure: bool = False) -> dict[str, Any]:
    """``{"base": {metric: v}, "edge": {(edge, op): {metric: v}}}`` for ``space``'s C, N and op set (cached; the
    benchmark's configuration is read from :data:`SHIPPED` unless ``measure``)."""
    key = _key(space, input_shape, num_classes)
    table = None if measure else _TABLES.get(key)
    if table is None:
        table = _TABLES[key] = (None if measure else _shipped(key)) or _measure(space, input_shape, num_classes)
    return table


def shipped_entry(space: Any, input_shape: tuple[int, ...], num_classes: int) -> dict[str, Any]:
    """``{key: table}`` as :data:`SHIPPED` holds it, measured now (``python -m evonas.spaces.nb201_cost`` writes it)."""
    table = cost_table(space, input_shape, num_classes, measure=True)
    edge = {f"{e}:{op}": costs for (e, op), costs in table["edge"].items()}
    return {_key(space, input_shape, num_classes): {"base": table["base"], "edge": edge}}


def nb201_costs(space: Any, genome: Any, *, input_shape: tuple[int, ...], num_classes: int) -> dict[str, float]:
    """``params`` and ``flops`` of ``space.decode(genome, ...)``, summed from :func:`cost_table`."""
    table = cost_table(space, tuple(input_shape), num_classes)
    out = dict(table["base"])
    for e, op in enumerate(space.canonical(genome).edges):
        if op != "none":
            for m, v in table["edge"][(e, op)].items():
                out[m] += v
    return {m: int(v) for m, v in out.items()}


if __name__ == "__main__":  # the shipped table, measured again
    from evonas.spaces import make_space
    from evonas.spaces.defaults import genomes_dir

    path = genomes_dir() / "benchmarks" / SHIPPED
    path.write_text(json.dumps(shipped_entry(make_space("nb201"), (3, 32, 32), 10), indent=1) + "\n")
    print(path)
