"""The ``csv`` dataset (a table of numeric features and a label column) and the ``val_balanced_acc`` metric."""

from __future__ import annotations

import contextlib
import csv
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sklearn.metrics import balanced_accuracy_score

from evonas.cli import main
from evonas.config import load_experiment
from evonas.datasets import load_dataset
from evonas.engine.runner import Run
from evonas.fitness.train import _score


def write_table(path: Path, header: list[str] | None, rows: list[list[object]], delimiter: str = ",") -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def flowers(n: int = 60, seed: int = 0) -> tuple[list[str], list[list[object]]]:
    """Two informative features, one noise feature and a named class per row (three classes)."""
    rng = np.random.default_rng(seed)
    names = ["setosa", "versicolor", "virginica"]
    rows = []
    for i in range(n):
        c = i % 3
        rows.append([round(float(c + rng.normal(0, 0.2)), 4), round(float(rng.normal()), 4),
                     round(float(-c + rng.normal(0, 0.2)), 4), names[c]])  # fmt: skip
    return ["petal", "noise", "sepal", "species"], rows


def test_a_table_with_named_classes_loads_split_and_numbered(tmp_path: Path) -> None:
    header, rows = flowers()
    path = write_table(tmp_path / "f.csv", header, rows)
    ds = load_dataset("csv", seed=0, path=str(path), label="species")
    assert ds.classes == ("setosa", "versicolor", "virginica") and ds.num_classes == 3
    assert ds.input_shape == (3,) and ds.x_train.dtype == np.float32
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 60
    table = {tuple(np.float32(r[:3])): r[3] for r in rows}  # each loaded row has the label of its line
    for x, y in zip(ds.x_val, ds.y_val):
        assert ds.classes[y] == table[tuple(x)]
    assert ds.split_rows is not None  # the data rows each split took, counted from 0 (blank lines and header not)
    for part in ("train", "val", "test"):
        x, y = getattr(ds, f"x_{part}"), getattr(ds, f"y_{part}")
        taken = [rows[i] for i in ds.split_rows[part]]
        np.testing.assert_array_equal(x, np.float32([r[:3] for r in taken]))
        assert [ds.classes[c] for c in y] == [r[3] for r in taken]
    again = load_dataset("csv", seed=0, path=str(path), label=-1)  # the last column by index: the same split
    assert again.fingerprint() == ds.fingerprint()
    other = load_dataset("csv", seed=1, path=str(path), label="species")
    assert other.fingerprint() != ds.fingerprint()


def test_whole_number_labels_sort_as_numbers_and_keep_their_values(tmp_path: Path) -> None:
    rows = [[i, (i * 7) % 5, [2, 10, 0][i % 3]] for i in range(30)]
    ds = load_dataset("csv", seed=0, path=str(write_table(tmp_path / "n.csv", ["a", "b", "y"], rows)))
    assert ds.classes == ("0", "2", "10")  # not "0", "10", "2"
    by_a = {int(r[0]): r[2] for r in rows}
    for x, y in zip(ds.x_train, ds.y_train):
        assert ds.classes[y] == str(by_a[int(x[0])])
    labels = [[i, 1, i % 2] for i in range(20)]
    ds = load_dataset("csv", seed=0, path=str(write_table(tmp_path / "b.csv", ["a", "b", "y"], labels)))
    assert ds.classes == ("0", "1") and all(int(x[0]) % 2 == y for x, y in zip(ds.x_train, ds.y_train))


def test_whole_number_labels_that_are_not_0_to_c_say_how_they_are_numbered(tmp_path: Path, capsys) -> None:
    rows = [[i, (i * 7) % 5, [2, 10, 0][i % 3]] for i in range(30)]
    load_dataset("csv", seed=0, path=str(write_table(tmp_path / "n.csv", ["a", "b", "y"], rows)))
    err = capsys.readouterr().err
    assert "the labels of column 'y' are not 0..2, so the networks' classes number them in order (0 -> 0, 2 -> 1, " \
           "10 -> 2); evonas export's metrics.json lists them as classes" in err and err.count("classes number them") == 1
    load_dataset("csv", seed=0, path=str(write_table(tmp_path / "b.csv", ["a", "b", "y"], [[i, 1, i % 2] for i in range(20)])))
    assert "classes number them" not in capsys.readouterr().err  # 0..C-1 keep their values: nothing to say
    ids = [[i % 3, 1, 100 + i] for i in range(20)]  # the last column an ID: refused, with no note on numbering first
    with pytest.raises(ValueError, match="is it an ID, not the label"):
        load_dataset("csv", seed=0, path=str(write_table(tmp_path / "i.csv", ["y", "b", "id"], ids)))
    assert "classes number them" not in capsys.readouterr().err


