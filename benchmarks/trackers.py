"""Trackers benchmark: the quickstart with ``loggers: [tensorboard, mlflow, optuna]``, read back with each package's
own reader, against ``best.json`` and the journal; and the run's wall time against the same run without loggers.

Runs the CLI as a user would (a fresh process per run, ``--no-cache``: every evaluation trains). The runs with and
without loggers alternate, ``--repeats`` pairs, so the wall-time ratio is measured side by side. Usage::

    python benchmarks/trackers.py                 # one pair
    python benchmarks/trackers.py --repeats 3 --json trackers.json
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
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _run(config: Path, out: Path) -> float:
    cmd = [sys.executable, "-m", "evonas", "run", str(config), "--out", str(out), "--quiet", "--no-cache"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def read_back(run: Path) -> dict[str, Any]:
    """What each source says of the run: the best val_acc and the number of evaluations."""
    import optuna
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from evonas.runfolder import RunFolder

    out: dict[str, Any] = {}
    best = json.loads((run / "best.json").read_text())
    evaluated = [r for r in RunFolder(run).records() if r.status != "infeasible"]
    out["best.json / journal"] = (best["metrics"]["val_acc"], len(evaluated))

    acc = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    out["TensorBoard EventAccumulator"] = (acc.Scalars("run/best_val_acc")[-1].value,
                                           int(acc.Scalars("run/evaluations")[-1].value))  # fmt: skip

    client = MlflowClient(tracking_uri=f"sqlite:///{(run / 'mlruns' / 'mlflow.db').resolve()}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=5000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1, f"{len(parents)} parent runs"
    out["MlflowClient (parent metrics)"] = (parents[0].data.metrics["best_val_acc"],
                                            int(parents[0].data.metrics["evaluations"]))  # fmt: skip
    out["MlflowClient (child runs)"] = (max(c.data.metrics["val_acc"] for c in children), len(children))

    study = optuna.load_study(study_name=run.name, storage=f"sqlite:///{(run / 'optuna.db').resolve()}")
    out["optuna.load_study"] = (study.best_value, len(study.trials))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "experiments" / "quickstart.yaml"))
    parser.add_argument("--repeats", type=int, default=1, help="pairs of runs (with, without loggers)")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--keep", help="keep the run folders under this folder")
    args = parser.parse_args()
    base = yaml.safe_load(Path(args.config).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        configs = {}
        for label, loggers in (("with", ["tensorboard", "mlflow", "optuna"]), ("without", [])):
            configs[label] = root / f"{label}.yaml"
            configs[label].write_text(yaml.safe_dump({**base, "loggers": loggers}, sort_keys=False))
        walls: dict[str, list[float]] = {"with": [], "without": []}
        sources: list[dict[str, Any]] = []
        for i in range(args.repeats):
            for label in ("with", "without"):
                out = root / f"{label}-{i}"
                walls[label].append(_run(configs[label], out))
                print(f"run {i} {label:7s} loggers: {walls[label][-1]:6.1f} s", flush=True)
                if label == "with":
                    sources.append(read_back(out))
    print()
    for i, found in enumerate(sources):
        print(f"run {i}: source                          best val_acc   evaluations")
        for name, (best, count) in found.items():
            print(f"  {name:34s} {best:.6f}      {count}")
    ratios = [w / wo for w, wo in zip(walls["with"], walls["without"])]
    print(f"\nwall time with / without loggers: median {statistics.median(ratios):.3f} "
          f"({', '.join(f'{r:.3f}' for r in ratios)})")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"walls": walls, "ratios": ratios, "sources": sources}, indent=1))


if __name__ == "__main__":
    main()
