"""Start-up time of the commands that train nothing, against ``python -c "import torch"``.

Each command is a fresh process (``python -m evonas ...``, as a user's shell starts it). The commands and
``import torch`` are run in rotating order, ``--repeats`` times each, and the median wall time of each is
printed with its ratio to ``import torch``'s median, measured in the same run (timings on shared machines
are noisy: compare ratios, not seconds). ``status`` and ``best`` read a small run made first with the
training-free ``toy`` fitness. Whether each command imported torch at all is printed too (from
``python -X importtime``).

Usage::

    python benchmarks/cli_startup.py              # 7 repeats
    python benchmarks/cli_startup.py --repeats 15
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXPERIMENT = """name: startup
space: {name: nb201}
fitness: {name: toy}
strategy: {name: ga, params: {population_size: 6, generations: 2}}
workers: 0
"""


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def imports_torch(cmd: list[str]) -> bool:
    out = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:]], capture_output=True, text=True)
    return any(line.rstrip().endswith("| torch") for line in out.stderr.splitlines())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        exp = Path(tmp) / "startup.yaml"
        exp.write_text(EXPERIMENT)
        run = Path(tmp) / "run"
        subprocess.run([sys.executable, "-m", "evonas", "run", str(exp), "--out", str(run), "--quiet"],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        evonas = [sys.executable, "-m", "evonas"]
        cases = {
            'python -c "import torch"': [sys.executable, "-c", "import torch"],
            "evonas --help": [*evonas, "--help"],
            "evonas list": [*evonas, "list"],
            "evonas status RUN": [*evonas, "status", str(run)],
            "evonas best RUN": [*evonas, "best", str(run)],
            "evonas plot RUN": [*evonas, "plot", str(run), "--out", str(Path(tmp) / "plots")],  # not ./run-plots/
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        names = list(cases)
        for i in range(args.repeats):
            for name in names[i % len(names):] + names[: i % len(names)]:  # rotate the order
                times[name].append(timed(cases[name]))
        base = statistics.median(times['python -c "import torch"'])
        print(f"{'command':<28} {'median s':>9} {'/ import torch':>15}  imports torch")
        for name, cmd in cases.items():
            med = statistics.median(times[name])
            print(f"{name:<28} {med:>9.3f} {med / base:>15.2f}  {'yes' if imports_torch(cmd) else 'no'}")


if __name__ == "__main__":
    main()