def test_a_feature_column_named_like_the_label_is_warned(tmp_path: Path, capsys) -> None:
    """The label is the last column by default: a table whose label comes first trained on the wrong one silently."""
    rows = [[i % 3, i * 0.5, i % 4] for i in range(40)]
    path = write_table(tmp_path / "t.csv", ["Target", "a", "n_visits"], rows)
    load_dataset("csv", seed=0, path=str(path))
    assert "the label is the last column 'n_visits' (label: -1, the default), but column 'Target' is named like a " \
           "label and is taken as a feature; if it is the label, set label: Target" in capsys.readouterr().err
    for params in ({"label": "Target"}, {"label": "n_visits"}):  # a label chosen: nothing to say
        load_dataset("csv", seed=0, path=str(path), **params)
        assert "named like a label" not in capsys.readouterr().err


@pytest.mark.parametrize(("head", "expected"), [(b"PK\x03\x04", "is a zip archive, not CSV text: an .npz file is read "
                                                 "by the npz dataset (name: npz)"),
                                                (b"\x93NUMPY", "is a NumPy .npy array, not CSV text")])  # fmt: skip
def test_an_npz_or_npy_file_given_as_csv_is_named(tmp_path: Path, head: bytes, expected: str) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(head + bytes(range(256)))
    with pytest.raises(ValueError, match=re.escape(expected)):
        load_dataset("csv", seed=0, path=str(path))


def test_features_header_delimiter_and_a_byte_order_mark(tmp_path: Path) -> None:
    header, rows = flowers()
    path = write_table(tmp_path / "semi.csv", header, rows, delimiter=";")
    text = path.read_text()
    path.write_text("\ufeff" + text.replace("\n", "\n\n", 3))  # Excel's BOM and some blank lines
    ds = load_dataset("csv", seed=0, path=str(path), delimiter=";", label="species", features=["sepal", 0])
    assert ds.input_shape == (2,) and ds.num_classes == 3
    rows_by_sepal = {np.float32(r[2]): np.float32(r[0]) for r in rows}
    assert all(rows_by_sepal[x[0]] == x[1] for x in ds.x_train)  # features in the order listed
    bare = write_table(tmp_path / "bare.csv", None, [r[:3] + [r[3][0]] for r in rows])
    ds = load_dataset("csv", seed=0, path=str(bare), header=False)
    assert ds.classes == ("s", "v")  # 'versicolor' and 'virginica' share 'v'
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 60  # no row taken as a header


