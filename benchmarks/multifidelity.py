"""Multi-fidelity benchmark: the quickstart's GA against the same GA with successive halving.

For each seed, runs ``experiments/quickstart.yaml`` as it is (every genome trained in full) and with
``strategy.params.fidelity`` / ``promote`` set (every new genome trained briefly, the best share of each
generation trained in full), both through ``evonas run`` in fresh processes with the evaluation cache
off. Reports the best full-fidelity validation accuracy of each and the total training time (the sum
of the fitness's own ``train_s`` over every evaluation of the run, brief ones included). Usage::

    python benchmarks/multifidelity.py --seeds 0 1 2
    python benchmarks/multifidelity.py --seeds 0 1 2 --set strategy.params.fidelity=0.25
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MULTI_FIDELITY = ["strategy.params.fidelity=0.2", "strategy.params.promote=0.25"]


def run(config: str, out: Path, seed: int, overrides: list[str]) -> dict:
    cmd = [sys.executable, "-m", "evonas", "run", config, "--out", str(out), "--quiet", "--no-cache",
           "--set", f"seed={seed}", *[x for o in overrides for x in ("--set", o)]]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    with sqlite3.connect(out / "journal.sqlite") as db:
        rows = [(json.loads(m or "{}"), f) for m, f in db.execute("SELECT metrics, fidelity FROM evaluations WHERE status = 'ok'")]
    best = json.loads((out / "best.json").read_text())
    return {
        "best": best["metrics"]["val_acc"],
        "train_s": sum(m.get("train_s", 0.0) for m, _ in rows),
        "evaluations": len(rows),
        "full": sum(f is None for _, f in rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", default=str(REPO / "experiments" / "quickstart.yaml"))
    parser.add_argument("--set", action="append", default=[], help="overrides for the multi-fidelity run")
    args = parser.parse_args()
    mf_overrides = MULTI_FIDELITY + args.set
    plain, multi = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            a = run(args.config, Path(tmp) / f"plain{seed}", seed, [])
            b = run(args.config, Path(tmp) / f"mf{seed}", seed, mf_overrides)
            plain.append(a)
            multi.append(b)
            print(f"seed {seed}: plain GA best {a['best']:.4f}, training {a['train_s']:6.1f} s ({a['evaluations']} evaluations)"
                  f" | multi-fidelity best {b['best']:.4f}, training {b['train_s']:6.1f} s ({b['evaluations']} evaluations,"
                  f" {b['full']} in full) | time ratio {b['train_s'] / a['train_s']:.2f}", flush=True)  # fmt: skip
    pb, mb = statistics.fmean(r["best"] for r in plain), statistics.fmean(r["best"] for r in multi)
    pt, mt = statistics.fmean(r["train_s"] for r in plain), statistics.fmean(r["train_s"] for r in multi)
    print(f"mean over seeds {args.seeds}: best val_acc plain {pb:.4f}, multi-fidelity {mb:.4f} (difference {mb - pb:+.4f}); "
          f"training time plain {pt:.1f} s, multi-fidelity {mt:.1f} s (ratio {mt / pt:.2f}); overrides {' '.join(mf_overrides)}")  # fmt: skip


if __name__ == "__main__":
    main()
