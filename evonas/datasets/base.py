"""In-memory datasets with a seeded train / validation / test split."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Callable

import numpy as np

from evonas.registry import Registry

__all__ = ["Dataset", "DATASETS", "RawInput", "Standardize", "split_arrays", "standardize"]

#: samples per block when computing the statistics (bounds the float64 temporaries)
_BLOCK_SAMPLES = 1 << 14


@dataclasses.dataclass(frozen=True, eq=False)
class Standardize:
    """Per-feature (or per-channel) standardisation ``(x - mean) / std`` whose statistics came from a training split.

    ``mean`` and ``std`` are float32 arrays of one sample's shape (the dataset's ``input_shape``), or
    ``(C, 1, 1)`` per channel of images;
    a feature constant in the training split has ``std`` 1 (it is only centred). The dataset's
    arrays are already transformed; raw inputs of a deployed model need :meth:`apply` first.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x_train: np.ndarray, *, per_channel: bool = False) -> "Standardize":
        """Mean and (population) standard deviation of each feature of ``x_train``, in float64 block by block.

        ``per_channel`` (images ``(N, C, H, W)``): one mean and deviation per channel, over all its pixels (the
        convention of torchvision's ``Normalize``), of shape ``(C, 1, 1)``: they broadcast over a sample.
        """
        x = np.asarray(x_train)
        if len(x) == 0:
            raise ValueError("cannot standardise: the training split is empty")
        if per_channel and x.ndim != 4:
            raise ValueError(
                f"standardize: 'channels' needs images (N, C, H, W), got samples of shape {tuple(x.shape[1:])}; "
                "use standardize: true for feature vectors"
            )
        axes = (0, 2, 3) if per_channel else (0,)
        n = len(x) * (x.shape[2] * x.shape[3] if per_channel else 1)
        total = np.zeros((1, *x.shape[1:]) if not per_channel else (1, x.shape[1], 1, 1), dtype=np.float64)
        for start in range(0, len(x), _BLOCK_SAMPLES):
            total += x[start : start + _BLOCK_SAMPLES].sum(axis=axes, dtype=np.float64, keepdims=True)
        mean = total / n
        sq = np.zeros_like(total)
        for start in range(0, len(x), _BLOCK_SAMPLES):
            block = x[start : start + _BLOCK_SAMPLES].astype(np.float64) - mean
            sq += np.square(block).sum(axis=axes, keepdims=True)
        std = np.sqrt(sq / n)
        std[~(std > 0) | ~np.isfinite(std)] = 1.0  # constant in training: centre it, do not divide by 0
        return cls(mean[0].astype(np.float32), std[0].astype(np.float32))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``(x - mean) / std`` as a new float32 array (raw inputs, shape ``(n, *input_shape)``)."""
        x = np.asarray(x, dtype=np.float32)
        return np.ascontiguousarray((x - self.mean) / self.std, dtype=np.float32)

    def invert(self, x: np.ndarray) -> np.ndarray:
        """Raw inputs back from transformed ones: ``x * std + mean``."""
        return np.ascontiguousarray(np.asarray(x, dtype=np.float32) * self.std + self.mean, dtype=np.float32)

    def wrap(self, model: Any) -> Any:
        """A ``torch.nn.Module`` that standardises raw inputs, then calls ``model`` (trained on transformed data).

        ``mean`` and ``std`` are buffers of one sample's shape or ``(C, 1, 1)`` (broadcast over the batch), so the
        result traces to TorchScript / ONNX with the transform inside; ``model`` is its ``net``.
        """
        import torch

        mean, std = torch.from_numpy(self.mean.copy()), torch.from_numpy(self.std.copy())
        param = next(iter(model.parameters()), None)
        if param is not None:
            mean, std = mean.to(param.device), std.to(param.device)
        return _standardized_input_class()(model, mean, std)

    def to_dict(self) -> dict:
        """``{"kind": "standardize", "mean": [...], "std": [...]}`` (nested lists of their shape), JSON-ready."""
        return {"kind": "standardize", "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "Standardize":
        return cls(np.asarray(data["mean"], dtype=np.float32), np.asarray(data["std"], dtype=np.float32))

    def __repr__(self) -> str:
        if self.mean.ndim == 3 and self.mean.shape[1:] == (1, 1):
            return f"Standardize(channels={self.mean.shape[0]})"
        return f"Standardize(features={self.mean.size})"


@dataclasses.dataclass(frozen=True)
class RawInput:
    """How a loader made a file's inputs into the dataset's float32 ones (images ``(N, C, H, W)``): ``layout``
    ``"nhwc"`` (the channel axis moved first), ``"nhw"`` (a channel axis added) or ``""`` (as stored), and ``dtype``
    the stored one (``"uint8"``: divided by 255; any other: cast to float32). An exported model takes the inputs
    as stored and does this itself."""

    layout: str
    dtype: str

    @property
    def scale(self) -> float:
        return 1.0 / 255.0 if self.dtype == "uint8" else 1.0

    def shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """One stored sample's shape for the dataset's ``input_shape`` ``(C, H, W)``."""
        if self.layout == "nhwc":
            return (*input_shape[1:], input_shape[0])
        if self.layout == "nhw":
            return tuple(input_shape[1:])
        return tuple(input_shape)

    def invert(self, x: np.ndarray) -> np.ndarray:
        """Stored inputs back from the dataset's: the layout undone, uint8 pixels rounded back."""
        x = np.asarray(x, dtype=np.float32)
        if self.layout == "nhwc":
            x = x.transpose(0, 2, 3, 1)
        elif self.layout == "nhw":
            x = x[:, 0]
        if self.dtype == "uint8":
            return np.ascontiguousarray(np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8))
        if np.dtype(self.dtype).kind in "iub":  # whole numbers (and booleans) the loader made float32: exact
            return np.ascontiguousarray(np.rint(x).astype(self.dtype))
        return np.ascontiguousarray(x.astype(self.dtype))

    def wrap(self, model: Any, input_shape: tuple[int, ...]) -> Any:
        """A TorchScript-ready module that takes stored inputs (their dtype and shape, checked: a clear error for
        anything else), does what the loader did, then calls ``model``."""
        return _raw_input_class()(model, self.layout, self.dtype == "uint8", self.scale, list(self.shape(input_shape)))

    def to_dict(self) -> dict:
        return {"layout": self.layout, "dtype": self.dtype}


