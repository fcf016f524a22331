"""Data that would train silently wrong is refused before the first evaluation (issue 14).

Each case writes its own ``.npz`` and runs ``evonas run`` on it: one line on stderr naming the file,
the array and the fix, exit code 2, no run folder (so no journal row) and no training.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from evonas.cli import main
from evonas.config import load_experiment
from evonas.datasets import load_dataset
from evonas.datasets.loaders import MAX_CLASSES, check_dataset
from evonas.engine.build import build

N = 200


def _x(n: int = N) -> np.ndarray:
    return np.random.default_rng(0).random((n, 1, 8, 8)).astype(np.float32)


def _y(n: int = N, classes: int = 4) -> np.ndarray:
    return np.arange(n) % classes


def _experiment(npz: Path, **dataset_params: Any) -> dict[str, Any]:
    return {
        "name": "checks",
        "seed": 0,
        "space": {"name": "chain", "params": {"max_layers": 2}},
        "dataset": {"name": "npz", "params": {"path": str(npz), **dataset_params}},
        "fitness": {"name": "train", "params": {"epochs": 1}},
        "strategy": {"name": "ga", "params": {"population_size": 4, "generations": 1}},
        "workers": 0,
    }


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every way into training records itself (and fails) instead of training."""
    from evonas.engine.runner import Run
    from evonas.fitness.train import TrainFitness

    calls: list[str] = []

    def stop(what: str) -> Callable[..., Any]:
        def called(*args: Any, **kwargs: Any) -> Any:
            calls.append(what)
            raise AssertionError(f"{what} ran: the data should have been refused before")

        return called

    monkeypatch.setattr(TrainFitness, "evaluate", stop("TrainFitness.evaluate"))
    monkeypatch.setattr(TrainFitness, "fit", stop("TrainFitness.fit"))
    monkeypatch.setattr(Run, "execute", stop("Run.execute"))
    return calls


