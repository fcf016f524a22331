"""Built-in dataset loaders, registered in :data:`~evonas.datasets.base.DATASETS`.

Every loader is called as ``loader(*, seed, val_fraction=0.2, test_fraction=0.2, **params)``
and returns a :class:`~evonas.datasets.base.Dataset` whose ``x_*`` arrays are float32
``(n, *input_shape)`` (images as ``(n, C, H, W)`` in [0, 1]) and ``y_*`` int64.

- ``digits``: scikit-learn's 8x8 digits (1797 images, 10 classes), embedded, no download.
- ``synthetic``: generated, learnable data for tests and quick runs.
- ``npz``: your own arrays from a ``.npz`` file (keys in any case: ``X``/``y`` as scikit-learn names them).
- ``mnist`` / ``fashion_mnist`` / ``cifar10``: torchvision's files in a local folder
  (never downloaded); the official test set is the test split.

Every loader ends with :func:`check_dataset`, so data that would train silently wrong is refused
before the first evaluation with one line naming the file, the array and the fix: labels must be
``0..C-1`` with every class in the training split (and at least two of them), validation and test
labels must be classes seen in training, features must be finite. ``npz`` also reads each array's
``.npy`` header first and refuses object arrays and shapes larger than the data the file holds
(nothing is allocated for a forged header), and caps ``C`` at :data:`MAX_CLASSES` (its
``max_classes`` param raises the cap).

Every loader takes ``standardize: true``: every feature is standardised with the mean and standard
deviation of the training split only (a feature constant there is only centred), applied to every
split; images also take ``standardize: channels``: one mean and deviation per channel, over all its
pixels (torchvision's ``Normalize`` convention); the statistics are kept as the dataset's ``transform``
(:class:`~evonas.datasets.base.Standardize`) and come out the same whenever the experiment is
loaded again with the same seed (the split's seed).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence, Union

import numpy as np

from evonas.checks import check_int, check_number
from evonas.datasets.base import DATASETS, Dataset, RawInput, split_arrays
from evonas.datasets.base import standardize as standardize_dataset

__all__ = [
    "MAX_CLASSES",
    "check_dataset",
    "load_digits",
    "load_synthetic",
    "load_npz",
    "load_mnist",
    "load_fashion_mnist",
    "load_cifar10",
    "stored_layout",
    "to_nchw",
]


# -- helpers ------------------------------------------------------------------
#: ``standardize``: ``false``, ``true`` (each feature) or ``channels`` (each channel of images)
Standardization = Union[bool, Literal["channels"]]


def _standardization(value: Any) -> Standardization:
    if value is True or value is False or value == "channels":
        return value
    raise ValueError(f"standardize: expected true (each feature), false or 'channels' (each image channel), got {value!r}")


#: the largest pixel value taken without a word from images evonas does not scale (not uint8): above it, pixels
#: look like 0..255 (or 16-bit) values stored as another dtype, which train poorly unscaled
UNSCALED_PIXELS_UP_TO = 2.0


def _say_unscaled(x: np.ndarray, raw: RawInput | None, key: str, where: str, how: Standardization) -> None:
    """A line on stderr for images (4-D once converted) whose pixels evonas takes as stored and that go past
    :data:`UNSCALED_PIXELS_UP_TO` when nothing standardises them (uint16, or float 0..255)."""
    if how or x.ndim != 4 or (raw is not None and raw.dtype == "uint8") or x.size == 0:
        return
    with np.errstate(invalid="ignore"):
        top = float(np.nanmax(np.abs(x)))
    if top > UNSCALED_PIXELS_UP_TO:
        dtype = raw.dtype if raw is not None else "float32"
        print(f"evonas: warning: '{key}' in {where}: images stored as {dtype} with values up to {top:g} are taken as they are "
              f"(only uint8 pixels are scaled to [0, 1]); divide them by their range, or set standardize: channels",
              file=sys.stderr)  # fmt: skip


def _standardized(ds: Dataset, how: Standardization) -> Dataset:
    """``ds`` standardised as ``standardize:`` says (checked by :func:`_standardization`)."""
    return standardize_dataset(ds, per_channel=how == "channels") if how else ds


def _channels_last(shape: tuple[int, ...]) -> bool:
    """Whether 4-D images of ``shape`` are ``(N, H, W, C)``: 1 or 3 channels last and a second axis that is neither,
    or 2 or 4 channels last (grey with alpha, RGBA) and a second axis longer than that."""
    second, last = shape[1], shape[3]
    return (last in (1, 3) and second not in (1, 3)) or (last in (2, 4) and second > last)


def stored_layout(x: np.ndarray) -> RawInput | None:
    """What :func:`to_nchw` does to ``x``: the stored layout and dtype of what it converts (images it moves or
    scales, features or images of another dtype than float32), ``None`` for float32 arrays it keeps as they are."""
    layout = ""
    if x.ndim == 3:
        layout = "nhw"
    elif x.ndim == 4 and _channels_last(x.shape):
        layout = "nhwc"
    if not layout and x.dtype == np.float32:
        return None
    return RawInput(layout, str(x.dtype))


def to_nchw(x: np.ndarray, *, key: str = "x", where: str | None = None) -> np.ndarray:
    """Float32 array with images as ``(N, C, H, W)``.

    ``(N, H, W)`` gains a channel axis; ``(N, H, W, C)`` (:func:`_channels_last`: 1 to 4 channels) is moved to
    channels-first; uint8 is scaled to [0, 1] (:func:`stored_layout` says which).
    ``(N, F)`` feature vectors and ``(N, C, H, W)`` keep their shape; more axes are refused. ``key`` names the
    array in error messages (``where``: and its file).
    """
    x = np.asarray(x)
    at = f"'{key}'" + (f" in {where}" if where else "")
    if x.ndim < 2 or x.ndim > 4:
        one = " (one feature per sample? save x.reshape(-1, 1))" if x.ndim == 1 else ""
        raise ValueError(f"{at} has shape {x.shape}; expected features (N, F) or images (N, H, W), (N, C, H, W) or "
                         f"(N, H, W, C){one}")  # fmt: skip
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_) or np.iscomplexobj(x):
        raise ValueError(f"{at} must be numeric, got dtype {x.dtype}")
    raw = stored_layout(x)
    if x.ndim == 4 and (raw is None or not raw.layout) and x.shape[2] == 3 and min(x.shape[1], x.shape[3]) > 4:
        # (N, H, C, W): the channels in the middle, taken as (N, C, H, W) images of C = H channels C pixels high
        print(f"evonas: warning: {at} has samples of shape {x.shape[1:]}, taken as {x.shape[1]} channels of "
              f"{x.shape[2]}x{x.shape[3]} images; if its axis of {x.shape[2]} is the colour channels, save it as "
              f"(N, C, H, W) or (N, H, W, C) (x.transpose(0, 2, 1, 3) or x.transpose(0, 1, 3, 2))", file=sys.stderr)
    if raw is not None and raw.layout == "nhw":
        x = x[:, None]
    elif raw is not None and raw.layout == "nhwc":
        x = x.transpose(0, 3, 1, 2)
    with np.errstate(over="ignore", invalid="ignore"):  # values beyond float32 become inf: check_dataset says so
        out = np.ascontiguousarray(x, dtype=np.float32)
    if raw is not None and raw.dtype == "uint8":
        out /= 255.0
    return out


#: The most classes a dataset may have (``C`` = largest label + 1) unless the ``npz`` loader's
#: ``max_classes`` param raises it: one stray label 10**6 would otherwise build a 10**6-way output layer.
MAX_CLASSES = 10_000

#: elements per block when counting NaN / inf (bounds the temporary masks)
_BLOCK = 1 << 22

_PART_NAMES = {"train": "training", "val": "validation", "test": "test"}


def _listing(values: Iterable[int], total: int | None = None, *, limit: int = 8) -> str:
    """``3``, ``3, 7`` or ``3, 7, 8, ... (120 in all)``."""
    shown = [str(int(v)) for v in values][:limit]
    total = len(shown) if total is None else total
    more = f", ... ({total} in all)" if total > len(shown) else ""
    return ", ".join(shown) + more


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _rows(rows: np.ndarray) -> str:
    """``row 4`` or ``rows 4, 17`` or ``rows 0, 1, ... (200 in all)``."""
    return ("row " if len(rows) == 1 else "rows ") + _listing(rows, len(rows))


def _labels(
    y: np.ndarray, *, key: str, n: int, where: str | None = None, max_classes: int | None = None
) -> np.ndarray:
    """``y`` as int64 class indices, checked against ``n`` samples and (if given) ``max_classes``."""
    y = np.asarray(y)
    at = f"'{key}'" + (f" in {where}" if where else "")
    if y.ndim == 2 and y.shape[1] > 1:
        raise ValueError(f"{at} must be a 1-D array of class indices, got shape {y.shape} (one-hot rows? save "
                         "y.argmax(axis=1))")  # fmt: skip
    if y.ndim != 1:
        raise ValueError(f"{at} must be a 1-D array of class indices, got shape {y.shape} (save y.reshape(-1))")
    if len(y) != n:
        raise ValueError(f"{at} has {len(y)} labels but its inputs have {n} samples")
    if y.dtype.kind in "USO":
        raise ValueError(f"{at} holds class names (dtype {y.dtype}), not indices: save the indices of "
                         "np.unique(y, return_inverse=True)[1] (its [0] lists the names in their order)")  # fmt: skip
    if y.dtype == np.bool_:
        raise ValueError(f"{at} must hold integer class indices, got dtype bool: save y.astype(int) (False is class 0, "
                         "True class 1)")  # fmt: skip
    if not np.issubdtype(y.dtype, np.number) or np.iscomplexobj(y):
        raise ValueError(f"{at} must hold integer class indices, got dtype {y.dtype}")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError(f"{at} must hold integer class indices, got non-integer values")
    if len(y) and y.min() < 0:  # before the cast: a huge float or uint64 would wrap around
        raise ValueError(f"{at} must hold class indices >= 0, got {y.min().item()}")
    if max_classes is not None and len(y) and y.max() >= max_classes:
        rows = np.flatnonzero(y >= max_classes)
        top = int(y.max().item())
        raise ValueError(
            f"{at} has label {top} ({_rows(rows)} {'has' if len(rows) == 1 else 'have'} a label >= {max_classes}), "
            f"so the network would get {top + 1} output classes, over the sanity limit max_classes = {max_classes} "
            f"(default evonas.datasets.loaders.MAX_CLASSES); fix that label, or if you really have that many "
            f"classes raise the limit with the dataset param max_classes: {top + 1}"
        )
    return y.astype(np.int64)


#: what a NaN or inf in each split would do (the test split is read only by ``evonas export``)
_NAN_EFFECT = {
    "train": "so every evaluation would fail with a NaN loss",
    "val": "so every evaluation's validation score would be NaN or wrong",
    "test": "so the test score of evonas export would be NaN or wrong",
}


def _check_finite(x: np.ndarray, *, name: str, rows: bool = True, wide: bool = False, part: str = "train") -> None:
    """Refuse NaN / inf in ``x`` (one pass; counted block by block only when there are some).

    ``wide``: ``x`` was converted from float64, where values beyond float32's range became inf.
    """
    if x.dtype.kind not in "fc":
        return
    with np.errstate(invalid="ignore", over="ignore"):
        if np.isfinite(x.sum(dtype=np.float64 if x.dtype.kind == "f" else None)):
            return  # a float64 sum of float32 cannot overflow: it is finite iff every value is
    flat = x.reshape(len(x), -1)
    step = max(1, _BLOCK // max(1, flat.shape[1]))
    n_nan = n_inf = 0
    bad: list[np.ndarray] = []
    for start in range(0, len(flat), step):
        block = flat[start : start + step]
        nan, inf = np.isnan(block), np.isinf(block)
        n_nan += int(nan.sum())
        n_inf += int(inf.sum())
        bad.append(np.flatnonzero((nan | inf).any(axis=1)) + start)
    which = np.concatenate(bad)
    counts = " and ".join(c for c in (f"{n_nan} NaN" if n_nan else "", f"{n_inf} inf" if n_inf else "") if c)
    where_rows = f" ({_rows(which)})" if rows else ""
    beyond = " (counting float64 values beyond float32's +-3.4e38 as inf)" if n_inf and wide else ""
    raise ValueError(
        f"{name} holds {counts} {'value' if n_nan + n_inf == 1 else 'values'}{beyond} in "
        f"{_plural(len(which), 'sample')}{where_rows}, {_NAN_EFFECT[part]}; replace "
        "them (e.g. np.nan_to_num) or drop those samples before training"
    )


def check_dataset(
    ds: Dataset,
    *,
    where: str,
    keys: Mapping[str, tuple[str, str]] | None = None,
    max_classes: int | None = None,
) -> Dataset:
    """Refuse ``ds`` (after its split) if it would train silently wrong; returns it unchanged.

    Labels must be ``0..C-1`` (``C`` = ``ds.num_classes``, at most ``max_classes`` when given) with
    every class in the training split and at least two classes there; validation and test labels
    must be classes seen in training; features must be finite. Raises ``ValueError`` with one line
    that names ``where`` (the file or dataset), the array and the fix. ``keys`` maps ``train`` /
    ``val`` / ``test`` to the ``(x, y)`` array names in messages; default ``("x", "y")`` for all
    three, i.e. one pair split by evonas.
    """
    keys = dict(keys or {part: ("x", "y") for part in _PART_NAMES})
    split = keys["train"] == keys["val"]  # one (x, y) pair split here, not splits as given

    def shared(part: str, which: int) -> bool:  # this array was split here (its rows are not the file's)
        return sum(k[which] == keys[part][which] for k in keys.values()) > 1

    def name(part: str, which: int) -> str:
        key = keys[part][which]
        return f"the {_PART_NAMES[part]} split of '{key}' in {where}" if shared(part, which) else f"'{key}' in {where}"

    arrays = {"train": (ds.x_train, ds.y_train), "val": (ds.x_val, ds.y_val), "test": (ds.x_test, ds.y_test)}
    for part, (_, y) in arrays.items():  # a Dataset made by hand: labels as floats would be cut, or fail in training
        if not np.issubdtype(np.asarray(y).dtype, np.integer):
            raise ValueError(f"{name(part, 1)} holds labels of dtype {np.asarray(y).dtype}; they must be integer class "
                             "indices (np.int64)")  # fmt: skip
    n_classes = int(ds.num_classes)
    if max_classes is not None and n_classes > max_classes:
        raise ValueError(
            f"{where} has {n_classes} classes, over the sanity limit max_classes = {max_classes} "
            f"(default evonas.datasets.loaders.MAX_CLASSES); fix the labels, or if you really have that many "
            f"classes raise the limit with the dataset param max_classes: {n_classes}"
        )
    for part, (_, y) in arrays.items():
        if len(y) and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(
                f"{name(part, 1)} has label {int(y.max() if y.max() >= n_classes else y.min())} but the dataset has "
                f"{n_classes} classes (labels 0..{n_classes - 1}); fix the labels"
            )
    present = np.unique(ds.y_train)
    if len(present) < 2:
        names = ds.classes or ()
        named = f" ({names[int(present[0])]!r})" if len(present) and len(names) > int(present[0]) else ""
        only = f"only class {int(present[0])}{named}" if len(present) else "no labels"
        raise ValueError(
            f"{name('train', 1)} has {only} in {_plural(len(ds.y_train), 'sample')}; a classifier needs at least "
            "2 classes (with one it scores a meaningless 1.0 by always answering it); check the labels"
        )
    for part in ("val", "test"):
        y = arrays[part][1]
        unseen = np.setdiff1d(np.unique(y), present)
        if len(unseen):
            n = int(np.isin(y, unseen).sum())
            one = len(unseen) == 1
            them = "that class" if one else "those classes"
            fix = (
                f"give {them} more samples or lower val_fraction / test_fraction (each class needs a sample left "
                "for training), or fix those labels"
                if split
                else f"fix those labels or add training samples of {them}"
            )
            raise ValueError(
                f"{name(part, 1)} has {'class' if one else 'classes'} {_listing(unseen, len(unseen))} "
                f"({_plural(n, 'sample')}) that the training split never has, so the network cannot learn "
                f"{'it' if one else 'them'}; {fix}"
            )
    if len(present) < n_classes:  # present is sorted and within 0..C-1: list the gaps without allocating C
        bounds = np.concatenate([[-1], present, [n_classes]])
        missing: list[int] = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            missing.extend(range(int(lo) + 1, min(int(hi), int(lo) + 1 + 8)))
            if len(missing) >= 8:
                break
        n_missing = n_classes - len(present)
        raise ValueError(
            f"{'class' if n_missing == 1 else 'classes'} {_listing(missing, n_missing)} "
            f"{'has' if n_missing == 1 else 'have'} no sample in {name('train', 1)}; labels must be 0..C-1 "
            f"(here C = {n_classes}, from the largest label {n_classes - 1}) with every class in the training "
            "split: renumber the labels to 0..C-1"
        )
    for part, (x, _) in arrays.items():
        _check_finite(x, name=name(part, 0), rows=not shared(part, 0), part=part)
    return ds


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}")


def _check_nonempty(ds: Dataset, param: str) -> Dataset:
    if len(ds.y_train) == 0 or len(ds.y_val) == 0:
        raise ValueError(f"dataset '{ds.name}' is too small for its split ({ds!r}); increase {param}")
    return ds


# -- digits -------------------------------------------------------------------
@DATASETS.register("digits")
def load_digits(
    *, seed: int, val_fraction: float = 0.2, test_fraction: float = 0.2, standardize: Standardization = False
) -> Dataset:
    """scikit-learn's 8x8 handwritten digits as ``(1, 8, 8)`` float32 in [0, 1], 10 classes.

    ``standardize``: ``channels`` (or ``true``: each pixel) standardises with the training split's statistics.

    Args:
        val_fraction: the share of the samples in the validation split (what a search scores), per class.
        test_fraction: the share in the test split (never seen by the search; ``evonas export`` scores on it).
    """
    from sklearn.datasets import load_digits as _sk_digits

    _check_fractions(val_fraction, test_fraction)
    standardize = _standardization(standardize)
    data = _sk_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]
    ds = split_arrays(
        "digits", x, data.target, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, num_classes=10
    )
    return _standardized(check_dataset(ds, where="dataset 'digits'"), standardize)


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
    standardize: Standardization = False,
) -> Dataset:
    """Learnable generated data: one random pattern per class plus Gaussian ``noise``.

    The patterns and samples come from ``data_seed`` (default: ``seed``), the split from
    ``seed``; classes are balanced. ``shape`` is one sample's shape, e.g. ``[1, 8, 8]`` or ``[16]``.
    ``standardize``: standardise each feature with the training split's statistics (see the module).

    Args:
        val_fraction: the share of the samples in the validation split (what a search scores), per class.
        test_fraction: the share in the test split (never seen by the search; ``evonas export`` scores on it).
    """
    _check_fractions(val_fraction, test_fraction)
    standardize = _standardization(standardize)
    num_classes = check_int("num_classes", num_classes, 2)
    n_samples = check_int("n_samples", n_samples, 2 * num_classes)
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence) or not shape:
        raise ValueError(f"shape must be a non-empty list of positive integers, got {shape!r}")
    shape = tuple(check_int("shape", s, 1) for s in shape)
    check_number("noise", noise, minimum=0)
    rng = np.random.default_rng(seed if data_seed is None else data_seed)
    patterns = rng.standard_normal((num_classes, *shape))
    y = np.arange(n_samples) % num_classes
    rng.shuffle(y)
    x = patterns[y] + noise * rng.standard_normal((n_samples, *shape))
    ds = split_arrays(
        "synthetic", x, y, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, num_classes=num_classes
    )
    ds = check_dataset(_check_nonempty(ds, "n_samples"), where="dataset 'synthetic'")
    return _standardized(ds, standardize)


# -- npz ----------------------------------------------------------------------
def _bytes(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.3g} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"  # pragma: no cover


#: deflate's largest possible expansion is about 1032:1; an entry that claims more is damaged or forged
_MAX_DEFLATE_RATIO = 1100


def _npz_headers(zf: zipfile.ZipFile, file: Path, where: str) -> dict[str, tuple[zipfile.ZipInfo, tuple, np.dtype]]:
    """``key -> (entry, shape, dtype)`` from each ``.npy`` header, checked before anything is allocated.

    Refuses object arrays (evonas never unpickles), malformed headers, and shapes that need more
    bytes than the entry holds, and entries whose sizes cannot be true for this file.
    """
    fmt = np.lib.format
    fix = "save the arrays again with np.savez(path, x=..., y=...)"
    file_size = file.stat().st_size
    out: dict[str, tuple[zipfile.ZipInfo, tuple, np.dtype]] = {}
    for info in zf.infolist():
        if not info.filename.endswith(".npy"):
            continue
        key = info.filename[: -len(".npy")]
        at = f"'{key}' in {where}"
        if info.compress_size > file_size or (
            info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size
        ) or (
            info.compress_type == zipfile.ZIP_DEFLATED
            and info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 4096
        ):
            raise ValueError(
                f"{at} claims {_bytes(info.file_size)} uncompressed from {_bytes(info.compress_size)} stored in a "
                f"{_bytes(file_size)} file, which cannot be true: the file is damaged or forged; {fix}"
            )
        with zf.open(info) as f:
            try:
                version = fmt.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = fmt.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, _, dtype = fmt.read_array_header_2_0(f)
                else:
                    raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
            except (ValueError, EOFError) as exc:  # numpy's own reasons can span lines; keep the first
                reason = (str(exc).splitlines() or [type(exc).__name__])[0]
                raise ValueError(f"{at} has an unreadable .npy header ({reason}); {fix}") from None
            header = f.tell()
        if any(d < 0 for d in shape):
            raise ValueError(f"{at} has a malformed .npy header (shape {shape}); {fix}")
        if dtype.hasobject:
            example = "int64" if key.lower().startswith("y") else "float32"
            raise ValueError(
                f"{at} holds Python objects (dtype {dtype}); evonas loads numeric arrays only and never "
                f"unpickles: save it as a numeric array, e.g. np.asarray({key}, dtype=np.{example})"
            )
        need = math.prod(shape) * dtype.itemsize
        have = max(0, info.file_size - header)
        if need > have:
            raise ValueError(
                f"{at} declares shape {shape} of {dtype} ({_bytes(need)}) but holds only {_bytes(have)} of data: "
                f"the file is truncated or its header is damaged or forged; {fix}"
            )
        out[key] = (info, shape, dtype)
    return out


def _read_npz(file: Path, where: str) -> tuple[zipfile.ZipFile, dict[str, tuple[zipfile.ZipInfo, tuple, np.dtype]]]:
    with open(file, "rb") as fh:
        magic = fh.read(6)
    if magic == b"\x93NUMPY":
        raise ValueError(
            f"{where} is a single .npy array, not an .npz archive; save the arrays with np.savez(path, x=..., y=...)"
        )
    if not zipfile.is_zipfile(file):
        raise ValueError(
            f"cannot read {where} as an .npz of numeric arrays: it is not a zip archive; "
            "save the arrays with np.savez(path, x=..., y=...)"
        )
    try:
        zf = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"cannot read {where} as an .npz of numeric arrays: {exc}") from None
    try:
        return zf, _npz_headers(zf, file, where)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as exc:
        zf.close()
        raise ValueError(f"cannot read {where} as an .npz of numeric arrays: the archive is damaged ({exc})") from None
    except BaseException:
        zf.close()
        raise


_SPLIT_KEYS = ("x_train", "y_train", "x_val", "y_val")
_NPZ_KEYS = ("x", "y", *_SPLIT_KEYS, "x_test", "y_test")


def _npz_keys(found: Iterable[str], where: str) -> dict[str, str]:
    """The file's own name of each key evonas reads, matched case-insensitively (``X`` for ``x``).

    Two keys that differ only in case (``x`` and ``X``) are refused: which one is meant is a guess.
    """
    by_lower: dict[str, list[str]] = {}
    for key in found:
        by_lower.setdefault(key.lower(), []).append(key)
    out: dict[str, str] = {}
    for name in _NPZ_KEYS:
        same = sorted(by_lower.get(name, []))
        if len(same) > 1:
            raise ValueError(
                f"{where} has keys {' and '.join(repr(k) for k in same)}, which evonas reads as the same key "
                f"'{name}' (keys are matched in any case); keep only one of them"
            )
        if same:
            out[name] = same[0]
    return out


@DATASETS.register("npz")
def load_npz(
    *,
    seed: int,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    path: str | os.PathLike | None = None,
    max_classes: int = MAX_CLASSES,
    standardize: Standardization = False,
) -> Dataset:
    """Your arrays from the ``.npz`` file at ``path``.

    Either keys ``x``, ``y`` (split here, seeded and stratified), ``x``, ``y`` with ``x_test``, ``y_test`` (or
    ``x_train``, ``y_train``, ``x_test``, ``y_test``: the test split as given, the validation split drawn from the
    rest), or ``x_train``, ``y_train``, ``x_val``, ``y_val`` and optionally ``x_test``, ``y_test`` (used as given;
    the fractions are then ignored); keys match in any case (``X``, ``y`` as scikit-learn names them; both
    ``x`` and ``X`` in one file is refused). Images ``(N, H, W)`` / ``(N, H, W, C)`` become
    ``(N, C, H, W)``; uint8 is scaled to [0, 1]. Labels must be ``0..C-1`` with ``C`` at most
    ``max_classes`` (default :data:`MAX_CLASSES`); see :func:`check_dataset` for what else is
    refused. ``standardize: true`` standardises each feature with the mean and standard deviation
    of the training split only (kept as the dataset's ``transform``).

    Args:
        val_fraction: the share of the samples in the validation split (what a search scores), per class.
        test_fraction: the share in the test split (never seen by the search; ``evonas export`` scores on it); with ``x``, ``y`` and no ``x_test`` only.
    """
    if path is None or not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"dataset 'npz' needs path= (a .npz file), got {path!r}")
    max_classes = check_int("max_classes", max_classes, 2)
    standardize = _standardization(standardize)
    file = Path(path).expanduser()
    if file.is_dir():
        raise FileNotFoundError(f"npz dataset: {str(file)!r} is a folder, not a file; name the .npz file in it")
    if not file.is_file():
        raise FileNotFoundError(f"npz dataset file not found: {str(file)!r}")
    where = repr(str(file))
    zf, headers = _read_npz(file, where)
    with zf:
        named = _npz_keys(headers, where)  # evonas's name -> the file's
        if ("x_test" in named) != ("y_test" in named):
            missing = "y_test" if "x_test" in named else "x_test"
            raise ValueError(f"{where} has only one of 'x_test' / 'y_test'; missing key '{missing}'")
        if "x" not in named and "x_train" in named and "x_test" in named and not {"x_val", "y_val"} & set(named):
            # a training and a test split (scikit-learn's train_test_split): the validation split is drawn from the
            # training one, as from 'x', 'y'
            named["x"], named["y"] = named.pop("x_train"), named.pop("y_train", "y_train")
            if named["y"] not in headers:
                raise ValueError(f"{where} has key '{named['x']}' but no key 'y_train' (its keys: "
                                 f"{', '.join(map(repr, sorted(headers)))})")  # fmt: skip
        if "x" in named:
            if "y" not in named:
                raise ValueError(f"{where} has key '{named['x']}' but no key 'y' (the labels)")
            both = [named[k] for k in _SPLIT_KEYS if k in named]
            if both:  # which rows are the search's would be a guess: neither set is dropped
                raise ValueError(f"{where} has keys '{named['x']}', '{named['y']}' and also {', '.join(map(repr, both))}: "
                                 "evonas reads either 'x', 'y' (split here by val_fraction and test_fraction; with "
                                 "'x_test', 'y_test' beside them, by val_fraction only) or 'x_train', 'y_train', "
                                 "'x_val', 'y_val' and optionally 'x_test', 'y_test' (your own splits); save one of "
                                 "the two sets")  # fmt: skip
            test_given = "x_test" in named
            _check_fractions(val_fraction, 0.0 if test_given else test_fraction)
            if test_given and isinstance(test_fraction, (int, float)) and test_fraction != 0.2:
                print(f"evonas: {where} gives its own test split, so test_fraction={test_fraction:g} has no effect",
                      file=sys.stderr)  # fmt: skip
            wanted: tuple[str, ...] = ("x", "y", "x_test", "y_test") if test_given else ("x", "y")
        else:
            if "x_train" not in named:
                raise ValueError(
                    f"{where} must hold keys 'x' and 'y', or 'x_train', 'y_train', 'x_val', 'y_val' "
                    f"(and optionally 'x_test', 'y_test'), in any case (e.g. 'X', 'y'); found {sorted(headers)}"
                )
            for key in _SPLIT_KEYS:
                if key not in named:
                    raise ValueError(f"{where} has key '{named['x_train']}' but no key '{key}' (its keys: "
                                     f"{', '.join(map(repr, sorted(headers)))})")  # fmt: skip
            wanted = tuple(k for k in (*_SPLIT_KEYS, "x_test", "y_test") if k in named)
            unused = [f"{k}={v:g}" for k, v, d in (("val_fraction", val_fraction, 0.2), ("test_fraction", test_fraction, 0.2))
                      if isinstance(v, (int, float)) and v != d]  # fmt: skip
            if unused:  # the file's splits are used as given: a fraction the user set does nothing, and is said
                print(f"evonas: {where} gives its own splits, so {' and '.join(unused)} has no effect", file=sys.stderr)
        arrays: dict[str, np.ndarray] = {}
        for key in wanted:
            try:
                with zf.open(headers[named[key]][0]) as f:
                    arrays[key] = np.lib.format.read_array(f, allow_pickle=False)
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                reason = (str(exc).splitlines() or [type(exc).__name__])[0]
                fix = "save the arrays again with np.savez"
                raise ValueError(f"cannot read '{named[key]}' from {where}: {reason}; {fix}") from None
    empty = next((k for k, a in arrays.items() if a.ndim == 0 or len(a) == 0), None)
    if empty is not None:
        raise ValueError(f"'{named[empty]}' in {where} holds no samples (shape {arrays[empty].shape}); expected its first "
                         "axis to count the samples")  # fmt: skip
    name = f"npz:{file.name}"
    if "x" in arrays:
        kx, ky = named["x"], named["y"]
        wide = arrays["x"].dtype.itemsize > 4 and arrays["x"].dtype.kind == "f"
        raw = stored_layout(arrays["x"])
        x = to_nchw(arrays.pop("x"), key=kx, where=where)
        y = _labels(arrays.pop("y"), key=ky, n=len(x), where=where, max_classes=max_classes)
        _check_finite(x, name=f"'{kx}' in {where}", wide=wide)
        _say_unscaled(x, raw, kx, where, standardize)
        keys = {part: (kx, ky) for part in _PART_NAMES}
        if "x_test" not in arrays:
            ds = split_arrays(name, x, y, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
        else:  # the file's test split as given; the validation split drawn from 'x', 'y'
            keys["test"] = (named["x_test"], named["y_test"])
            wide = arrays["x_test"].dtype.itemsize > 4 and arrays["x_test"].dtype.kind == "f"
            x_te = to_nchw(arrays.pop("x_test"), key=keys["test"][0], where=where)
            y_te = _labels(arrays.pop("y_test"), key=keys["test"][1], n=len(x_te), where=where, max_classes=max_classes)
            _check_finite(x_te, name=f"'{keys['test'][0]}' in {where}", wide=wide, part="test")
            if x_te.shape[1:] != x.shape[1:]:
                raise ValueError(f"'{keys['test'][0]}' has samples of shape {x_te.shape[1:]} but '{kx}' has {x.shape[1:]}")
            classes = max(int(y.max()) + 1, int(y_te.max()) + 1)
            ds = split_arrays(name, x, y, seed=seed, val_fraction=val_fraction, test_fraction=0.0, num_classes=classes)
            assert ds.split_rows is not None
            ds = dataclasses.replace(ds, x_test=x_te, y_test=y_te,
                                     split_rows={**ds.split_rows, "test": np.arange(len(y_te))})  # fmt: skip
        ds = check_dataset(
            _check_nonempty(ds, f"the number of samples in '{kx}'"), where=where, max_classes=max_classes, keys=keys,
        )  # fmt: skip
        say_thin_splits(ds, where, f"key {ky!r}", "sample")
        return _standardized(dataclasses.replace(ds, raw_input=raw), standardize)
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for part in ("train", "val", "test"):
        if f"x_{part}" not in arrays:
            continue
        kx, ky = named[f"x_{part}"], named[f"y_{part}"]
        wide = arrays[f"x_{part}"].dtype.itemsize > 4 and arrays[f"x_{part}"].dtype.kind == "f"
        if part == "train":  # the splits' layout is the training split's (their sample shapes are checked equal)
            raw = stored_layout(arrays["x_train"])
        x = to_nchw(arrays.pop(f"x_{part}"), key=kx, where=where)
        y = _labels(arrays.pop(f"y_{part}"), key=ky, n=len(x), where=where, max_classes=max_classes)
        _check_finite(x, name=f"'{kx}' in {where}", wide=wide, part=part)
        if part == "train":
            _say_unscaled(x, raw, kx, where, standardize)
        parts[part] = (x, y)
    shape = parts["train"][0].shape[1:]
    for part, (x, _) in parts.items():
        if x.shape[1:] != shape:
            raise ValueError(f"'{named[f'x_{part}']}' has samples of shape {x.shape[1:]} but '{named['x_train']}' has {shape}")
        if len(x) == 0 and part != "test":
            raise ValueError(f"'{named[f'x_{part}']}' is empty")
    if "test" not in parts:
        parts["test"] = (np.empty((0, *shape), np.float32), np.empty(0, np.int64))
    num_classes = max(int(y.max()) + 1 for _, y in parts.values() if len(y))
    ds = Dataset(
        name=name,
        x_train=parts["train"][0],
        y_train=parts["train"][1],
        x_val=parts["val"][0],
        y_val=parts["val"][1],
        x_test=parts["test"][0],
        y_test=parts["test"][1],
        num_classes=num_classes,
        raw_input=raw,
    )
    keys_ = {part: (named.get(f"x_{part}", f"x_{part}"), named.get(f"y_{part}", f"y_{part}")) for part in _PART_NAMES}
    ds = check_dataset(ds, where=where, keys=keys_, max_classes=max_classes)
    say_thin_splits(ds, where, f"key {named['y_val']!r}", "sample", "the file's own validation split has none")
    return _standardized(ds, standardize)


def say_thin_splits(ds: Dataset, where: str, label: str, unit: str, hint: str = "a label with a typo? too rare for val_fraction?") -> None:
    """Warn (stderr) about what a split leaves unscored: classes with no sample in the validation split (a label
    with a typo, a class too rare for ``val_fraction``), and a validation split so small that ``val_acc`` jumps.
    ``label``: what holds the labels (``"label 'species'"``); ``unit``: what a sample is called (``row``)."""
    classes = ds.classes or tuple(str(c) for c in range(ds.num_classes))
    counts = np.bincount(np.concatenate([ds.y_train, ds.y_val, ds.y_test]), minlength=ds.num_classes)
    unscored = [c for c in range(ds.num_classes) if counts[c] and not (ds.y_val == c).any()]
    if unscored:
        shown = ", ".join(f"{classes[c]!r} ({counts[c]} {unit}{'s' if counts[c] != 1 else ''})" for c in unscored[:5])
        more = f" and {len(unscored) - 5} more" if len(unscored) > 5 else ""
        many = len(unscored) > 1
        print(f"evonas: warning: {where}: {label}: {'classes' if many else 'class'} {shown}{more} "
              f"{'have' if many else 'has'} no {unit} in the validation split, so the search never scores "
              f"{'them' if many else 'it'} ({hint})", file=sys.stderr)
    if 0 < len(ds.y_val) < 30:
        print(f"evonas: warning: {where}: the validation split has {len(ds.y_val)} {unit}s, so val_acc moves in steps "
              f"of {1 / len(ds.y_val):.2g}: small differences between networks are chance", file=sys.stderr)  # fmt: skip


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


def _load_vision(
    name: str, *, seed: int, val_fraction: float, root: str | os.PathLike, standardize: Standardization
) -> Dataset:
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
    raw = stored_layout(x_tr)
    x_tr, x_te = to_nchw(x_tr, key="train images"), to_nchw(x_te, key="test images")
    y_tr, y_te = _labels(y_tr, key="train labels", n=len(x_tr)), _labels(y_te, key="test labels", n=len(x_te))
    ds = split_arrays(name, x_tr, y_tr, seed=seed, val_fraction=val_fraction, test_fraction=0.0, num_classes=10)
    assert ds.split_rows is not None
    rows = {"train": ds.split_rows["train"], "val": ds.split_rows["val"]}  # of the training set; the test set's own
    ds = dataclasses.replace(ds, x_test=x_te, y_test=y_te, raw_input=raw, split_rows={**rows, "test": np.arange(len(y_te))})
    keys = {"train": ("train images", "train labels"), "val": ("train images", "train labels")}
    keys["test"] = ("test images", "test labels")
    return _standardized(check_dataset(ds, where=f"dataset '{name}' ({str(folder)!r})", keys=keys), standardize)


@DATASETS.register("mnist")
def load_mnist(
    *, seed: int, val_fraction: float = 0.2, test_fraction: float = 0.2, root: str | os.PathLike = "data",
    standardize: Standardization = False,
) -> Dataset:
    """torchvision's MNIST from ``root`` as ``(1, 28, 28)``; the official test set is the test split.

    Args:
        val_fraction: the share of the official training set held out, per class, as the validation split.
        test_fraction: not used: the official test set is the test split.
        standardize: ``channels`` (each channel: torchvision's ``Normalize``), ``true`` (each pixel) or ``false``.
    """
    return _load_vision("mnist", seed=seed, val_fraction=val_fraction, root=root, standardize=_standardization(standardize))


@DATASETS.register("fashion_mnist")
def load_fashion_mnist(
    *, seed: int, val_fraction: float = 0.2, test_fraction: float = 0.2, root: str | os.PathLike = "data",
    standardize: Standardization = False,
) -> Dataset:
    """torchvision's Fashion-MNIST from ``root`` as ``(1, 28, 28)``; the official test set is the test split.

    Args:
        val_fraction: the share of the official training set held out, per class, as the validation split.
        test_fraction: not used: the official test set is the test split.
        standardize: ``channels`` (each channel: torchvision's ``Normalize``), ``true`` (each pixel) or ``false``.
    """
    return _load_vision("fashion_mnist", seed=seed, val_fraction=val_fraction, root=root, standardize=_standardization(standardize))


@DATASETS.register("cifar10")
def load_cifar10(
    *, seed: int, val_fraction: float = 0.2, test_fraction: float = 0.2, root: str | os.PathLike = "data",
    standardize: Standardization = False,
) -> Dataset:
    """torchvision's CIFAR-10 from ``root`` as ``(3, 32, 32)``; the official test set is the test split.

    Args:
        val_fraction: the share of the official training set held out, per class, as the validation split.
        test_fraction: not used: the official test set is the test split.
        standardize: ``channels`` (each channel: torchvision's ``Normalize``), ``true`` (each pixel) or ``false``.
    """
    return _load_vision("cifar10", seed=seed, val_fraction=val_fraction, root=root, standardize=_standardization(standardize))
