"""Dataset loaders: shapes, dtypes, seeded stratified splits, npz layouts, torchvision error paths."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from evonas.datasets import DATASETS, Dataset, load_dataset
from evonas.datasets.loaders import to_nchw


def _sizes(ds: Dataset) -> tuple[int, int, int]:
    return len(ds.y_train), len(ds.y_val), len(ds.y_test)


def _same(a: Dataset, b: Dataset) -> bool:
    return all(
        np.array_equal(getattr(a, k), getattr(b, k))
        for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
    )


def test_all_loaders_registered() -> None:
    assert {"digits", "synthetic", "npz", "csv", "mnist", "fashion_mnist", "cifar10"} <= set(DATASETS.list())


# -- digits -------------------------------------------------------------------
def test_digits_shapes_dtypes_and_split() -> None:
    ds = load_dataset("digits", seed=0)
    assert ds.input_shape == (1, 8, 8)
    assert ds.num_classes == 10
    assert sum(_sizes(ds)) == 1797
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape[1:] == (1, 8, 8) and len(x) == len(y)
        assert 0.0 <= x.min() and x.max() <= 1.0
    n_train, n_val, n_test = _sizes(ds)
    assert abs(n_val - 0.2 * 1797) <= 10 and abs(n_test - 0.2 * 1797) <= 10


def test_digits_split_is_stratified() -> None:
    ds = load_dataset("digits", seed=3, val_fraction=0.25, test_fraction=0.1)
    all_y = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
    for cls in range(10):
        count = int((all_y == cls).sum())
        assert int((ds.y_val == cls).sum()) == round(count * 0.25)
        assert int((ds.y_test == cls).sum()) == round(count * 0.1)


def test_split_rows_give_each_split_s_samples_in_the_loaded_set() -> None:
    from sklearn.datasets import load_digits

    d = load_digits()
    ds = load_dataset("digits", seed=2, standardize=True)
    rows = ds.split_rows
    assert rows is not None and sorted(np.concatenate([rows["train"], rows["val"], rows["test"]]).tolist()) == list(range(1797))
    for part in ("train", "val", "test"):
        x, y = getattr(ds, f"x_{part}"), getattr(ds, f"y_{part}")
        np.testing.assert_array_equal(y, d.target[rows[part]])
        np.testing.assert_allclose(ds.as_stored(x).reshape(len(x), -1), d.data[rows[part]] / 16.0, atol=1e-5)


def test_digits_deterministic_in_seed() -> None:
    a, b, c = (load_dataset("digits", seed=s) for s in (1, 1, 2))
    assert _same(a, b)
    assert not _same(a, c)


def test_digits_bad_fractions() -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset("digits", seed=0, val_fraction=0.0)
    with pytest.raises(ValueError, match="test_fraction"):
        load_dataset("digits", seed=0, test_fraction=-0.1)
    with pytest.raises(ValueError, match="sum|val_fraction \\+ test_fraction"):
        load_dataset("digits", seed=0, val_fraction=0.6, test_fraction=0.5)


# -- synthetic ----------------------------------------------------------------
@pytest.mark.parametrize("shape", [[1, 8, 8], [16], (3, 4, 4)])
def test_synthetic_shapes(shape: list[int]) -> None:
    ds = load_dataset("synthetic", seed=0, n_samples=300, num_classes=3, shape=shape)
    assert ds.input_shape == tuple(shape)
    assert ds.num_classes == 3
    assert sum(_sizes(ds)) == 300
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert set(np.unique(ds.y_val)) == {0, 1, 2}
    assert _sizes(ds) == (180, 60, 60)  # balanced classes -> exact stratified sizes


def test_synthetic_deterministic_and_seeded() -> None:
    a = load_dataset("synthetic", seed=5, n_samples=200)
    b = load_dataset("synthetic", seed=5, n_samples=200)
    c = load_dataset("synthetic", seed=6, n_samples=200)
    assert _same(a, b)
    assert not _same(a, c)
    # data_seed fixes the problem while seed changes only the split
    d = load_dataset("synthetic", seed=5, n_samples=200, data_seed=0)
    e = load_dataset("synthetic", seed=6, n_samples=200, data_seed=0)
    rows = lambda ds: {r.tobytes() for r in np.concatenate([ds.x_train, ds.x_val, ds.x_test])}  # noqa: E731
    assert rows(d) == rows(e) and not _same(d, e)


def test_synthetic_is_learnable() -> None:
    ds = load_dataset("synthetic", seed=0, n_samples=400, num_classes=4, shape=[16])
    centroids = np.stack([ds.x_train[ds.y_train == k].mean(0) for k in range(4)])
    dist = ((ds.x_val[:, None, :] - centroids[None]) ** 2).sum(-1)
    assert (dist.argmin(1) == ds.y_val).mean() > 0.9


@pytest.mark.parametrize(
    "params, name",
    [
        ({"n_samples": 3}, "n_samples"),
        ({"num_classes": 1}, "num_classes"),
        ({"num_classes": 2.5}, "num_classes"),
        ({"shape": "8x8"}, "shape"),
        ({"shape": [1, 0, 8]}, "shape"),
        ({"shape": []}, "shape"),
        ({"noise": -1.0}, "noise"),
    ],
)
def test_synthetic_bad_params(params: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        load_dataset("synthetic", seed=0, **params)


# -- to_nchw ------------------------------------------------------------------
def test_to_nchw_conversions() -> None:
    gray = np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5)
    out = to_nchw(gray)
    assert out.shape == (2, 1, 4, 5) and out.dtype == np.float32
    assert np.allclose(out[:, 0], gray / 255.0)
    rgb = np.random.default_rng(0).integers(0, 256, (3, 6, 7, 3), dtype=np.uint8)
    out = to_nchw(rgb)
    assert out.shape == (3, 3, 6, 7)
    assert np.allclose(out[1, 2, 4, 5], rgb[1, 4, 5, 2] / 255.0)
    first = np.ones((2, 3, 6, 6), np.float64) * 7
    assert to_nchw(first).shape == (2, 3, 6, 6) and to_nchw(first).max() == 7  # floats are not rescaled
    assert to_nchw(np.zeros((5, 16), np.float64)).shape == (5, 16)
    with pytest.raises(ValueError, match="'xx'"):
        to_nchw(np.zeros(5), key="xx")
    with pytest.raises(ValueError, match="numeric"):
        to_nchw(np.array([["a"], ["b"]]))


# -- npz ----------------------------------------------------------------------
def test_npz_single_array_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (100, 6, 6), dtype=np.uint8)
    y = np.repeat(np.arange(4), 25)
    path = tmp_path / "data.npz"
    np.savez(path, x=x, y=y)
    ds = load_dataset("npz", seed=0, path=str(path))
    assert ds.input_shape == (1, 6, 6) and ds.num_classes == 4
    assert _sizes(ds) == (60, 20, 20)
    assert ds.x_train.dtype == np.float32 and 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    assert all(int((ds.y_val == k).sum()) == 5 for k in range(4))
    assert _same(ds, load_dataset("npz", seed=0, path=path))
    assert not _same(ds, load_dataset("npz", seed=1, path=path))


def test_npz_given_splits_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.random((30, 5, 5, 3)).astype(np.float32),
        "y_train": np.arange(30) % 3,
        "x_val": rng.random((9, 5, 5, 3)).astype(np.float32),
        "y_val": np.arange(9) % 3,
    }
    path = tmp_path / "splits.npz"
    np.savez(path, **arrays)
    ds = load_dataset("npz", seed=0, path=path)
    assert ds.input_shape == (3, 5, 5) and ds.num_classes == 3
    assert np.allclose(ds.x_train, arrays["x_train"].transpose(0, 3, 1, 2))
    assert np.array_equal(ds.y_val, arrays["y_val"])
    assert ds.x_test.shape == (0, 3, 5, 5) and ds.y_test.shape == (0,)
    np.savez(path, **arrays, x_test=rng.random((4, 5, 5, 3)), y_test=np.array([0, 1, 2, 1]))
    ds = load_dataset("npz", seed=7, path=path)
    assert _sizes(ds) == (30, 9, 4) and ds.num_classes == 3
    assert np.array_equal(ds.y_train, arrays["y_train"])  # used as given, not re-split
    np.savez(path, **arrays, x_test=rng.random((4, 5, 5, 3)), y_test=np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="'y_test' .* has class 3 .* that the training split never has"):
        load_dataset("npz", seed=7, path=path)  # a test class never seen in training is refused


def test_npz_warns_of_what_its_validation_split_leaves_unscored(tmp_path: Path, capsys) -> None:
    """As for csv: a class with no sample in the validation split, and a validation split too small to rank on."""
    rng = np.random.default_rng(2)
    y = np.r_[np.repeat([0, 1], 100), 2]  # class 2: one sample, which the stratified split puts in training
    np.savez(tmp_path / "one.npz", X=rng.random((201, 4, 4)).astype(np.float32), Y=y)
    load_dataset("npz", seed=0, path=tmp_path / "one.npz")
    err = capsys.readouterr().err
    assert "key 'Y': class '2' (1 sample) has no sample in the validation split, so the search never scores it" in err
    assert "moves in steps" not in err
    arrays = {"x_train": rng.random((30, 5, 5)), "y_train": np.arange(30) % 3, "x_val": rng.random((9, 5, 5)),
              "y_val": np.arange(9) % 2}  # fmt: skip
    np.savez(tmp_path / "splits.npz", **arrays)
    load_dataset("npz", seed=0, path=tmp_path / "splits.npz")
    err = capsys.readouterr().err
    assert "key 'y_val': class '2' (10 samples) has no sample in the validation split" in err, err
    assert "(the file's own validation split has none)" in err
    assert "the validation split has 9 samples, so val_acc moves in steps of 0.11" in err
    np.savez(tmp_path / "enough.npz", x=rng.random((200, 4, 4)), y=np.arange(200) % 4)
    load_dataset("npz", seed=0, path=tmp_path / "enough.npz")
    assert "warning" not in capsys.readouterr().err


def test_colour_images_with_the_channels_in_the_middle_are_said(tmp_path: Path, capsys) -> None:
    """(N, H, 3, W) is no layout evonas moves: taken as H channels of 3-pixel-high images, said in a line."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (200, 8, 3, 8), dtype=np.uint8)
    np.savez(tmp_path / "mid.npz", x=x, y=np.arange(200) % 4)
    assert load_dataset("npz", seed=0, path=tmp_path / "mid.npz").input_shape == (8, 3, 8)
    assert (f"evonas: warning: 'x' in '{tmp_path / 'mid.npz'}' has samples of shape (8, 3, 8), taken as 8 channels "
            "of 3x8 images; if its axis of 3 is the colour channels") in capsys.readouterr().err
    for ok in (x.transpose(0, 2, 1, 3), x.transpose(0, 1, 3, 2), rng.random((200, 16, 1, 16)).astype(np.float32)):
        np.savez(tmp_path / "ok.npz", x=ok, y=np.arange(200) % 4)
        load_dataset("npz", seed=0, path=tmp_path / "ok.npz")
        assert capsys.readouterr().err == "", ok.shape


