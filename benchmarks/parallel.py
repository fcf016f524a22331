"""Parallel evaluation benchmark: the quickstart's networks on 1 and 2 local workers, and on Ray.

The same seeded genomes of the quickstart's search space, trained by its fitness (same data, same
epochs, same per-evaluation seeds), are evaluated through each backend exactly as a run does
(``make_backend``, ``submit``, ``wait``). Each backend first evaluates one warm-up genome per worker
(process start-up, imports and data loading are not what is compared), then the timed genomes.

Reported per backend: the wall time of the timed genomes (first submit to last result), the
median evaluation time (the worker's own clock) and the median dispatch overhead per evaluation
(from submit to result arrival, minus the evaluation's own time). Then the speed-up of 2 local
workers over 1, and Ray's overhead per evaluation against the local pool, as a share of the
median evaluation time. Usage::

    python benchmarks/parallel.py                   # 24 genomes, 1 vs 2 workers; 50 genomes, pool vs Ray
    python benchmarks/parallel.py --skip-ray --genomes 40
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import time
from pathlib import Path
from typing import Any

from evonas.config import Component, load_experiment
from evonas.engine.backends import Job, make_backend
from evonas.engine.build import build, evaluation_seed

REPO = Path(__file__).resolve().parents[1]


def jobs_for(built: Any, n: int, seed: int) -> list[Job]:
    """``n`` distinct seeded genomes of the experiment's space as jobs, with the run's per-evaluation seeds."""
    rng, out, seen = random.Random(seed), [], set()
    while len(out) < n:
        genome = built.space.sample(rng=rng)
        key = built.space.key(genome)
        if key in seen:
            continue
        seen.add(key)
        out.append(Job(len(out), built.space.to_dict(genome), evaluation_seed(built.experiment.seed, key), key=key))
    return out


def evaluate_all(backend: Any, jobs: list[Job]) -> tuple[float, list[float], list[float]]:
    """Evaluate ``jobs`` keeping every slot busy; (wall s, evaluation times, dispatch overheads)."""
    todo, submitted, evals, overheads = list(jobs), {}, [], []
    start = time.perf_counter()
    while todo or submitted:
        while todo and backend.free_slots() > 0:
            job = todo.pop(0)
            submitted[job.trial] = time.perf_counter()
            backend.submit(job)
        for result in backend.wait():
            arrived = time.perf_counter()
            if result.status != "ok":
                raise RuntimeError(f"evaluation {result.trial} failed: {result.error}")
            evals.append(result.wall_s)
            overheads.append(arrived - submitted.pop(result.trial) - result.wall_s)
    return time.perf_counter() - start, evals, overheads


def measure(exp: Any, label: str, workers: int, warmup: list[Job], jobs: list[Job]) -> dict[str, Any]:
    t0 = time.perf_counter()
    backend = make_backend(exp, workers)
    try:
        evaluate_all(backend, [dataclasses.replace(j, trial=-1 - i) for i, j in enumerate(warmup[:workers])])
        ready = time.perf_counter() - t0
        wall, evals, overheads = evaluate_all(backend, jobs)
    finally:
        backend.close()
    row = {
        "backend": label, "workers": workers, "genomes": len(jobs), "wall_s": wall, "startup_s": ready,
        "median_eval_s": statistics.median(evals), "sum_eval_s": sum(evals),
        "median_overhead_ms": 1000 * statistics.median(overheads), "mean_overhead_ms": 1000 * statistics.fmean(overheads),
    }  # fmt: skip
    print(f"{label:<14} {workers} worker(s), {len(jobs)} genomes: wall {wall:6.2f} s  (sum of evaluations "
          f"{row['sum_eval_s']:6.2f} s, median {row['median_eval_s']:.3f} s; dispatch overhead median "
          f"{row['median_overhead_ms']:.1f} ms, mean {row['mean_overhead_ms']:.1f} ms; start-up and warm-up {ready:.1f} s)",
          flush=True)  # fmt: skip
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "experiments" / "quickstart.yaml"))
    parser.add_argument("--genomes", type=int, default=24, help="genomes for the 1-vs-2-workers comparison")
    parser.add_argument("--ray-genomes", type=int, default=50, help="genomes for the pool-vs-Ray comparison")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()

    exp = load_experiment(args.config)
    exp = dataclasses.replace(exp, timeout=None, backend=Component("local", {}))
    built = build(exp)
    jobs = jobs_for(built, max(args.genomes, args.ray_genomes) + 2, args.seed)
    warmup, jobs = jobs[:2], jobs[2:]

    one = measure(exp, "local", 1, warmup, jobs[: args.genomes])
    two = measure(exp, "local", 2, warmup, jobs[: args.genomes])
    print(f"speed-up of 2 workers over 1: {one['wall_s'] / two['wall_s']:.2f}x (same {args.genomes} genomes, same epochs)")
    if args.skip_ray:
        return
    ray_exp = dataclasses.replace(exp, backend=Component("ray", {"num_cpus": 1}))
    pool = measure(exp, "local", 2, warmup, jobs[: args.ray_genomes])
    ray = measure(ray_exp, "ray", 2, warmup, jobs[: args.ray_genomes])
    per_eval = (ray["wall_s"] - pool["wall_s"]) * 2 / args.ray_genomes  # slot-seconds lost per evaluation
    share = per_eval / pool["median_eval_s"]
    dispatch = (ray["median_overhead_ms"] - pool["median_overhead_ms"]) / 1000
    print(f"Ray against the local pool, {args.ray_genomes} evaluations on 2 slots: wall {ray['wall_s']:.2f} s vs "
          f"{pool['wall_s']:.2f} s, i.e. {1000 * per_eval:+.0f} ms per evaluation ({100 * share:+.1f}% of the median "
          f"evaluation, {pool['median_eval_s']:.3f} s); median dispatch overhead {1000 * dispatch:+.1f} ms "
          f"({100 * dispatch / pool['median_eval_s']:+.1f}%)")  # fmt: skip


if __name__ == "__main__":
    main()
