"""Loggers: send a run's evaluations and logbook to the tools a team already uses (``loggers:`` in an experiment).

Each logger is told, as the run goes (Ray Tune's ``LoggerCallback``, Optuna's study callbacks):

- :meth:`Logger.setup` once, when the run (or its resume) starts, with a :class:`RunInfo`;
- :meth:`Logger.log_result` for each evaluation the moment it is journalled (never for results a resume replays
  from the journal: they were logged when they happened);
- :meth:`Logger.log_generation` for each new row of the strategy's logbook;
- :meth:`Logger.close` once, when the run ends (finished, stopped or interrupted), with its summary.

Built in (each an optional extra: ``pip install "evonas[tensorboard]"``):

- ``tensorboard``: scalars per evaluation and per generation, and the hparams plugin's table, in
  ``<run>/tensorboard/`` (``tensorboard --logdir runs``);
- ``mlflow``: one MLflow run per experiment run, each evaluation a nested child run with its metrics and its
  genome as parameters (default store: ``<run>/mlruns``; ``mlflow ui --backend-store-uri ...``);
- ``optuna``: each evaluation a trial of an Optuna study (the genome's categorical view as its parameters), so
  ``optuna-dashboard sqlite:///runs.db`` shows the search live;
- ``wandb``: one Weights & Biases run per experiment run: each evaluation and logbook row as chart points, the
  result in its summary and a table of every complete evaluation (W&B's files in ``<run>/wandb/``;
  ``mode: offline`` logs without a server, ``wandb sync`` uploads it later).

A logger that raises is turned off for the rest of the run, with one line on stderr saying which and why; the
run goes on (a tracking server that goes away never costs a search).

Example (experiment file)::

    loggers: [tensorboard, mlflow]
    loggers:
      - {name: optuna, params: {storage: "sqlite:///runs.db"}}

A plug-in logger::

    from evonas.loggers import LOGGERS, Logger

    @LOGGERS.register("print")
    class PrintLogger(Logger):
        def log_result(self, record):
            print(record.trial, record.status, record.metrics.get("val_acc"))
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Sequence

from evonas.registry import Registry

if TYPE_CHECKING:
    from evonas.config import Experiment
    from evonas.engine.journal import Record
    from evonas.spaces.base import SearchSpace

__all__ = [
    "LOGGERS", "Logger", "RunInfo", "LoggerGroup", "genome_params", "scalar_metrics", "missing_packages", "logbook_step",
    "improve_best",
]  # fmt: skip


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What a logger knows of the run it logs."""

    #: the run folder (a logger writes its files under it unless told otherwise)
    run_dir: Path
    #: the experiment as the run reads it (``experiment.name``, ``experiment.objectives``, ``to_dict()``)
    experiment: Experiment
    #: the run's search space (``space.to_dict(genome)``, the categorical view)
    space: SearchSpace
    #: ``True`` when the run is a resume: the logger adds to what it wrote before instead of starting over
    resumed: bool = False
    #: a resume: the results the journal held when it started, in arrival order (what the resume replays; results
    #: the stopped session journalled and never got to log are among them)
    journalled: tuple[Record, ...] = ()

    @property
    def name(self) -> str:
        """The run's name: its folder's name (``quickstart-20261201-101500``)."""
        return Path(self.run_dir).resolve().name

    def settings(self) -> dict[str, Any]:
        """The run's settings as its folder records them (``config.yaml``: every default filled in), else the
        experiment as the run reads it."""
        from evonas.config import safe_load_yaml

        try:
            path = Path(self.run_dir) / "config.yaml"
            raw = safe_load_yaml(path.read_text(), path)
        except Exception:  # missing or unreadable
            raw = None
        return raw if isinstance(raw, dict) else self.experiment.to_dict()


