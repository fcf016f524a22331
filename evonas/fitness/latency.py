"""Inference latency of a network on the evaluation device: warm-up, then the median of timed repeats.

Example::

    measure_latency_ms(model, (1, 8, 8), batch_size=1, device=torch.device("cpu"))  # e.g. 0.21
"""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Any, Callable, ContextManager

import torch

__all__ = ["measure_latency_ms"]


def measure_latency_ms(
    model: torch.nn.Module,
    input_shape: tuple[int, ...],
    *,
    batch_size: int = 1,
    device: torch.device,
    repeats: int = 30,
    warmup: int = 5,
    channels_last: bool = False,
    autocast: Callable[[], ContextManager[Any]] = contextlib.nullcontext,
) -> float:
    """Median wall time in milliseconds of one forward pass of a ``batch_size`` batch (eval mode, no grad).

    ``warmup`` untimed passes come first; on CUDA each timed pass ends with a synchronisation, so
    the time is the device's, not the launch's.
    """
    model.eval()
    x = torch.randn((batch_size, *input_shape), generator=torch.Generator().manual_seed(0)).to(device)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            sync()
            start = time.perf_counter()
            with autocast():
                model(x)
            sync()
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000.0)
    return float(statistics.median(times))
