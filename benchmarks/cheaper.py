"""Cheaper evaluations: pruning and weight inheritance against the plain GA, by what each run spent.

Each configuration is the quickstart experiment (``experiments/quickstart.yaml``) with a few keys changed, run
through ``evonas run`` in a fresh process (one worker, the evaluation cache off) for each seed. Two problems:

- ``digits``: the quickstart problem as it is (scikit-learn's 8x8 digits);
- ``synthetic``: a larger generated image problem, 3x12x12 images of 10 classes (one random pattern per class
  plus noise of standard deviation 6, where a logistic regression scores 0.86; 2400 samples, 1440 to train
  on), the same search space and settings otherwise.

For each run: the best val_acc of a complete evaluation (``best.json``: trained in full from scratch, never a
pruned or inherited one), the training it spent (optimizer steps and samples seen, summed over the journal's
evaluations) and its wall time. The table gives the median over the seeds, and each configuration's steps as a
share of the plain GA's (the median of the per-seed ratios). Usage::

    python benchmarks/cheaper.py                                  # every configuration, both problems, seeds 0-4
    python benchmarks/cheaper.py --problems digits --configs ga aging+inherit+asha --seeds 0 1 2 3 4
    python benchmarks/cheaper.py --jobs 2 --json out.json         # two runs at a time
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "experiments" / "quickstart.yaml"

_AGING = "strategy={name: aging, params: {population_size: 16, sample_size: 4, cycles: %d}}"
_ASHA = "pruner={name: asha, params: {min_resource: 0.111, reduction_factor: 3}}"
_MEDIAN = "pruner={name: median, params: {n_startup_trials: 5, interval: 0.25}}"
_INHERIT = "inherit={fidelity: 0.34, confirm: 10}"

#: configuration -> ``--set`` overrides of the quickstart experiment
CONFIGS: dict[str, list[str]] = {
    "ga": [],
    "ga+median": [_MEDIAN],
    "ga+asha": [_ASHA],
    "ga+inherit": [_INHERIT],
    "ga+inherit+asha": [_INHERIT, _ASHA],
    "aging": [_AGING % 112],
    "aging+median": [_AGING % 112, _MEDIAN],
    "aging+asha": [_AGING % 112, _ASHA],
    "aging+inherit": [_AGING % 112, _INHERIT],
    "aging+inherit+asha": [_AGING % 112, _INHERIT, _ASHA],
}
#: problem -> ``--set`` overrides of the quickstart experiment
PROBLEMS: dict[str, list[str]] = {
    "digits": [],
    "synthetic": [
        "dataset={name: synthetic, params: {n_samples: 2400, num_classes: 10, shape: [3, 12, 12], noise: 6.0, "
        "data_seed: 0, val_fraction: 0.2, test_fraction: 0.2}}",
    ],
}


def run_one(problem: str, config: str, seed: int, root: Path, extra: list[str]) -> dict:
    """One run; what it found and spent."""
    out = root / f"{problem}-{config}-{seed}"
    overrides = [*PROBLEMS[problem], *CONFIGS[config], f"seed={seed}", "workers=1", *extra]
    cmd = [sys.executable, "-m", "evonas", "run", str(QUICKSTART), "--out", str(out), "--quiet", "--no-cache",
           *[x for o in overrides for x in ("--set", o)]]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{problem} {config} seed {seed}: exit {done.returncode}: {done.stderr.strip()[-800:]}")
    with sqlite3.connect(out / "journal.sqlite") as db:
        rows = [(json.loads(m or "{}"), s, i) for m, s, i in db.execute("SELECT metrics, status, inherited FROM evaluations")]
    best = json.loads((out / "best.json").read_text())
    return {
        "problem": problem, "config": config, "seed": seed,
        "best": float(best["metrics"]["val_acc"]),
        "steps": int(sum(m.get("train_steps", 0) for m, _, _ in rows)),
        "samples": int(sum(m.get("train_samples", 0) for m, _, _ in rows)),
        "evaluations": len(rows),
        "pruned": sum(s == "pruned" for _, s, _ in rows),
        "inherited": sum(i is not None for _, _, i in rows),
        "wall_s": wall,
        "best_origin": str(best.get("origin") or _origin(out, best["trial"])),
    }  # fmt: skip


def _origin(run: Path, trial: int) -> str:
    with sqlite3.connect(run / "journal.sqlite") as db:
        row = db.execute("SELECT origin FROM evaluations WHERE trial = ?", (trial,)).fetchone()
    return row[0] if row else "?"


def table(results: list[dict], problems: list[str], configs: list[str], seeds: list[int]) -> str:
    """The markdown table of the medians over seeds (steps as a share of the plain GA's, seed by seed)."""
    by = {(r["problem"], r["config"], r["seed"]): r for r in results}
    lines = [
        "| problem | configuration | best val_acc (median) | training steps (median) | steps / GA's | wall s (median) | pruned | inherited |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for p in problems:
        for c in configs:
            runs = [by[(p, c, s)] for s in seeds if (p, c, s) in by]
            if not runs:
                continue
            ratios = [by[(p, c, s)]["steps"] / by[(p, "ga", s)]["steps"] for s in seeds
                      if (p, c, s) in by and (p, "ga", s) in by]  # fmt: skip
            ratio = f"{statistics.median(ratios):.2f}" if ratios else "-"
            lines.append(
                f"| {p} | {c} | {statistics.median(r['best'] for r in runs):.4f} | "
                f"{statistics.median(r['steps'] for r in runs):,.0f} | {ratio} | "
                f"{statistics.median(r['wall_s'] for r in runs):.1f} | "
                f"{statistics.median(r['pruned'] for r in runs):.0f} | {statistics.median(r['inherited'] for r in runs):.0f} |"
            )  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (each uses one worker process)")
    parser.add_argument("--set", action="append", default=[], help="more overrides for every run")
    parser.add_argument("--json", help="write every run's figures to this file")
    parser.add_argument("--no-ga", action="store_true", help="leave out the plain GA (no step ratios then)")
    parser.add_argument("--keep", help="keep the run folders in this folder (default: a temporary one, removed)")
    args = parser.parse_args()
    # the plain GA is what the others are measured against
    configs = list(dict.fromkeys(args.configs if args.no_ga else ["ga", *args.configs]))
    results = []
    with tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        root = Path(args.keep) if args.keep else Path(tmp)
        futures = [pool.submit(run_one, p, c, s, root, args.set) for p in args.problems for s in args.seeds
                   for c in configs]  # fmt: skip
        for f in concurrent.futures.as_completed(futures):
            r = f.result()
            results.append(r)
            print(f"{r['problem']:<9} {r['config']:<20} seed {r['seed']}: best {r['best']:.4f}  steps {r['steps']:>6}  "
                  f"evaluations {r['evaluations']:>3} ({r['pruned']} pruned, {r['inherited']} inherited)  "
                  f"{r['wall_s']:.1f} s  (best from: {r['best_origin']})", flush=True)  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print()
    print(table(results, args.problems, configs, args.seeds))


if __name__ == "__main__":
    main()
