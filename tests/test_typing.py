"""The package type-checks: mypy at the level ``[tool.mypy]`` in pyproject.toml states (mypy's defaults over all of
evonas/, third-party packages without types read as Any), no errors; and it ships ``py.typed``."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_mypy_finds_no_errors_in_the_package() -> None:
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"], cwd=REPO, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert "Success: no issues found" in done.stdout


def test_the_package_is_marked_typed() -> None:
    assert (REPO / "evonas" / "py.typed").is_file()
