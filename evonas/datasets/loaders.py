"""Built-in dataset loaders, registered in :data:`~evonas.datasets.base.DATASETS`.

Every loader is called as ``loader(*, seed, val_fraction=0.2, test_fraction=0.2, **params)``
and returns a :class:`~evonas.datasets.base.Dataset` whose ``x_*`` arrays are float32
``(n, *input_shape)`` (images as ``(n, C, H, W)`` in [0, 1]) and ``y_*`` int64.

- ``digits``: scikit-learn's 8x8 digits (1797 images, 10 classes), embedded, no download.
- ``synthetic``: generated, learnable data for tests and quick runs.
- ``npz``: your own arrays from a ``.npz`` file.
- ``mnist`` / ``fashion_mnist`` / ``cifar10``: torchvision's files in a local folder
  (never downloaded); the official test set is the test split.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from evonas.datasets.base import DATASETS, Dataset, split_arrays

__all__ = [
    "load_digits",
    "load_synthetic",
    "load_npz",
    "load_mnist",
    "load_fashion_mnist",
    "load_cifar10",
    "to_nchw",
]


# -- helpers ------------------------------------------------------------------
def to_nchw(x: np.ndarray, *, key: str = "x") -> np.ndarray:
    """Float32 array with images as ``(N, C, H, W)``.

    ``(N, H, W)`` gains a channel axis; ``(N, H, W, C)`` with ``C`` in {1, 3} (and a second
    axis that is not) is moved to channels-first; uint8 is scaled to [0, 1]. Other ranks
    (``(N, F)`` feature vectors, ``(N, C, H, W)``) keep their shape. ``key`` names the
    array in error messages.
    """
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"'{key}' must have shape (N, ...) with at least 2 axes, got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_) or np.iscomplexobj(x):
        raise ValueError(f"'{key}' must be numeric, got dtype {x.dtype}")
    scale = x.dtype == np.uint8
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[3] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    out = np.ascontiguousarray(x, dtype=np.float32)
    if scale:
        out /= 255.0
    return out


def _labels(y: np.ndarray, *, key: str, n: int) -> np.ndarray:
    """``y`` as int64 class indices, checked against ``n`` samples."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"'{key}' must be a 1-D array of class indices, got shape {y.shape}")
    if len(y) != n:
        raise ValueError(f"'{key}' has {len(y)} labels but its inputs have {n} samples")
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"'{key}' must hold integer class indices, got dtype {y.dtype}")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError(f"'{key}' must hold integer class indices, got non-integer values")
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        raise ValueError(f"'{key}' must hold class indices >= 0, got {int(y.min())}")
    return y


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}")


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_nonempty(ds: Dataset, param: str) -> Dataset:
    if len(ds.y_train) == 0 or len(ds.y_val) == 0:
        raise ValueError(f"dataset '{ds.name}' is too small for its split ({ds!r}); increase {param}")
    return ds


# -- digits -------------------------------------------------------------------
@DATASETS.register("digits")
def load_digits(*, seed: int, val_fraction: float = 0.2, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's 8x8 handwritten digits as ``(1, 8, 8)`` float32 in [0, 1], 10 classes."""
    from sklearn.datasets import load_digits as _sk_digits

    _check_fractions(val_fraction, test_fraction)
    data = _sk_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]
    return split_arrays(
        "digits", x, data.target, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, num_classes=10
    )


