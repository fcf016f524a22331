"""Training-loop benchmark: evonas's ``train`` fitness against a minimal hand-written PyTorch loop.

The same 20 seeded genomes of the quickstart's search space are trained by evonas's fitness
(``fitness.evaluate``: decode, train, score on the validation split) and by the plain loop below
(decode, the same data as tensors batched by indexing, the same epochs, batch size, optimizer,
learning rate and weight decay, a cosine schedule, the same memory format and precision, then the
validation accuracy), in the same process, one thread. The order alternates per genome and each
pair is repeated ``--repeats`` times; per genome the median time of each is kept, and the ratio of
the sums is printed. A second figure is the quickstart's end-to-end rate: evaluations per minute
of ``evonas run experiments/quickstart.yaml`` (``--end-to-end``).

``--compare-conv`` measures instead what evonas's fix of the oneDNN crash (``benchmarks/onednn_repro.py``)
costs: the same genomes trained by evonas's fitness as decoded (1x1 stride-2 convolutions on fewer than 16
input channels as :class:`evonas.spaces.layers.SubsampledConv2d`), with plain ``nn.Conv2d`` everywhere
(oneDNN as it is), and with every 1x1 stride-2 convolution subsampled (the rejected alternative), in
rotating order. Genomes with a 1x1 stride-2 convolution on the input image (the crash's trigger) are left
out, since on an affected CPU they crash with plain ``nn.Conv2d``. Usage::

    python benchmarks/training_loop.py                 # 20 genomes, 3 repeats
    python benchmarks/training_loop.py --end-to-end
    python benchmarks/training_loop.py --compare-conv
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from evonas.config import load_experiment
from evonas.engine.build import build, evaluation_seed

REPO = Path(__file__).resolve().parents[1]


def hand_written(genome: Any, space: Any, dataset: Any, seed: int, epochs: int, channels_last: bool, amp: Any) -> float:
    """The bare training a person would write: returns the validation accuracy."""
    hp = space.hparams(genome)
    torch.manual_seed(seed)
    model = space.decode(genome, input_shape=dataset.input_shape, num_classes=dataset.num_classes)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.from_numpy(np.ascontiguousarray(dataset.x_train, dtype=np.float32)).contiguous(memory_format=fmt)
    y = torch.from_numpy(np.ascontiguousarray(dataset.y_train, dtype=np.int64))
    xv = torch.from_numpy(np.ascontiguousarray(dataset.x_val, dtype=np.float32)).contiguous(memory_format=fmt)
    yv = torch.from_numpy(np.ascontiguousarray(dataset.y_val, dtype=np.int64))
    opt_cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}.get(hp["optimizer"], torch.optim.SGD)
    kwargs = {"momentum": 0.9} if opt_cls is torch.optim.SGD else {}
    opt = opt_cls(model.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"], **kwargs)
    bs, n = int(hp["batch_size"]), len(y)
    steps = epochs * math.ceil(n / bs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / steps)))
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, bs):
            idx = perm[s : s + bs]
            if len(idx) < 2:
                continue
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
                loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.inference_mode():
        return float((model(xv).argmax(1) == yv).float().mean())


def triggers_onednn_bug(genome: Any, space: Any) -> bool:
    """Whether the genome's first layer is a 1x1 stride-2 convolution, or has one as its residual projection."""
    first = space.to_dict(genome)["layers"][0]
    return first["stride"] == 2 and (first["kernel"] == 1 or first["residual"])


def _plain_conv2d(in_channels: int, out_channels: int, kernel: int, *, stride: int = 1, padding: int = 0, bias: bool = True) -> Any:
    return torch.nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=bias)


def _all_subsampled(in_channels: int, out_channels: int, kernel: int, *, stride: int = 1, padding: int = 0, bias: bool = True) -> Any:
    from evonas.spaces.layers import SubsampledConv2d

    cls = SubsampledConv2d if kernel == 1 and stride > 1 and padding == 0 else torch.nn.Conv2d
    return cls(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=bias)


