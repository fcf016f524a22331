"""Layers the built-in spaces decode to, where the plain PyTorch layer is not safe everywhere.

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

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SubsampledConv2d", "conv2d", "SUBSAMPLE_BELOW"]

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
