"""``nb201_table``: NAS-Bench-201 architectures scored by table lookup instead of training.

A table is a CSV file with the header ``index,arch_str,val_acc_12ep,test_acc_200ep``
(one row per architecture: the benchmark's index, its official architecture
string, the validation accuracy in percent after 12 epochs, and the test
accuracy in percent after the full 200-epoch schedule). The CIFAR-10 table of
the whole space (15,625 rows) ships as ``evonas.genomes/benchmarks/nb201_cifar10.csv``;
its provenance and licence are in the README next to it.

Example::

    table = load_table()                         # the shipped CIFAR-10 table, read once per process
    row = table.lookup("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                       "+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    row.test_acc_200ep                           # 94.3733

In an experiment file::

    space: {name: nb201}
    fitness: {name: nb201_table, params: {noise: 0.0}}
"""

from __future__ import annotations

import csv
import dataclasses
import math
import random
from pathlib import Path
from typing import Any, Iterator

from evonas.checks import check_int
from evonas.fitness.base import FITNESSES, EvaluationError, FitnessFunction
from evonas.spaces.base import Genome, InvalidGenome, SearchSpace
from evonas.spaces.defaults import genomes_dir

__all__ = ["NB201Table", "NB201TableFitness", "TableRow", "TABLE_COLUMNS", "default_table_path", "load_table"]

#: the header every table must have, in this order.
TABLE_COLUMNS: tuple[str, ...] = ("index", "arch_str", "val_acc_12ep", "test_acc_200ep")
#: the skeleton the benchmark trained (the table's numbers are for these networks only).
_BENCHMARK_SKELETON = {"C": 16, "N": 5}


def default_table_path() -> Path:
    """The shipped CIFAR-10 table (``genomes/benchmarks/nb201_cifar10.csv``)."""
    return genomes_dir() / "benchmarks" / "nb201_cifar10.csv"


@dataclasses.dataclass(frozen=True)
class TableRow:
    """One architecture of a table: accuracies in percent."""

    index: int
    arch_str: str
    val_acc_12ep: float
    test_acc_200ep: float


class NB201Table:
    """A validated table, indexed by architecture string. Build it with :func:`load_table`."""

    def __init__(self, path: Path, rows: list[TableRow]) -> None:
        self.path = path
        self.rows = rows
        self._by_arch = {r.arch_str: r for r in rows}

    def lookup(self, arch_str: str) -> TableRow:
        """The row of ``arch_str``; raises ``KeyError`` naming the table if it has no such row."""
        try:
            return self._by_arch[arch_str]
        except KeyError:
            raise KeyError(f"{self.path}: no row for architecture {arch_str}") from None

    def best(self, column: str = "test_acc_200ep") -> TableRow:
        """The row with the highest ``column`` (the first such row on ties)."""
        return max(self.rows, key=lambda r: getattr(r, column))

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[TableRow]:
        return iter(self.rows)

    def __contains__(self, arch_str: object) -> bool:
        return arch_str in self._by_arch


_CACHE: dict[tuple[str, int, int], NB201Table] = {}


def load_table(path: str | Path | None = None) -> NB201Table:
    """The table at ``path`` (default: the shipped CIFAR-10 table), parsed and validated once per process.

    Cached by resolved path, size and modification time. Raises ``ValueError`` naming the file
    (and the line, for a bad row).
    """
    file = Path(path) if path is not None else default_table_path()
    try:
        stat = file.stat()
    except OSError:
        raise ValueError(f"{file}: no such table file") from None
    if not file.is_file():
        raise ValueError(f"{file}: expected a CSV table file, got a folder")
    key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
    table = _CACHE.get(key)
    if table is None:
        table = _CACHE[key] = NB201Table(file, _parse(file))
    return table


def _parse(file: Path) -> list[TableRow]:
    """Rows of ``file``, every field checked; the first problem raises ValueError ``file:line: ...``."""
    from evonas.spaces.nb201 import NB201Space  # the official architecture-string parser

    parser = NB201Space()
    try:
        with open(file, newline="", encoding="utf-8") as fh:
            lines = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{file}: cannot read the table ({exc})") from None
    if not lines:
        raise ValueError(f"{file}: empty; expected the header {','.join(TABLE_COLUMNS)}")
    header = [h.strip() for h in lines[0]]
    if tuple(header) != TABLE_COLUMNS:
        raise ValueError(f"{file}:1: header {','.join(header)!r}; expected {','.join(TABLE_COLUMNS)}")
    rows: list[TableRow] = []
    seen_index: dict[int, int] = {}
    seen_arch: dict[str, int] = {}
    for lineno, fields in enumerate(lines[1:], start=2):
        if not fields:
            continue  # a blank line
        where = f"{file}:{lineno}"
        if len(fields) != len(TABLE_COLUMNS):
            expected = f"{len(TABLE_COLUMNS)} ({','.join(TABLE_COLUMNS)})"
            raise ValueError(f"{where}: {len(fields)} columns; expected {expected}")
        index_text, arch, val_text, test_text = (f.strip() for f in fields)
        try:
            index = int(index_text)
        except ValueError:
            raise ValueError(f"{where}: index: expected an integer, got {index_text!r}") from None
        if index < 0:
            raise ValueError(f"{where}: index: expected an integer >= 0, got {index}")
        try:
            parser.from_arch_str(arch)
        except InvalidGenome as exc:
            raise ValueError(f"{where}: arch_str: {exc}") from None
        val, test = _percent(val_text, "val_acc_12ep", where), _percent(test_text, "test_acc_200ep", where)
        if index in seen_index:
            raise ValueError(f"{where}: index {index} repeats line {seen_index[index]}")
        if arch in seen_arch:
            raise ValueError(f"{where}: arch_str repeats line {seen_arch[arch]}")
        seen_index[index], seen_arch[arch] = lineno, lineno
        rows.append(TableRow(index, arch, val, test))
    if not rows:
        raise ValueError(f"{file}: no rows after the header")
    for column in ("val_acc_12ep", "test_acc_200ep"):  # fractions where percentages belong: every figure 100x off
        top = max(getattr(r, column) for r in rows)
        if len(rows) > 1 and top <= 1.0:
            raise ValueError(f"{file}: {column}: every value is at most {top:g}, fractions where the table holds "
                             "percentages (0 to 100): multiply the column by 100")  # fmt: skip
    return rows


