"""Memory benchmark: resident memory over a long run (20,000 evaluations of a training-free fitness).

Samples the process's resident set size after every evaluation and reports the growth from the
first 10% of the run to the last 10% (medians of each window). Usage::

    python benchmarks/memory.py --evaluations 20000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=20_000)
    parser.add_argument("--strategy", default="ga", choices=["ga", "random"])
    args = parser.parse_args()

    from evonas.config import load_experiment
    from evonas.engine.runner import Run

    n = args.evaluations
    strategy = (
        {"name": "ga", "params": {"population_size": 100, "generations": n // 100 - 1}}
        if args.strategy == "ga"
        else {"name": "random", "params": {"samples": n, "batch": 100}}
    )
    exp = {"name": "memory", "seed": 0, "space": {"name": "chain"}, "fitness": {"name": "toy"},
           "strategy": strategy, "workers": 0}  # fmt: skip
    samples: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "memory.yaml"
        cfg.write_text(yaml.safe_dump(exp))
        start = time.perf_counter()
        summary = Run(load_experiment(cfg), Path(tmp) / "run", progress=False, on_result=lambda r: samples.append(rss_mb())).execute()
        wall = time.perf_counter() - start
    k = max(1, len(samples) // 10)
    first, last = statistics.median(samples[:k]), statistics.median(samples[-k:])
    print(f"{summary.evaluations} evaluations ({args.strategy}) in {wall:.0f} s ({1000 * wall / summary.evaluations:.2f} ms each)")
    print(f"resident memory: first 10% median {first:.1f} MB, last 10% median {last:.1f} MB, growth {last - first:+.1f} MB; peak {max(samples):.1f} MB")


if __name__ == "__main__":
    main()
