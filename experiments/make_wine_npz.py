"""Write scikit-learn's wine data as an .npz file the way scikit-learn users have it: keys ``X`` and ``y``.

178 wines, 13 chemical measurements each (on very different scales), 3 cultivars. Nothing is
downloaded: the data ships with scikit-learn. Run from the checkout:

    python experiments/make_wine_npz.py            # writes experiments/wine.npz
    python experiments/make_wine_npz.py my/wine.npz
    evonas run experiments/wine.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_wine


def main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Write scikit-learn's wine data as an .npz with keys X and y.")
    ap.add_argument("out", nargs="?", help="the file to write (default: wine.npz next to this script)")
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else Path(__file__).resolve().parent / "wine.npz"
    X, y = load_wine(return_X_y=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, X=X.astype(np.float32), y=y.astype(np.int64))
    print(f"wrote {out}: X {X.shape}, y {y.shape} ({len(np.unique(y))} classes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