def _percent(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {column}: expected a number, got {text!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 100.0:
        raise ValueError(f"{where}: {column}: expected a percentage from 0 to 100, got {text}")
    return value


@FITNESSES.register("nb201_table")
class NB201TableFitness(FitnessFunction):
    """Scores an ``nb201`` genome by looking up its architecture string in a table; no training.

    Reports ``val_acc`` = ``val_acc_12ep / 100`` (a fraction: the search signal), ``test_acc_200ep``
    (percent: recorded for reporting, never seen by the search unless you name it as an objective)
    and ``index`` (the table row). ``noise`` adds Gaussian noise of that many percentage points to
    ``val_acc_12ep``, drawn from a generator seeded by the evaluation's seed: the same genome in a run
    with the same seed always gets the same noisy score (a noisy-benchmark robustness check).

    Several table rows share one canonical key (genomes that provably compute the same function,
    e.g. an edge cut off from the output). The engine answers a repeated key from the run's journal,
    so the second such row gets the first one's numbers: they are the same network.

    ``params`` and ``flops`` are those of the decoded network (``space.cost_metrics``, exact and
    without decoding) for ``num_classes`` classes and ``image_size`` x ``image_size`` RGB inputs
    (CIFAR-10: 10 and 32), so they can be objectives or constraints.

    Example (experiment file)::

        space: {name: nb201}
        fitness: {name: nb201_table, params: {noise: 0.5}}
    """

    needs_dataset = False
    cacheable = False  # a lookup already
    metrics = ("val_acc", "test_acc_200ep", "index", "params", "flops")
    metric_ranges = {"val_acc": (0.0, 1.0), "test_acc_200ep": (0.0, 100.0)}  # a fraction; percent (each table's own)

    def __init__(self, table: str | None = None, noise: float = 0.0, num_classes: int = 10, image_size: int = 32) -> None:
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not math.isfinite(noise) or noise < 0:
            raise ValueError(f"noise: expected a standard deviation >= 0 in percentage points, got {noise!r}")
        check_int("num_classes", num_classes, 1)
        check_int("image_size", image_size, 1)
        #: the input shape and number of classes the table's networks were built for (cheap metrics)
        self.cost_input: tuple[tuple[int, ...], int] = ((3, image_size, image_size), num_classes)
        self.params = {"table": table, "noise": float(noise), "num_classes": num_classes, "image_size": image_size}
        self.table = load_table(table)  # a bad table is a configuration error, before the run starts
        # what the table holds: a limit past its best (test_acc_200ep >= 95 on CIFAR-10) is refused before the run
        tests = [r.test_acc_200ep for r in self.table]
        vals = [round(r.val_acc_12ep / 100.0, 12) for r in self.table]
        self.metric_ranges = {"test_acc_200ep": (min(tests), max(tests))}
        if not noise:  # noise may take val_acc past the table's values
            self.metric_ranges["val_acc"] = (min(vals), max(vals))
        self._checked: SearchSpace | None = None  # the space last checked (kept alive: no id reuse)

    def lookup(self, arch_str: str) -> TableRow:
        """The table row of ``arch_str`` (no noise); raises ``KeyError`` if the table has none."""
        return self.table.lookup(arch_str)

    def check_space(self, space: SearchSpace) -> None:
        """Raise ``ValueError`` unless ``space`` is the ``nb201`` space with the benchmark's skeleton."""
        if space.name != "nb201" or not hasattr(space, "to_arch_str"):
            raise ValueError(f"fitness 'nb201_table' needs the space 'nb201', got '{space.name}'")
        for param, value in _BENCHMARK_SKELETON.items():
            if getattr(space, param, value) != value:
                raise ValueError(
                    f"fitness 'nb201_table': the table holds networks with {param}={value}, "
                    f"the space has {param}={getattr(space, param)}"
                )

    def evaluate(self, genome: Genome, *, space: SearchSpace, dataset: Any, seed: int) -> dict[str, float]:
        """The table's figures for ``genome`` (``val_acc`` noisy if ``noise`` > 0)."""
        if space is not self._checked:
            self.check_space(space)
            self._checked = space
        arch = space.to_arch_str(genome)  # type: ignore[attr-defined]
        try:
            row = self.table.lookup(arch)
        except KeyError as exc:
            raise EvaluationError(str(exc)) from None
        val = row.val_acc_12ep
        if self.params["noise"]:
            val += random.Random(seed).gauss(0.0, self.params["noise"])
        shape, classes = self.cost_input
        costs = space.cost_metrics(genome, input_shape=shape, num_classes=classes)
        return {"val_acc": round(val / 100.0, 12), "test_acc_200ep": row.test_acc_200ep, "index": float(row.index), **costs}
