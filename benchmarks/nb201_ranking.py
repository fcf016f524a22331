"""Do the strategies rank the same way in two ``evonas benchmark nb201`` results (e.g. without and with noise)?

Reads the JSON files that ``evonas benchmark nb201 --json OUT`` writes, ranks the strategies of each by
their mean test accuracy, and prints, for every pair of strategies, the difference of their means in
each file with its standard error (the runs of one seed search the same noisy table, so differences
are paired by seed). A pair whose order is the same in both files, with both differences at least
``--z`` standard errors from zero, is "same"; one that is ordered differently with both differences
that far from zero is "reversed"; any other is "unresolved" (more runs could tell). Usage::

    evonas benchmark nb201 --runs 1000 --json nb201.json
    evonas benchmark nb201 --runs 1000 --noise 0.5 --json nb201-noise.json
    python benchmarks/nb201_ranking.py nb201.json nb201-noise.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path


def load(path: Path) -> dict[str, dict[int, float]]:
    """strategy -> {seed: test accuracy of the run's chosen architecture}."""
    data = json.loads(path.read_text())
    return {
        name: {r["seed"]: float(r["test_acc_200ep"]) for r in s["per_run"]}
        for name, s in data["strategies"].items()
    }


def paired(a: dict[int, float], b: dict[int, float]) -> tuple[float, float, int]:
    """Mean and standard error of ``a - b`` over the seeds both have, and how many."""
    seeds = sorted(set(a) & set(b))
    d = [a[s] - b[s] for s in seeds]
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1)) if n > 1 else math.inf
    return mean, sd / math.sqrt(n), n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("first", type=Path)
    p.add_argument("second", type=Path)
    p.add_argument("--z", type=float, default=2.0, help="standard errors a difference needs to count (default 2)")
    args = p.parse_args(argv)
    first, second = load(args.first), load(args.second)
    names = [n for n in first if n in second]
    for label, res in ((args.first.name, first), (args.second.name, second)):
        ranked = sorted(names, key=lambda n: -sum(res[n].values()) / len(res[n]))
        print(f"{label}: " + " > ".join(f"{n} {sum(res[n].values()) / len(res[n]):.3f}" for n in ranked))
    print(f"\n{'pair':<28} {args.first.name[:20]:>20} {args.second.name[:20]:>20}  verdict")
    counts = {"same": 0, "reversed": 0, "unresolved": 0}
    for a, b in itertools.combinations(names, 2):
        (d1, se1, _), (d2, se2, _) = paired(first[a], first[b]), paired(second[a], second[b])
        sure1, sure2 = abs(d1) >= args.z * se1, abs(d2) >= args.z * se2
        if sure1 and sure2:
            verdict = "same" if (d1 > 0) == (d2 > 0) else "reversed"
        else:
            verdict = "unresolved"
        counts[verdict] += 1
        cells = [f"{d:+.3f} ± {se:.3f}" for d, se in ((d1, se1), (d2, se2))]
        print(f"{a + ' - ' + b:<28} {cells[0]:>20} {cells[1]:>20}  {verdict}")
    print(f"\n{counts['same']} pairs in the same order, {counts['reversed']} reversed, {counts['unresolved']} unresolved "
          f"(z = {args.z:g})")
    return 0 if counts["reversed"] == 0 and counts["unresolved"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