def test_npz_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_dataset("npz", seed=0, path=path)
    with pytest.raises(ValueError, match="path"):
        load_dataset("npz", seed=0)


@pytest.mark.parametrize(
    "arrays, key",
    [
        ({"features": np.zeros((4, 2))}, "x_train"),
        ({"x": np.zeros((10, 2))}, "'y'"),
        ({"x_train": np.zeros((10, 2)), "y_train": np.zeros(10), "x_val": np.zeros((4, 2))}, "y_val"),
        ({"x": np.zeros((10, 2)), "y": np.zeros(9)}, "'y'"),
        ({"x": np.zeros((10, 2)), "y": np.zeros((10, 2))}, "'y'"),
        ({"x": np.zeros((10, 2)), "y": np.full(10, 0.5)}, "'y'"),
        ({"x": np.zeros((10, 2)), "y": -np.ones(10)}, "'y'"),
        ({"x": np.zeros(10), "y": np.zeros(10)}, "'x'"),
        (
            {"x_train": np.zeros((10, 2)), "y_train": np.zeros(10), "x_val": np.zeros((4, 3)), "y_val": np.zeros(4)},
            "x_val",
        ),
        (
            {"x_train": np.zeros((10, 2)), "y_train": np.zeros(10), "x_val": np.zeros((4, 2)), "y_val": np.zeros(3)},
            "y_val",
        ),
        (
            {"x_train": np.zeros((10, 2)), "y_train": np.zeros(10), "x_val": np.zeros((4, 2)), "y_val": np.zeros(4),
             "x_test": np.zeros((2, 2))},
            "y_test",
        ),
    ],
)
def test_npz_bad_contents(tmp_path: Path, arrays: dict, key: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=key):
        load_dataset("npz", seed=0, path=path)


