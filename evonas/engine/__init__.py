"""The engine: build an experiment, evaluate on a backend, journal every result, resume by replay.

The built-in backends, ``local`` (:mod:`evonas.engine.pool`) and ``ray`` (:mod:`evonas.engine.ray_backend`,
which imports Ray only when that backend is built), are declared in :data:`evonas.engine.backends.BACKENDS`
and imported when first used.
"""
