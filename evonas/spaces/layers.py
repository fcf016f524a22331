"""The PyTorch modules the built-in spaces decode to (the only module of :mod:`evonas.spaces` that imports
torch, so that reading genomes, listing and describing them never does).

The ``chain`` network (:class:`ChainNet`), the ``mlp`` network (:class:`MLPNet`) and NAS-Bench-201's
(:class:`NB201Network`), and the layers they need where the plain PyTorch layer is not safe everywhere.

:func:`conv2d` is ``nn.Conv2d`` except for a 1x1 convolution with a stride: that one is computed as the
same 1x1 convolution with stride 1 on every ``stride``-th row and column (mathematically identical,
the same parameters and ``state_dict``). The direct form runs oneDNN's strided 1x1 kernel, whose weight
gradient corrupts the heap on AVX2 CPUs when the input has fewer than 8 channels in channels_last layout
(oneDNN v3.12.0 in torch 2.13.0+cpu; a 3-channel image with a 1x1 stride-2 projection is enough):
``python benchmarks/onednn_repro.py`` shows it case by case.

Example::

    skip = conv2d(3, 32, 1, stride=2, bias=False)   # a SubsampledConv2d
    skip(torch.rand(8, 3, 32, 32)).shape            # (8, 32, 16, 16), as nn.Conv2d(3, 32, 1, stride=2)
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from evonas.spaces.layered import ACTIVATION_NAMES
from evonas.spaces.nb201_cell import NB201_EDGES, OUTPUT_NODE

__all__ = [
    "ACTIVATIONS", "SubsampledConv2d", "conv2d", "SUBSAMPLE_BELOW", "ChainNet", "ConvBlock", "MLPNet",
    "NB201Cell", "NB201Network",
]

#: activation name -> module class, for the ``activations`` parameter of the layer-list spaces.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU,
}
assert tuple(ACTIVATIONS) == ACTIVATION_NAMES

#: strided 1x1 convolutions on fewer input channels than this are computed as :class:`SubsampledConv2d`
SUBSAMPLE_BELOW = 16


class SubsampledConv2d(nn.Conv2d):
    """A 1x1 convolution with a stride, computed as a stride-1 1x1 convolution of the subsampled input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x[:, :, :: self.stride[0], :: self.stride[1]], self.weight, self.bias)


def conv2d(
    in_channels: int, out_channels: int, kernel: int, *, stride: int = 1, padding: int = 0, bias: bool = True
) -> nn.Conv2d:
    """``nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=bias)``, computed
    as :class:`SubsampledConv2d` when it is a 1x1 convolution with a stride and no padding on fewer than
    :data:`SUBSAMPLE_BELOW` input channels."""
    few = in_channels < SUBSAMPLE_BELOW
    cls = SubsampledConv2d if kernel == 1 and stride > 1 and padding == 0 and few else nn.Conv2d
    return cls(in_channels, out_channels, kernel, stride=stride, padding=padding, bias=bias)


# -- chain ------------------------------------------------------------------
class ConvBlock(nn.Module):
    """``act(bn(conv(x)) + skip(x))``; ``skip`` is absent, the identity, or a strided 1x1 projection.

    1x1 convolutions with stride 2 are :class:`evonas.spaces.layers.SubsampledConv2d` (oneDNN's strided
    1x1 kernel corrupts the heap on AVX2 CPUs with few input channels)."""

    def __init__(self, in_channels: int, layer: Any) -> None:
        super().__init__()
        self.conv = conv2d(
            in_channels, layer.width, layer.kernel, stride=layer.stride,
            padding=layer.kernel // 2, bias=not layer.batch_norm,
        )
        self.bn: nn.Module = nn.BatchNorm2d(layer.width) if layer.batch_norm else nn.Identity()
        self.act = ACTIVATIONS[layer.activation]()
        self.skip: nn.Module | None = None
        if layer.residual:
            same = layer.stride == 1 and in_channels == layer.width
            self.skip = nn.Identity() if same else conv2d(in_channels, layer.width, 1, stride=layer.stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        if self.skip is not None:
            y = y + self.skip(x)
        return self.act(y)


class ChainNet(nn.Module):
    """The decoded ``chain`` network: conv blocks, global average pooling, a linear classifier."""

    def __init__(self, layers: Sequence[Any], *, in_channels: int, num_classes: int) -> None:
        super().__init__()
        blocks = []
        channels = in_channels
        for layer in layers:
            blocks.append(ConvBlock(channels, layer))
            channels = layer.width
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


# -- mlp --------------------------------------------------------------------
class MLPNet(nn.Module):
    """The decoded ``mlp`` network: flatten, hidden layers, a linear classifier."""

    def __init__(self, layers: Sequence[Any], *, in_features: int, num_classes: int) -> None:
        super().__init__()
        modules: list[nn.Module] = [nn.Flatten()]
        features = in_features
        for layer in layers:
            modules += [nn.Linear(features, layer.width), ACTIVATIONS[layer.activation]()]
            if layer.dropout > 0:
                modules.append(nn.Dropout(layer.dropout))
            features = layer.width
        modules.append(nn.Linear(features, num_classes))
        self.net = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# -- nb201 ------------------------------------------------------------------
def _relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """The benchmark's ``nor_conv`` unit: ReLU, conv (no bias), affine BatchNorm."""
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    )


def _make_op(op: str, channels: int) -> nn.Module:
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return _relu_conv_bn(channels, channels, 1)
    if op == "nor_conv_3x3":
        return _relu_conv_bn(channels, channels, 3)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"nb201: no module for op {op!r}")


class NB201Cell(nn.Module):
    """One cell: node ``j`` is the sum of ``op(node i)`` over its edges; ``none`` edges are not computed.

    A node without any non-``none`` input is zero, as in the benchmark.
    """

    def __init__(self, edges: Sequence[str], channels: int) -> None:
        super().__init__()
        self.edges = tuple(edges)
        self.live = [(src, dst) for (src, dst), op in zip(NB201_EDGES, self.edges) if op != "none"]
        self.ops = nn.ModuleList(_make_op(op, channels) for op in self.edges if op != "none")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x] + [None] * OUTPUT_NODE
        for (src, dst), op in zip(self.live, self.ops):
            inp = nodes[src]
            if inp is None:  # a zero node; a conv of it is still a learnable constant
                inp = nodes[src] = torch.zeros_like(x)
            out = op(inp)
            acc = nodes[dst]
            nodes[dst] = out if acc is None else acc + out
        result = nodes[OUTPUT_NODE]
        return torch.zeros_like(x) if result is None else result


class _ResidualReduction(nn.Module):
    """The benchmark's reduction block: a stride-2 ResNet basic block with an avg-pool + 1x1 conv shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = _relu_conv_bn(c_in, c_out, 3, stride=2)
        self.conv_b = _relu_conv_bn(c_out, c_out, 3)
        # ceil_mode matches the conv's output size on odd inputs; same as the benchmark on even ones.
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(2, stride=2, ceil_mode=True),
            nn.Conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """The benchmark's macro skeleton around one cell design.

    Stem (3x3 conv + BN), ``N`` cells at ``C`` channels, reduction to ``2C``,
    ``N`` cells, reduction to ``4C``, ``N`` cells, then BN-ReLU, global average
    pooling and a linear classifier.
    """

    def __init__(self, edges: Sequence[str], *, in_channels: int, C: int, N: int, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        channels = C
        for stage in range(3):
            if stage > 0:
                layers.append(_ResidualReduction(channels, channels * 2))
                channels *= 2
            layers.extend(NB201Cell(edges, channels) for _ in range(N))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(out), 1))
