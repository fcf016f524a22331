"""Multi-objective search: the issue's "Done when" measurements, reproducible by command.

    python benchmarks/multiobjective.py table --seeds 30            # (a) NSGA-II vs random search, nb201 table
    python benchmarks/multiobjective.py digits --out runs/mo-digits  # (b) front of experiments/multiobjective.yaml
    python benchmarks/multiobjective.py constrained --out runs/mo-constrained   # (c) no cheap limit ever trained
    python benchmarks/multiobjective.py constrained --no-redraw --out runs/mo-constrained-nr  # (c) without redraws

(a) Each seed runs NSGA-II (``experiments/nb201_multiobjective.yaml``'s settings) and random search
(``samples: 300``) for 300 evaluations on the NAS-Bench-201 CIFAR-10 table, objectives ``val_acc``
(max) and ``params`` (or ``--second flops``; min), in memory through :func:`evonas.engine.runner.search`.
The hypervolume of each run's evaluations is computed against one fixed reference point for both:
accuracy 0 and 1.1 x the largest network of the space (its all-3x3-conv cell).

(b) Runs the shipped experiment file with ``evonas run`` and reads ``pareto_front.json``.

(c) Runs the same file with ``constraints: ["params <= LIMIT"]`` and checks the journal: every
row that was trained (status ok / failed / violated) meets the limit, recounted from its genome
with ``space.cost_metrics`` (not from the recorded metric), and reports how many candidates were
recorded as infeasible instead.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def table(seeds: int, second: str, budget: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from evonas.config import load_experiment, parse_experiment
    from evonas.engine.build import build
    from evonas.engine.runner import search
    from evonas.pareto import hypervolume
    from evonas.spaces import make_space

    space = make_space("nb201")
    worst = max(space.cost_metrics(g, input_shape=(3, 32, 32), num_classes=10)[second] for g in [
        space.from_dict({"edges": ["nor_conv_3x3"] * 6})])
    reference = (0.0, 1.1 * worst)
    base = load_experiment(REPO / "experiments" / "nb201_multiobjective.yaml").to_dict()
    nsga_params = dict(base["strategy"]["params"])
    nsga_params.pop("reference_point", None)
    objectives = [{"metric": "val_acc", "direction": "max"}, {"metric": second, "direction": "min"}]
    strategies = {"nsga2": nsga_params, "random": {"samples": budget, "batch": 20}}
    rows = []
    for seed in range(seeds):
        row = {"seed": seed}
        for name, params in strategies.items():
            raw = {"name": f"mo-{name}", "seed": seed, "space": {"name": "nb201"}, "fitness": {"name": "nb201_table"},
                   "strategy": {"name": name, "params": params}, "objectives": objectives, "selection": "nsga2",
                   "budget": budget, "workers": 0}  # fmt: skip
            start = time.perf_counter()
            result = search(build(parse_experiment(raw)))
            points = [r.fitness for r in result.records if r.status == "ok"]
            row[name] = {"hv": hypervolume(points, (1.0, -1.0), reference), "evaluations": len(result.records),
                         "wall_s": round(time.perf_counter() - start, 2)}  # fmt: skip
        row["nsga2_wins"] = row["nsga2"]["hv"] > row["random"]["hv"]
        rows.append(row)
        print(f"seed {seed:2d}: nsga2 {row['nsga2']['hv']:.6g}  random {row['random']['hv']:.6g}  "
              f"{'nsga2' if row['nsga2_wins'] else 'random'}", flush=True)  # fmt: skip
    wins = sum(r["nsga2_wins"] for r in rows)
    summary = {
        "second_objective": second, "budget": budget, "reference_point": reference, "seeds": seeds,
        "nsga2_wins": wins, "nsga2_hv_median": statistics.median(r["nsga2"]["hv"] for r in rows),
        "random_hv_median": statistics.median(r["random"]["hv"] for r in rows),
        "nsga2_params": nsga_params,
    }  # fmt: skip
    print(json.dumps(summary, indent=1))
    return {"summary": summary, "runs": rows}


def digits(out: Path, extra: list[str]) -> dict:
    start = time.time()
    cmd = [sys.executable, "-m", "evonas", "run", str(REPO / "experiments" / "multiobjective.yaml"), "--out", str(out),
           "--overwrite", "--quiet", *extra]  # fmt: skip
    subprocess.run(cmd, check=True)
    wall = time.time() - start
    front = json.loads((out / "pareto_front.json").read_text())
    params = [p["metrics"]["params"] for p in front["front"]]
    summary = {
        "run_dir": str(out), "wall_s": round(wall, 1), "front_size": len(params),
        "params_min": min(params), "params_max": max(params), "span": max(params) / min(params),
        "front": [(p["metrics"]["val_acc"], p["metrics"]["params"], p["describe"]) for p in front["front"]],
        "plots": sorted(str(p.relative_to(out)) for p in (out / "plots").glob("*.png")),
    }  # fmt: skip
    print(json.dumps(summary, indent=1))
    return summary


def constrained(out: Path, limit: int, redraw: bool = True) -> dict:
    from evonas.config import load_experiment
    from evonas.engine.build import build_space

    extra = ["--set", f"constraints=['params <= {limit}']"]
    if not redraw:  # the strategy proposes infeasible children as they come: the engine alone keeps them untrained
        extra += ["--set", "strategy.params.max_retries=0"]
    summary_run = digits(out, extra)
    space = build_space(load_experiment(out / "config.yaml"))
    with sqlite3.connect(out / "journal.sqlite") as db:
        rows = db.execute("SELECT status, genome, metrics FROM evaluations").fetchall()
    counts: dict[str, int] = {}
    trained_over = 0
    for status, genome, metrics in rows:
        counts[status] = counts.get(status, 0) + 1
        if status != "infeasible":
            recount = space.cost_metrics(space.from_dict(json.loads(genome)), input_shape=(1, 8, 8), num_classes=10)
            trained_over += recount["params"] > limit or json.loads(metrics).get("params", 0) > limit
    summary = {"limit": limit, "redraw": redraw, "statuses": counts, "trained_over_limit": trained_over,
               "front_params_max": summary_run["params_max"]}  # fmt: skip
    print(json.dumps(summary, indent=1))
    return summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["table", "digits", "constrained"])
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--budget", type=int, default=300)
    p.add_argument("--second", choices=["params", "flops"], default="params")
    p.add_argument("--out", type=Path, default=Path("runs/mo-digits"))
    p.add_argument("--limit", type=int, default=20000)
    p.add_argument("--no-redraw", action="store_true", help="constrained: max_retries 0 (no redrawing of infeasible children)")
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args()
    if args.part == "table":
        result = table(args.seeds, args.second, args.budget)
    elif args.part == "digits":
        result = digits(args.out, [])
    else:
        result = constrained(args.out, args.limit, redraw=not args.no_redraw)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
