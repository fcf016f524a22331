"""A real package: the wheel and the sdist build, pass ``twine check``, carry what a run needs, and the wheel,
installed (not editable) in a fresh virtual environment, runs the quickstart from a folder outside the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

import evonas


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # the sdist first, then the wheel from the unpacked sdist (what pip does with an sdist; nothing is built in the checkout)
    done = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def _one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {dist}, found {[p.name for p in found]}"
    return found[0]


def test_the_wheel_and_sdist_build_and_pass_twine_check(dist: Path) -> None:
    wheel = _one(dist, f"evonas-{evonas.__version__}-py3-none-any.whl")
    sdist = _one(dist, f"evonas-{evonas.__version__}.tar.gz")
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2, done.stdout


def test_the_wheel_carries_the_package_its_data_and_its_types(dist: Path) -> None:
    names = set(zipfile.ZipFile(_one(dist, "*.whl")).namelist())
    sources = {str(p.relative_to(REPO)).replace(os.sep, "/") for p in (REPO / "evonas").rglob("*.py")}
    assert sources <= names, sorted(sources - names)[:10]
    assert "evonas/py.typed" in names
    shipped = {str(p.relative_to(REPO / "genomes")).replace(os.sep, "/") for p in (REPO / "genomes").rglob("*")
               if p.is_file() and p.suffix in (".yaml", ".json", ".csv", ".md")}  # fmt: skip
    assert shipped and {f"evonas/genomes/{n}" for n in shipped} <= names
    assert not any(n.startswith(("tests/", "benchmarks/", "docs/")) for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(_one(dist, "*.whl")).read(metadata).decode()
    assert f"Version: {evonas.__version__}" in text
    for extra in ("tensorboard", "mlflow", "optuna", "docs", "test"):
        assert f"Provides-Extra: {extra}" in text
    members = tarfile.open(_one(dist, "*.tar.gz")).getnames()
    assert any(m.endswith("/CHANGELOG.md") for m in members) and any(m.endswith("/README.md") for m in members)


def test_the_wheel_in_a_fresh_environment_runs_the_quickstart(dist: Path, tmp_path: Path) -> None:
    """Not editable, outside the checkout: the installed package finds its own genomes/ data and trains."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    import torch

    torch_req = f"torch=={torch.__version__.split('+')[0]}"  # the build this machine has (CPU here), not a download
    for args in (["pip", "install", "-q", torch_req], ["pip", "install", "-q", str(_one(dist, "*.whl"))]):
        done = subprocess.run([str(py), "-m", *args], capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    work = tmp_path / "work"
    work.mkdir()
    (work / "quickstart.yaml").write_text((REPO / "experiments" / "quickstart.yaml").read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run([str(py), "-c", "import evonas; print(evonas.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert str(venv) in where.stdout and str(REPO) not in where.stdout, where.stdout + where.stderr
    # the quickstart's first generation, 8 genomes: the point is the installed package training, not the search
    short = ["--set", "strategy.params.generations=0", "--set", "strategy.params.population_size=8"]
    done = subprocess.run([str(venv / "bin" / "evonas"), "run", "quickstart.yaml", "--out", "run", *short], cwd=work,
                          env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    best = json.loads((work / "run" / "best.json").read_text())
    assert best["metrics"]["val_acc"] >= 0.95, best["metrics"]
    assert "evaluated 8 genomes (0 failed" in done.stdout, done.stdout