# -- synthetic ----------------------------------------------------------------
@DATASETS.register("synthetic")
def load_synthetic(
    *,
    seed: int,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    n_samples: int = 600,
    num_classes: int = 4,
    shape: Sequence[int] = (1, 8, 8),
    noise: float = 0.5,
    data_seed: int | None = None,
) -> Dataset:
    """Learnable generated data: one random pattern per class plus Gaussian ``noise``.

    The patterns and samples come from ``data_seed`` (default: ``seed``), the split from
    ``seed``; classes are balanced. ``shape`` is one sample's shape, e.g. ``[1, 8, 8]`` or ``[16]``.
    """
    _check_fractions(val_fraction, test_fraction)
    num_classes = _check_int("num_classes", num_classes, 2)
    n_samples = _check_int("n_samples", n_samples, 2 * num_classes)
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence) or not shape:
        raise ValueError(f"shape must be a non-empty list of positive integers, got {shape!r}")
    shape = tuple(_check_int("shape", s, 1) for s in shape)
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
        raise ValueError(f"noise must be a number >= 0, got {noise!r}")
    rng = np.random.default_rng(seed if data_seed is None else data_seed)
    patterns = rng.standard_normal((num_classes, *shape))
    y = np.arange(n_samples) % num_classes
    rng.shuffle(y)
    x = patterns[y] + noise * rng.standard_normal((n_samples, *shape))
    ds = split_arrays(
        "synthetic", x, y, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, num_classes=num_classes
    )
    return _check_nonempty(ds, "n_samples")


# -- npz ----------------------------------------------------------------------
_SPLIT_KEYS = ("x_train", "y_train", "x_val", "y_val")


