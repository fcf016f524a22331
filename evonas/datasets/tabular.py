"""The ``csv`` dataset: a table of numeric features and a label column, as spreadsheets and pandas write it.

``{name: csv, params: {path: data.csv, label: species}}``: the label column (by header name or 0-based
index; default the last column) holds class names or numbers, the other columns (or those listed in
``features``) are the features. The class names are sorted (numerically when every label is a whole
number, so labels ``0..C-1`` stay themselves) and numbered ``0..C-1``; the dataset's ``classes`` keeps the
names, and ``evonas export`` writes them to ``metrics.json``. Anything that is not a number in a feature
column (an empty cell, ``NA``, a word) is refused with one line naming the file's line and column.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import difflib
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterator, Sequence, Union

import numpy as np

from evonas.checks import check_int
from evonas.datasets.base import DATASETS, Dataset, RawInput, split_arrays
from evonas.datasets.loaders import (
    MAX_CLASSES,
    Standardization,
    _check_fractions,
    _check_nonempty,
    _standardization,
    _standardized,
    check_dataset,
    say_thin_splits,
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


def _lines(text: str) -> Iterator[str]:
    """``text``'s lines with their ends, split at ``\n`` only (as a file opened with ``newline=""`` gives them to
    :func:`csv.reader`), one at a time: an ``io.StringIO`` of a large file holds 4 bytes per character."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def _read_rows(file: Path, where: str, delimiter: str, encoding: str) -> list[tuple[int, list[str]]]:
    """The file's non-blank rows with their line numbers (1-based, as an editor shows them)."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {where}: {exc.strerror or exc}") from None
    if data.startswith(b"PK\x03\x04"):
        raise ValueError(f"{where} is a zip archive, not CSV text: an .npz file is read by the npz dataset (name: npz), "
                         "a spreadsheet (.xlsx) must be saved as CSV first")  # fmt: skip
    if data.startswith(b"\x93NUMPY"):
        raise ValueError(f"{where} is a NumPy .npy array, not CSV text: save the inputs and labels together with "
                         "np.savez('data.npz', x=x, y=y) and read it with name: npz")  # fmt: skip
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) and codecs.lookup(encoding).name != "utf-16":
        raise ValueError(f"{where} is UTF-16 text (Excel's 'Unicode Text'); save it as 'CSV UTF-8', or set "
                         "encoding: utf-16")  # fmt: skip
    try:
        text = data.decode("utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start : exc.start + 1].hex().upper()
        guess = " (a Latin-1 / Windows-1252 file? set encoding: latin-1)" if encoding.lower().startswith("utf") else ""
        raise ValueError(f"cannot read {where} as {encoding} text: line {line} holds byte 0x{byte}, which is not "
                         f"{encoding}{guess}") from None  # fmt: skip
    if "\x00" in text:
        raise ValueError(f"{where} holds NUL bytes: it is not a text CSV file (a spreadsheet's own format? export it "
                         "as CSV)")  # fmt: skip
    del data  # the text is enough from here (a large file is held once, not three times)
    rows: list[tuple[int, list[str]]] = []
    reader = csv.reader(_lines(text), delimiter=delimiter, strict=True)
    try:
        line = 1
        for row in reader:
            if row and any(cell.strip() for cell in row):
                rows.append((line, [cell.strip() for cell in row]))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise ValueError(f"cannot read {where} as CSV: line {reader.line_num}: {exc}") from None
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
    exclude: Sequence[Column] = (),
    delimiter: str = ",",
    header: bool = True,
    encoding: str = "utf-8",
    max_classes: int = MAX_CLASSES,
    standardize: Standardization = False,
) -> Dataset:
    """A table from the CSV file at ``path``: one sample per row, numeric feature columns and a label column.

    Args:
        path: the ``.csv`` file (a relative path is looked for in the working directory, then next to the experiment file).
        label: the label column: its header name, or its 0-based index (negative from the end); default the last column.
            Its values are class names or numbers; they are sorted and numbered 0..C-1 (``classes`` keeps the names).
        features: the feature columns (names or indices); default every column but the label. Each must hold numbers.
        exclude: columns to leave out of the default features (an ID column, say).
        delimiter: the character between fields (``","``; ``";"`` or ``"\\t"`` for other exports).
        header: whether the first row names the columns (without one, columns are named by their index).
        encoding: the file's text encoding (``utf-8``, with or without a byte-order mark; ``latin-1``, ``cp1252``, ...).
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
    if isinstance(exclude, (str, int)) and not isinstance(exclude, bool):
        exclude = [exclude]
    if not isinstance(exclude, (list, tuple)):
        raise ValueError(f"exclude must be a list of column names or indices, got {exclude!r}")
    if exclude and features is not None:
        raise ValueError("give features (the columns to use) or exclude (the columns to leave out), not both")
    if not isinstance(encoding, str):
        raise ValueError(f"encoding must be the name of a text encoding such as utf-8 or latin-1, got {encoding!r}")
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"encoding: no text encoding named {encoding!r} (utf-8, latin-1, cp1252, utf-16, ...)") from None
    max_classes = check_int("max_classes", max_classes, 2)
    standardize = _standardization(standardize)
    _check_fractions(val_fraction, test_fraction)
    file = Path(path).expanduser()
    if file.is_dir():
        raise FileNotFoundError(f"csv dataset: {str(file)!r} is a folder, not a file; name the .csv file in it")
    if not file.is_file():
        raise FileNotFoundError(f"csv dataset file not found: {str(file)!r}")
    where = repr(str(file))
    rows = _read_rows(file, where, delimiter, encoding)
    if not rows:
        raise ValueError(f"{where} holds no rows")
    width = len(rows[0][1])
    numbered = False  # a header 0, 1, 2, ...: what pandas writes for a frame without column names
    if header:
        names = rows[0][1]
        numbered = names == [str(i) for i in range(width)]
        if all(_number(cell) is not None for cell in names) and not numbered:
            raise ValueError(f"the first row of {where} holds only numbers, not column names; set header: false if "
                             "the file has no header row")  # fmt: skip
        dup = sorted({n for n in names if n and names.count(n) > 1})
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
    try:
        y_col = _column(label, names, "label", where)
    except ValueError as exc:  # column names that are numbers: a file without a header row
        if header and sum(_number(n) is not None for n in names) * 2 >= len(names):
            raise ValueError(f"{exc}; its first row looks like data, not column names: if the file has no header "
                             "row, set header: false and give the label column by its index (the default, -1, is the last column)") from None
        raise
    if features is None:
        dropped = {_column(c, names, "exclude", where) for c in exclude}
        if y_col in dropped:
            raise ValueError(f"exclude lists the label column {names[y_col]!r}; exclude names feature columns to leave out")
        x_cols = [i for i in range(width) if i != y_col and i not in dropped]
        if not x_cols:
            raise ValueError(f"{where} has no feature column left besides the label {names[y_col]!r}")
        unnamed = [i for i in x_cols if header and not names[i]]
        if unnamed:
            raise ValueError(f"column {unnamed[0]} of {where} has no name in the header (pandas writes its row index "
                             f"so: save with to_csv(index=False)); name it, or leave it out with exclude: [{unnamed[0]}]")
    else:
        x_cols = [_column(f, names, "features", where) for f in features]
        if not x_cols:
            raise ValueError("features is empty; list at least one feature column (or leave it out: every column but "
                             "the label)")  # fmt: skip
        if y_col in x_cols:
            raise ValueError(f"features lists the label column {names[y_col]!r}; a feature cannot be the label")
        if len(set(x_cols)) != len(x_cols):
            raise ValueError("features lists a column more than once")
    if header and not numbered:  # a first row of data read as the header: numbers as names, a label seen below
        first = names
        labels_below = {row[y_col] for _, row in rows}
        if all(_number(first[i]) is not None for i in x_cols) and (_number(first[y_col]) is not None
                                                                    or first[y_col] in labels_below):  # fmt: skip
            raise ValueError(f"the first row of {where} looks like data, not column names (numbers, and the label "
                             f"{first[y_col]!r} that rows below have too); set header: false if the file has no "
                             "header row")  # fmt: skip
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
                if value is None and _number(cell.replace(",", ".", 1)) is not None:
                    raise ValueError(f"{where} line {line}, column {names[col]!r} {what}: a decimal comma; write the "
                                     "file's numbers with a decimal point (pandas: to_csv(..., decimal='.'))")
                out = f"exclude: [{names[col]}]" if features is None else "features, leaving it out"
                raise ValueError(
                    f"{where} line {line}, column {names[col]!r} {what}; every feature must be a finite number: "
                    "fill or drop that row, encode a categorical column as numbers (one column per category), or "
                    f"leave the column out with {out}"
                )
        raise ValueError(f"{where}: column {names[col]!r} holds a value that is not a number")  # numpy and float() differ
    beyond = np.argwhere(np.abs(x) > np.finfo(np.float32).max)
    if len(beyond):
        line, col = rows[beyond[0][0]][0], names[x_cols[beyond[0][1]]]
        raise ValueError(f"{where} line {line}, column {col!r} is beyond float32's +-3.4e38; rescale that column")
    _say_id_columns(x, [names[i] for i in x_cols], where, explicit=features is not None)
    if header and label == -1:  # the default label column: is another column named as the label?
        _say_label_named(names[y_col], [names[i] for i in x_cols], where)
    raw_labels = [row[y_col] for _, row in rows]
    empty = next((line for (line, _), v in zip(rows, raw_labels) if not v), None)
    if empty is not None:
        raise ValueError(f"{where} line {empty}: the label column {names[y_col]!r} is empty; every row needs a label")
    as_ints = [_whole(v) for v in raw_labels]
    whole = all(v is not None for v in as_ints)
    if not whole:
        fractional = [(at, v) for (at, _), v, w in zip(rows, raw_labels, as_ints) if w is None and _number(v) is not None]
        if fractional and len(fractional) == sum(w is None for w in as_ints):  # every label a number, some not whole
            at, cell = fractional[0]
            raise ValueError(f"the label column {names[y_col]!r} of {where} holds numbers that are not whole (line "
                             f"{at}: {cell}): a continuous target, but evonas searches classifiers; bin it into "
                             "classes, or choose the label column with label: <column>")  # fmt: skip
    keys: list[Any] = as_ints if whole else raw_labels
    order = sorted(set(keys))  # whole numbers in numeric order, names in text order
    classes = [str(v) for v in order]
    index = {v: i for i, v in enumerate(order)}
    y = np.array([index[v] for v in keys], dtype=np.int64)
    if len(classes) > 1 and len(classes) * 2 > len(rows):
        raise ValueError(
            f"the label column {names[y_col]!r} of {where} has {len(classes)} different values in {len(rows)} rows, so "
            "most classes have one row and cannot be both learned and scored: is it an ID, not the label? Choose the "
            "label column with label: <column>"
        )
    if len(classes) > max_classes:
        raise ValueError(
            f"the label column {names[y_col]!r} of {where} has {len(classes)} different values, over the sanity limit "
            f"max_classes = {max_classes}; is it the label (label: <column>)? If you really have that many classes, "
            f"raise the limit with max_classes: {len(classes)}"
        )
    ds = split_arrays(f"csv:{file.name}", x, y, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                      num_classes=len(classes))  # fmt: skip
    ds = dataclasses.replace(ds, classes=tuple(classes), raw_input=RawInput("", "float64"),
                             feature_names=tuple(names[i] for i in x_cols), label_name=names[y_col])  # fmt: skip
    ds = check_dataset(
        _check_nonempty(ds, "the number of rows"), where=where, max_classes=max_classes,
        keys={part: ("features", names[y_col]) for part in ("train", "val", "test")},
    )  # fmt: skip
    if whole and order != list(range(len(order))):  # (said once nothing can refuse the file: no note before an error)
        shown = ", ".join(f"{v} -> {i}" for i, v in enumerate(order[:8])) + (", ..." if len(order) > 8 else "")
        print(f"evonas: {where}: the labels of column {names[y_col]!r} are not 0..{len(order) - 1}, so the networks' "
              f"classes number them in order ({shown}); evonas export's metrics.json lists them as classes",
              file=sys.stderr)  # fmt: skip
    say_thin_splits(ds, where, f"label {names[y_col]!r}", "row")
    return _standardized(ds, standardize)


