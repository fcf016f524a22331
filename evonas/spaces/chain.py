"""The ``chain`` search space: a plain chain of convolution layers for ``(C, H, W)`` images, plus hyperparameters.

Each layer gene is a convolution (kernel size and width from sets, stride 1 or
2, an activation, optional batch norm, an optional residual connection: the
identity when shapes match, else a 1x1 projection with the same stride). The
head is global average pooling and a linear classifier. Padding ``k // 2``
(odd kernels only) keeps every spatial size >= 1, so any genome runs on any
image size. The genome also carries the training hyperparameters (see
:mod:`evonas.spaces.hparams`). Defaults: ``genomes/chain.yaml``.

Example::

    space = make_space("chain", {"max_layers": 4})
    g = space.sample(rng=random.Random(0))
    space.describe(g)   # e.g. 'c3x32b-c5x64s2r:gelu | adam lr=0.003 wd=1e-4 bs=64'
    net = space.decode(g, input_shape=(1, 8, 8), num_classes=10)
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any, Sequence

from evonas.spaces import SPACES
from evonas.spaces.base import Genome, InvalidGenome
from evonas.spaces.genes import change_one, check_gene
from evonas.spaces.layered import ACTIVATION_NAMES, LayeredGenome, LayerListSpace, layered
from evonas.spaces.parameters import ParamReader

__all__ = ["ChainGenome", "ChainSpace", "ConvLayer"]


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """One convolution layer gene."""

    kernel: int
    width: int
    stride: int
    activation: str
    batch_norm: bool
    residual: bool


@dataclasses.dataclass(frozen=True)
class ChainGenome(LayeredGenome):
    """Convolution layers, input to output, plus ``lr``, ``optimizer``, ``weight_decay``, ``batch_size``."""

    layers: tuple[ConvLayer, ...]


def _downsamples(layers: Sequence[ConvLayer]) -> int:
    return sum(1 for layer in layers if layer.stride == 2)


@SPACES.register("chain")
class ChainSpace(LayerListSpace):
    """Macro CNN: ``min_layers``..``max_layers`` conv layers, at most ``max_downsamples`` of them with stride 2.

    Layer parameters: ``kernels`` (odd sizes), ``widths``, ``activations``
    (names in :data:`~evonas.spaces.layered.ACTIVATION_NAMES`), ``max_downsamples``,
    ``batch_norm`` and ``residual`` (the allowed booleans, e.g. ``[true]`` to
    force batch norm everywhere).

    Parameters:
        kernels: the kernel sizes a convolution may have (odd: padding ``k // 2`` keeps the image size).
        max_downsamples: the most stride-2 layers a genome has (0: never downsample).
        batch_norm: the allowed values of a layer's batch norm (``[true]``: everywhere).
        residual: the allowed values of a layer's skip connection (identity, or a 1x1 projection when the shape
            changes).
    """

    input_ranks = (3,)
    example_input_shape = (1, 8, 8)
    genome_type = ChainGenome
    layer_type = ConvLayer

    def _read_layer_params(self, reader: ParamReader) -> None:
        self.kernels: tuple[int, ...] = reader.choices(
            "kernels", int, check=lambda k: k >= 1 and k % 2 == 1, what="odd integers >= 1"
        )
        self.widths: tuple[int, ...] = reader.choices("widths", int, check=lambda w: w >= 1, what="integers >= 1")
        self.activations: tuple[str, ...] = reader.choices("activations", str, allowed=ACTIVATION_NAMES)
        self.max_downsamples: int = reader.integer("max_downsamples", minimum=0)
        self.batch_norm: tuple[bool, ...] = reader.choices("batch_norm", bool)
        self.residual: tuple[bool, ...] = reader.choices("residual", bool)

    def _can_downsample(self, others: Sequence[ConvLayer]) -> bool:
        return _downsamples(others) < self.max_downsamples

    def sample_layer(self, *, rng: random.Random, others: Sequence[Any]) -> ConvLayer:
        return ConvLayer(
            kernel=rng.choice(self.kernels),
            width=rng.choice(self.widths),
            stride=rng.choice((1, 2)) if self._can_downsample(others) else 1,
            activation=rng.choice(self.activations),
            batch_norm=rng.choice(self.batch_norm),
            residual=rng.choice(self.residual),
        )

    def validate_layer(self, layer: Any, where: str) -> None:
        check_gene(layer.kernel, self.kernels, f"{where}.kernel", "kernels")
        check_gene(layer.width, self.widths, f"{where}.width", "widths")
        check_gene(layer.stride, (1, 2), f"{where}.stride", "strides")
        check_gene(layer.activation, self.activations, f"{where}.activation", "activations")
        check_gene(layer.batch_norm, self.batch_norm, f"{where}.batch_norm", "batch_norm")
        check_gene(layer.residual, self.residual, f"{where}.residual", "residual")

    def validate_layers(self, layers: Sequence[Any]) -> None:
        n = _downsamples(layers)
        if n > self.max_downsamples:
            raise InvalidGenome(f"layers: {n} stride-2 layers, more than max_downsamples={self.max_downsamples}")

    def mutate_layer(self, layer: Any, *, rng: random.Random, others: Sequence[Any]) -> ConvLayer:
        strides = (1, 2) if self._can_downsample(others) else (1,)
        options = {
            "kernel": self.kernels,
            "width": self.widths,
            "stride": strides,
            "activation": self.activations,
            "batch_norm": self.batch_norm,
            "residual": self.residual,
        }
        return change_one(layer, options, rng=rng)

    def layer_options(self, others: Sequence[Any]) -> dict[str, tuple[Any, ...]]:
        """Every field's allowed values; stride 2 only while fewer than ``max_downsamples`` earlier layers have it."""
        return {
            "kernel": self.kernels,
            "width": self.widths,
            "stride": (1, 2) if self._can_downsample(others) else (1,),
            "activation": self.activations,
            "batch_norm": self.batch_norm,
            "residual": self.residual,
        }

    def describe_layer(self, layer: Any) -> str:
        text = f"c{layer.kernel}x{layer.width}"
        text += "s2" if layer.stride == 2 else ""
        text += "b" if layer.batch_norm else ""
        text += "r" if layer.residual else ""
        return text if layer.activation == "relu" else f"{text}:{layer.activation}"

    def decode(self, genome: Genome, *, input_shape: tuple[int, ...], num_classes: int) -> Any:
        input_shape = tuple(input_shape)
        reason = self.check_input(input_shape)
        if reason:
            raise ValueError(reason)
        if min(input_shape) < 1 or num_classes < 1:
            raise ValueError(f"chain: need positive input sizes and num_classes, got {input_shape}, {num_classes}")
        self.validate(genome)
        from evonas.spaces.layers import ChainNet  # torch: imported only to build a network

        return ChainNet(layered(genome).layers, in_channels=input_shape[0], num_classes=num_classes)
