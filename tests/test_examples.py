"""The guide pages' Python examples run as written (each in a fresh interpreter: they register names).

Each example is picked from its page by a string its block contains (``class FewSteps(``), not by its position,
so pages can gain and lose other blocks; a block that is gone, or a string that now matches several blocks,
fails the test by name. ``--8<-- "path"`` lines are expanded as the site's build expands them (the mutation
example is ``experiments/my_ops.py`` itself).
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO

DOCS = REPO / "docs"


def python_blocks(page: str) -> list[str]:
    """The fenced ``python`` blocks of ``docs/<page>``, with snippet lines replaced by the files they name."""
    text = (DOCS / page).read_text(encoding="utf-8")
    text = re.sub(r'^--8<-- "([^"]+)"$', lambda m: (REPO / m.group(1)).read_text(encoding="utf-8"), text, flags=re.M)
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def example(page: str, marker: str) -> str:
    """The one Python block of ``docs/<page>`` that contains ``marker``."""
    found = [block for block in python_blocks(page) if marker in block]
    if len(found) != 1:
        pytest.fail(
            f"docs/{page}: expected exactly one ```python block containing {marker!r}, found {len(found)} "
            "(the example moved or was renamed: update tests/test_examples.py)",
            pytrace=False,
        )
    return found[0]


# the (1+1)-EA, written to a plug-in file (``STRATEGY`` holds its source): a run stopped early and resumed asks
# what an uninterrupted one asks
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

# name -> (the blocks, in order, as (page, marker); the check that follows them). The blocks are run, except for
# "strategy", whose block is handed to its check as the source of a plug-in file.
EXAMPLES: dict[str, tuple[list[tuple[str, str]], str]] = {
    # the mutation example (experiments/my_ops.py), then the page's contract check of it
    "mutation": (
        [("guide/operators.md", "class WidenLayer("), ("guide/operators.md", "check_mutation(WidenLayer()")], ""
    ),
    # the fitness example, scoring a sampled genome on the digits
    "fitness": (
        [("guide/fitness.md", "class FewSteps(")],
        "import random\nfrom evonas.datasets import DATASETS\nfrom evonas.spaces import make_space\n"
        "space = make_space('chain')\ndata = DATASETS.get('digits')(seed=0)\n"
        "m = FewSteps(steps=5).evaluate(space.sample(rng=random.Random(0)), space=space, dataset=data, seed=1)\n"
        "assert 0 <= m['val_acc'] <= 1 and m['params'] > 0, m\n",
    ),
    # the fitness that reports to a pruner, in a search with ASHA
    "pruned fitness": (
        [("guide/fitness.md", "class FewSteps("), ("guide/fitness.md", "class FewStepsPruned(")],
        "from evonas.config import parse_experiment\n"
        "from evonas.engine.build import build\nfrom evonas.engine.runner import search\n"
        "exp = {'name': 'p', 'space': {'name': 'chain'}, 'fitness': {'name': 'few_steps_pruned', "
        "'params': {'steps': 9}}, 'strategy': {'name': 'random', 'params': {'samples': 12}}, "
        "'pruner': {'name': 'asha', 'params': {'reduction_factor': 3}}, 'workers': 0, 'cache': False}\n"
        "records = search(build(parse_experiment(exp))).records\n"
        "assert len(records) == 12 and any(r.status == 'pruned' for r in records), records\n"
        "assert all(r.metrics['train_steps'] < 9 for r in records if r.status == 'pruned')\n",
    ),
    # the define-by-run space, checked with the contract helper at the wine data's shape
    "function": (
        [("guide/spaces.md", "def build(arch")],
        "from evonas.spaces.function import FunctionSpace\nfrom evonas.testing import check_space\n"
        "check_space(FunctionSpace(build=build, input_shape=[13], num_classes=3), n=20)\n",
    ),
    # the search-space example, then the page's contract check of it
    "space": ([("guide/spaces.md", "class WidthSpace("), ("guide/spaces.md", "check_space(WidthSpace()")], ""),
    # the (1+1)-EA strategy as a plug-in file, stopped early and resumed
    "strategy": ([("guide/strategies.md", "class OnePlusOne(")], STRATEGY_CHECK),
    # the JSON-lines logger, named in a search: one line per evaluation, with the genome's and metrics' values
    "logger": (
        [("guide/loggers.md", "class JsonLinesLogger(")],
        "import tempfile\nfrom pathlib import Path\nfrom evonas.config import parse_experiment\n"
        "from evonas.engine.runner import Run\n"
        "d = Path(tempfile.mkdtemp())\n"
        "exp = parse_experiment({'name': 'j', 'space': {'name': 'nb201'}, 'fitness': {'name': 'toy'}, 'workers': 0,\n"
        "    'strategy': {'name': 'random', 'params': {'samples': 10}}, 'cache': False,\n"
        "    'loggers': [{'name': 'jsonl', 'params': {'path': str(d / 'e.jsonl')}}]})\n"
        "summary = Run(exp, d / 'run', progress=False).execute()\n"
        "rows = [json.loads(line) for line in (d / 'e.jsonl').read_text().splitlines()]\n"
        "assert len(rows) == summary.evaluations == 10, rows\n"
        "assert all(r['status'] == 'ok' and isinstance(r['val_acc'], float) and r['edges[5]'] for r in rows), rows[0]\n",
    ),
    # DEAP's eaMuPlusLambda on a toolbox built from an experiment file
    "deap": ([("guide/python.md", "deap.algorithms.eaMuPlusLambda(")], "assert len(pop) == 10 and len(log) == 6\n"),
}


def program(name: str) -> str:
    blocks, check = EXAMPLES[name]
    code = "\n".join(example(page, marker) for page, marker in blocks)
    if name == "strategy":
        code = f"STRATEGY = {code!r}"
    return code + "\n" + check


def test_every_example_is_on_its_page() -> None:
    for blocks, _ in EXAMPLES.values():
        for page, marker in blocks:
            example(page, marker)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_guide_example_runs(name: str) -> None:
    proc = subprocess.run([sys.executable, "-c", program(name)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
