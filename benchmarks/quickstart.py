"""Quickstart benchmark: wall time and best validation accuracy of `evonas run experiments/quickstart.yaml`.

Runs the CLI exactly as a user would (a fresh process per seed, start-up included; ``--no-cache``, so
every evaluation trains) and prints one line per seed, then the medians. ``--test`` also runs
``evonas export`` on each run (the best genome retrained on train+val, scored once on the test split) and
prints its ``test_acc``: the held-out figure the search never saw. Usage::

    python benchmarks/quickstart.py --seeds 0 1 2 3 4
    python benchmarks/quickstart.py --config experiments/cnn_search.yaml --seeds 0 1 2 3 4 --test
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:  # the command's own message, not a traceback of this script
        sys.exit(f"{' '.join(cmd[2:4])} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", default=str(REPO / "experiments" / "quickstart.yaml"))
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--test", action="store_true", help="also export each run's best and print its test_acc")
    args = parser.parse_args()
    walls, accs, tests = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            out = Path(tmp) / f"seed{seed}"
            cmd = [sys.executable, "-m", "evonas", "run", args.config, "--out", str(out), "--quiet",
                   "--workers", str(args.workers), "--set", f"seed={seed}", "--no-cache"]  # fmt: skip
            start = time.perf_counter()
            _run(cmd)
            wall = time.perf_counter() - start
            best = json.loads((out / "best.json").read_text())
            walls.append(wall)
            accs.append(best["metrics"]["val_acc"])
            test = ""
            if args.test:  # --trust: the run's own plug-ins (the experiment's), which this benchmark just ran
                _run([sys.executable, "-m", "evonas", "export", str(out), "--quiet", "--trust"])
                tests.append(json.loads((out / "export" / "metrics.json").read_text())["test_acc"])
                test = f"  test_acc {tests[-1]:.4f}"
            print(f"seed {seed}: wall {wall:5.1f} s  best val_acc {accs[-1]:.4f}{test}  {best['describe']}", flush=True)
    print(f"median wall {statistics.median(walls):.1f} s (max {max(walls):.1f}); "
          f"median best val_acc {statistics.median(accs):.4f} (min {min(accs):.4f}); "
          f"{sum(a >= 0.99 for a in accs)}/{len(accs)} seeds >= 0.99"
          + (f"; median test_acc {statistics.median(tests):.4f}" if tests else ""))  # fmt: skip


if __name__ == "__main__":
    main()
