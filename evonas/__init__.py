"""evonas: evolutionary neural architecture search on PyTorch and DEAP."""

from __future__ import annotations

__version__ = "0.2.0"

__all__ = ["__version__"]
