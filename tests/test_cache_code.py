"""The evaluation cache answers only for the code that runs: a plug-in's helper modules count, a fitness without a
source file and a plug-in edited since the process loaded it are not cached (each said in one line)."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

from evonas.config import parse_experiment
from evonas.engine.runner import Run
from evonas.fitness import FITNESSES, FitnessFunction

FITNESS = """\
from evonas.fitness import FITNESSES, FitnessFunction
from {helper} import VALUE


@FITNESSES.register("{name}")
class Scored(FitnessFunction):
    metrics = ("score",)
    needs_dataset = False

    def evaluate(self, genome, *, space, dataset, seed):
        return {{"score": VALUE}}
"""


def experiment(fitness: str, plugins: list[str] | None = None) -> dict:
    return {"name": "code", "seed": 0, "space": {"name": "nb201"}, "fitness": {"name": fitness},
            "strategy": {"name": "random", "params": {"samples": 3}}, "objectives": [{"metric": "score"}],
            "workers": 0, **({"plugins": plugins} if plugins else {})}  # fmt: skip


def scores(run_dir: Path) -> tuple[list[float], int]:
    import sqlite3

    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        rows = db.execute("SELECT metrics, cached FROM evaluations ORDER BY trial").fetchall()
    return [json.loads(m)["score"] for m, _ in rows], sum(c for _, c in rows)


def test_an_edited_helper_module_of_a_plug_in_is_another_problem(tmp_path: Path) -> None:
    """``from helper import VALUE`` in the plug-in: a new VALUE trains again (the helper's file is hashed too)."""
    (tmp_path / "scored_fit.py").write_text(FITNESS.format(helper="scored_helper", name="t_scored"))
    (tmp_path / "exp.yaml").write_text(json.dumps(experiment("t_scored", ["scored_fit.py"])))
    for value, run in ((0.1, "a"), (0.9, "b"), (0.9, "c")):
        (tmp_path / "scored_helper.py").write_text(f"VALUE = {value}\n")
        done = subprocess.run([sys.executable, "-m", "evonas", "run", "exp.yaml", "--out", run, "--quiet"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert scores(tmp_path / "a") == ([0.1] * 3, 0)
    assert scores(tmp_path / "b") == ([0.9] * 3, 0)  # the cache held the old helper's scores under the same key
    assert scores(tmp_path / "c") == ([0.9] * 3, 3)  # the same code again: answered from the cache


def test_a_helper_imported_inside_evaluate_is_part_of_the_problem(tmp_path: Path) -> None:
    """``from scored_pkg.util import VALUE`` inside ``evaluate``: not loaded when the run starts (nor ever in the run's
    process with workers), found by its file: an edit trains again."""
    (tmp_path / "scored_pkg").mkdir()
    (tmp_path / "scored_pkg" / "__init__.py").write_text("")
    (tmp_path / "late_fit.py").write_text(
        FITNESS.replace("from {helper} import VALUE\n", "").replace(
            "        return {{\"score\": VALUE}}", "        from scored_pkg.util import VALUE\n\n        return {{\"score\": VALUE}}"
        ).format(name="t_late"))  # fmt: skip
    (tmp_path / "exp.yaml").write_text(json.dumps(experiment("t_late", ["late_fit.py"])))
    for value, run in ((0.1, "a"), (0.9, "b")):
        (tmp_path / "scored_pkg" / "util.py").write_text(f"VALUE = {value}\n")
        done = subprocess.run([sys.executable, "-m", "evonas", "run", "exp.yaml", "--out", run, "--quiet"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert scores(tmp_path / run) == ([value] * 3, 0), (run, scores(tmp_path / run))


def test_a_fitness_without_a_source_file_is_not_cached(tmp_path: Path, capsys) -> None:
    """A class made where no file holds its code (a notebook cell, stdin): its edits could not be told apart."""
    module = types.ModuleType("t_cell")  # as a notebook's __main__: no __file__
    sys.modules["t_cell"] = module
    try:
        for value, run in ((0.2, "a"), (0.8, "b")):
            FITNESSES._items.pop("t_cell_fit", None)
            exec(FITNESS.replace("from {helper} import VALUE\n", f"VALUE = {value}\n").format(name="t_cell_fit"),
                 module.__dict__)  # fmt: skip
            Run(parse_experiment(experiment("t_cell_fit")), tmp_path / run, progress=False).execute()
            assert scores(tmp_path / run) == ([value] * 3, 0)
            assert ("evonas: note: this run's evaluations are not cached: t_cell.Scored has no source file"
                    in capsys.readouterr().err)  # fmt: skip
    finally:
        FITNESSES._items.pop("t_cell_fit", None)
        sys.modules.pop("t_cell", None)


def test_a_plug_in_edited_after_this_process_loaded_it_is_not_cached(tmp_path: Path, capsys, monkeypatch) -> None:
    """Run, edit the plug-in, run again in the same process (a notebook): the old code still runs here, and its
    results must not be stored as the new file's; a fresh process then runs and caches the new code."""
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "t_edit_helper.py").write_text("VALUE = 0.1\n")
    (tmp_path / "t_edit_fit.py").write_text(FITNESS.format(helper="t_edit_helper", name="t_edit"))
    exp = experiment("t_edit", ["t_edit_fit"])
    try:
        Run(parse_experiment(exp), tmp_path / "a", progress=False).execute()
        assert "not cached" not in capsys.readouterr().err
        (tmp_path / "t_edit_helper.py").write_text("VALUE = 0.7\n")
        Run(parse_experiment(exp), tmp_path / "b", progress=False).execute()
        assert scores(tmp_path / "b") == ([0.1] * 3, 0)  # the code loaded here runs, and the cache is not asked
        assert ("evonas: note: this run's evaluations are not cached: t_edit_helper.py changed since this process "
                "loaded it" in capsys.readouterr().err)  # fmt: skip
        (tmp_path / "exp.yaml").write_text(json.dumps(exp))
        done = subprocess.run([sys.executable, "-m", "evonas", "run", "exp.yaml", "--out", "c", "--quiet"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert scores(tmp_path / "c") == ([0.7] * 3, 0)
    finally:
        FITNESSES._items.pop("t_edit", None)
        for name in ("t_edit_fit", "t_edit_helper"):
            sys.modules.pop(name, None)


def test_a_build_function_s_helper_module_is_part_of_the_space_s_code(tmp_path: Path, monkeypatch) -> None:
    from evonas.spaces import make_space

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "t_blocks.py").write_text("WIDTH = 8\n")
    (tmp_path / "t_build.py").write_text(
        "import torch.nn as nn\nfrom t_blocks import WIDTH\n\n"
        "def build(arch, input_shape, num_classes):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0], WIDTH * arch.int('k', 1, 2)),\n"
        "                         nn.Linear(WIDTH * 2, num_classes))\n")  # fmt: skip
    import importlib

    def fingerprint() -> str:
        importlib.import_module("t_build")  # a run imports its plug-ins first
        return make_space("function", {"build": "t_build:build", "input_shape": [4], "num_classes": 2}).fingerprint()

    try:
        before = fingerprint()
        for name in ("t_build", "t_blocks"):
            sys.modules.pop(name, None)  # as a new process would
        (tmp_path / "t_blocks.py").write_text("WIDTH = 16\n")
        after = fingerprint()
        assert before != after
    finally:
        for name in ("t_build", "t_blocks"):
            sys.modules.pop(name, None)


def test_a_plug_in_of_one_file_keeps_the_hash_runs_recorded_before(tmp_path: Path, monkeypatch) -> None:
    """A plug-in importing no module of the user's is hashed as its file alone (the journals' and caches' hashes
    so far stay valid); evonas's own components are not hashed (its version stands for them)."""
    import hashlib
    import importlib

    from evonas.codehash import user_code

    assert user_code(FitnessFunction) == (None, None)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "t_alone.py").write_text("import json\nimport torch\n\n\nclass Alone:\n    pass\n")
    try:
        alone = importlib.import_module("t_alone").Alone
        assert user_code(alone) == (hashlib.sha256((tmp_path / "t_alone.py").read_bytes()).hexdigest()[:16], None)
    finally:
        sys.modules.pop("t_alone", None)
