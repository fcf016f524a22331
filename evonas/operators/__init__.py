"""Mutation and crossover operators, registered by name; built-ins per search space."""

from __future__ import annotations

from evonas.operators.base import CROSSOVERS, MAX_TRIES, MUTATIONS, Crossover, Mutation, Operator

# The built-in operators import their spaces (and torch): declared here, imported when first used.
for _space, _mutations, _crossovers in (
    ("chain", ("chain_add_layer", "chain_remove_layer", "chain_change_layer", "chain_hparam"), ("chain_one_point",)),
    ("mlp", ("mlp_add_layer", "mlp_remove_layer", "mlp_change_layer", "mlp_hparam"), ("mlp_one_point",)),
    ("nb201", ("nb201_change_edge",), ("nb201_uniform",)),
    ("function", ("function_change_one", "function_change_few"), ("function_uniform",)),
):
    for _name in _mutations:
        MUTATIONS.lazy(_name, f"evonas.operators.{_space}", spaces=(_space,))
    for _name in _crossovers:
        CROSSOVERS.lazy(_name, f"evonas.operators.{_space}", spaces=(_space,))

__all__ = ["CROSSOVERS", "MUTATIONS", "MAX_TRIES", "Crossover", "Mutation", "Operator"]
