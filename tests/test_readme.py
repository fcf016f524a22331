"""The README's Python examples run as written (each group in a fresh interpreter: they register names)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
STRATEGY_CHECK = """
import sqlite3, tempfile
from pathlib import Path
from evonas.cli import main

def keys(run):
    with sqlite3.connect(run / "journal.sqlite") as db:
        return [k for (k,) in db.execute("SELECT key FROM evaluations ORDER BY trial")]

d = Path(tempfile.mkdtemp())
(d / "one_plus_one.py").write_text(STRATEGY)
(d / "exp.yaml").write_text("name: opo\\nseed: 1\\nspace: {name: nb201}\\nfitness: {name: toy}\\nworkers: 0\\n"
                            "plugins: [./one_plus_one.py]\\nstrategy: {name: one_plus_one, params: {restart_after: 4}}\\n")
assert main(["run", str(d / "exp.yaml"), "--out", str(d / "full"), "--set", "budget=30", "--quiet"]) == 0
assert main(["run", str(d / "exp.yaml"), "--out", str(d / "short"), "--set", "budget=12", "--quiet"]) == 0
assert main(["resume", str(d / "short"), "--budget", "30", "--plugins", str(d / "one_plus_one.py")]) == 0
full = keys(d / "full")
assert len(full) == 30 and len(set(full)) == 30 and keys(d / "short") == full, (full, keys(d / "short"))
assert sum(1 for line in (d / "full" / "logbook.csv").read_text().splitlines()[1:] if line) == 3
"""
CHECKS = {
    # the mutation example, then its contract check
    "mutation": (BLOCKS[0] + BLOCKS[1], ""),
    # the fitness example, scoring a sampled genome on the digits
    "fitness": (BLOCKS[2], "import random\nfrom evonas.datasets import DATASETS\nfrom evonas.spaces import make_space\n"
                "space = make_space('chain')\ndata = DATASETS.get('digits')(seed=0)\n"
                "m = FewSteps(steps=5).evaluate(space.sample(rng=random.Random(0)), space=space, dataset=data, seed=1)\n"
                "assert 0 <= m['val_acc'] <= 1 and m['params'] > 0, m\n"),
    # the fitness that reports to a pruner, in a search with ASHA
    "pruned fitness": (BLOCKS[2] + BLOCKS[3], "from evonas.config import parse_experiment\n"
                       "from evonas.engine.build import build\nfrom evonas.engine.runner import search\n"
                       "exp = {'name': 'p', 'space': {'name': 'chain'}, 'fitness': {'name': 'few_steps_pruned', "
                       "'params': {'steps': 9}}, 'strategy': {'name': 'random', 'params': {'samples': 12}}, "
                       "'pruner': {'name': 'asha', 'params': {'reduction_factor': 3}}, 'workers': 0, 'cache': False}\n"
                       "records = search(build(parse_experiment(exp))).records\n"
                       "assert len(records) == 12 and any(r.status == 'pruned' for r in records), records\n"
                       "assert all(r.metrics['train_steps'] < 9 for r in records if r.status == 'pruned')\n"),
    # the define-by-run space, checked with the contract helper at the wine data's shape
    "function": (BLOCKS[4], "from evonas.spaces.function import FunctionSpace\nfrom evonas.testing import check_space\n"
                 "check_space(FunctionSpace(build=build, input_shape=[13], num_classes=3), n=20)\n"),
    # the search-space example, checked with the contract helper
    "space": (BLOCKS[5], "from evonas.testing import check_space\ncheck_space(WidthSpace(), n=20)\n"),
    # the (1+1)-EA strategy as a plug-in file: a run stopped early and resumed asks what an uninterrupted one asks
    "strategy": ("", f"STRATEGY = {BLOCKS[6]!r}\n" + STRATEGY_CHECK),
    # DEAP's eaMuPlusLambda on a toolbox built from an experiment file
    "deap": (BLOCKS[7], "assert len(pop) == 10 and len(log) == 6\n"),
}


def test_readme_has_the_expected_examples() -> None:
    assert len(BLOCKS) == 8


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_readme_example_runs(name: str) -> None:
    code, check = CHECKS[name]
    proc = subprocess.run(
        [sys.executable, "-c", code + "\n" + check], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
