"""Reading a space's keyword parameters with one-line errors.

A space is built from keyword parameters (its ``genomes/<name>.yaml`` merged with the experiment's); a
:class:`ParamReader` reads each one, checks it, and at :meth:`ParamReader.finish` refuses the parameters
nobody read (typos). Every problem is a :class:`ValueError` that names the space and the parameter.

Example::

    reader = ParamReader("chain", {"min_layers": 1, "max_layers": 4})
    reader.integer("min_layers", minimum=0)   # 1
    reader.finish()                           # ValueError: unknown parameter 'max_layers' ...
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

from evonas.checks import check_int

__all__ = ["ParamReader"]


class ParamReader:
    """Reads and checks a space's keyword parameters; every problem is a :class:`ValueError` naming the parameter."""

    def __init__(self, space: str, params: Mapping[str, Any]) -> None:
        self.space = space
        self._params = dict(params)
        self._used: set[str] = set()

    def error(self, key: str, message: str) -> ValueError:
        return ValueError(f"space '{self.space}': parameter '{key}' {message}")

    def _get(self, key: str) -> Any:
        if key not in self._params:
            raise ValueError(f"space '{self.space}': missing parameter '{key}'")
        self._used.add(key)
        return self._params[key]

    def integer(self, key: str, *, minimum: int = 0) -> int:
        """A whole number (not a bool) ``>= minimum``."""
        return check_int(f"space '{self.space}': parameter '{key}'", self._get(key), minimum)

    def number(self, key: str, *, minimum: float = 0.0, exclusive: bool = False) -> float:
        """A finite number (YAML's ``1e-4``, read as a string, is accepted) ``>= minimum`` (``>`` if ``exclusive``)."""
        value = _coerce(self._get(key), float)
        if value is None or value < minimum or (exclusive and value == minimum):
            op = ">" if exclusive else ">="
            raise self.error(key, f"must be a finite number {op} {minimum}, got {self._params[key]!r}")
        return value

    def choices(
        self, key: str, kind: type, *, allowed: Sequence[Any] | None = None, check: Callable[[Any], bool] | None = None,
        what: str = "",
    ) -> tuple[Any, ...]:
        """A non-empty list of distinct ``kind`` values, each in ``allowed`` and passing ``check``."""
        raw = self._get(key)
        if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence) or not raw:
            raise self.error(key, f"must be a non-empty list, got {raw!r}")
        out = []
        for item in raw:
            value = _coerce(item, kind)
            if value is None or (allowed is not None and value not in allowed) or (check and not check(value)):
                want = f"one of {list(allowed)}" if allowed is not None else (what or kind.__name__)
                raise self.error(key, f"has a bad entry {item!r}: expected {want}")
            if value in out:
                raise self.error(key, f"lists {item!r} twice")
            out.append(value)
        return tuple(out)

    def finish(self) -> None:
        """Raise for parameters nobody read (typos)."""
        unknown = sorted(set(self._params) - self._used)
        if unknown:
            known = ", ".join(sorted(self._used))
            raise ValueError(f"space '{self.space}': unknown parameter '{unknown[0]}'; expected one of: {known}")


def _coerce(value: Any, kind: type) -> Any:
    """``value`` as ``kind``, or ``None`` if it is not one (bools are never numbers; floats are finite)."""
    if isinstance(value, bool):
        return value if kind is bool else None
    if kind is float and isinstance(value, (int, float, str)):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return value if type(value) is kind else None