_STANDARDIZED_INPUT: Any = None
_RAW_INPUT: Any = None


def _raw_input_class() -> Any:
    """``RawImages(net, layout, uint8, scale, shape)`` (made on first use: torch is imported late)."""
    global _RAW_INPUT
    if _RAW_INPUT is None:
        from evonas.datasets import _raw_input

        _RAW_INPUT = _raw_input.RawImages
    return _RAW_INPUT


def _standardized_input_class() -> Any:
    """``StandardizedInput(net, mean, std)``: ``net((x - mean) / std)`` (made on first use: torch is imported late)."""
    global _STANDARDIZED_INPUT
    if _STANDARDIZED_INPUT is None:
        import torch

        class StandardizedInput(torch.nn.Module):
            mean: torch.Tensor
            std: torch.Tensor

            """Standardise raw inputs with stored training statistics, then run ``net``."""

            def __init__(self, net: torch.nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
                super().__init__()
                self.net = net
                self.register_buffer("mean", mean)
                self.register_buffer("std", std)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.net((x - self.mean) / self.std)

        _STANDARDIZED_INPUT = StandardizedInput
    return _STANDARDIZED_INPUT


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Arrays of one classification problem: ``x_*`` float32 of shape ``(n, *input_shape)``, ``y_*`` int64.

    What a loader returns and everything the engine, the fitness functions and ``evonas export`` read of a
    dataset: the fields below and :attr:`input_shape`.
    """

    #: what the dataset is called in messages (the loader's name, or a description)
    name: str
    #: the training split's inputs and labels (the labels are class indices ``0 .. num_classes - 1``)
    x_train: np.ndarray
    y_train: np.ndarray
    #: the validation split: what a fitness scores a genome on
    x_val: np.ndarray
    y_val: np.ndarray
    #: the test split: no search reads it; ``evonas export`` scores the retrained network on it once
    x_test: np.ndarray
    y_test: np.ndarray
    #: the number of classes (the width of a network's output)
    num_classes: int
    #: what was already applied to every split's inputs (``None``: the data as loaded), e.g. a :class:`Standardize`
    #: with the training split's statistics; a model trained on this dataset expects its inputs transformed so
    transform: Standardize | None = None
    #: how the loader made the stored images into these arrays before any ``transform`` (``None``: as stored)
    raw_input: RawInput | None = None
    #: the name of each class ``0 .. num_classes - 1`` where the file gave names (the ``csv`` loader), else ``None``
    classes: tuple[str, ...] | None = None
    #: the feature columns the inputs hold, in order, and the label column, where the file names them (``csv``)
    feature_names: tuple[str, ...] | None = None
    label_name: str | None = None
    #: where the loader split one set of samples (:func:`split_arrays`): ``{"train": ..., "val": ..., "test": ...}``,
    #: each split's sample positions in that set, in the split's order (a ``csv`` file's data rows counted from 0, as
    #: ``pandas.read_csv(path).iloc[...]`` takes them; an ``npz`` file's ``x``; torchvision's training set, and its
    #: test set for ``test``); ``None`` for splits as given
    split_rows: dict[str, np.ndarray] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one sample (the inputs' shape without the first axis), e.g. ``(1, 8, 8)`` or ``(13,)``."""
        return tuple(self.x_train.shape[1:])

    def as_stored(self, x: np.ndarray) -> np.ndarray:
        """Inputs of this dataset (``x_test``, say) as the data file stores them, which is what an exported model
        takes: a ``transform`` undone, then the loader's conversion of images (uint8 pixels, channels last)."""
        x = self.transform.invert(x) if self.transform is not None else np.asarray(x)
        return self.raw_input.invert(x) if self.raw_input is not None else x

    def emptied(self) -> Dataset:
        """This dataset without its samples: the same shapes, classes, names and fingerprints, every split of
        length 0. What a process keeps that evaluates nothing itself (the run's, when workers train)."""
        fingerprints = {"_fingerprint": self.fingerprint(), "_test_fingerprint": self.test_fingerprint()}

        def empty(a: np.ndarray) -> np.ndarray:  # a new array: a view of [:0] would keep the samples alive
            return np.empty((0, *a.shape[1:]), dtype=a.dtype)

        out = dataclasses.replace(
            self, x_train=empty(self.x_train), y_train=empty(self.y_train), x_val=empty(self.x_val),
            y_val=empty(self.y_val), x_test=empty(self.x_test), y_test=empty(self.y_test),
        )  # fmt: skip
        out.__dict__.update(fingerprints)
        return out

    def fingerprint(self) -> str:
        """A hash of the training and validation splits as loaded (shapes, dtypes, every value): the data a search
        sees. Two files with other contents at one path differ here; computed once per object."""
        return self._hash("_fingerprint", ("x_train", "y_train", "x_val", "y_val"))

    def test_fingerprint(self) -> str:
        """The same hash of the test split: what ``evonas export`` scores on (no search sees it)."""
        return self._hash("_test_fingerprint", ("x_test", "y_test"))

    def _hash(self, slot: str, names: tuple[str, ...]) -> str:
        cached = self.__dict__.get(slot)
        if cached is None:
            digest = hashlib.sha256()
            for name in names:
                array = np.ascontiguousarray(getattr(self, name))
                digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
                digest.update(array.data)  # (C-contiguous: its bytes in order)
            cached = self.__dict__[slot] = digest.hexdigest()[:32]
        return cached

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, input_shape={self.input_shape}, classes={self.num_classes}, "
            f"train={len(self.y_train)}, val={len(self.y_val)}, test={len(self.y_test)}"
            + (f", transform={self.transform!r}" if self.transform is not None else "")
            + ")"
        )