@pytest.mark.parametrize(
    ("text", "params", "expected"),
    [
        ("a,b,y\n1,2,0\n3,,1\n", {}, "line 3, column 'b' is empty"),
        ("a,b,y\n1,2,0\n3,NA,1\n", {}, "line 3, column 'b' holds 'NA', not a number"),
        ("a,b,y\n1,2,0\n\n3,nan,1\n", {}, "line 4, column 'b' holds nan"),
        ("a,b,y\n1,2,0\n3,4\n", {}, "line 3 has 2 fields but the header has 3"),
        ("1,2,0\n3,4,1\n", {}, "the first row of '{f}' holds only numbers, not column names; set header: false"),
        ("a;b;y\n1;2;0\n", {}, "its fields look separated by ';': set delimiter: ';'"),
        ("a,a,y\n1,2,0\n", {}, "names column 'a' more than once"),
        ("a,b,y\n1,2,0\n", {"label": "Y"}, "label: no column 'Y' in '{f}' (did you mean 'y'?)"),
        ("a,b,y\n1,2,0\n", {"label": 5}, "label: 5 is not a column of '{f}', which has 3 columns (0..2)"),
        ("a,b,y\n1,2,0\n", {"features": ["y"]}, "features lists the label column 'y'"),
        ("a,b,y\n1,2,\n", {}, "line 2: the label column 'y' is empty"),
        ("a,b,y\n" + "".join(f"{i},1,{i % 30}\n" for i in range(60)), {"max_classes": 20},
         "the label column 'y' of '{f}' has 30 different values, over the sanity limit max_classes = 20"),
        ('a,b,y\n1,"2,0\n', {}, "cannot read '{f}' as CSV"),
        ("a,b,y\n", {}, "holds a header but no data rows"),
        ("", {}, "holds no rows"),
        ("a,b,y\n1,1e39,0\n", {}, "line 2, column 'b' is beyond float32's"),
        ("a,price\n" + "".join(f"{i},{i * 0.5}\n" for i in range(40)), {},
         "the label column 'price' of '{f}' holds numbers that are not whole (line 3: 0.5): a continuous target"),
        ("a,id\n" + "".join(f"{i % 3},row{i}\n" for i in range(40)), {},
         "the label column 'id' of '{f}' has 40 different values in 40 rows"),
        (",a,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)), {},
         "column 0 of '{f}' has no name in the header (pandas writes its row index so"),
        ("1,2,barolo\n" + "3,4,barolo\n5,6,grignolino\n" * 20, {},
         "the first row of '{f}' looks like data, not column names"),
        ("a,b,y\n1,2,0\n", {"exclude": ["y"]}, "exclude lists the label column 'y'"),
        ("a,b,y\n1,2,0\n", {"exclude": ["a"], "features": ["b"]}, "give features (the columns to use) or exclude"),
        ("a,b,y\n1,2,0\n", {"encoding": "klingon"}, "encoding: no text encoding named 'klingon'"),
    ],
)
def test_a_bad_table_is_refused_with_its_line_and_column(tmp_path: Path, text: str, params: dict, expected: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as refused:
        load_dataset("csv", seed=0, path=str(path), **params)
    message = str(refused.value)
    assert expected.format(f=path) in message and "\n" not in message


def test_encodings_excluded_columns_and_warnings_about_what_the_split_leaves_unscored(tmp_path: Path, capsys) -> None:
    header, rows = flowers(150)
    text = "id,petal,noise,sepal,species\n" + "".join(f"{i},{r[0]},{r[1]},{r[2]},{r[3]}\n" for i, r in enumerate(rows))
    text = text.replace("virginica", "virgínica")
    (tmp_path / "latin.csv").write_bytes(text.encode("latin-1"))
    with pytest.raises(ValueError, match=r"line 4 holds byte 0xED, which is not utf-8 \(a Latin-1 / Windows-1252 file\?"):
        load_dataset("csv", seed=0, path=str(tmp_path / "latin.csv"))
    ds = load_dataset("csv", seed=0, path=str(tmp_path / "latin.csv"), encoding="latin-1", exclude=["id"])
    assert ds.classes == ("setosa", "versicolor", "virgínica") and ds.feature_names == ("petal", "noise", "sepal")
    (tmp_path / "u16.csv").write_bytes(text.encode("utf-16"))
    with pytest.raises(ValueError, match="is UTF-16 text"):
        load_dataset("csv", seed=0, path=str(tmp_path / "u16.csv"))
    assert load_dataset("csv", seed=0, path=str(tmp_path / "u16.csv"), encoding="utf-16", exclude=[0]).num_classes == 3
    assert "warning" not in capsys.readouterr().err
    typo = text.replace("setosa", "Setosa", 1)  # one row's label with a typo: a class of one row, never scored
    (tmp_path / "typo.csv").write_text(typo, encoding="utf-8")
    ds = load_dataset("csv", seed=0, path=str(tmp_path / "typo.csv"), exclude=["id"])
    assert ds.classes[0] == "Setosa"
    err = capsys.readouterr().err
    assert "label 'species': class 'Setosa' (1 row) has no row in the validation split, so the search never scores it" in err
    load_dataset("csv", seed=0, path=str(tmp_path / "typo.csv"), exclude=["id"], val_fraction=0.1, test_fraction=0.1)
    assert "the validation split has 15 rows, so val_acc moves in steps of 0.067" in capsys.readouterr().err


def test_the_cli_names_the_key_and_a_run_exports_the_class_names(tmp_path: Path, capsys, monkeypatch) -> None:
    header, rows = flowers(90)
    write_table(tmp_path / "flowers.csv", header, rows)
    exp = {
        "name": "flowers", "seed": 0, "space": {"name": "mlp", "params": {"max_layers": 1, "widths": [16]}},
        "dataset": {"name": "csv", "params": {"path": "flowers.csv", "label": "specie"}},
        "fitness": {"name": "train", "params": {"epochs": 3}},
        "strategy": {"name": "random", "params": {"samples": 2}}, "workers": 0,
    }  # fmt: skip
    (tmp_path / "flowers.yaml").write_text(yaml.safe_dump(exp))
    monkeypatch.chdir(tmp_path)
    assert main(["run", "flowers.yaml", "--out", "runs", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("evonas: flowers.yaml: dataset.params.label: no column 'specie' in ") and "'species'?" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "runs").exists()
    exp["dataset"]["params"]["label"] = "species"
    exp["objectives"] = [{"metric": "val_balanced_acc", "direction": "max"}]
    (tmp_path / "flowers.yaml").write_text(yaml.safe_dump(exp))
    summary = Run(load_experiment(tmp_path / "flowers.yaml"), tmp_path / "run", progress=False).execute()
    assert summary.evaluations == 2
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["ranked_by"] == "val_balanced_acc"
    assert f"test_acc={metrics['test_acc']:.4f} test_balanced_acc={metrics['test_balanced_acc']:.4f} (trained" in out
    assert metrics["classes"] == ["setosa", "versicolor", "virginica"]
    assert metrics["model_input"] == {"dtype": "float64", "shape": [3]}  # as numpy and pandas read a CSV
    assert metrics["feature_names"] == ["petal", "noise", "sepal"] and metrics["label_name"] == "species"
    data = load_dataset("csv", seed=0, path=str(tmp_path / "flowers.csv"), label="species")
    model = torch.jit.load(str(tmp_path / "out" / "model.torchscript.pt"))
    with torch.no_grad():
        predicted = model(torch.from_numpy(data.as_stored(data.x_test))).argmax(1).numpy()
        assert (model(torch.from_numpy(data.x_test)).argmax(1).numpy() == predicted).all()  # float32 taken too
        with pytest.raises(Exception, match=r"takes inputs of shape \(N, 3\)"):
            model(torch.zeros(2, 2, dtype=torch.float64))
    assert metrics["test_acc"] == pytest.approx(float((predicted == data.y_test).mean()))
    assert metrics["test_balanced_acc"] == pytest.approx(balanced_accuracy_score(data.y_test, predicted))
    # the report names the classes, and shows a path as written (not as \u escapes)
    renamed = tmp_path / "blüten daten.csv"
    (tmp_path / "flowers.csv").rename(renamed)
    exp["dataset"]["params"]["path"] = renamed.name
    (tmp_path / "flowers.yaml").write_text(yaml.safe_dump(exp, allow_unicode=True))
    Run(load_experiment(tmp_path / "flowers.yaml"), tmp_path / "run2", progress=False).execute()
    assert main(["report", str(tmp_path / "run2"), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "3 classes (0: setosa, 1: versicolor, 2: virginica)" in page and "blüten daten.csv" in page


def test_balanced_accuracy_is_scikit_learn_s() -> None:
    """Over batches, with a class absent from the labels and one the model never answers."""
    torch.manual_seed(0)
    x = torch.randn(203, 4)
    y = torch.tensor(np.random.default_rng(0).choice([0, 1, 3], size=203, p=[0.8, 0.15, 0.05]))
    model = torch.nn.Linear(4, 5)
    loss, acc, balanced = _score(model, x, y, 64, contextlib.nullcontext)
    with torch.no_grad():
        logits = model(x)
    predicted = logits.argmax(1).numpy()
    assert acc == pytest.approx(float((predicted == y.numpy()).mean()))
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true": the case tested
        warnings.simplefilter("ignore", UserWarning)
        assert balanced == pytest.approx(balanced_accuracy_score(y.numpy(), predicted))
    assert balanced != pytest.approx(acc)
    assert loss == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-5)


def test_a_search_on_val_acc_over_one_dominant_class_is_warned(tmp_path: Path, capsys, monkeypatch) -> None:
    """90% of one class: a network that always answers it scores val_acc 0.9. Said before the run, with the fix;
    not said when the search already ranks by val_balanced_acc."""
    rng = np.random.default_rng(0)
    rows = [[f"{v:.3f}" for v in rng.normal(size=3)] + ["rare" if i % 10 == 0 else "common"] for i in range(200)]
    write_table(tmp_path / "skew.csv", ["a", "b", "c", "kind"], rows)
    exp = {"name": "skew", "space": {"name": "mlp", "params": {"max_layers": 1, "widths": [8]}},
           "dataset": {"name": "csv", "params": {"path": "skew.csv"}}, "fitness": {"name": "train", "params": {
               "epochs": 1}}, "strategy": {"name": "random", "params": {"samples": 1}}, "workers": 0}  # fmt: skip
    (tmp_path / "skew.yaml").write_text(yaml.safe_dump(exp))
    monkeypatch.chdir(tmp_path)
    assert main(["run", "skew.yaml", "--out", "a", "--quiet"]) == 0
    assert ("evonas: warning: dataset 'csv' (skew.csv): class 'common' is 90% of the validation split, so a network that always answers it scores "
            "val_acc 0.90; search val_balanced_acc instead (objectives: val_balanced_acc), and weigh the classes in "
            "training (fitness.params.class_weight: balanced)") in capsys.readouterr().err
    exp["objectives"] = [{"metric": "val_balanced_acc"}]
    (tmp_path / "skew.yaml").write_text(yaml.safe_dump(exp))
    assert main(["run", "skew.yaml", "--out", "b", "--quiet"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_feature_column_that_looks_like_a_row_id_is_warned(tmp_path: Path, capsys) -> None:
    """A different whole number in every row, named like an ID or numbering the rows: said, with exclude: [name]."""
    rng = np.random.default_rng(0)
    rows = [[str(1000 + 7 * i), str(order), f"{rng.normal():.3f}", str(int(rng.integers(0, 5))), str(i % 2)]
            for i, order in enumerate(rng.permutation(100))]  # fmt: skip
    write_table(tmp_path / "ids.csv", ["patient_id", "n", "a", "count", "label"], rows)
    load_dataset("csv", seed=0, path=tmp_path / "ids.csv")
    err = capsys.readouterr().err
    assert "column 'patient_id' looks like a row ID (a different whole number in every row), which the networks " \
           "would take as a feature; leave it out with exclude: [patient_id]" in err, err
    assert "column 'n' looks like a row ID (a different whole number in every row, numbering them)" in err, err
    assert "'a'" not in err and "'count'" not in err
    load_dataset("csv", seed=0, path=tmp_path / "ids.csv", features=["patient_id", "a"])
    assert "which the networks would take as a feature; take it out of features" in capsys.readouterr().err
    load_dataset("csv", seed=0, path=tmp_path / "ids.csv", exclude=["patient_id", "n"])
    assert "row ID" not in capsys.readouterr().err
    rows = [[str(1990 + i), f"{rng.normal():.3f}", str(i % 2)] for i in range(100)]  # consecutive years: no ID
    write_table(tmp_path / "years.csv", ["year", "a", "label"], rows)
    load_dataset("csv", seed=0, path=tmp_path / "years.csv")
    assert "row ID" not in capsys.readouterr().err


def test_pandas_numbered_header_is_a_header(tmp_path: Path) -> None:
    """pd.DataFrame(np.c_[X, y]).to_csv(index=False) writes the header 0,1,...: column names, not a row of data."""
    rows = [[f"{0.1 * i:.1f}", f"{0.2 * i:.1f}", str(i % 3)] for i in range(90)]
    write_table(tmp_path / "pd.csv", ["0", "1", "2"], rows)
    ds = load_dataset("csv", seed=0, path=tmp_path / "pd.csv")
    assert ds.feature_names == ("0", "1") and ds.label_name == "2" and len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == 90
