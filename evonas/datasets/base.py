"""In-memory datasets with a seeded train / validation / test split."""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from evonas.registry import Registry

__all__ = ["Dataset", "DATASETS", "split_arrays"]


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Arrays of one classification problem: ``x_*`` float32 of shape ``(n, *input_shape)``, ``y_*`` int64."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, input_shape={self.input_shape}, classes={self.num_classes}, "
            f"train={len(self.y_train)}, val={len(self.y_val)}, test={len(self.y_test)})"
        )


def split_arrays(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    num_classes: int | None = None,
) -> Dataset:
    """Shuffle with ``seed`` and split stratified by class into train / val / test."""
    if not 0 < val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError("val_fraction and test_fraction must be in (0, 1) and sum to less than 1")
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(y).astype(np.int64)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        n_val = int(round(len(idx) * val_fraction))
        n_test = int(round(len(idx) * test_fraction))
        parts["val"].append(idx[:n_val])
        parts["test"].append(idx[n_val : n_val + n_test])
        parts["train"].append(idx[n_val + n_test :])
    out = {}
    for part, chunks in parts.items():
        idx = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)
        rng.shuffle(idx)
        out[part] = idx
    return Dataset(
        name=name,
        x_train=x[out["train"]],
        y_train=y[out["train"]],
        x_val=x[out["val"]],
        y_val=y[out["val"]],
        x_test=x[out["test"]],
        y_test=y[out["test"]],
        num_classes=int(num_classes if num_classes is not None else int(y.max()) + 1),
    )


#: loaders: ``loader(*, seed, val_fraction, test_fraction, **params) -> Dataset``
DATASETS: Registry[Callable[..., Dataset]] = Registry("dataset")
