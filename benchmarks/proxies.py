"""Zero-cost proxies vs brief training: rank correlation with trained validation accuracy.

Samples ``--genomes`` distinct random genomes of the quickstart's ``chain`` space
(``experiments/quickstart.yaml``, sampled with ``random.Random(--seed)``), trains each with the
quickstart's ``train`` fitness (its epochs on the digits train split, scored on its validation
split) and scores each with every proxy of the ``zero_cost`` fitness on a batch of the same train
split. Each genome's seed (network initialisation, batch, training order) is
``evaluation_seed(--seed, key)``, as in a run with that seed. Each proxy is timed on its own (a
``zero_cost`` fitness per proxy: decoding, batch and score), next to the wall time of one training
evaluation. Prints Spearman's rho (and Kendall's tau) of each proxy, and of the parameter count as
a baseline, with ``val_acc``. ``--ceiling`` trains every genome a second time (seed + 1) and
prints the rank correlation of the two trainings: the noise ceiling of any score. One torch
thread. Usage::

    python benchmarks/proxies.py --genomes 200 --seed 0 --json proxies.json [--ceiling]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PROXY_NAMES = ("jacov", "synflow", "grad_norm", "snip")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genomes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64, help="the proxies' batch size")
    parser.add_argument("--config", default=str(REPO / "experiments" / "quickstart.yaml"))
    parser.add_argument("--json", default=None, help="write per-genome results and the summary here")
    parser.add_argument("--ceiling", action="store_true", help="train each genome again with another seed")
    args = parser.parse_args()

    import torch
    from scipy.stats import kendalltau, spearmanr

    from evonas.config import load_experiment
    from evonas.engine.build import build, evaluation_seed
    from evonas.fitness.proxies import ZeroCostFitness

    torch.set_num_threads(1)
    built = build(load_experiment(args.config))
    space, train, dataset = built.space, built.fitness, built.dataset
    scorers = {p: ZeroCostFitness(proxies=[p], batch_size=args.batch_size, device="cpu") for p in PROXY_NAMES}
    print(f"{dataset}; train fitness {train.params}", flush=True)

    rng = random.Random(args.seed)
    genomes, keys = [], set()
    while len(genomes) < args.genomes:
        g = space.sample(rng=rng)
        key = space.key(g)
        if key not in keys:
            keys.add(key)
            genomes.append((key, g))

    rows = []
    start = time.perf_counter()
    for i, (key, g) in enumerate(genomes):
        seed = evaluation_seed(args.seed, key)
        row: dict = {"key": key, "describe": space.describe(g), "seed": seed}
        t = time.perf_counter()
        try:
            metrics = train.evaluate(g, space=space, dataset=dataset, seed=seed)
        except Exception as exc:  # a failed training is reported, not fatal
            row["error"] = f"{type(exc).__name__}: {exc}"
            metrics = {}
        row["train_wall_s"] = time.perf_counter() - t
        row["val_acc"] = metrics.get("val_acc")
        row["params"] = metrics.get("params")
        if args.ceiling:
            try:
                row["val_acc_2"] = train.evaluate(g, space=space, dataset=dataset, seed=seed + 1)["val_acc"]
            except Exception:
                row["val_acc_2"] = None
        for name, scorer in scorers.items():
            t = time.perf_counter()
            row[name] = scorer.evaluate(g, space=space, dataset=dataset, seed=seed)[name]
            row[f"{name}_wall_s"] = time.perf_counter() - t
        rows.append(row)
        if (i + 1) % 20 == 0 or i + 1 == len(genomes):
            print(f"{i + 1}/{len(genomes)} genomes, {time.perf_counter() - start:.0f} s", flush=True)

    ok = [r for r in rows if r["val_acc"] is not None]
    acc = [r["val_acc"] for r in ok]
    summary: dict = {"genomes": len(rows), "trained": len(ok), "seed": args.seed, "batch_size": args.batch_size,
                     "val_acc": {"median": statistics.median(acc), "min": min(acc), "max": max(acc)},
                     "train_wall_s": statistics.median(r["train_wall_s"] for r in rows), "proxies": {}}  # fmt: skip
    print(f"\n{len(ok)}/{len(rows)} trained; val_acc median {statistics.median(acc):.4f} "
          f"(min {min(acc):.4f}, max {max(acc):.4f}); median training wall {summary['train_wall_s']:.3f} s")  # fmt: skip
    print(f"{'score':>10} {'spearman':>9} {'p':>9} {'kendall':>8} {'n':>4} {'median s':>9} {'speed-up':>9}")
    for name in ("params", *PROXY_NAMES):
        pairs = [(r[name], r["val_acc"]) for r in ok if r[name] is not None and math.isfinite(r[name])]
        rho, p = spearmanr([a for a, _ in pairs], [b for _, b in pairs])
        tau, _ = kendalltau([a for a, _ in pairs], [b for _, b in pairs])
        secs = statistics.median(r[f"{name}_wall_s"] for r in rows) if name != "params" else None
        speed = summary["train_wall_s"] / secs if secs else None
        summary["proxies"][name] = {"spearman": rho, "p": p, "kendall": tau, "n": len(pairs),
                                    "median_s": secs, "speedup_vs_train": speed}  # fmt: skip
        print(f"{name:>10} {rho:9.3f} {p:9.2g} {tau:8.3f} {len(pairs):4d} "
              f"{'' if secs is None else f'{secs:9.4f}'} {'' if speed is None else f'{speed:8.0f}x'}")  # fmt: skip
    if args.ceiling:
        pairs = [(r["val_acc"], r["val_acc_2"]) for r in ok if r["val_acc_2"] is not None]
        rho, _ = spearmanr([a for a, _ in pairs], [b for _, b in pairs])
        summary["ceiling_spearman"] = rho
        print(f"noise ceiling: spearman {rho:.3f} between two trainings (seeds s, s + 1) of {len(pairs)} genomes")
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
