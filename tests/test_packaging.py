"""Every package under evonas/ is listed in pyproject.toml (the list is explicit because genomes/ ships too)."""

from __future__ import annotations

import sys

import pytest

from conftest import REPO

tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else pytest.importorskip("tomli")


def test_packages_listed() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join(p.relative_to(REPO).parent.parts)
        for p in (REPO / "evonas").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    data = {"evonas.genomes"} | {f"evonas.genomes.{d.name}" for d in (REPO / "genomes").iterdir() if d.is_dir()
                                 and d.name != "__pycache__"}  # fmt: skip
    assert set(config["packages"]) == found | data
    assert config["package-dir"]["evonas.genomes"] == "genomes"


def test_shipped_declarations_are_found() -> None:
    from evonas.spaces import SPACES, load_space_params

    for name in SPACES.list():
        assert load_space_params(name), f"genomes/{name}.yaml missing or empty"
