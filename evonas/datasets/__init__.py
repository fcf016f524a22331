"""Datasets by name: ``digits`` (scikit-learn's 8x8 digits), ``synthetic``, ``npz``, ``csv``, and torchvision's
``mnist`` / ``fashion_mnist`` / ``cifar10`` from a local folder."""

from __future__ import annotations

from evonas.datasets.base import DATASETS, Dataset, split_arrays
from evonas.datasets import loaders, tabular  # noqa: F401  (registration)

__all__ = ["DATASETS", "Dataset", "split_arrays", "load_dataset"]


def load_dataset(name: str, *, seed: int, **params) -> Dataset:
    """Load dataset ``name`` split with ``seed``; ``params`` go to its loader."""
    return DATASETS.get(name)(seed=seed, **params)
