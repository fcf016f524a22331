"""The training-hyperparameter genes of the layer-list spaces: ``lr``, ``optimizer``, ``weight_decay``,
``batch_size``.

An :class:`HParamSpec` holds the values each gene may take (read from a space's parameters) and samples,
mutates, checks and describes the genes of a genome. The learning rate is sampled on a log scale and
stored rounded to 3 significant digits, so equal-looking genomes share a key.
"""

from __future__ import annotations

import dataclasses
import math
import random
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any, Protocol, Sequence

from evonas.spaces.base import InvalidGenome
from evonas.spaces.genes import check_gene
from evonas.spaces.parameters import ParamReader

__all__ = ["HPARAM_FIELDS", "LR_LOG_STEP", "OPTIMIZERS", "HParamSpec", "format_number", "round_lr"]

#: optimizer names a genome may carry (the trainer maps them to ``torch.optim`` classes).
OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd")
#: the hyperparameter genes, in genome order.
HPARAM_FIELDS: tuple[str, ...] = ("lr", "optimizer", "weight_decay", "batch_size")
#: standard deviation of the log-normal learning-rate mutation step (natural log).
LR_LOG_STEP = 0.5



class HParamGenome(Protocol):
    """A genome that carries the four training hyperparameter genes (``LayeredGenome`` does)."""

    @property
    def lr(self) -> float: ...
    @property
    def optimizer(self) -> str: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def batch_size(self) -> int: ...

def _sig3(x: float, rounding: str) -> float:
    d = Decimal(repr(float(x)))
    return float(d.quantize(Decimal(1).scaleb(d.adjusted() - 2), rounding=rounding))


def round_lr(x: float) -> float:
    """``x`` rounded to 3 significant digits (idempotent), the form learning rates are stored in."""
    return _sig3(x, ROUND_HALF_EVEN)


def format_number(x: float) -> str:
    """Compact text for a small number: ``0.003``, ``1e-4``, ``2.5e-5``, ``0``."""
    if x == 0:
        return "0"
    if abs(x) < 1e-3:
        mant, exp = f"{x:.2e}".split("e")
        mant = mant.rstrip("0").rstrip(".")
        return f"{mant}e{int(exp)}"
    return f"{x:.3g}"


@dataclasses.dataclass(frozen=True)
class HParamSpec:
    """The allowed values of the four hyperparameter genes, read from a space's parameters."""

    lr_min: float
    lr_max: float
    optimizers: tuple[str, ...]
    weight_decays: tuple[float, ...]
    batch_sizes: tuple[int, ...]

    @classmethod
    def read(cls, reader: ParamReader) -> HParamSpec:
        """Parse ``lr_min``, ``lr_max``, ``optimizers``, ``weight_decays``, ``batch_sizes``."""
        lr_min = reader.number("lr_min", exclusive=True)
        lr_max = reader.number("lr_max", exclusive=True)
        if lr_max < lr_min:
            raise reader.error("lr_max", f"({lr_max}) must be >= lr_min ({lr_min})")
        if _sig3(lr_min, ROUND_CEILING) > _sig3(lr_max, ROUND_FLOOR):
            raise reader.error("lr_max", f"leaves no 3-significant-digit learning rate in [{lr_min}, {lr_max}]")
        return cls(
            lr_min=lr_min,
            lr_max=lr_max,
            optimizers=reader.choices("optimizers", str, allowed=OPTIMIZERS),
            weight_decays=reader.choices("weight_decays", float, check=lambda v: v >= 0, what="numbers >= 0"),
            batch_sizes=reader.choices("batch_sizes", int, check=lambda v: v >= 1, what="integers >= 1"),
        )

    @property
    def lr_low(self) -> float:
        """Smallest storable learning rate (``lr_min`` rounded up to 3 significant digits)."""
        return _sig3(self.lr_min, ROUND_CEILING)

    @property
    def lr_high(self) -> float:
        """Largest storable learning rate (``lr_max`` rounded down to 3 significant digits)."""
        return _sig3(self.lr_max, ROUND_FLOOR)

    def _fit_lr(self, lr: float) -> float:
        return min(self.lr_high, max(self.lr_low, round_lr(lr)))

    def sample(self, *, rng: random.Random) -> dict[str, Any]:
        """Random hyperparameter genes: ``lr`` log-uniform, the others uniform over their sets."""
        lr = math.exp(rng.uniform(math.log(self.lr_low), math.log(self.lr_high)))
        return {
            "lr": self._fit_lr(lr),
            "optimizer": rng.choice(self.optimizers),
            "weight_decay": rng.choice(self.weight_decays),
            "batch_size": rng.choice(self.batch_sizes),
        }

    def mutate_one(self, genome: HParamGenome, *, rng: random.Random) -> dict[str, Any]:
        """The change of one gene: ``lr`` by a clipped log-normal step, or a categorical gene resampled.

        Returns ``{}`` when no gene has an alternative value.
        """
        options: dict[str, Sequence[Any]] = {
            "optimizer": self.optimizers, "weight_decay": self.weight_decays, "batch_size": self.batch_sizes,
        }
        movable = [n for n, vals in options.items() if any(v != getattr(genome, n) for v in vals)]
        if self.lr_low < self.lr_high:
            movable.insert(0, "lr")
        if not movable:
            return {}
        name = rng.choice(movable)
        if name == "lr":
            return {"lr": self._fit_lr(genome.lr * math.exp(rng.gauss(0.0, LR_LOG_STEP)))}
        return {name: rng.choice([v for v in options[name] if v != getattr(genome, name)])}

    def validate(self, genome: HParamGenome) -> None:
        """Raise :class:`InvalidGenome` naming the first hyperparameter gene outside this spec."""
        lr = genome.lr
        if type(lr) is not float or not math.isfinite(lr):
            raise InvalidGenome(f"lr: expected a finite float, got {lr!r}")
        if not self.lr_low <= lr <= self.lr_high:
            raise InvalidGenome(f"lr={lr!r} is outside [{self.lr_low}, {self.lr_high}]")
        if lr != round_lr(lr):
            raise InvalidGenome(f"lr={lr!r} has more than 3 significant digits")
        check_gene(genome.optimizer, self.optimizers, "optimizer", "optimizers")
        check_gene(genome.weight_decay, self.weight_decays, "weight_decay", "weight_decays")
        check_gene(genome.batch_size, self.batch_sizes, "batch_size", "batch_sizes")

    @staticmethod
    def describe(genome: HParamGenome) -> str:
        return (
            f"{genome.optimizer} lr={format_number(genome.lr)} "
            f"wd={format_number(genome.weight_decay)} bs={genome.batch_size}"
        )
