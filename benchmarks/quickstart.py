"""Quickstart benchmark: wall time and best validation accuracy of `evonas run experiments/quickstart.yaml`.

Runs the CLI exactly as a user would (a fresh process per seed, start-up included; ``--no-cache``, so
every evaluation trains) and prints one line per seed, then the medians. Usage::

    python benchmarks/quickstart.py --seeds 0 1 2 3 4
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", default=str(REPO / "experiments" / "quickstart.yaml"))
    parser.add_argument("--workers", default="auto")
    args = parser.parse_args()
    walls, accs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            out = Path(tmp) / f"seed{seed}"
            cmd = [sys.executable, "-m", "evonas", "run", args.config, "--out", str(out), "--quiet",
                   "--workers", str(args.workers), "--set", f"seed={seed}", "--no-cache"]  # fmt: skip
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            wall = time.perf_counter() - start
            best = json.loads((out / "best.json").read_text())
            walls.append(wall)
            accs.append(best["metrics"]["val_acc"])
            print(f"seed {seed}: wall {wall:5.1f} s  best val_acc {accs[-1]:.4f}  {best['describe']}", flush=True)
    print(f"median wall {statistics.median(walls):.1f} s (max {max(walls):.1f}); "
          f"median best val_acc {statistics.median(accs):.4f} (min {min(accs):.4f}); "
          f"{sum(a >= 0.99 for a in accs)}/{len(accs)} seeds >= 0.99")  # fmt: skip


if __name__ == "__main__":
    main()