def compare_conv(built: Any, genomes: list[Any], repeats: int) -> None:
    import evonas.spaces.layers as layers  # ConvBlock builds its convolutions with layers.conv2d

    space, fitness, dataset = built.space, built.fitness, built.dataset
    arms = [("evonas", layers.conv2d), ("nn.Conv2d", _plain_conv2d), ("all subsampled", _all_subsampled)]
    kept = [g for g in genomes if not triggers_onednn_bug(g, space)]
    print(f"{len(kept)} of {len(genomes)} genomes kept (the others have a 1x1 stride-2 convolution on the input)")
    totals = [0.0] * len(arms)
    try:
        for i, genome in enumerate(kept):
            seed = evaluation_seed(built.experiment.seed, space.key(genome))
            times: list[list[float]] = [[] for _ in arms]
            accs = [0.0] * len(arms)
            for r in range(repeats):
                for k in range(len(arms)):
                    which = (i + r + k) % len(arms)
                    layers.conv2d = arms[which][1]
                    start = time.perf_counter()
                    accs[which] = fitness.evaluate(genome, space=space, dataset=dataset, seed=seed)["val_acc"]
                    times[which].append(time.perf_counter() - start)
            med = [statistics.median(t) for t in times]
            totals = [a + b for a, b in zip(totals, med)]
            cells = "  ".join(f"{name} {m:6.3f} s ({acc:.3f})" for (name, _), m, acc in zip(arms, med, accs))
            print(f"genome {i:2d}: {cells}  {space.describe(genome)}", flush=True)
    finally:
        layers.conv2d = arms[0][1]
    print("total: " + ", ".join(f"{name} {t:.2f} s" for (name, _), t in zip(arms, totals))
          + f"; evonas / nn.Conv2d {totals[0] / totals[1]:.3f}, all subsampled / nn.Conv2d {totals[2] / totals[1]:.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "experiments" / "quickstart.yaml"))
    parser.add_argument("--genomes", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--end-to-end", action="store_true", help="also time the quickstart run end to end")
    parser.add_argument("--compare-conv", action="store_true", help="SubsampledConv2d against nn.Conv2d (see above)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    built = build(load_experiment(args.config))
    space, fitness, dataset = built.space, built.fitness, built.dataset
    device, amp = fitness._resolve()
    rng = random.Random(args.seed)
    genomes = [space.sample(rng=rng) for _ in range(args.genomes)]
    epochs, channels_last = fitness.epochs, fitness.channels_last and len(dataset.input_shape) == 3
    print(f"{args.genomes} genomes, {epochs} epochs, device {device}, autocast {amp}, channels_last {channels_last}, "
          f"1 thread, {args.repeats} repeats (alternating order)", flush=True)  # fmt: skip
    warm = space.sample(rng=random.Random(args.seed + 10_000))  # one-time costs (first optimizer step, caches) for both
    fitness.evaluate(warm, space=space, dataset=dataset, seed=0)
    if args.compare_conv:
        compare_conv(built, genomes, args.repeats)
        return
    hand_written(warm, space, dataset, 0, epochs, channels_last, amp)
    ours_total = theirs_total = 0.0
    for i, genome in enumerate(genomes):
        seed = evaluation_seed(built.experiment.seed, space.key(genome))
        ours, theirs = [], []
        for r in range(args.repeats):
            for which in ((0, 1) if (i + r) % 2 == 0 else (1, 0)):
                start = time.perf_counter()
                if which == 0:
                    acc = fitness.evaluate(genome, space=space, dataset=dataset, seed=seed)["val_acc"]
                    ours.append(time.perf_counter() - start)
                else:
                    acc_hand = hand_written(genome, space, dataset, seed, epochs, channels_last, amp)
                    theirs.append(time.perf_counter() - start)
        o, t = statistics.median(ours), statistics.median(theirs)
        ours_total += o
        theirs_total += t
        print(f"genome {i:2d}: evonas {o:6.3f} s (val_acc {acc:.3f})  hand-written {t:6.3f} s (val_acc {acc_hand:.3f})"
              f"  ratio {o / t:.3f}  {space.describe(genome)}", flush=True)  # fmt: skip
    print(f"total: evonas {ours_total:.2f} s, hand-written {theirs_total:.2f} s, ratio {ours_total / theirs_total:.3f}")
    if args.end_to_end:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "evonas", "run", args.config, "--out", f"{tmp}/run", "--quiet",
                            "--no-cache"], check=True, capture_output=True)  # fmt: skip
            wall = time.perf_counter() - start
        n = built.make_strategy().expected_evaluations()
        print(f"quickstart end to end: {n} evaluations in {wall:.1f} s (start-up included): {60 * n / wall:.0f} evaluations/min")


if __name__ == "__main__":
    main()
