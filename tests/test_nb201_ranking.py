"""benchmarks/nb201_ranking.py: pairs in the same order, reversed, or unresolved between two benchmark results."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

from conftest import REPO

spec = importlib.util.spec_from_file_location("nb201_ranking", REPO / "benchmarks" / "nb201_ranking.py")
ranking = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ranking)


def write(path: Path, means: dict[str, float], runs: int = 200, sd: float = 0.3) -> Path:
    rng = random.Random(path.name)  # the same data in every run (tmp_path differs)
    strategies = {
        name: {"per_run": [{"seed": s, "test_acc_200ep": mean + rng.gauss(0, sd)} for s in range(runs)]}
        for name, mean in means.items()
    }
    path.write_text(json.dumps({"strategies": strategies}))
    return path


def test_same_reversed_and_unresolved_pairs(tmp_path: Path, capsys) -> None:
    a = write(tmp_path / "a.json", {"x": 94.2, "y": 94.0, "z": 93.7})
    same = write(tmp_path / "same.json", {"x": 94.0, "y": 93.8, "z": 93.6})
    assert ranking.main([str(a), str(same)]) == 0
    assert "3 pairs in the same order, 0 reversed, 0 unresolved" in capsys.readouterr().out

    flipped = write(tmp_path / "flipped.json", {"x": 93.8, "y": 94.0, "z": 93.6})
    assert ranking.main([str(a), str(flipped)]) == 1
    out = capsys.readouterr().out
    assert "x - y" in out and "reversed" in out and "2 pairs in the same order, 1 reversed" in out

    tied = write(tmp_path / "tied.json", {"x": 94.0, "y": 94.0, "z": 93.6})
    assert ranking.main([str(a), str(tied)]) == 1
    assert "1 unresolved" in capsys.readouterr().out


def test_differences_are_paired_by_seed() -> None:
    mean, se, n = ranking.paired({0: 94.0, 1: 93.0, 2: 95.0}, {0: 93.9, 1: 92.9, 2: 94.9, 3: 90.0})
    assert n == 3 and abs(mean - 0.1) < 1e-9 and se < 1e-9