def _refused(write_experiment, tmp_path: Path, capsys, no_training: list[str], npz: Path, **params: Any) -> str:
    """Run the CLI on ``npz``; check exit 2, one line, nothing written, no training; return the message."""
    cfg = write_experiment(_experiment(npz, **params))
    out = tmp_path / "run"
    capsys.readouterr()
    code = main(["run", str(cfg), "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"evonas: {cfg}: dataset.params: ")
    assert captured.out == ""
    assert not out.exists()  # no run folder, hence no journal and no row in it
    assert no_training == []
    return lines[0]


def _save(tmp_path: Path, name: str, **arrays: np.ndarray) -> Path:
    path = tmp_path / f"{name}.npz"
    np.savez(path, **arrays)
    return path


def _forge_shape(src: Path, dst: Path, key: str, shape: tuple[int, ...]) -> None:
    """Copy ``src`` to ``dst`` with ``key``'s .npy header claiming ``shape`` (same header length)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == f"{key}.npy":
                assert data[6:8] == b"\x01\x00"
                length = struct.unpack("<H", data[8:10])[0]
                header = data[10 : 10 + length].decode("latin1")
                old = repr(tuple(np.load(io.BytesIO(data)).shape))
                new = header.replace(old, repr(shape)).rstrip("\n").rstrip(" ")
                new = (new + " " * (length - len(new) - 1) + "\n").encode("latin1")
                assert len(new) == length
                data = data[:10] + new + data[10 + length :]
            zout.writestr(info.filename, data)


# -- labels -----------------------------------------------------------------------
def test_stray_label_over_the_class_limit(write_experiment, tmp_path: Path, capsys, no_training) -> None:
    y = _y()
    y[57] = 10**6
    npz = _save(tmp_path, "stray", x=_x(), y=y)
    msg = _refused(write_experiment, tmp_path, capsys, no_training, npz)
    assert f"'y' in '{npz}' has label 1000000 (row 57 has a label >= {MAX_CLASSES})" in msg
    assert "1000001 output classes" in msg and "MAX_CLASSES" in msg
    assert "raise the limit with the dataset param max_classes: 1000001" in msg


def test_max_classes_param(tmp_path: Path) -> None:
    npz = _save(tmp_path, "twelve", x=_x(240), y=_y(240, 12))
    assert load_dataset("npz", seed=0, path=npz).num_classes == 12
    with pytest.raises(ValueError, match="has label 11 .*over the sanity limit max_classes = 10 .*max_classes: 12"):
        load_dataset("npz", seed=0, path=npz, max_classes=10)
    assert load_dataset("npz", seed=0, path=npz, max_classes=12).num_classes == 12
    with pytest.raises(ValueError, match="max_classes: expected an integer >= 2"):
        load_dataset("npz", seed=0, path=npz, max_classes=1)


def test_single_class_split_here(write_experiment, tmp_path: Path, capsys, no_training) -> None:
    npz = _save(tmp_path, "single", x=_x(), y=np.zeros(N, np.int64))
    msg = _refused(write_experiment, tmp_path, capsys, no_training, npz)
    assert f"the training split of 'y' in '{npz}' has only class 0 in 120 samples" in msg
    assert "at least 2 classes" in msg


def test_single_class_given_split(write_experiment, tmp_path: Path, capsys, no_training) -> None:
    x = _x()
    npz = _save(tmp_path, "single2", x_train=x[:150], y_train=np.full(150, 2), x_val=x[150:], y_val=np.full(50, 2))
    msg = _refused(write_experiment, tmp_path, capsys, no_training, npz)
    assert f"'y_train' in '{npz}' has only class 2 in 150 samples" in msg


@pytest.mark.parametrize("part", ["val", "test"])
def test_labels_never_seen_in_training(write_experiment, tmp_path: Path, capsys, no_training, part: str) -> None:
    x, y = _x(), _y()
    arrays = {"x_train": x[:100], "y_train": y[:100] % 3, "x_val": x[100:150], "y_val": y[100:150] % 3}
    arrays[f"x_{part}"], arrays[f"y_{part}"] = x[150:], y[150:]  # classes 0..3: 3 is not in training
    npz = _save(tmp_path, "unseen", **arrays)
    msg = _refused(write_experiment, tmp_path, capsys, no_training, npz)
    assert f"'y_{part}' in '{npz}' has class 3 (13 samples) that the training split never has" in msg
    assert "fix those labels or add training samples of that class" in msg


def test_classes_missing_from_training(write_experiment, tmp_path: Path, capsys, no_training) -> None:
    y = _y(N, 10)
    y[(y == 3) | (y == 7)] = 0  # labels 0..9 without 3 and 7
    npz = _save(tmp_path, "gaps", x=_x(), y=y)
    msg = _refused(write_experiment, tmp_path, capsys, no_training, npz)
    assert f"classes 3, 7 have no sample in the training split of 'y' in '{npz}'" in msg
    assert "C = 10" in msg and "renumber the labels to 0..C-1" in msg


def test_split_leaves_a_class_out_of_training(tmp_path: Path) -> None:
    y = _y(N, 4)
    y[:2] = 4  # class 4: two samples, both taken by val and test at 0.3 / 0.3
    npz = _save(tmp_path, "rare", x=_x(), y=y)
    with pytest.raises(ValueError, match=r"split of 'y' .* has class 4 \(1 sample\) .*lower val_fraction"):
        load_dataset("npz", seed=0, path=npz, val_fraction=0.3, test_fraction=0.3)


# -- features ---------------------------------------------------------------------
def test_nan_and_inf_in_x(write_experiment, tmp_path: Path, capsys, no_training) -> None:
    x = _x()
    x[4, 0, 1, 1] = np.nan
    x[17, 0, 2, 2] = np.inf
    x[17, 0, 0, 0] = np.nan
    npz = _save(tmp_path, "nan", x=x, y=_y())
    msg = _refused(write_experiment, tmp_path, capsys, no_training, npz)
    assert f"'x' in '{npz}' holds 2 NaN and 1 inf values in 2 samples (rows 4, 17)" in msg
    assert "np.nan_to_num" in msg and "learning rate" not in msg


def test_inf_in_given_validation_split(write_experiment, tmp_path: Path, capsys, no_training) -> None:
    x, y = _x(), _y()
    x[160, 0, 3, 3] = -np.inf
    npz = _save(tmp_path, "inf", x_train=x[:150], y_train=y[:150], x_val=x[150:], y_val=y[150:])
    msg = _refused(write_experiment, tmp_path, capsys, no_training, npz)
    assert f"'x_val' in '{npz}' holds 1 inf value in 1 sample (row 10)" in msg


# -- the file itself ---------------------------------------------------------------
def test_forged_header_is_refused_before_allocating(write_experiment, tmp_path: Path, capsys, no_training) -> None:
    good = _save(tmp_path, "good", x=_x(), y=_y())
    npz = tmp_path / "forged.npz"
    _forge_shape(good, npz, "x", (10**13,))
    msg = _refused(write_experiment, tmp_path, capsys, no_training, npz)
    assert f"'x' in '{npz}' declares shape (10000000000000,) of float32" in msg
    assert "holds only 50 KB of data" in msg and "forged" in msg and "np.savez" in msg


def test_truncated_data_is_refused(tmp_path: Path) -> None:
    good = _save(tmp_path, "good", x=_x(), y=_y())
    npz = tmp_path / "short.npz"
    _forge_shape(good, npz, "y", (N + 1,))
    expected = r"'y' in .*short.npz' declares shape \(201,\) of int64 \(1.57 KB\) but holds only 1.56 KB"
    with pytest.raises(ValueError, match=expected):
        load_dataset("npz", seed=0, path=npz)


def test_object_array_is_refused(write_experiment, tmp_path: Path, capsys, no_training) -> None:
    npz = tmp_path / "objects.npz"
    with zipfile.ZipFile(npz, "w") as zf:
        for key, arr in {"x": _x(), "y": np.array([0, "a"] * (N // 2), dtype=object)}.items():
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=True)
            zf.writestr(f"{key}.npy", buf.getvalue())
    msg = _refused(write_experiment, tmp_path, capsys, no_training, npz)
    assert f"'y' in '{npz}' holds Python objects (dtype object)" in msg and "never unpickles" in msg


def test_npy_instead_of_npz(tmp_path: Path) -> None:
    path = tmp_path / "plain.npz"
    with open(path, "wb") as fh:
        np.save(fh, _x())
    with pytest.raises(ValueError, match="plain.npz' is a single .npy array, not an .npz archive"):
        load_dataset("npz", seed=0, path=path)


def test_an_npz_without_samples_is_said_so(tmp_path: Path) -> None:
    empty = _save(tmp_path, "empty", x=np.zeros((0, 4), np.float32), y=np.zeros((0,), np.int64))
    with pytest.raises(ValueError, match=r"^'x' in '.*empty.npz' holds no samples \(shape \(0, 4\)\)"):
        load_dataset("npz", seed=0, path=empty)  # (it was numpy's "zero-size array to reduction operation maximum")


# -- what still passes ----------------------------------------------------------------
def test_good_data_passes(tmp_path: Path) -> None:
    npz = _save(tmp_path, "good", x=_x(), y=_y())
    ds = load_dataset("npz", seed=0, path=npz)
    assert ds.num_classes == 4 and len(ds.y_train) == 120
    compressed = tmp_path / "zeros.npz"  # highly compressible, still within what deflate can produce
    x = np.zeros((500, 1, 16, 16), np.float32) + (np.arange(500) % 3)[:, None, None, None]
    np.savez_compressed(compressed, x=x, y=_y(500, 3))
    assert load_dataset("npz", seed=0, path=compressed).num_classes == 3


@pytest.mark.parametrize("name, params", [("digits", {}), ("synthetic", {}), ("synthetic", {"shape": [16]})])
def test_builtin_datasets_pass(name: str, params: dict) -> None:
    ds = load_dataset(name, seed=0, **params)
    assert check_dataset(ds, where=f"dataset '{name}'") is ds


def test_quickstart_still_builds() -> None:
    built = build(load_experiment(Path(__file__).resolve().parents[1] / "experiments" / "quickstart.yaml"))
    assert built.dataset is not None and built.dataset.num_classes == 10


def test_check_dataset_on_a_built_dataset() -> None:
    ds = load_dataset("synthetic", seed=0, n_samples=60, num_classes=3)
    bad = type(ds)(**{**ds.__dict__, "y_val": np.where(ds.y_val == 2, 5, ds.y_val), "num_classes": 6})
    with pytest.raises(ValueError, match=r"the validation split of 'y' in dataset 'synthetic' has class 5"):
        check_dataset(bad, where="dataset 'synthetic'")
    with pytest.raises(ValueError, match="over the sanity limit max_classes = 4"):
        check_dataset(bad, where="dataset 'synthetic'", max_classes=4)


LOADER = """
import numpy as np
from evonas.datasets import DATASETS
from evonas.datasets.base import split_arrays


@DATASETS.register("my_data_HOW")
def my_data(seed: int, how: str = "good"):
    rng = np.random.default_rng(0)
    x = rng.random((120, 6)).astype(np.float32)
    y = np.arange(120) % 2
    if how == "stray":
        y[5] = 7  # a label over the classes: num_classes becomes 8, six of them never seen
    if how == "nan":
        x[3, 2] = np.nan
    if how == "half":
        y = y + 0.5  # fractional labels: never cut to whole ones quietly
    if how == "none":
        return None
    if how == "raises":
        raise OSError("data server unreachable")
    return split_arrays("my_data", x, y, seed=seed, val_fraction=0.25, test_fraction=0.25,
                        num_classes=int(y.max()) + 1)
"""


RAISE_LINE = LOADER.splitlines().index('        raise OSError("data server unreachable")') + 1


@pytest.mark.parametrize("how, message", [
    ("stray", "dataset: classes 2, 3, 4, 5, 6 have no sample in the training split of 'y' in dataset 'my_data_stray'"),
    ("nan", "dataset: the test split of 'x' in dataset 'my_data_nan' holds 1 NaN value in 1 sample"),
    ("none", "dataset: the plug-in dataset 'my_data_none' returned NoneType, not an evonas.datasets.Dataset"),
    ("half", "dataset: the plug-in dataset 'my_data_half' raised ValueError: my_data: the labels must be integer class "
             "indices, got non-integer values such as 0.5, 1.5, 0.5 at my_loader_half.py:"),
    ("raises", "dataset: the plug-in dataset 'my_data_raises' raised OSError: data server unreachable at "
               f"my_loader_raises.py:{RAISE_LINE} while it was built"),
])  # fmt: skip
def test_a_plug_in_loaders_data_is_checked_too(write_experiment, tmp_path: Path, capsys, no_training, how: str,
                                               message: str) -> None:
    """The built-in loaders check their data; a plug-in loader's is checked by the engine, and its failures are
    the plug-in's, named with the line, not the config's."""
    (tmp_path / f"my_loader_{how}.py").write_text(LOADER.replace("HOW", how))  # one module per case: one process
    exp = {**_experiment(tmp_path / "unused.npz"), "plugins": [f"my_loader_{how}.py"], "space": {"name": "mlp"},
           "dataset": {"name": f"my_data_{how}", "params": {"how": how}}}  # fmt: skip
    cfg = write_experiment(exp)
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"evonas: {cfg}: {message}"), err
    assert not (tmp_path / "run").exists() and no_training == []


def test_fractions_given_with_a_file_of_its_own_splits_are_said_to_do_nothing(tmp_path: Path, capsys) -> None:
    x, y = _x(), _y()
    path = _save(tmp_path, "split", x_train=x[:120], y_train=y[:120], x_val=x[120:160], y_val=y[120:160],
                 x_test=x[160:], y_test=y[160:])  # fmt: skip
    ds = load_dataset("npz", seed=0, path=str(path), val_fraction=0.3)
    assert len(ds.y_val) == 40  # the file's split, as given
    assert capsys.readouterr().err == f"evonas: {str(path)!r} gives its own splits, so val_fraction=0.3 has no effect\n"
    load_dataset("npz", seed=0, path=str(path))  # the defaults: nothing to say
    assert capsys.readouterr().err == ""


def test_a_data_file_not_found_says_where_it_was_looked_for(write_experiment, tmp_path: Path, capsys,
                                                            monkeypatch) -> None:
    cfg = write_experiment(_experiment(Path("missing.npz")))
    monkeypatch.chdir(tmp_path / "..")
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"evonas: {cfg}: dataset.params.path: no file 'missing.npz' in the working directory "
                   f"({tmp_path.parent}) or next to the experiment file ({tmp_path}); run where it is found, or give "
                   "its absolute path"), err
    assert not (tmp_path / "run").exists()
