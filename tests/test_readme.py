"""The README's Python examples run as written (each group in a fresh interpreter: they register names)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
CHECKS = {
    # the mutation example, then its contract check
    "mutation": (BLOCKS[0] + BLOCKS[1], ""),
    # the fitness example, scoring a sampled genome on the digits
    "fitness": (BLOCKS[2], "import random\nfrom evonas.datasets import DATASETS\nfrom evonas.spaces import make_space\n"
                "space = make_space('chain')\ndata = DATASETS.get('digits')(seed=0)\n"
                "m = FewSteps(steps=5).evaluate(space.sample(rng=random.Random(0)), space=space, dataset=data, seed=1)\n"
                "assert 0 <= m['val_acc'] <= 1 and m['params'] > 0, m\n"),
    # the search-space example, checked with the contract helper
    "space": (BLOCKS[3], "from evonas.testing import check_space\ncheck_space(WidthSpace(), n=20)\n"),
    # DEAP's eaMuPlusLambda on a toolbox built from an experiment file
    "deap": (BLOCKS[4], "assert len(pop) == 10 and len(log) == 6\n"),
}


def test_readme_has_the_expected_examples() -> None:
    assert len(BLOCKS) == 5


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_readme_example_runs(name: str) -> None:
    code, check = CHECKS[name]
    proc = subprocess.run(
        [sys.executable, "-c", code + "\n" + check], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
