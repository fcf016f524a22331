"""Cheap metrics of a decoded network, counted before any training: parameters and FLOPs.

FLOPs are counted by PyTorch's own :class:`torch.utils.flop_counter.FlopCounterMode` on one
forward pass of a batch of one at the dataset's input shape (eval mode, no gradients). It
counts matrix products and convolutions (a multiply-add is 2 FLOPs); element-wise ops,
normalisation and pooling count zero, as in torch's counter.

Example::

    net = space.decode(genome, input_shape=(1, 8, 8), num_classes=10)
    count_params(net), count_flops(net, (1, 8, 8))
"""

from __future__ import annotations

from typing import Any

from evonas.constraints import CHEAP_METRICS

__all__ = ["CHEAP_METRICS", "count_params", "count_flops", "network_costs"]



def count_params(model: Any) -> int:
    """The number of parameters (trainable or not) of ``model``."""
    return int(sum(p.numel() for p in model.parameters()))


def count_flops(model: Any, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass of ``model`` on a batch of one input of ``input_shape`` (torch's counter)."""
    # torch: only to count a network's FLOPs (reading and listing genomes never imports it)
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        x = torch.zeros((1, *input_shape), device=device)
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(x)
        return int(counter.get_total_flops())
    finally:
        model.train(was_training)


def network_costs(model: Any, input_shape: tuple[int, ...]) -> dict[str, float]:
    """``{"params": ..., "flops": ...}`` of ``model`` at ``input_shape``."""
    return {"params": count_params(model), "flops": count_flops(model, tuple(input_shape))}