@DATASETS.register("npz")
def load_npz(
    *, seed: int, val_fraction: float = 0.2, test_fraction: float = 0.2, path: str | os.PathLike | None = None
) -> Dataset:
    """Your arrays from the ``.npz`` file at ``path``.

    Either keys ``x``, ``y`` (split here, seeded and stratified) or ``x_train``, ``y_train``,
    ``x_val``, ``y_val`` and optionally ``x_test``, ``y_test`` (used as given; the fractions
    are then ignored). Images ``(N, H, W)`` / ``(N, H, W, C)`` become ``(N, C, H, W)``;
    uint8 is scaled to [0, 1].
    """
    if path is None or not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"dataset 'npz' needs path= (a .npz file), got {path!r}")
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"npz dataset file not found: {str(file)!r}")
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:  # a pickled object array, or not an .npz file at all
        raise ValueError(f"cannot read {str(file)!r} as an .npz of numeric arrays: {exc}") from exc
    name = f"npz:{file.name}"
    if "x" in arrays:
        if "y" not in arrays:
            raise ValueError(f"{str(file)!r} has key 'x' but no key 'y' (the labels)")
        _check_fractions(val_fraction, test_fraction)
        x = to_nchw(arrays["x"], key="x")
        y = _labels(arrays["y"], key="y", n=len(x))
        ds = split_arrays(name, x, y, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
        return _check_nonempty(ds, "the number of samples in 'x'")
    if "x_train" not in arrays:
        raise ValueError(
            f"{str(file)!r} must hold keys 'x' and 'y', or 'x_train', 'y_train', 'x_val', 'y_val' "
            f"(and optionally 'x_test', 'y_test'); found {sorted(arrays)}"
        )
    for key in _SPLIT_KEYS:
        if key not in arrays:
            raise ValueError(f"{str(file)!r} has key 'x_train' but no key '{key}'")
    if ("x_test" in arrays) != ("y_test" in arrays):
        missing = "y_test" if "x_test" in arrays else "x_test"
        raise ValueError(f"{str(file)!r} has only one of 'x_test' / 'y_test'; missing key '{missing}'")
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for part in ("train", "val", "test"):
        if f"x_{part}" not in arrays:
            continue
        x = to_nchw(arrays[f"x_{part}"], key=f"x_{part}")
        parts[part] = (x, _labels(arrays[f"y_{part}"], key=f"y_{part}", n=len(x)))
    shape = parts["train"][0].shape[1:]
    for part, (x, _) in parts.items():
        if x.shape[1:] != shape:
            raise ValueError(f"'x_{part}' has samples of shape {x.shape[1:]} but 'x_train' has {shape}")
        if len(x) == 0 and part != "test":
            raise ValueError(f"'x_{part}' is empty")
    if "test" not in parts:
        parts["test"] = (np.empty((0, *shape), np.float32), np.empty(0, np.int64))
    num_classes = max(int(y.max()) + 1 for _, y in parts.values() if len(y))
    return Dataset(
        name=name,
        x_train=parts["train"][0],
        y_train=parts["train"][1],
        x_val=parts["val"][0],
        y_val=parts["val"][1],
        x_test=parts["test"][0],
        y_test=parts["test"][1],
        num_classes=num_classes,
    )


# -- torchvision ----------------------------------------------------------------
#: name -> (torchvision class, where its files must be under root)
_VISION = {
    "mnist": ("MNIST", "MNIST/raw/ (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-...)"),
    "fashion_mnist": ("FashionMNIST", "FashionMNIST/raw/ (train-images-idx3-ubyte, ..., t10k-...)"),
    "cifar10": ("CIFAR10", "cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta)"),
}


def _vision_arrays(obj: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` numpy arrays of a torchvision dataset object (``.data`` / ``.targets``)."""
    x, y = obj.data, obj.targets
    x = x.numpy() if hasattr(x, "numpy") else np.asarray(x)
    y = y.numpy() if hasattr(y, "numpy") else np.asarray(y)
    return x, y


def _load_vision(name: str, *, seed: int, val_fraction: float, root: str | os.PathLike) -> Dataset:
    cls_name, layout = _VISION[name]
    _check_fractions(val_fraction, 0.0)
    try:
        import torchvision.datasets as tvd
    except ImportError as exc:
        raise ImportError(
            f"dataset '{name}' needs torchvision: pip install torchvision (or pip install 'evonas[vision]')"
        ) from exc
    if not isinstance(root, (str, os.PathLike)):
        raise ValueError(f"dataset '{name}' needs root= (a folder), got {root!r}")
    folder = Path(root).expanduser()
    hint = (
        f"dataset '{name}' files not found: expected {folder / layout}. They are never downloaded at run "
        f"time; fetch them once with torchvision.datasets.{cls_name}({str(folder)!r}, download=True) "
        "and pass that folder as root"
    )
    if not folder.is_dir():
        raise FileNotFoundError(hint)
    cls = getattr(tvd, cls_name)
    try:
        train = cls(root=str(folder), train=True, download=False)
        test = cls(root=str(folder), train=False, download=False)
    except RuntimeError as exc:  # torchvision: "Dataset not found[ or corrupted]. You can use download=True ..."
        if "not found" in str(exc).lower():
            raise FileNotFoundError(hint) from exc
        raise
    x_tr, y_tr = _vision_arrays(train)
    x_te, y_te = _vision_arrays(test)
    x_tr, x_te = to_nchw(x_tr, key="train images"), to_nchw(x_te, key="test images")
    y_tr, y_te = _labels(y_tr, key="train labels", n=len(x_tr)), _labels(y_te, key="test labels", n=len(x_te))
    ds = split_arrays(name, x_tr, y_tr, seed=seed, val_fraction=val_fraction, test_fraction=0.0, num_classes=10)
    return dataclasses.replace(ds, x_test=x_te, y_test=y_te)


@DATASETS.register("mnist")
def load_mnist(
    *, seed: int, val_fraction: float = 0.2, test_fraction: float = 0.2, root: str | os.PathLike = "data"
) -> Dataset:
    """torchvision's MNIST from ``root`` as ``(1, 28, 28)``; the official test set is the test split."""
    return _load_vision("mnist", seed=seed, val_fraction=val_fraction, root=root)


@DATASETS.register("fashion_mnist")
def load_fashion_mnist(
    *, seed: int, val_fraction: float = 0.2, test_fraction: float = 0.2, root: str | os.PathLike = "data"
) -> Dataset:
    """torchvision's Fashion-MNIST from ``root`` as ``(1, 28, 28)``; the official test set is the test split."""
    return _load_vision("fashion_mnist", seed=seed, val_fraction=val_fraction, root=root)


@DATASETS.register("cifar10")
def load_cifar10(
    *, seed: int, val_fraction: float = 0.2, test_fraction: float = 0.2, root: str | os.PathLike = "data"
) -> Dataset:
    """torchvision's CIFAR-10 from ``root`` as ``(3, 32, 32)``; the official test set is the test split."""
    return _load_vision("cifar10", seed=seed, val_fraction=val_fraction, root=root)
