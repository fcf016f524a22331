"""A CNN search space written as one function (the ``function`` space; experiments/cnn_search.yaml searches it).

Every ``arch.*`` call is a choice: convolutions (width, kernel), pooling, batch norm, activation, dropout,
the width of the fully connected head, and the training hyperparameters ``lr``, ``optimizer`` and
``batch_size``. ``width_i``, ``kernel_i`` and ``pool_i`` exist only for the ``depth`` layers the genome has
(``pool_i`` only while the image is at least 2 pixels wide).
"""

import torch.nn as nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


def build(arch, input_shape, num_classes):
    channels, size = input_shape[0], input_shape[1]
    act = ACTIVATIONS[arch.choice("act", ["relu", "gelu", "silu"])]
    norm = arch.choice("norm", ["batch", "none"])
    layers = []
    for i in range(arch.int("depth", 1, 4)):
        width, kernel = arch.choice(f"width_{i}", [16, 32, 48, 64]), arch.choice(f"kernel_{i}", [3, 5])
        layers.append(nn.Conv2d(channels, width, kernel, padding=kernel // 2))
        layers += [nn.BatchNorm2d(width), act()] if norm == "batch" else [act()]
        pool = arch.choice(f"pool_{i}", ["max", "avg", "none"]) if size >= 2 else "none"
        if pool != "none":
            layers.append(nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2))
            size //= 2
        channels = width
    head, dropout = arch.choice("head", [32, 64, 128]), arch.float("dropout", 0.0, 0.3)
    layers += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels * size * size, head), act()]
    layers.append(nn.Linear(head, num_classes))
    arch.float("lr", 1e-3, 2e-2, log=True)
    arch.choice("optimizer", ["adam", "adamw"])
    arch.choice("batch_size", [32, 64])
    return nn.Sequential(*layers)
