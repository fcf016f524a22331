"""The engine: build an experiment, evaluate on a backend, journal every result, resume by replay.

Importing it registers the built-in backends: ``local`` (:mod:`evonas.engine.pool`) and ``ray``
(:mod:`evonas.engine.ray_backend`, which imports Ray only when that backend is built).
"""

from evonas.engine import pool, ray_backend  # noqa: F401  (registration)
