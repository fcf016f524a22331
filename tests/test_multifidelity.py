"""Multi-fidelity GA: brief training for every new genome, full training for the promoted share only."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from evonas.config import load_experiment
from evonas.engine.runner import Run


def experiment(**strategy_params) -> dict:
    return {
        "name": "mf",
        "seed": 2,
        "space": {"name": "chain", "params": {"max_layers": 2, "widths": [8, 16]}},
        "dataset": {"name": "digits"},
        "fitness": {"name": "train", "params": {"epochs": 2, "max_train_samples": 400}},
        "strategy": {"name": "ga", "params": {"population_size": 6, "offspring": 6, "generations": 2,
                                              "fidelity": 0.25, "promote": 0.34, **strategy_params}},
        "workers": 0,
    }  # fmt: skip


def journal(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        return db.execute("SELECT trial, key, generation, fidelity, metrics FROM evaluations ORDER BY trial").fetchall()


def test_every_genome_briefly_the_best_of_each_generation_in_full(write_experiment, tmp_path: Path) -> None:
    out = tmp_path / "mf"
    summary = Run(load_experiment(write_experiment(experiment())), out, progress=False).execute()
    rows = journal(out)
    assert summary.evaluations == len(rows) == 3 * (6 + 3)  # 3 generations: 6 brief, ceil(6 * 0.34) = 3 in full
    for gen in range(3):
        brief = [(k, json.loads(m)) for _, k, g, f, m in rows if g == gen and f == 0.25]
        full = [(k, json.loads(m)) for _, k, g, f, m in rows if g == gen and f is None]
        assert len(brief) == 6 and len(full) == 3
        ranked = sorted(brief, key=lambda km: -km[1]["val_acc"])
        assert {k for k, _ in full} == {k for k, _ in ranked[:3]}  # the promoted are the best brief results
        assert all(m["epochs"] == 2 for _, m in full) and all(m["epochs"] < 1 for _, m in brief)
    best = json.loads((out / "best.json").read_text())
    full_accs = [json.loads(m)["val_acc"] for _, _, _, f, m in rows if f is None]
    assert best["metrics"]["val_acc"] == max(full_accs) and best["metrics"]["epochs"] == 2


def test_a_multi_fidelity_run_resumes_exactly(write_experiment, tmp_path: Path) -> None:
    path = write_experiment(experiment())
    Run(load_experiment(path), tmp_path / "full", progress=False).execute()
    short = Run(load_experiment(write_experiment({**experiment(), "budget": 13}, name="short")), tmp_path / "short", progress=False)
    short.execute()
    assert len(journal(tmp_path / "short")) == 13  # cut in the middle of generation 1's promotions
    Run.resume(tmp_path / "short", progress=False, overrides={"budget": 27}).continue_run()
    a = [(t, k, g, f) for t, k, g, f, _ in journal(tmp_path / "full")]
    b = [(t, k, g, f) for t, k, g, f, _ in journal(tmp_path / "short")]
    assert a == b


def test_promote_without_fidelity_is_refused(write_experiment, tmp_path: Path, capsys) -> None:
    from conftest import toy_experiment
    from evonas.cli import main

    exp = write_experiment(toy_experiment(strategy={"name": "ga", "params": {"population_size": 4, "promote": 0.5}}))
    assert main(["run", str(exp), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("strategy.params.promote: 0.5 does nothing without fidelity (multi-fidelity: the share of "
                        "each generation's briefly trained genomes trained in full); set fidelity too, or remove it"), err
    assert not (tmp_path / "run").exists()
    # the default, which every GA run's config.yaml records, is no mistake
    exp = write_experiment(toy_experiment(strategy={"name": "ga", "params": {"population_size": 4, "generations": 1,
                                                                             "promote": 0.25}}), name="default")  # fmt: skip
    assert main(["run", str(exp), "--out", str(tmp_path / "ok"), "--quiet"]) == 0
