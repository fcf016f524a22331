"""Genes of dataclass genomes: check one gene, change one gene, read genes back from JSON.

The layer-list spaces (:mod:`evonas.spaces.layered`) and their hyperparameter genes
(:mod:`evonas.spaces.hparams`) are frozen dataclasses of plain values; these helpers work on any such
genome. Every problem is an :class:`~evonas.spaces.base.InvalidGenome` naming the gene.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any, Mapping, Sequence

from evonas.spaces.base import InvalidGenome

__all__ = ["change_one", "check_gene", "parse_fields"]


def check_gene(value: Any, choices: Sequence[Any], where: str, param: str) -> None:
    """Raise :class:`InvalidGenome` unless ``value`` is one of ``choices`` (of the same type: ``True`` is not ``1``)."""
    kind = type(choices[0])
    if type(value) is not kind:
        raise InvalidGenome(f"{where}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    if value not in choices:
        raise InvalidGenome(f"{where}={value!r} is not in {param} {list(choices)}")


def change_one(obj: Any, options: Mapping[str, Sequence[Any]], *, rng: random.Random) -> Any:
    """A copy of dataclass ``obj`` with one field (among those with an alternative) set to another allowed value.

    Returns ``obj`` itself when no field has an alternative.
    """
    movable = [name for name, values in options.items() if any(v != getattr(obj, name) for v in values)]
    if not movable:
        return obj
    name = rng.choice(movable)
    value = rng.choice([v for v in options[name] if v != getattr(obj, name)])
    return dataclasses.replace(obj, **{name: value})


_SCALARS: dict[str, type] = {"int": int, "float": float, "str": str, "bool": bool}


def parse_fields(cls: type, data: Any, where: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Keyword arguments for dataclass ``cls`` from JSON ``data``, checking names and scalar types."""
    prefix = f"{where}." if where else ""
    if not isinstance(data, Mapping):
        raise InvalidGenome(f"{where or 'genome'}: expected a mapping, got {type(data).__name__}")
    fields = dataclasses.fields(cls)
    names = {f.name for f in fields}
    unknown = sorted(str(k) for k in data if k not in names)
    if unknown:
        raise InvalidGenome(f"{prefix}{unknown[0]}: unknown field (expected {sorted(names)})")
    out: dict[str, Any] = {}
    for f in fields:
        if f.name not in data:
            raise InvalidGenome(f"{prefix}{f.name}: missing")
        if f.name in skip:
            continue
        kind = _SCALARS[f.type if isinstance(f.type, str) else f.type.__name__]
        value = data[f.name]
        if kind is float and type(value) is int:
            value = float(value)  # some JSON writers store 0.0 as 0
        if type(value) is not kind or (isinstance(value, float) and not math.isfinite(value)):
            raise InvalidGenome(f"{prefix}{f.name}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
        out[f.name] = value
    return out