class Logger:
    """Receives one run's evaluations and logbook rows; every method but :meth:`log_result` is optional.

    Subclasses set ``requires`` to the Python packages they import (checked when the experiment is built, so a
    missing one is one line before the run starts, not a traceback after an hour).
    """

    #: the name the experiment gave it (set when the run builds it)
    name: str = ""
    #: the importable packages this logger needs, and the extra that installs them
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str | None] = None

    def setup(self, info: RunInfo) -> None:
        """Called once before the first evaluation is logged."""
        self.info = info

    def log_result(self, record: Record) -> None:
        """One evaluation, just journalled (any status: ``ok``, ``pruned``, ``failed``, ``infeasible``, ...)."""
        raise NotImplementedError

    def log_generation(self, row: Mapping[str, Any]) -> None:
        """One new row of the strategy's logbook (``gen``, ``nevals``, per objective ``max``/``avg``/..., ``best``)."""

    def close(self, summary: Any) -> None:
        """The run ended; ``summary`` is its :class:`~evonas.engine.runner.RunSummary` (``evaluations``, ``best``,
        ``interrupted``, ...), ``None`` if the run crashed or this logger failed and was turned off. Flush and
        release what the logger holds."""


LOGGERS: Registry[type[Logger]] = Registry("logger")
LOGGERS.lazy("tensorboard", "evonas.loggers.tensorboard")
LOGGERS.lazy("mlflow", "evonas.loggers.mlflow")
LOGGERS.lazy("optuna", "evonas.loggers.optuna")
LOGGERS.lazy("wandb", "evonas.loggers.wandb")


def missing_packages(cls: type[Logger]) -> list[str]:
    """The packages of ``cls.requires`` that cannot be imported here (found without importing them)."""
    out = []
    for package in cls.requires:
        try:
            found = importlib.util.find_spec(package) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(package)
    return out


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}[{i}]", out)
    else:
        out[prefix or "genome"] = value


def genome_params(genome: Mapping[str, Any]) -> dict[str, Any]:
    """A genome (as journalled: ``space.to_dict(genome)``) as flat parameters: ``{"layers[0].width": 32, "lr": 0.01}``.

    Nested mappings join with ``.``, list items with ``[i]``; values are the genome's own (numbers, strings,
    booleans, ``None``)."""
    out: dict[str, Any] = {}
    _flatten(genome, "", out)
    return out


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The finite numeric metrics of a record (booleans and text left out), as floats."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[str(key)] = float(value)
    return out


def improve_best(best: dict[str, float], objectives: Mapping[str, float], metrics: Mapping[str, float]) -> None:
    """Update ``best`` (objective metric -> best value so far) with a complete evaluation's ``metrics``;
    ``objectives`` maps each objective's metric to its weight (+1 maximise, -1 minimise)."""
    for metric, weight in objectives.items():
        value = metrics.get(metric)
        if value is not None and (metric not in best or weight * value > weight * best[metric]):
            best[metric] = value


def logbook_step(row: Mapping[str, Any], rows: int) -> int:
    """A logbook row's step: its ``gen``, else ``rows`` (how many rows came before it)."""
    gen = row.get("gen")
    if isinstance(gen, (int, float)) and not isinstance(gen, bool) and math.isfinite(gen):
        return int(gen)
    return rows


class LoggerGroup:
    """The run's loggers, each called in turn; one that raises is turned off with one line on stderr."""

    def __init__(self, loggers: Sequence[Logger], say: Callable[[str], None] | None = None) -> None:
        self.loggers = list(loggers)
        #: where the line goes (the run's: above its progress bar); default stderr
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))

    def __bool__(self) -> bool:
        return bool(self.loggers)

    def _call(self, method: str, *args: Any) -> None:
        for logger in list(self.loggers):
            try:
                getattr(logger, method)(*args)
            except Exception as exc:  # a tracker that fails never stops the search
                label = getattr(logger, "name", "") or type(logger).__name__
                error = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
                self.say(f"evonas: logger '{label}' failed in {method} ({error}); it is off for the rest of the run")
                self.loggers.remove(logger)
                if method != "close":
                    try:
                        logger.close(None)
                    except Exception:
                        pass

    def setup(self, info: RunInfo) -> None:
        self._call("setup", info)

    def log_result(self, record: Record) -> None:
        self._call("log_result", record)

    def log_generation(self, row: Mapping[str, Any]) -> None:
        self._call("log_generation", dict(row))

    def close(self, summary: Any) -> None:
        self._call("close", summary)
        self.loggers = []


def json_text(value: Any) -> str:
    """``value`` as compact JSON text (anything not JSON as its ``repr``)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