@pytest.mark.parametrize(
    "arrays, expected",
    [
        ({"x": np.zeros((10, 2)), "y": np.zeros(10), "x_train": np.zeros((4, 2)), "y_train": np.zeros(4)},
         "has keys 'x', 'y' and also 'x_train', 'y_train': evonas reads either 'x', 'y' (split here by val_fraction and "
         "test_fraction; with 'x_test', 'y_test' beside them, by val_fraction only) or 'x_train', 'y_train', 'x_val', "
         "'y_val' and optionally 'x_test', 'y_test'"),
        ({"x": np.zeros((10, 2)), "y": np.zeros(10), "x_test": np.zeros((4, 3)), "y_test": np.zeros(4)},
         "'x_test' has samples of shape (3,) but 'x' has (2,)"),
        ({"X": np.zeros((10, 2)), "y": np.zeros(10), "x_val": np.zeros((4, 2))}, "has keys 'X', 'y' and also 'x_val':"),
        ({"x": np.zeros((10, 2)), "y": np.zeros(10, bool)}, "got dtype bool: save y.astype(int)"),
        ({"x": np.zeros(10), "y": np.zeros(10)}, "one feature per sample? save x.reshape(-1, 1)"),
        ({"x_train": np.zeros((10, 2)), "y_train": np.zeros(10), "x_valid": np.zeros((4, 2)), "y_valid": np.zeros(4)},
         "has key 'x_train' but no key 'x_val' (its keys: 'x_train', 'x_valid', 'y_train', 'y_valid')"),
    ],
)
def test_npz_mixed_or_mistyped_keys_are_one_line_with_the_fix(tmp_path: Path, arrays: dict, expected: str) -> None:
    """A file with both ``x``/``y`` and split keys had its split keys ignored (the test rows never used)."""
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError) as refused:
        load_dataset("npz", seed=0, path=tmp_path / "bad.npz")
    assert expected in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("train", [("x", "y"), ("X_train", "y_train")])
