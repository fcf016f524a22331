"""Search spaces, registered by name.

Built in: ``chain`` (macro CNN + training hyperparameters), ``nb201``
(the NAS-Bench-201 cell), ``mlp`` (tabular data) and ``function`` (a network written as one function
that asks for its choices as it builds). Add your own with
``@SPACES.register("name")`` on a :class:`SearchSpace` subclass and a defaults
file ``genomes/<name>.yaml`` (or pass the parameters in the experiment file).
"""

from __future__ import annotations

from evonas.registry import Registry
from evonas.spaces.base import Choice, Genome, InvalidGenome, SearchSpace, UnsuitedSpace, canonical_json, to_data

SPACES: Registry[type[SearchSpace]] = Registry("search space")

from evonas.spaces.defaults import load_space_params  # noqa: E402

# The built-in spaces import torch: declared here, imported when first used.
SPACES.lazy("chain", "evonas.spaces.chain")
SPACES.lazy("function", "evonas.spaces.function")
SPACES.lazy("mlp", "evonas.spaces.mlp")
SPACES.lazy("nb201", "evonas.spaces.nb201")

__all__ = [
    "SPACES",
    "Choice",
    "Genome",
    "InvalidGenome",
    "UnsuitedSpace",
    "SearchSpace",
    "canonical_json",
    "load_space_params",
    "to_data",
    "make_space",
]


def make_space(name: str, params: dict | None = None, file: str | None = None) -> SearchSpace:
    """Build space ``name`` from its defaults file (or ``file``), overridden by ``params``."""
    cls = SPACES.get(name)
    merged = load_space_params(name, file)
    merged.update(params or {})
    return cls(**merged)
