"""The module an exported model puts before the network when the data file's images were converted on loading
(scripted, so it checks what it is given; TorchScript needs its source in a file)."""

from __future__ import annotations

from typing import List

import torch


class RawImages(torch.nn.Module):
    """Take images as the data file stores them (``shape`` per sample; uint8 when ``uint8``), convert them as the
    loader did (to float32, times ``scale``, channels first), then run ``net``."""

    def __init__(self, net: torch.nn.Module, layout: str, uint8: bool, scale: float, shape: List[int]) -> None:
        super().__init__()
        self.net = net
        self.layout = layout
        self.uint8 = uint8
        self.scale = scale
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sample = ", ".join([str(s) for s in self.shape])
        if self.uint8 and x.dtype != torch.uint8:
            raise RuntimeError("this model takes the images as the data file stores them: uint8 pixels 0..255 of "
                               "shape (N, " + sample + "); it divides them by 255 itself")
        if list(x.shape[1:]) != self.shape:
            raise RuntimeError("this model takes inputs of shape (N, " + sample + "), as the data file stores them; "
                               "got " + str(list(x.shape)))
        y = x.to(torch.float32) * self.scale
        if self.layout == "nhwc":
            y = y.permute(0, 3, 1, 2)
        elif self.layout == "nhw":
            y = y.unsqueeze(1)
        return self.net(y.contiguous())