#: column names that say "the label" (a table whose label is not its last column)
_LABEL_NAME = re.compile(r"^(target|label|labels|class|classes|y|category|outcome)$", re.IGNORECASE)


def _say_label_named(label: str, features: list[str], where: str) -> None:
    """Warn (stderr) when the label is the default last column but a feature column is named like a label
    (``target``, ``class``, ``y``, ...): likely the real label, which the networks would take as a feature."""
    if _LABEL_NAME.match(label.strip()):
        return
    named = [f for f in features if _LABEL_NAME.match(f.strip())]
    if named:
        print(f"evonas: warning: {where}: the label is the last column {label!r} (label: -1, the default), but column "
              f"{named[0]!r} is named like a label and is taken as a feature; if it is the label, set "
              f"label: {named[0]}", file=sys.stderr)  # fmt: skip


_ID_NAME = re.compile(r"(^|[_\s.-])id$|^id([_\s.-]|$)|^(index|row|row_?number|unnamed: ?0)$", re.IGNORECASE)


def _say_id_columns(x: np.ndarray, names: list[str], where: str, *, explicit: bool) -> None:
    """Warn (stderr) about a feature column that looks like a row ID: a different whole number in every row, named
    like an ID (``patient_id``) or numbering the rows (``0, 1, 2, ...`` in any order). A network trains on it as a
    feature, and it carries nothing but the file's order."""
    if len(x) < 20:
        return
    for j, name in enumerate(names):
        v = x[:, j]
        if not (np.all(v == np.round(v)) and len(np.unique(v)) == len(v)):
            continue
        order = np.sort(v)
        numbered = order[0] in (0, 1) and bool(np.all(np.diff(order) == 1))  # 0.. or 1..n (a year column is not)
        if numbered or _ID_NAME.search(name.strip()):
            fix = "take it out of features" if explicit else f"leave it out with exclude: [{name}]"
            print(f"evonas: warning: {where}: column {name!r} looks like a row ID (a different whole number in every "
                  f"row{', numbering them' if numbered else ''}), which the networks would take as a feature; {fix}",
                  file=sys.stderr)  # fmt: skip


def _whole(text: str) -> int | None:
    """``text`` as a whole number (``3``, ``-1``, ``2.0``), else None."""
    try:
        return int(text)
    except ValueError:
        value = _number(text)
        return int(value) if value is not None and math.isfinite(value) and value == int(value) else None
