"""Minimal reproduction of the oneDNN heap corruption that one-channel images could trigger, and of its fix.

The trigger: a ``(N, 1, H, W)`` float32 input whose strides are ``(H*W, 1, W, 1)`` (numpy leaves the
stride of a length-1 axis as it was, and ``torch.from_numpy`` passes it on: scikit-learn's digits arrive
so), fed to a 1x1 convolution with stride 2 (a residual projection that downsamples), trained with
backward. Such a tensor is contiguous and channels_last at once. On an AMD EPYC (Zen 3, AVX2, no AVX-512)
with torch 2.13.0+cpu (oneDNN v3.12.0), the weight gradient of that convolution
(``convolution,jit_1x1:avx2,backward_weights ... mb64_ic1oc16_ih8oh4kh1sh2`` under ``ONEDNN_VERBOSE=1``)
corrupts the heap: glibc aborts (``double free or corruption``, ``corrupted size vs. prev_size``) or
the process segfaults, within three epochs.

Not triggered: the same values with the strides of a fresh array, ``(H*W, H*W, W, 1)``, in either
memory format; a 1x1 convolution with stride 1; oneDNN off. evonas's fix: every
:class:`evonas.datasets.Dataset` holds its arrays with the strides of a fresh array
(:func:`evonas.datasets.base.canonical`), so no tensor made from them has the ambiguous strides.

Each case runs in a child process (a crash cannot take this script down) ``--repeats`` times::

    python benchmarks/onednn_repro.py --repeats 2   # the table below, under a minute on 2 cores
    python benchmarks/onednn_repro.py --repeats 1

Output on the CPU above (44 s)::

    torch 2.13.0+cpu, oneDNN v3.12.0, CPU capability AVX2, ONEDNN_MAX_CPU_ISA=(unset)
    input strides        format          1x1 stride  oneDNN  result
    (64, 1, 8, 1)        channels_last   2           on      2 of 2 crashed (SIGSEGV, SIGSEGV)
    (64, 1, 8, 1)        contiguous      2           on      2 of 2 crashed (SIGABRT, SIGABRT)
    (64, 1, 8, 1)        channels_last   1           on      0 of 2 crashed
    (64, 1, 8, 1)        channels_last   2           off     0 of 2 crashed
    (64, 64, 8, 1)       channels_last   2           on      0 of 2 crashed
    (64, 64, 8, 1)       contiguous      2           on      0 of 2 crashed
    the bug is present on this machine

("contiguous" keeps the ambiguous strides: ``.contiguous()`` finds the tensor contiguous already.)
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import signal
import subprocess
import sys

CHILD = r"""
import sys
import numpy as np
import torch
import torch.nn as nn

strides, fmt, stride, mkldnn = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "on"
torch.manual_seed(0)
torch.set_num_threads(1)
torch.backends.mkldnn.enabled = mkldnn
rng = np.random.default_rng(0)
images = rng.random((1079, 8, 8), dtype=np.float32)[:, None]   # strides (256, 0, 32, 4): numpy calls it C-contiguous
x = images[rng.permutation(len(images))]                        # (256, 4, 32, 4): a fancy-indexed split, as in a dataset
if strides == "fresh":
    fresh = np.empty(x.shape, dtype=x.dtype)
    fresh[...] = x
    x = fresh                                                    # (256, 256, 32, 4)
x = torch.from_numpy(x)
y = torch.from_numpy(rng.integers(0, 10, len(x)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.skip = nn.Conv2d(1, 16, 1, stride=stride, bias=False)

    def forward(self, t):
        skip = self.skip(t)
        if stride == 1:
            skip = skip[:, :, ::2, ::2]
        return nn.functional.silu(self.bn(self.conv(t)) + skip)


net = nn.Sequential(Block(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
if fmt == "channels_last":
    net = net.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
print(tuple(x.stride()), flush=True)
opt = torch.optim.Adam(net.parameters(), lr=4e-3, weight_decay=1e-4, fused=True)
for epoch in range(3):
    perm = torch.randperm(len(y))
    for s in range(0, len(y), 64):
        idx = perm[s : s + 64]
        opt.zero_grad()
        nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
        opt.step()
"""


def _outcome(code: int) -> str:
    if code == 0:
        return "ok"
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per child")
    args = parser.parse_args(argv)

    import torch

    found = re.search(r"(?:oneDNN|MKL-DNN) (v[\d.]+)", torch.__config__.show())
    onednn = found.group(1) if found else None
    cap = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", lambda: "?")()
    print(f"torch {torch.__version__}, oneDNN {onednn or '?'}, CPU capability {cap}, "
          f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}")  # fmt: skip
    print(f"{'input strides':<20} {'format':<15} {'1x1 stride':<11} {'oneDNN':<7} result")
    cases = [
        *itertools.product(["numpy"], ["channels_last", "contiguous"], [2], ["on"]),
        ("numpy", "channels_last", 1, "on"),
        ("numpy", "channels_last", 2, "off"),
        *itertools.product(["fresh"], ["channels_last", "contiguous"], [2], ["on"]),
    ]
    crashed_any = False
    for strides, fmt, stride, mkldnn in cases:
        outcomes, shown = [], "?"
        for _ in range(args.repeats):
            env = dict(os.environ, OMP_NUM_THREADS="1", MALLOC_CHECK_="0")
            try:
                proc = subprocess.run(
                    [sys.executable, "-c", CHILD, strides, fmt, str(stride), mkldnn],
                    capture_output=True, text=True, timeout=args.timeout, env=env,
                )  # fmt: skip
                outcomes.append(_outcome(proc.returncode))
                first = proc.stdout.splitlines()[:1]
                shown = first[0] if first else shown
            except subprocess.TimeoutExpired:
                outcomes.append("hung")
        bad = [o for o in outcomes if o != "ok"]
        crashed_any |= bool(bad)
        result = f"{len(bad)} of {len(outcomes)} crashed ({', '.join(bad)})" if bad else f"0 of {len(outcomes)} crashed"
        print(f"{shown:<20} {fmt:<15} {stride:<11} {mkldnn:<7} {result}", flush=True)
    print("the bug is present on this machine" if crashed_any else "no crash on this machine")
    return 0


if __name__ == "__main__":
    sys.exit(main())
