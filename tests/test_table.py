"""The ``nb201_table`` fitness: table parsing and validation, lookups, noise, the space it accepts."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from evonas.config import ConfigError, parse_experiment
from evonas.engine.build import build
from evonas.fitness import FITNESSES, EvaluationError
from evonas.fitness.table import NB201TableFitness, TABLE_COLUMNS, default_table_path, load_table
from evonas.spaces import make_space

HEADER = ",".join(TABLE_COLUMNS)
ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
OTHER = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


def _write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_table() -> None:
    table = load_table()
    assert len(table) == 15625
    assert sorted(r.index for r in table) == list(range(15625))
    best = table.best()
    assert (best.index, best.test_acc_200ep) == (6111, 94.3733)
    assert load_table() is table  # read once per process
    assert load_table(default_table_path()) is table
    assert "nb201_table" in FITNESSES


def test_every_row_round_trips_through_the_space() -> None:
    space = make_space("nb201")
    fitness = NB201TableFitness()
    for row in load_table():
        genome = space.from_arch_str(row.arch_str)
        assert space.to_arch_str(genome) == row.arch_str
        assert fitness.lookup(row.arch_str) is row
        metrics = fitness.evaluate(genome, space=space, dataset=None, seed=0)
        assert metrics["val_acc"] == pytest.approx(row.val_acc_12ep / 100)
        assert metrics["test_acc_200ep"] == row.test_acc_200ep and metrics["index"] == row.index


def test_a_small_table(tmp_path: Path) -> None:
    path = _write(tmp_path, f"{HEADER}\n1,{ARCH},82.834,93.66\n\n0, {OTHER} ,63.364,85.8633\n")
    table = load_table(path)
    assert [r.index for r in table] == [1, 0]
    assert table.lookup(OTHER).val_acc_12ep == 63.364
    with pytest.raises(KeyError, match="no row for architecture"):
        table.lookup("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    path.write_text(f"{HEADER}\n1,{ARCH},80,90\n")  # a changed file is read again
    assert load_table(path).lookup(ARCH).val_acc_12ep == 80


@pytest.mark.parametrize(
    "text, message",
    [
        ("", r"t\.csv: empty"),
        ("index,arch,val,test\n", r"t\.csv:1: header"),
        (f"{HEADER}\n", r"t\.csv: no rows after the header"),
        (f"{HEADER}\n1,{ARCH},82.8\n", r"t\.csv:2: 3 columns; expected 4"),
        (f"{HEADER}\none,{ARCH},82.8,93.6\n", r"t\.csv:2: index: expected an integer, got 'one'"),
        (f"{HEADER}\n-1,{ARCH},82.8,93.6\n", r"t\.csv:2: index: expected an integer >= 0"),
        (f"{HEADER}\n1,|conv~0|+|x~0|y~1|+|a~0|b~1|c~2|,82.8,93.6\n", r"t\.csv:2: arch_str: nb201: unknown op 'conv'"),
        (f"{HEADER}\n1,{ARCH},high,93.6\n", r"t\.csv:2: val_acc_12ep: expected a number, got 'high'"),
        (f"{HEADER}\n1,{ARCH},82.8,nan\n", r"t\.csv:2: test_acc_200ep: expected a percentage"),
        (f"{HEADER}\n1,{ARCH},0.83,193.6\n", r"t\.csv:2: test_acc_200ep: expected a percentage from 0 to 100, got 193"),
        (f"{HEADER}\n1,{ARCH},82.8,93.6\n1,{OTHER},60,80\n", r"t\.csv:3: index 1 repeats line 2"),
        (f"{HEADER}\n1,{ARCH},82.8,93.6\n2,{ARCH},60,80\n", r"t\.csv:3: arch_str repeats line 2"),
        (f"{HEADER}\n1,{ARCH},82.8,0.936\n2,{OTHER},60,0.8\n",
         r"t\.csv: test_acc_200ep: every value is at most 0.936, fractions where the table holds percentages"),
    ],
)
def test_bad_tables(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_table(_write(tmp_path, text))


def test_missing_table(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"nope\.csv: no such table file"):
        load_table(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="got a folder"):
        load_table(tmp_path)


def test_noise_is_deterministic_per_seed() -> None:
    space = make_space("nb201")
    genome = space.from_arch_str(ARCH)
    clean = NB201TableFitness().evaluate(genome, space=space, dataset=None, seed=1)["val_acc"]
    noisy = NB201TableFitness(noise=0.5)
    first = [noisy.evaluate(genome, space=space, dataset=None, seed=s)["val_acc"] for s in range(50)]
    other = NB201TableFitness(noise=0.5)
    again = [other.evaluate(genome, space=space, dataset=None, seed=s)["val_acc"] for s in range(50)]
    assert first == again
    assert len(set(first)) == 50
    assert all(abs(v - clean) < 0.025 for v in first)  # 5 sigma, in fractions
    assert abs(sum(first) / 50 - clean) < 0.003
    assert noisy.evaluate(genome, space=space, dataset=None, seed=1)["test_acc_200ep"] == 93.66  # never noisy


def test_refuses_other_spaces() -> None:
    fitness = NB201TableFitness()
    chain = make_space("chain")
    with pytest.raises(ValueError, match="needs the space 'nb201', got 'chain'"):
        fitness.evaluate(chain.sample(rng=random.Random(0)), space=chain, dataset=None, seed=0)
    small = make_space("nb201", {"C": 8})
    with pytest.raises(ValueError, match="the table holds networks with C=16, the space has C=8"):
        fitness.evaluate(small.from_arch_str(ARCH), space=small, dataset=None, seed=0)
    narrow = make_space("nb201", {"ops": ["none", "skip_connect", "nor_conv_3x3", "avg_pool_3x3"]})
    genome = narrow.from_arch_str(OTHER.replace("nor_conv_1x1", "nor_conv_3x3"))
    assert fitness.evaluate(genome, space=narrow, dataset=None, seed=0)["test_acc_200ep"] > 0


def test_architecture_missing_from_a_table_is_a_failed_evaluation(tmp_path: Path) -> None:
    space = make_space("nb201")
    fitness = NB201TableFitness(table=str(_write(tmp_path, f"{HEADER}\n1,{ARCH},82.8,93.6\n")))
    with pytest.raises(EvaluationError, match="no row for architecture"):
        fitness.evaluate(space.from_arch_str(OTHER), space=space, dataset=None, seed=0)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"noise": -1}, "fitness.params.noise: expected a standard deviation >= 0"),
        ({"noise": "big"}, "fitness.params.noise: expected a number"),
        ({"table": "missing.csv"}, "fitness.params: missing.csv: no such table file"),
        ({"tabel": "x.csv"}, "fitness.params.tabel: unknown parameter"),
        ({}, None),
    ],
)
def test_parameters_are_checked_by_build(params: dict, message: str | None) -> None:
    raw = {"space": {"name": "nb201"}, "fitness": {"name": "nb201_table", "params": params}, "workers": 0}
    if message is None:
        assert build(parse_experiment(raw)).fitness.table is load_table()
        return
    with pytest.raises(ConfigError, match=message):
        build(parse_experiment(raw))


def test_objectives_may_name_table_metrics() -> None:
    raw = {"space": {"name": "nb201"}, "fitness": {"name": "nb201_table"}, "objectives": [{"metric": "test_acc_200ep"}]}
    assert build(parse_experiment(raw)).experiment.objectives[0].metric == "test_acc_200ep"
    assert build(parse_experiment({**raw, "objectives": [{"metric": "params", "direction": "min"}]}))
    with pytest.raises(ConfigError, match="reports val_acc, test_acc_200ep, index, params, flops; got 'size'"):
        build(parse_experiment({**raw, "objectives": [{"metric": "size"}]}))


def test_choosing_by_a_test_metric_is_said(tmp_path: Path, capsys) -> None:
    """best --by test_acc_200ep (or --where on it) picks on the test split: a note says its figure is then no held-out
    estimate; choosing by val_acc says nothing."""
    from evonas.cli import main

    cfg = tmp_path / "t.yaml"
    cfg.write_text("space: nb201\nfitness: nb201_table\nstrategy: {name: random, params: {samples: 5}}\nworkers: 0\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["best", str(tmp_path / "run"), "--by", "test_acc_200ep"]) == 0
    assert capsys.readouterr().err == ("evonas: note: choosing by test_acc_200ep uses the test split, so its figure "
                                       "for the evaluation chosen is no longer a held-out estimate\n")  # fmt: skip
    assert main(["best", str(tmp_path / "run"), "--where", "val_acc > 0"]) == 0
    assert capsys.readouterr().err == ""
