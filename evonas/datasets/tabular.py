"""The ``csv`` dataset: a table of numeric features and a label column, as spreadsheets and pandas write it.

``{name: csv, params: {path: data.csv, label: species}}``: the label column (by header name or 0-based
index; default the last column) holds class names or numbers, the other columns (or those listed in
``features``) are the features. The class names are sorted (numerically when every label is a whole
number, so labels ``0..C-1`` stay themselves) and numbered ``0..C-1``; the dataset's ``classes`` keeps the
names, and ``evonas export`` writes them to ``metrics.json``. Anything that is not a number in a feature
column (an empty cell, ``NA``, a word) is refused with one line naming the file's line and column.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import math
import os
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from evonas.checks import check_int
from evonas.datasets.base import DATASETS, Dataset, split_arrays
from evonas.datasets.loaders import (
    MAX_CLASSES,
    Standardization,
    _check_fractions,
    _check_nonempty,
    _standardization,
    _standardized,
    check_dataset,
)

__all__ = ["load_csv"]

Column = Union[str, int]


def _number(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value


def _column(spec: object, header: list[str], param: str, where: str) -> int:
    """The index of the column ``spec`` (a header name or a 0-based index, negative from the end)."""
    n = len(header)
    if isinstance(spec, bool) or not isinstance(spec, (str, int)):
        raise ValueError(f"{param} must be a column name or a 0-based column index, got {spec!r}")
    if isinstance(spec, int):
        if not -n <= spec < n:
            raise ValueError(f"{param}: {spec} is not a column of {where}, which has {n} columns (0..{n - 1})")
        return spec % n
    if spec not in header:
        shown = ", ".join(repr(h) for h in header[:12]) + (f", ... ({n} in all)" if n > 12 else "")
        near = [h for h in header if h.strip().lower() == spec.strip().lower()] or difflib.get_close_matches(spec, header, 1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValueError(f"{param}: no column {spec!r} in {where}{hint}; its columns are {shown}")
    return header.index(spec)


def _read_rows(file: Path, where: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """The file's non-blank rows with their line numbers (1-based, as an editor shows them)."""
    rows: list[tuple[int, list[str]]] = []
    try:
        with open(file, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=delimiter, strict=True)
            line = 1
            for row in reader:
                if row and any(cell.strip() for cell in row):
                    rows.append((line, [cell.strip() for cell in row]))
                line = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise ValueError(f"cannot read {where} as text (UTF-8): byte {exc.start} is not UTF-8; save it as UTF-8 "
                         "CSV") from None  # fmt: skip
    except csv.Error as exc:
        raise ValueError(f"cannot read {where} as CSV: line {reader.line_num}: {exc}") from None
    except OSError as exc:
        raise ValueError(f"cannot read {where}: {exc.strerror or exc}") from None
    return rows


