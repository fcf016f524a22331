"""The ``mlp`` search space: a multilayer perceptron for tabular data, plus hyperparameters.

Each layer gene is a fully connected layer (width from a set, an activation,
a dropout rate); the decoded network flattens its input, so it accepts feature
vectors ``(F,)`` and images ``(C, H, W)`` alike, and ends in a linear
classifier. The genome also carries the training hyperparameters (see
:mod:`evonas.spaces.hparams`). Defaults: ``genomes/mlp.yaml``.

Example::

    space = make_space("mlp", {"max_layers": 2})
    g = space.sample(rng=random.Random(0))
    space.describe(g)   # e.g. '128-64p0.2:gelu | adamw lr=0.00123 wd=1e-4 bs=64'
    net = space.decode(g, input_shape=(64,), num_classes=10)
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any, Sequence

from evonas.spaces import SPACES
from evonas.spaces.base import Genome
from evonas.spaces.genes import change_one, check_gene
from evonas.spaces.layered import ACTIVATION_NAMES, LayeredGenome, LayerListSpace, layered
from evonas.spaces.parameters import ParamReader

__all__ = ["DenseLayer", "MLPGenome", "MLPSpace"]


@dataclasses.dataclass(frozen=True)
class DenseLayer:
    """One fully connected layer gene: ``dropout(act(linear(x)))``."""

    width: int
    activation: str
    dropout: float


@dataclasses.dataclass(frozen=True)
class MLPGenome(LayeredGenome):
    """Hidden layers, input to output, plus ``lr``, ``optimizer``, ``weight_decay``, ``batch_size``."""

    layers: tuple[DenseLayer, ...]


@SPACES.register("mlp")
class MLPSpace(LayerListSpace):
    """MLP with ``min_layers``..``max_layers`` hidden layers.

    Layer parameters: ``widths``, ``activations`` (names in
    :data:`~evonas.spaces.layered.ACTIVATION_NAMES`) and ``dropouts`` (rates in [0, 1)).

    Parameters:
        dropouts: the dropout rates a hidden layer may have (in [0, 1)).
    """

    input_ranks = (1, 3)
    example_input_shape = (64,)
    genome_type = MLPGenome
    layer_type = DenseLayer

    def _read_layer_params(self, reader: ParamReader) -> None:
        self.widths: tuple[int, ...] = reader.choices("widths", int, check=lambda w: w >= 1, what="integers >= 1")
        self.activations: tuple[str, ...] = reader.choices("activations", str, allowed=ACTIVATION_NAMES)
        self.dropouts: tuple[float, ...] = reader.choices(
            "dropouts", float, check=lambda p: 0 <= p < 1, what="rates in [0, 1)"
        )

    def sample_layer(self, *, rng: random.Random, others: Sequence[Any]) -> DenseLayer:
        return DenseLayer(
            width=rng.choice(self.widths),
            activation=rng.choice(self.activations),
            dropout=rng.choice(self.dropouts),
        )

    def validate_layer(self, layer: Any, where: str) -> None:
        check_gene(layer.width, self.widths, f"{where}.width", "widths")
        check_gene(layer.activation, self.activations, f"{where}.activation", "activations")
        check_gene(layer.dropout, self.dropouts, f"{where}.dropout", "dropouts")

    def mutate_layer(self, layer: Any, *, rng: random.Random, others: Sequence[Any]) -> DenseLayer:
        options = {"width": self.widths, "activation": self.activations, "dropout": self.dropouts}
        return change_one(layer, options, rng=rng)

    def layer_options(self, others: Sequence[Any]) -> dict[str, tuple[Any, ...]]:
        """Every field's allowed values (the same for every layer)."""
        return {"width": self.widths, "activation": self.activations, "dropout": self.dropouts}

    def describe_layer(self, layer: Any) -> str:
        text = str(layer.width)
        text += f"p{layer.dropout:g}" if layer.dropout else ""
        return text if layer.activation == "relu" else f"{text}:{layer.activation}"

    def decode(self, genome: Genome, *, input_shape: tuple[int, ...], num_classes: int) -> Any:
        input_shape = tuple(input_shape)
        reason = self.check_input(input_shape)
        if reason:
            raise ValueError(reason)
        if min(input_shape) < 1 or num_classes < 1:
            raise ValueError(f"mlp: need positive input sizes and num_classes, got {input_shape}, {num_classes}")
        self.validate(genome)
        from evonas.spaces.layers import MLPNet  # torch: imported only to build a network

        return MLPNet(layered(genome).layers, in_features=math.prod(input_shape), num_classes=num_classes)
