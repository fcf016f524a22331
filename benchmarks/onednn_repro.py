"""Minimal reproduction of the oneDNN heap corruption in strided 1x1 convolutions, and of evonas's fix.

The trigger: a 1x1 convolution with stride 2 whose input has fewer than 8 channels in channels_last
(NHWC) layout, trained with backward. On an AMD EPYC (Zen 3, AVX2, no AVX-512) with torch 2.13.0+cpu
(oneDNN v3.12.0), its weight gradient (``convolution,jit_1x1:avx2,backward_weights ... ic1oc16 ... sh2``
under ``ONEDNN_VERBOSE=1``: the input channels padded to a block of 8) corrupts the heap: glibc aborts
(``double free or corruption``, ``corrupted size vs. prev_size``, ``free(): invalid next size``) or the
process segfaults, within three epochs. In evonas it is the first layer of a ``chain`` genome on images
with 1 or 3 channels: a residual stride-2 layer (its 1x1 projection) or a 1x1 stride-2 layer. One-channel
images hit it in either memory format: numpy hands scikit-learn's digits over with strides that make
the tensor contiguous and channels_last at once, and torch takes the channels_last path.

Not triggered: 8 or more input channels, stride 1, a contiguous (NCHW) 3-channel input, oneDNN off, and
the same convolution computed as a stride-1 1x1 convolution of every second row and column
(:class:`evonas.spaces.layers.SubsampledConv2d`, mathematically identical), which is how evonas's spaces
decode it.

Each case runs in a child process (a crash cannot take this script down) ``--repeats`` times::

    python benchmarks/onednn_repro.py               # the table below, about two minutes on 2 cores

Output on the CPU above (1 min 43 s; with 16x16 inputs, 5 and 7 channels crashed too)::

    torch 2.13.0+cpu, oneDNN v3.12.0, CPU capability AVX2, ONEDNN_MAX_CPU_ISA=(unset)
    channels  input strides      format         stride  oneDNN  layer       result
    1         (64, 1, 8, 1)      channels_last  2       on      nn.Conv2d   2 of 2 crashed (SIGABRT, SIGABRT)
    1         (64, 1, 8, 1)      contiguous     2       on      nn.Conv2d   2 of 2 crashed (SIGABRT, SIGSEGV)
    3         (192, 1, 24, 3)    channels_last  2       on      nn.Conv2d   2 of 2 crashed (SIGABRT, SIGABRT)
    3         (192, 64, 8, 1)    contiguous     2       on      nn.Conv2d   0 of 2 crashed
    7         (448, 1, 56, 7)    channels_last  2       on      nn.Conv2d   0 of 2 crashed
    8         (512, 1, 64, 8)    channels_last  2       on      nn.Conv2d   0 of 2 crashed
    3         (192, 1, 24, 3)    channels_last  1       on      nn.Conv2d   0 of 2 crashed
    3         (192, 1, 24, 3)    channels_last  2       off     nn.Conv2d   0 of 2 crashed
    1         (64, 1, 8, 1)      channels_last  2       on      subsampled  0 of 2 crashed
    1         (64, 1, 8, 1)      contiguous     2       on      subsampled  0 of 2 crashed
    3         (192, 1, 24, 3)    channels_last  2       on      subsampled  0 of 2 crashed
    7         (448, 1, 56, 7)    channels_last  2       on      subsampled  0 of 2 crashed
    the bug is present on this machine (3 nn.Conv2d cases crashed); 0 SubsampledConv2d cases crashed

It exits 1 if a ``SubsampledConv2d`` case crashed (the fix does not hold on this machine).
"""

from __future__ import annotations

import argparse
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
from evonas.spaces.layers import SubsampledConv2d

cin, fmt, stride, mkldnn, layer = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == "on", sys.argv[5]
torch.manual_seed(0)
torch.set_num_threads(1)
torch.backends.mkldnn.enabled = mkldnn
rng = np.random.default_rng(0)
if cin == 1:  # as a dataset split gives them: numpy keeps a length-1 axis's stride (here 4 bytes)
    x = rng.random((1079, 8, 8), dtype=np.float32)[:, None][rng.permutation(1079)]
else:
    x = rng.random((1079, cin, 8, 8), dtype=np.float32)
x = torch.from_numpy(x)
y = torch.from_numpy(rng.integers(0, 10, len(x)))
conv = SubsampledConv2d if layer == "subsampled" else nn.Conv2d


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(cin, 16, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.skip = conv(cin, 16, 1, stride=stride, bias=False)

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

CASES = [
    # (input channels, memory format, 1x1 stride, oneDNN, layer)
    (1, "channels_last", 2, "on", "nn.Conv2d"),
    (1, "contiguous", 2, "on", "nn.Conv2d"),
    (3, "channels_last", 2, "on", "nn.Conv2d"),
    (3, "contiguous", 2, "on", "nn.Conv2d"),
    (7, "channels_last", 2, "on", "nn.Conv2d"),
    (8, "channels_last", 2, "on", "nn.Conv2d"),
    (3, "channels_last", 1, "on", "nn.Conv2d"),
    (3, "channels_last", 2, "off", "nn.Conv2d"),
    (1, "channels_last", 2, "on", "subsampled"),
    (1, "contiguous", 2, "on", "subsampled"),
    (3, "channels_last", 2, "on", "subsampled"),
    (7, "channels_last", 2, "on", "subsampled"),
]


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
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per child")
    args = parser.parse_args(argv)

    import torch

    found = re.search(r"(?:oneDNN|MKL-DNN) (v[\d.]+)", torch.__config__.show())
    cap = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", lambda: "?")()
    print(f"torch {torch.__version__}, oneDNN {found.group(1) if found else '?'}, CPU capability {cap}, "
          f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}")  # fmt: skip
    print(f"{'channels':<9} {'input strides':<18} {'format':<14} {'stride':<7} {'oneDNN':<7} {'layer':<11} result")
    crashed = {"nn.Conv2d": 0, "subsampled": 0}
    for cin, fmt, stride, mkldnn, layer in CASES:
        outcomes, shown = [], "?"
        for _ in range(args.repeats):
            env = dict(os.environ, OMP_NUM_THREADS="1")
            try:
                proc = subprocess.run(
                    [sys.executable, "-c", CHILD, str(cin), fmt, str(stride), mkldnn, layer],
                    capture_output=True, text=True, timeout=args.timeout, env=env,
                )  # fmt: skip
                outcomes.append(_outcome(proc.returncode))
                shown = (proc.stdout.splitlines() or [shown])[0]
                if proc.returncode > 0:
                    print(proc.stderr[-2000:], file=sys.stderr)
            except subprocess.TimeoutExpired:
                outcomes.append("hung")
        bad = [o for o in outcomes if o != "ok"]
        crashed[layer] += bool(bad)
        result = f"{len(bad)} of {len(outcomes)} crashed ({', '.join(bad)})" if bad else f"0 of {len(outcomes)} crashed"
        print(f"{cin:<9} {shown:<18} {fmt:<14} {stride:<7} {mkldnn:<7} {layer:<11} {result}", flush=True)
    if crashed["nn.Conv2d"]:
        print(f"the bug is present on this machine ({crashed['nn.Conv2d']} nn.Conv2d cases crashed); "
              f"{crashed['subsampled']} SubsampledConv2d cases crashed")  # fmt: skip
    else:
        print(f"no nn.Conv2d case crashed on this machine; {crashed['subsampled']} SubsampledConv2d cases crashed")
    return 1 if crashed["subsampled"] else 0


if __name__ == "__main__":
    sys.exit(main())