@DATASETS.register("csv")
def load_csv(
    *,
    seed: int,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    path: str | os.PathLike | None = None,
    label: Column = -1,
    features: Sequence[Column] | None = None,
    delimiter: str = ",",
    header: bool = True,
    max_classes: int = MAX_CLASSES,
    standardize: Standardization = False,
) -> Dataset:
    """A table from the CSV file at ``path``: one sample per row, numeric feature columns and a label column.

    Args:
        path: the ``.csv`` file (a relative path is looked for in the working directory, then next to the experiment file).
        label: the label column: its header name, or its 0-based index (negative from the end); default the last column.
            Its values are class names or numbers; they are sorted and numbered 0..C-1 (``classes`` keeps the names).
        features: the feature columns (names or indices); default every column but the label. Each must hold numbers.
        delimiter: the character between fields (``","``; ``";"`` or ``"\\t"`` for other exports).
        header: whether the first row names the columns (without one, columns are named by their index).
        val_fraction: the share of the samples in the validation split (what a search scores), per class.
        test_fraction: the share in the test split (never seen by the search; ``evonas export`` scores on it).
        max_classes: the sanity limit on the number of classes.
        standardize: ``true`` standardises each feature with the training split's mean and standard deviation.
    """
    if path is None or not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"dataset 'csv' needs path= (a .csv file), got {path!r}")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ValueError(f"delimiter must be one character (',', ';', '\\t'), got {delimiter!r}")
    if not isinstance(header, bool):
        raise ValueError(f"header must be true or false, got {header!r}")
    if features is not None and (isinstance(features, (str, int)) or not isinstance(features, (list, tuple))):
        raise ValueError(f"features must be a list of column names or indices, got {features!r}")
    max_classes = check_int("max_classes", max_classes, 2)
    standardize = _standardization(standardize)
    _check_fractions(val_fraction, test_fraction)
    file = Path(path).expanduser()
    if file.is_dir():
        raise FileNotFoundError(f"csv dataset: {str(file)!r} is a folder, not a file; name the .csv file in it")
    if not file.is_file():
        raise FileNotFoundError(f"csv dataset file not found: {str(file)!r}")
    where = repr(str(file))
    rows = _read_rows(file, where, delimiter)
    if not rows:
        raise ValueError(f"{where} holds no rows")
    width = len(rows[0][1])
    if header:
        names = rows[0][1]
        if all(_number(cell) is not None for cell in names):
            raise ValueError(f"the first row of {where} holds only numbers, not column names; set header: false if "
                             "the file has no header row")  # fmt: skip
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"{where} names column {dup[0]!r} more than once; rename one of them")
        rows = rows[1:]
    else:
        names = [str(i) for i in range(width)]
    if width < 2:
        other = {";": "';'", "\t": "'\\t'", ",": "','"}
        seen = [d for d in other if d != delimiter and d in (rows[0][1][0] if rows else names[0])]
        hint = f"; its fields look separated by {other[seen[0]]}: set delimiter: {other[seen[0]]}" if seen else ""
        raise ValueError(f"{where} has one column with delimiter {delimiter!r}; it needs a label column and at least "
                         f"one feature column{hint}")  # fmt: skip
    if not rows:
        raise ValueError(f"{where} holds a header but no data rows")
    for line, row in rows:
        if len(row) != width:
            raise ValueError(f"{where} line {line} has {len(row)} fields but the {'header' if header else 'first row'} "
                             f"has {width}; every row needs one value per column")  # fmt: skip
    y_col = _column(label, names, "label", where)
    if features is None:
        x_cols = [i for i in range(width) if i != y_col]
    else:
        x_cols = [_column(f, names, "features", where) for f in features]
        if not x_cols:
            raise ValueError("features is empty; list at least one feature column (or leave it out: every column but "
                             "the label)")  # fmt: skip
        if y_col in x_cols:
            raise ValueError(f"features lists the label column {names[y_col]!r}; a feature cannot be the label")
        if len(set(x_cols)) != len(x_cols):
            raise ValueError("features lists a column more than once")
    x = np.empty((len(rows), len(x_cols)), dtype=np.float64)
    for j, col in enumerate(x_cols):
        cells = [row[col] for _, row in rows]
        try:
            x[:, j] = np.asarray(cells, dtype=np.float64)  # numpy's parse: fast; a bad cell is found below
            if np.isfinite(x[:, j]).all():
                continue
        except ValueError:
            pass
        for (line, _), cell in zip(rows, cells):
            value = _number(cell)
            if value is None or not math.isfinite(value):
                what = "is empty" if not cell else f"holds {cell!r}, not a number" if value is None else f"holds {cell}"
                raise ValueError(
                    f"{where} line {line}, column {names[col]!r} {what}; every feature must be a finite number: "
                    "fill or drop that row, encode a categorical column as numbers (one column per category), or "
                    "leave the column out with features: [...]"
                )
        raise ValueError(f"{where}: column {names[col]!r} holds a value that is not a number")  # numpy and float() differ
    if np.abs(x).max(initial=0.0) > np.finfo(np.float32).max:
        line, col = next((rows[i][0], names[x_cols[j]]) for i, j in zip(*np.nonzero(np.abs(x) > np.finfo(np.float32).max)))
        raise ValueError(f"{where} line {line}, column {col!r} is beyond float32's +-3.4e38; rescale that column")
    raw_labels = [row[y_col] for _, row in rows]
    empty = next((line for (line, _), v in zip(rows, raw_labels) if not v), None)
    if empty is not None:
        raise ValueError(f"{where} line {empty}: the label column {names[y_col]!r} is empty; every row needs a label")
    as_ints = [_whole(v) for v in raw_labels]
    if all(v is not None for v in as_ints):
        order = sorted(set(as_ints), key=int)  # type: ignore[arg-type]
        classes = [str(v) for v in order]
        index = {v: i for i, v in enumerate(order)}
        y = np.array([index[v] for v in as_ints], dtype=np.int64)
    else:
        classes = sorted(set(raw_labels))
        index_s = {v: i for i, v in enumerate(classes)}
        y = np.array([index_s[v] for v in raw_labels], dtype=np.int64)
    if len(classes) > max_classes:
        raise ValueError(
            f"the label column {names[y_col]!r} of {where} has {len(classes)} different values, over the sanity limit "
            f"max_classes = {max_classes}; is it the label (label: <column>)? If you really have that many classes, "
            f"raise the limit with max_classes: {len(classes)}"
        )
    ds = split_arrays(f"csv:{file.name}", x, y, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                      num_classes=len(classes))  # fmt: skip
    ds = dataclasses.replace(ds, classes=tuple(classes))
    ds = check_dataset(
        _check_nonempty(ds, "the number of rows"), where=where, max_classes=max_classes,
        keys={part: ("features", names[y_col]) for part in ("train", "val", "test")},
    )  # fmt: skip
    return _standardized(ds, standardize)


def _whole(text: str) -> int | None:
    """``text`` as a whole number (``3``, ``-1``, ``2.0``), else None."""
    try:
        return int(text)
    except ValueError:
        value = _number(text)
        return int(value) if value is not None and math.isfinite(value) and value == int(value) else None