def standardize(ds: Dataset, *, per_channel: bool = False) -> Dataset:
    """``ds`` with every split standardised by the statistics of its training split only (each feature, or with
    ``per_channel`` each image channel: :meth:`Standardize.fit`).

    Validation and test statistics never enter, so the validation score is not flattered by a
    leak; the statistics depend only on the data and the split (the run's seed), so loading the
    experiment again reproduces them. The result's ``transform`` holds them.
    """
    if ds.transform is not None:
        raise ValueError(f"dataset '{ds.name}' is already transformed ({ds.transform!r})")
    t = Standardize.fit(ds.x_train, per_channel=per_channel)
    return dataclasses.replace(
        ds, x_train=t.apply(ds.x_train), x_val=t.apply(ds.x_val), x_test=t.apply(ds.x_test), transform=t
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
    y = np.asarray(y)
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.number) or np.iscomplexobj(y):
        raise ValueError(f"{name}: the labels must be integer class indices, got dtype {y.dtype}")
    if not np.issubdtype(y.dtype, np.integer):  # a float array of whole numbers is fine; 0.5 would be cut to 0
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            shown = ", ".join(str(v) for v in y[~whole][:3].tolist())
            raise ValueError(f"{name}: the labels must be integer class indices, got non-integer values such as {shown}")
    y = y.astype(np.int64)
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
        split_rows=out,
    )


#: loaders: ``loader(*, seed, val_fraction, test_fraction, **params) -> Dataset``
DATASETS: Registry[Callable[..., Dataset]] = Registry("dataset")
