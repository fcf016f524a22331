"""The ``tensorboard`` logger: a run's evaluations and logbook as TensorBoard scalars, and the HParams table.

Install it with ``pip install "evonas[tensorboard]"`` (the ``tensorboard`` package; the events are written with
``torch.utils.tensorboard``). In an experiment::

    loggers: [tensorboard]
    # or, with parameters:
    loggers:
      - {name: tensorboard, params: {log_dir: tb, hparams: true}}

Parameters (see :class:`TensorBoardLogger`):

- ``log_dir`` (default: none, the run folder's ``tensorboard/``): a folder shared by several runs; each run writes
  into ``<log_dir>/<run name>/`` there, so one TensorBoard shows them side by side;
- ``hparams`` (default ``true``): one entry of the HParams tab per complete evaluation.

What it writes (TensorBoard's "runs" are folders):

- in the run's own folder (``RUN/tensorboard``), for each evaluation as it is journalled, at step = its trial
  number: ``eval/<metric>`` for each numeric metric, ``eval/wall_s``, ``eval/fidelity`` (1.0 for a full
  evaluation); and, at step = the number of results journalled so far (so the curve only improves, also with
  parallel workers), ``best/<metric>``: the best value so far of each objective over complete evaluations
  (successful, full training, from scratch: those ``best.json`` reads);
- per generation of the strategy's logbook, at step = ``gen``: ``generation/<key>`` for each numeric entry
  (``generation/val_acc_max``, ``generation/nevals``, ...);
- when the run ends, at step = its evaluation count: ``run/evaluations`` and ``run/best_<metric>`` for each
  numeric metric of its best evaluation (``best.json``); a text entry ``experiment`` holds its settings;
- with ``hparams``, each complete evaluation also gets its own run ``trials/<trial>`` holding its genome as
  hyperparameters (``layers[0].width``, ``lr``, ...) and its metrics as ``hparams/<metric>``: the HParams tab
  lists, filters and plots (parallel coordinates) every evaluation by genome and metric.

Evaluations never trained because they broke a cheap limit (status ``infeasible``) are not logged: the journal
keeps them. A resumed run adds new event files to the same folder; steps go on from the trial numbers.

View it::

    tensorboard --logdir runs/quickstart-20261201-101500/tensorboard
    tensorboard --logdir runs        # every run folder under runs/, side by side
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from evonas.loggers import LOGGERS, Logger, RunInfo, genome_params, improve_best, logbook_step, scalar_metrics

if TYPE_CHECKING:
    from evonas.engine.journal import Record
    from evonas.engine.runner import RunSummary

__all__ = ["TensorBoardLogger"]

#: the folder of the per-evaluation runs the HParams tab reads
TRIALS_DIR = "trials"


@LOGGERS.register("tensorboard")
class TensorBoardLogger(Logger):
    """Scalars per evaluation, per generation and per run, and the HParams table, as TensorBoard event files.

    Parameters:
        log_dir: where the event files go. Default (none): the run folder's ``tensorboard/``. Given, a folder
            that several runs may share: this run writes into ``<log_dir>/<run folder's name>/``. A relative
            path is taken from the current folder.
        hparams: write one HParams entry (a run ``trials/<trial>``) per complete evaluation: its genome as
            hyperparameters, its metrics as ``hparams/<metric>``. ``false`` writes the scalars only.
    """

    requires = ("tensorboard",)
    extra = "tensorboard"

    def __init__(self, log_dir: str | None = None, hparams: bool = True) -> None:
        if log_dir is not None and (not isinstance(log_dir, str) or not log_dir.strip()):
            raise ValueError(f"log_dir: expected a folder path, got {log_dir!r}")
        if not isinstance(hparams, bool):
            raise ValueError(f"hparams: expected true or false, got {hparams!r}")
        self.log_dir = log_dir
        self.hparams = hparams
        self.writer: Any = None
        self.path: Path | None = None
        #: objective metric -> weight (+1 max, -1 min), and the best value so far of each over complete evaluations
        self._objectives: dict[str, float] = {}
        self.best: dict[str, float] = {}
        #: results journalled so far (the step of ``best/``)
        self._results = 0
        self._rows = 0

    # -- the run ----------------------------------------------------------------------------------
    def setup(self, info: RunInfo) -> None:
        super().setup(info)
        from torch.utils.tensorboard import SummaryWriter  # here, never at import: the package is optional

        if self.log_dir is None:
            self.path = Path(info.run_dir) / "tensorboard"
        else:
            self.path = Path(self.log_dir).expanduser() / info.name
        self._objectives = {o.metric: o.weight for o in info.experiment.objectives}
        self.best, self._results, self._rows = {}, 0, 0  # one logger object may serve several runs in turn
        if info.resumed:
            self._restore(info)
        self.writer = SummaryWriter(log_dir=str(self.path), flush_secs=10)
        if not info.resumed:
            self.writer.add_text("experiment", _yaml_block(info.settings()), 0)

    def _restore(self, info: RunInfo) -> None:
        """A resume: the best so far and the result count from the journal (what the first session logged)."""
        for rec in info.journalled:
            self._results = max(self._results, rec.seq + 1)
            if rec.complete:
                self._improve(rec)

    def _improve(self, record: Record) -> None:
        improve_best(self.best, self._objectives, scalar_metrics(record.metrics))

    def log_result(self, record: Record) -> None:
        if record.status == "infeasible":  # never trained: not an evaluation
            return
        w = self.writer
        step = int(record.trial)
        when = record.finished_at if record.finished_at is not None else time.time()
        metrics = scalar_metrics(record.metrics)
        for key, value in metrics.items():
            w.add_scalar(f"eval/{key}", value, step, walltime=when)
        if record.wall_s is not None and math.isfinite(record.wall_s):
            w.add_scalar("eval/wall_s", float(record.wall_s), step, walltime=when)
        w.add_scalar("eval/fidelity", 1.0 if record.fidelity is None else float(record.fidelity), step, walltime=when)
        self._results = max(self._results + 1, record.seq + 1)
        if record.complete:
            self._improve(record)
            if self.hparams:
                self._hparams(record, metrics, when)
        for metric, value in self.best.items():
            w.add_scalar(f"best/{metric}", value, self._results, walltime=when)

    def _hparams(self, record: Record, metrics: Mapping[str, float], when: float) -> None:
        """One session of the HParams plugin: a run of its own holding the genome and the metrics.

        No experiment summary is written: TensorBoard then gathers the hyperparameters (and the values each took)
        from every session, so genomes of different shapes (``layers[4].width`` in some only) all show."""
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
        from torch.utils.tensorboard import SummaryWriter

        start = plugin_data_pb2.SessionStartInfo(start_time_secs=when - (record.wall_s or 0.0))
        for name, value in genome_params(record.genome).items():
            value = _hparam_value(value)
            if value is None:
                continue
            if isinstance(value, bool):
                start.hparams[name].bool_value = value
            elif isinstance(value, (int, float)):
                start.hparams[name].number_value = value
            else:
                start.hparams[name].string_value = value
        end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS, end_time_secs=when)
        sub = Path(self.path or ".") / TRIALS_DIR / f"{record.trial:06d}"
        with SummaryWriter(log_dir=str(sub)) as hw:
            for tag, data in (
                (metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start)),
                (metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end)),
            ):
                summary = Summary(value=[Summary.Value(
                    tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR,
                )])  # fmt: skip
                hw.file_writer.add_summary(summary, record.trial, walltime=when)
            for key, value in metrics.items():
                hw.add_scalar(f"hparams/{key}", value, record.trial, walltime=when)
            if record.wall_s is not None and math.isfinite(record.wall_s):
                hw.add_scalar("hparams/wall_s", float(record.wall_s), record.trial, walltime=when)

    def log_generation(self, row: Mapping[str, Any]) -> None:
        step = logbook_step(row, self._rows)
        self._rows += 1
        for key, value in scalar_metrics(genome_params(row)).items():
            if key != "gen":
                self.writer.add_scalar(f"generation/{key}", value, step)

    def close(self, summary: RunSummary | None) -> None:
        writer, self.writer = self.writer, None
        if writer is None:
            return
        try:
            if summary is not None:
                step = int(summary.evaluations)
                writer.add_scalar("run/evaluations", float(summary.evaluations), step)
                best = summary.best if isinstance(summary.best, Mapping) else {}
                metrics = best.get("metrics")
                for key, value in scalar_metrics(metrics if isinstance(metrics, Mapping) else {}).items():
                    writer.add_scalar(f"run/best_{key}", value, step)
            writer.flush()
        finally:
            writer.close()


def _hparam_value(value: Any) -> bool | int | float | str | None:
    """A genome value as the HParams plugin takes it: a number, a string or a boolean (anything else as text)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value if math.isfinite(value) else str(value)
    return str(value)


def _yaml_block(data: Any) -> str:
    """``data`` as YAML in a Markdown code block (TensorBoard's text tab renders Markdown)."""
    import yaml

    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)
    return "\n".join("    " + line for line in text.splitlines())
