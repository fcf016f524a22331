"""The evaluation cache across runs: a repeated run trains nothing, the journal says what came from the cache."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import conftest
from evonas.config import load_experiment
from evonas.engine.cache import EvaluationCache, default_cache_path
from evonas.engine.journal import Journal
from evonas.engine.runner import Run
from evonas.fitness.train import TrainFitness


def digits_experiment(**changes) -> dict:
    return conftest.digits_experiment(**{"name": "cached", **changes})


@pytest.fixture
def trainings(monkeypatch) -> list[str]:
    """Keys of the genomes the train fitness actually trains (in this process: ``workers: 0``)."""
    calls: list[str] = []
    real = TrainFitness.evaluate

    def counting(self, genome, *, space, dataset, seed):
        calls.append(space.key(genome))
        return real(self, genome, space=space, dataset=dataset, seed=seed)

    monkeypatch.setattr(TrainFitness, "evaluate", counting)
    return calls


def rows(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        return db.execute("SELECT key, cached, metrics FROM evaluations ORDER BY trial").fetchall()


def test_a_repeated_run_trains_nothing(write_experiment, tmp_path: Path, trainings: list[str]) -> None:
    path = write_experiment(digits_experiment())
    first = Run(load_experiment(path), tmp_path / "first", progress=False).execute()
    assert first.cached == 0 and len(trainings) == first.evaluations == 12
    trained = list(trainings)
    second = Run(load_experiment(path), tmp_path / "second", progress=False).execute()
    assert len(trainings) == len(trained), "the repeated run trained again"
    assert second.cached == second.evaluations == 12
    a, b = rows(tmp_path / "first"), rows(tmp_path / "second")
    assert [k for k, _, _ in a] == [k for k, _, _ in b]  # the same search: same genomes, same metrics
    assert [m for _, _, m in a] == [m for _, _, m in b]
    assert all(c == 0 for _, c, _ in a) and all(c == 1 for _, c, _ in b)
    assert len(EvaluationCache(default_cache_path())) == 12


def test_a_second_strategy_and_an_extension_reuse_what_is_cached(write_experiment, tmp_path: Path, trainings: list[str]) -> None:
    Run(load_experiment(write_experiment(digits_experiment(), name="ga")), tmp_path / "ga", progress=False).execute()
    ga_keys = set(trainings)
    random_exp = digits_experiment(strategy={"name": "random", "params": {"samples": 12, "batch": 4}})
    Run(load_experiment(write_experiment(random_exp, name="rnd")), tmp_path / "rnd", progress=False).execute()
    random_rows = rows(tmp_path / "rnd")
    shared = {k for k, _, _ in random_rows} & ga_keys
    assert shared, "the two searches share no genome; the test proves nothing"
    assert {k for k, c, _ in random_rows if c} == shared  # exactly the genomes the GA trained came from the cache
    assert len(trainings) == len(ga_keys) + 12 - len(shared)


def test_no_cache_and_other_settings_train_again(write_experiment, tmp_path: Path, trainings: list[str]) -> None:
    path = write_experiment(digits_experiment())
    Run(load_experiment(path), tmp_path / "first", progress=False).execute()
    exp = load_experiment(path)
    import dataclasses

    Run(dataclasses.replace(exp, cache=False), tmp_path / "nocache", progress=False).execute()
    assert len(trainings) == 24 and all(c == 0 for _, c, _ in rows(tmp_path / "nocache"))
    two_epochs = digits_experiment(fitness={"name": "train", "params": {"epochs": 2, "max_train_samples": 300}})
    Run(load_experiment(write_experiment(two_epochs, name="e2")), tmp_path / "e2", progress=False).execute()
    assert all(c == 0 for _, c, _ in rows(tmp_path / "e2"))  # other fitness settings: another problem


def test_the_cli_says_what_came_from_the_cache(write_experiment, tmp_path: Path, capsys) -> None:
    from evonas.cli import main

    path = write_experiment(digits_experiment())
    assert main(["run", str(path), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    assert "from the evaluation cache" not in capsys.readouterr().out
    assert main(["run", str(path), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert "12 from the evaluation cache" in capsys.readouterr().out
    assert main(["run", str(path), "--out", str(tmp_path / "c"), "--quiet", "--no-cache"]) == 0
    assert "from the evaluation cache" not in capsys.readouterr().out


def test_a_journal_from_before_the_cache_opens(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE evaluations (trial INTEGER PRIMARY KEY, seq INTEGER NOT NULL, key TEXT NOT NULL,"
                   " generation INTEGER NOT NULL, origin TEXT, parents TEXT, genome TEXT NOT NULL, status TEXT NOT NULL,"
                   " error TEXT, metrics TEXT, fitness TEXT, seed INTEGER, wall_s REAL, worker TEXT, finished_at REAL)")  # fmt: skip
        db.execute("INSERT INTO evaluations VALUES (0, 0, 'k', 0, '', '[]', '{}', 'ok', NULL, '{}', '[1.0]', 1, 0.1, 'w0', 0)")
    with Journal(path) as j:
        (rec,) = j.records()
        assert rec.key == "k" and rec.cached is False


def _npz_experiment(write_experiment, folder: Path, labels_seed: int) -> Path:
    """An experiment on ``folder/data.npz`` (a relative path), whose labels ``labels_seed`` draws."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)).astype("float32")
    y = np.random.default_rng(labels_seed).integers(0, 3, size=120)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "data.npz", X=x, y=y)
    exp = {"name": "npz", "seed": 0, "space": {"name": "mlp", "params": {"max_layers": 1, "widths": [8, 16]}},
           "dataset": {"name": "npz", "params": {"path": "data.npz"}},
           "fitness": {"name": "train", "params": {"epochs": 1}},
           "strategy": {"name": "random", "params": {"samples": 4}}, "workers": 0}  # fmt: skip
    path = write_experiment(exp, name="npz")
    target = folder / "npz.yaml"
    target.write_text(path.read_text())
    return target


