"""The checks components run on their own parameters, the one JSON cleaner, and the one text clipper.

A component (space, strategy, fitness, dataset, operator) checks the values it is built with and raises
``ValueError`` with one line that names the parameter and says what was expected; the engine adds which
experiment key it came from. These helpers say it the same way everywhere. numpy's scalars are accepted as
Python's, without importing numpy here.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any, Iterable, TypeGuard

__all__ = [
    "check_bool", "check_choice", "check_int", "check_number", "check_probability", "is_real", "json_safe", "metric_text",
    "one_line",
]  # fmt: skip


def is_real(value: Any) -> TypeGuard[int | float]:
    """Whether ``value`` is a finite number (an int or a float, not a bool), e.g. a metric read back from a journal."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_text(value: Any, missing: str = "?") -> str:
    """A metric on a line of text: a whole number in full (a table index, a parameter count: ``12855``, not
    ``1.286e+04``), any other number to 4 significant digits, anything else ``missing``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return missing
    if math.isfinite(value) and float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return _not_whole(value, "g", 4)


def decimals_text(value: float, decimals: int = 4) -> str:
    """``value`` with ``decimals`` decimals (``0.9833``), more where rounding would show a whole number it is not
    (``0.99996``, not ``1.0000``: an accuracy shown as 1 that is not 1)."""
    return _not_whole(value, "f", decimals)


def _not_whole(value: float, kind: str, digits: int) -> str:
    """``value`` formatted as ``kind`` (``f``, ``g``) with ``digits``, and with more while that reads as a whole
    number ``value`` is not."""
    text = f"{value:.{digits}{kind}}"
    while digits < 17 and math.isfinite(value) and not float(value).is_integer() and float(text).is_integer():
        digits += 1
        text = f"{value:.{digits}{kind}}"
    return text


def one_line(text: Any, limit: int) -> str:
    """``text`` (any value, as ``str``) on one line of printable characters, at most ``limit`` long, cut with
    ``...``: for messages and listings built from files, user code and tracebacks (a damaged file prints no escapes)."""
    lines = (line.strip() for line in str(text).splitlines())
    text = "".join(c if c.isprintable() else " " for c in " ".join(line for line in lines if line))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _numpy_types(*names: str) -> tuple[type[Any], ...]:
    """numpy's types of these names, if numpy was imported (only then can a value be one of them): numpy is not
    imported here, so the commands that need no numpy (``evonas status``, ``--help``) start without it."""
    np = sys.modules.get("numpy")
    return tuple(getattr(np, name) for name in names) if np is not None else ()


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` if it is a whole number (not a bool) within ``[minimum, maximum]``, else
    ``ValueError``."""
    ok = not isinstance(value, (bool, *_numpy_types("bool_"))) and isinstance(value, (int, *_numpy_types("integer")))
    if ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
        return int(value)
    if minimum is not None and maximum is not None:
        want = f"an integer from {minimum} to {maximum}"
    elif minimum is not None:
        want = f"an integer >= {minimum}"
    elif maximum is not None:
        want = f"an integer <= {maximum}"
    else:
        want = "an integer"
    raise ValueError(f"{name}: expected {want}, got {_shown(value)}")


def check_number(
    name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
    above: float | None = None, below: float | None = None,
) -> float:
    """``value`` as a finite ``float`` (not a bool) with ``minimum <= value <= maximum`` and
    ``above < value < below``."""
    ok = not isinstance(value, (bool, *_numpy_types("bool_")))
    ok = ok and isinstance(value, (int, float, *_numpy_types("integer", "floating")))
    ok = ok and math.isfinite(value)
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    ok = ok and (above is None or value > above) and (below is None or value < below)
    if ok:
        return float(value)
    bounds = []
    if minimum is not None:
        bounds.append(f">= {minimum:g}")
    if above is not None:
        bounds.append(f"> {above:g}")
    if maximum is not None:
        bounds.append(f"<= {maximum:g}")
    if below is not None:
        bounds.append(f"< {below:g}")
    want = "a number" + (" " + " and ".join(bounds) if bounds else "")
    raise ValueError(f"{name}: expected {want}, got {_shown(value)}")


def check_probability(name: str, value: Any) -> float:
    """``value`` as a ``float`` from 0 to 1."""
    return check_number(name, value, minimum=0.0, maximum=1.0)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (numpy's too), else ``ValueError``."""
    if isinstance(value, (bool, *_numpy_types("bool_"))):
        return bool(value)
    raise ValueError(f"{name}: expected true or false, got {_shown(value)}")


def check_choice(name: str, value: Any, options: Iterable[Any]) -> Any:
    """``value`` if it is one of ``options``, else ``ValueError`` listing them."""
    options = tuple(options)
    if value in options:
        return value
    raise ValueError(f"{name}: expected one of {', '.join(map(repr, options))}, got {_shown(value)}")


def json_safe(value: Any) -> Any:
    """``value`` as data ``json.dumps(..., allow_nan=False)`` and ``yaml.safe_dump`` accept: non-finite floats as
    ``None``, numpy scalars and arrays as Python numbers and lists, tuples as lists, mapping keys as strings,
    paths as strings."""
    if isinstance(value, _numpy_types("generic")):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or isinstance(value, _numpy_types("ndarray")):
        return [json_safe(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value