def test_npz_with_its_own_test_split_draws_the_validation_split_from_the_rest(tmp_path: Path, train, capsys) -> None:
    """``x``, ``y`` (or scikit-learn's ``X_train``, ``y_train`` with no validation keys) beside ``x_test``, ``y_test``:
    the test rows are used as given, the validation split is drawn from the others by ``val_fraction``."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 3)), np.arange(50) % 2
    x_te, y_te = rng.normal(size=(7, 3)) + 100, np.arange(7) % 2
    np.savez(tmp_path / "d.npz", **{train[0]: x, train[1]: y}, X_test=x_te, y_test=y_te)
    ds = load_dataset("npz", seed=0, path=tmp_path / "d.npz", val_fraction=0.2, test_fraction=0.3)
    assert np.allclose(ds.x_test, x_te) and (ds.y_test == y_te).all()
    assert len(ds.y_train) + len(ds.y_val) == 50 and len(ds.y_val) == 10 and (ds.x_val < 50).all()
    assert "gives its own test split, so test_fraction=0.3 has no effect" in capsys.readouterr().err


def test_a_nan_in_the_test_split_says_what_it_spoils(tmp_path: Path) -> None:
    x, y = np.random.default_rng(0).normal(size=(20, 2)), np.arange(20) % 2
    bad = x.copy()
    bad[3, 1] = np.nan
    np.savez(tmp_path / "t.npz", x_train=x, y_train=y, x_val=x, y_val=y, x_test=bad, y_test=y)
    with pytest.raises(ValueError, match=r"'x_test' in .* \(row 3\), so the test score of evonas export would be NaN"):
        load_dataset("npz", seed=0, path=tmp_path / "t.npz")


def test_npz_not_an_npz(tmp_path: Path) -> None:
    path = tmp_path / "junk.npz"
    path.write_text("not a zip")
    with pytest.raises(ValueError, match="junk.npz"):
        load_dataset("npz", seed=0, path=path)


# -- torchvision ----------------------------------------------------------------
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_vision_without_torchvision(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(ImportError, match="pip install torchvision"):
        load_dataset(name, seed=0, root="/nonexistent")


def _fake_torchvision(monkeypatch: pytest.MonkeyPatch, *, missing: bool = False) -> None:
    """A stand-in ``torchvision.datasets`` with MNIST-like (torch tensors) and CIFAR-like (numpy) classes."""

    def make(kind: str) -> type:
        class Fake:
            def __init__(self, root: str, train: bool = True, download: bool = False) -> None:
                assert download is False
                if missing:
                    raise RuntimeError("Dataset not found. You can use download=True to download it")
                n = 80 if train else 20
                rng = np.random.default_rng(int(train))
                if kind == "mnist":
                    self.data = torch.from_numpy(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
                    self.targets = torch.arange(n) % 10
                else:
                    self.data = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
                    self.targets = [i % 10 for i in range(n)]

        return Fake

    datasets = types.ModuleType("torchvision.datasets")
    datasets.MNIST = datasets.FashionMNIST = make("mnist")  # type: ignore[attr-defined]
    datasets.CIFAR10 = make("cifar")  # type: ignore[attr-defined]
    tv = types.ModuleType("torchvision")
    tv.datasets = datasets  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)


def test_vision_missing_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_torchvision(monkeypatch)
    root = tmp_path / "no_such_dir"
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        load_dataset("mnist", seed=0, root=str(root))


@pytest.mark.parametrize("name, where", [("mnist", "MNIST/raw"), ("cifar10", "cifar-10-batches-py")])
def test_vision_missing_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, where: str) -> None:
    _fake_torchvision(monkeypatch, missing=True)
    with pytest.raises(FileNotFoundError, match=where) as info:
        load_dataset(name, seed=0, root=tmp_path)
    assert str(tmp_path) in str(info.value) and "download=True" in str(info.value)


@pytest.mark.parametrize("name, shape", [("mnist", (1, 28, 28)), ("fashion_mnist", (1, 28, 28)), ("cifar10", (3, 32, 32))])
def test_vision_conversion(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, shape: tuple) -> None:
    _fake_torchvision(monkeypatch)
    ds = load_dataset(name, seed=0, root=tmp_path, val_fraction=0.25, test_fraction=0.5)
    assert ds.input_shape == shape and ds.num_classes == 10
    assert _sizes(ds) == (60, 20, 20)  # official test set as the test split; test_fraction ignored
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert not _same(ds, load_dataset(name, seed=1, root=tmp_path, val_fraction=0.25))
    assert _same(ds, load_dataset(name, seed=0, root=tmp_path, val_fraction=0.25))


def test_images_evonas_does_not_scale_are_said_when_their_pixels_look_like_0_to_255(tmp_path: Path, capsys) -> None:
    """uint16 images, or floats in 0..255, are taken as stored (only uint8 is scaled): a line says so, unless
    standardize: channels scales them or they are already small."""
    rng = np.random.default_rng(0)
    x16 = (rng.random((160, 8, 8)) * 65535).astype(np.uint16)
    y = rng.integers(0, 3, 160)  # 32 validation samples: no line about a small validation split
    files = {"u16": x16, "f255": (x16 / 257).astype(np.float32), "f1": (x16 / 65535).astype(np.float32),
             "u8": (x16 // 257).astype(np.uint8), "features": (x16[:, 0] / 257).astype(np.float32)}  # fmt: skip
    for name, x in files.items():
        np.savez(tmp_path / f"{name}.npz", x=x, y=y)
    for name, said in (("u16", "uint16 with values up to 6"), ("f255", "float32 with values up to 25")):
        capsys.readouterr()
        load_dataset("npz", seed=0, path=str(tmp_path / f"{name}.npz"))
        err = capsys.readouterr().err
        assert f"evonas: warning: 'x' in '{tmp_path / name}.npz': images stored as {said}" in err, err
        assert "are taken as they are (only uint8 pixels are scaled to [0, 1]); divide them by their range, or set " \
               "standardize: channels" in err and len(err.splitlines()) == 1, err
        load_dataset("npz", seed=0, path=str(tmp_path / f"{name}.npz"), standardize="channels")
        assert capsys.readouterr().err == ""
    for name in ("f1", "u8", "features"):  # in [0, 1] already, scaled by evonas, or not images
        load_dataset("npz", seed=0, path=str(tmp_path / f"{name}.npz"))
        assert capsys.readouterr().err == "", name
    split = {"x_train": files["u16"][:120], "y_train": y[:120], "x_val": files["u16"][120:], "y_val": y[120:]}
    np.savez(tmp_path / "split.npz", **split)
    load_dataset("npz", seed=0, path=str(tmp_path / "split.npz"))
    assert "'x_train' in" in capsys.readouterr().err


def test_an_emptied_dataset_keeps_shapes_classes_and_fingerprints_but_no_samples() -> None:
    """What the run's process keeps when workers train: no copy of the samples (not even a view of them)."""
    ds = load_dataset("digits", seed=0)
    empty = ds.emptied()
    assert empty.input_shape == ds.input_shape == (1, 8, 8) and empty.num_classes == ds.num_classes
    assert empty.fingerprint() == ds.fingerprint() and empty.test_fingerprint() == ds.test_fingerprint()
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        a, b = getattr(empty, name), getattr(ds, name)
        assert len(a) == 0 and a.shape[1:] == b.shape[1:] and a.dtype == b.dtype and a.base is None, name


def test_a_run_on_data_without_a_test_split_is_warned_before_the_search(tmp_path: Path, capsys) -> None:
    """``evonas export`` scores the found network on the test split: without one it refused only after the search."""
    from evonas.config import parse_experiment
    from evonas.engine.build import build

    x, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    np.savez(tmp_path / "s.npz", x_train=x, y_train=y, x_val=x[:10], y_val=y[:10])
    exp = {"name": "t", "space": {"name": "mlp"}, "fitness": {"name": "train", "params": {"epochs": 1}},
           "strategy": {"name": "random", "params": {"samples": 1}}}  # fmt: skip
    for dataset, fix in (({"name": "npz", "params": {"path": str(tmp_path / "s.npz")}}, "needs x_test and y_test"),
                         ({"name": "digits", "params": {"test_fraction": 0}}, "test_fraction above 0")):  # fmt: skip
        build(parse_experiment({**exp, "dataset": dataset}))
        err = capsys.readouterr().err
        assert "has no test split: evonas export, which retrains the network this search finds and scores it on that split, will refuse this run" in err
        assert fix in err
    build(parse_experiment({**exp, "dataset": {"name": "digits"}}))
    assert "no test split" not in capsys.readouterr().err