def test_the_cache_tells_data_files_apart_by_their_contents(write_experiment, tmp_path: Path, trainings: list[str]) -> None:
    """The same experiment file and the same path, another data file: trained again, never answered from the cache
    with the other data's results (the path alone was in the fingerprint)."""
    path = _npz_experiment(write_experiment, tmp_path / "a", labels_seed=1)
    Run(load_experiment(path), tmp_path / "first", progress=False).execute()
    assert len(trainings) == 4
    again = Run(load_experiment(path), tmp_path / "again", progress=False).execute()
    assert again.cached == 4 and len(trainings) == 4  # the same data: from the cache
    path = _npz_experiment(write_experiment, tmp_path / "a", labels_seed=2)  # regenerated in place
    other = Run(load_experiment(path), tmp_path / "other", progress=False).execute()
    assert other.cached == 0 and len(trainings) == 8


def test_an_entry_stored_before_the_objective_s_metric_existed_is_a_miss(write_experiment, tmp_path: Path,
                                                                         trainings: list[str]) -> None:  # fmt: skip
    """A cached result stored before the fitness reported ``val_balanced_acc`` is evaluated again for a run whose
    objective it is (it would fail as 'no metric'), and still answers a run scored by ``val_acc``."""
    trained = trainings
    exp = digits_experiment()
    first = Run(load_experiment(write_experiment(exp, "acc")), tmp_path / "first", progress=False).execute()
    assert first.evaluations == len(trained) == 12
    with sqlite3.connect(default_cache_path()) as db:  # as an older evonas stored them
        for rowid, metrics in db.execute("SELECT rowid, metrics FROM evaluations").fetchall():
            old = {k: v for k, v in json.loads(metrics).items() if k != "val_balanced_acc"}
            db.execute("UPDATE evaluations SET metrics = ? WHERE rowid = ?", (json.dumps(old), rowid))
    again = Run(load_experiment(write_experiment(exp, "acc2")), tmp_path / "again", progress=False).execute()
    assert again.cached == 12 and len(trained) == 12
    balanced = {**exp, "objectives": [{"metric": "val_balanced_acc", "direction": "max"}]}
    third = Run(load_experiment(write_experiment(balanced, "bal")), tmp_path / "third", progress=False).execute()
    assert third.cached == 0 and third.failures == 0 and len(trained) == 24
