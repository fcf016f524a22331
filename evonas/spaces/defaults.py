"""Space defaults live in YAML files under ``genomes/`` (shipped as ``evonas.genomes``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from evonas.config import YAML_MAX_BYTES, ConfigError, safe_load_yaml

__all__ = ["load_space_params", "genomes_dir"]


def genomes_dir() -> Path:
    """The folder of shipped space declarations and saved genomes: the package ``evonas.genomes`` once
    installed, else the checkout's ``genomes/`` (evonas imported from a checkout by ``PYTHONPATH``)."""
    try:
        return Path(str(resources.files("evonas.genomes")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "genomes"


def load_space_params(name: str, file: str | Path | None = None) -> dict[str, Any]:
    """Parameters declared for space ``name``: ``file`` if given, else ``genomes/<name>.yaml`` (empty if absent).

    The file is a mapping; its optional ``space:`` key must equal ``name``, and
    its ``params:`` mapping (or, if absent, the whole file less ``space``) is returned.
    """
    path = Path(file) if file is not None else genomes_dir() / f"{name}.yaml"
    if not path.exists():
        if file is not None:
            raise FileNotFoundError(f"{path}: no such space declaration file")
        parent = _declared_parent(name)  # a subclass of a declared space, registered under its own name
        return load_space_params(parent) if parent else {}
    try:
        with open(path, "rb") as fh:
            raw = fh.read(YAML_MAX_BYTES + 1)
        data = safe_load_yaml(raw.decode("utf-8", errors="replace"), path) or {}
    except ConfigError as exc:
        raise ValueError(f"cannot read the space declaration {exc}") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the space declaration ({exc.strerror or exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of space parameters, got {type(data).__name__}")
    declared = data.get("space", name)
    if declared != name:
        raise ValueError(f"{path}: space: declares '{declared}', expected '{name}'")
    params = data.get("params", {k: v for k, v in data.items() if k != "space"})
    return dict(params)


def _declared_parent(name: str) -> str | None:
    """The nearest space class that the class registered as ``name`` derives from and that has a declaration file
    (``genomes/<parent>.yaml``): its defaults are the subclass's. ``None`` if none has."""
    from evonas.spaces import SPACES

    try:
        cls = SPACES.get(name)
    except Exception:
        return None
    for base in getattr(cls, "__mro__", ())[1:]:
        parent = base.__dict__.get("name")
        if parent and parent != name and (genomes_dir() / f"{parent}.yaml").exists():
            return str(parent)
    return None
