"""An MLP search space for tabular data written as one function (experiments/mlp_search.yaml searches it).

``width_i`` and ``dropout_i`` exist only for the ``depth`` hidden layers the genome has; ``lr``,
``optimizer`` and ``batch_size`` are training hyperparameters the ``train`` fitness uses.
"""

import math

import torch.nn as nn


def build(arch, input_shape, num_classes):
    act = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}[arch.choice("act", ["relu", "gelu", "tanh"])]
    layers, n_in = [nn.Flatten()], math.prod(input_shape)
    for i in range(arch.int("depth", 1, 3)):
        width = arch.choice(f"width_{i}", [16, 32, 64, 128])
        layers += [nn.Linear(n_in, width), act(), nn.Dropout(arch.float(f"dropout_{i}", 0.0, 0.3))]
        n_in = width
    layers.append(nn.Linear(n_in, num_classes))
    arch.float("lr", 1e-3, 3e-2, log=True)
    arch.choice("optimizer", ["adam", "adamw"])
    arch.choice("batch_size", [16, 32])
    return nn.Sequential(*layers)
