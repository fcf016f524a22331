"""Shared fixtures: small experiment files written into a temporary folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).resolve().parent / "plugins"
sys.path.insert(0, str(PLUGINS))  # test-only plugin modules (fitness functions that misbehave on purpose)


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tests run tiny networks: one intra-op thread is faster and steadier (two threads per process on a
    busy two-core machine are many times slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _private_evaluation_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own evaluation cache (runs in one test may share it; tests never do)."""
    monkeypatch.setenv("EVONAS_CACHE", str(tmp_path_factory.mktemp("cache") / "evaluations.sqlite"))


@pytest.fixture
def write_experiment(tmp_path: Path) -> Callable[..., Path]:
    """Write an experiment mapping (or raw text) to ``tmp_path/<name>.yaml`` and return the path."""

    def write(data: dict[str, Any] | str, name: str = "exp") -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
        return path

    return write


def toy_experiment(**changes: Any) -> dict[str, Any]:
    """A cheap, deterministic experiment: nb201 with the training-free ``toy`` fitness, in-process."""
    exp: dict[str, Any] = {
        "name": "toy",
        "seed": 3,
        "space": {"name": "nb201"},
        "fitness": {"name": "toy"},
        "strategy": {"name": "ga", "params": {"population_size": 8, "generations": 3}},
        "workers": 0,
    }
    exp.update(changes)
    return exp


def digits_experiment(**changes: Any) -> dict[str, Any]:
    """A small real training: a CNN on the digits, 1 epoch on 300 samples, 12 evaluations in-process."""
    exp: dict[str, Any] = {
        "name": "digits",
        "seed": 1,
        "space": {"name": "chain", "params": {"max_layers": 2, "widths": [8, 16]}},
        "dataset": {"name": "digits"},
        "fitness": {"name": "train", "params": {"epochs": 1, "max_train_samples": 300}},
        "strategy": {"name": "ga", "params": {"population_size": 4, "offspring": 4, "generations": 2}},
        "workers": 0,
    }
    exp.update(changes)
    return exp
