"""The ``mlflow`` logger: one MLflow run per evonas run, each evaluation a nested child run.

Install it with ``pip install "evonas[mlflow]"`` (``mlflow-skinny``: it logs and reads, with SQLAlchemy and Alembic for
its SQL stores; ``pip install mlflow``
for the UI). In an
experiment::

    loggers: [mlflow]
    # or, with parameters:
    loggers:
      - name: mlflow
        params: {tracking_uri: "sqlite:///mlflow.db", experiment_name: cifar-search, tags: {team: vision}}

Parameters (see :class:`MLflowLogger`):

- ``tracking_uri`` (default: none, a SQLite store in the run folder, ``RUN/mlruns/mlflow.db``, its artifacts in
  ``RUN/mlruns/artifacts``): any URI MLflow takes, a server (``http://mlflow.example:5000``) or a database
  (``sqlite:///runs/mlflow.db``: one store for all runs). MLflow 3 keeps the folder store (``./mlruns``,
  ``file:...``) in maintenance mode and refuses it unless ``MLFLOW_ALLOW_FILE_STORE=true``; MLflow itself
  recommends SQLite for a store without a server, which is what the default is;
- ``experiment_name`` (default: the experiment's ``name``): the MLflow experiment (made if missing);
- ``log_every_evaluation`` (default ``true``): a child run per evaluation; ``false`` logs the parent run only
  (its settings, the logbook and the result);
- ``tags`` (default none): tags set on the parent run and on each child run.

What it logs:

- the parent run (named after the run folder, tag ``evonas.run_dir``): the run's settings (``config.yaml``, every
  default filled in) flattened as parameters (``strategy.name``, ``strategy.params.population_size``,
  ``objectives.0.metric``, ...), each row of the logbook as metrics ``generation/<key>`` at step = ``gen``, and when the run ends ``evaluations`` and
  ``best_<metric>`` for each metric of its best evaluation (``best.json``), tags ``evonas.best_trial`` and
  ``evonas.best_key``; its status is FINISHED, KILLED (stopped: Ctrl-C, a full disk, ...) or FAILED (crashed);
- each evaluation, as it is journalled, a child run ``trial-<n>`` (tag ``mlflow.parentRunId``): its metrics plus
  ``wall_s`` and ``fidelity`` (1.0 for a full evaluation) as metrics; its genome as parameters
  ``genome.<name>`` (``genome.layers.0.width``: list positions become ``.0``, MLflow's keys take no brackets);
  ``trial``, ``key``, ``generation``, ``origin``, ``status``, ``worker``, ``fidelity``, ``cached`` (and
  ``inherited`` where set) as parameters; a failed one's error as tag ``evonas.error``. Its status is FINISHED
  (``ok``, ``violated``), KILLED (``pruned``) or FAILED (``failed``). Genomes never trained because they broke a
  cheap limit (``infeasible``) are not logged: the journal keeps them.

A resumed run reuses its parent run (its id is kept in ``RUN/mlruns/evonas_parent_run.json``; failing that it is
found by its ``evonas.run_dir`` tag): the children of both sessions sit under one parent, and an evaluation the
stopped session journalled but never got to log (Ctrl-C between the two) is logged when the run resumes. A child
the stopped session left half made (killed, ``kill -9``, between creating it and ending it: still RUNNING, or
without its parameters and metrics) is marked KILLED and deleted (``mlflow gc`` purges it) and its evaluation
logged again; a complete child is never logged twice: each evaluation of the journal has one child.

The logger talks to MLflow through its own ``MlflowClient`` only (no active run, no global tracking URI), so
several runs in one process, and a script's own MLflow runs, do not mix. Its calls go through a thread of their
own, in order, so a slow store never holds up the search: a new SQLite store takes a few seconds to create its
tables, and each evaluation costs three calls (create the run, one ``log_batch``, end it), 20-100 ms on a busy
two-core machine. When the run ends the logger waits for what is still queued (giving up if MLflow answers
nothing for two minutes). What fails in that thread (a store that cannot be written, a server that went away)
is said in one line at the run's next call to the logger, and the logger is off for the rest of the run.

A server (``http://...``) is first asked once, without MLflow's retries and with a 10-second timeout, so a wrong
URI or a server that is down is said within seconds, not after MLflow's retries (7, with backoff: minutes). Later
calls retry as MLflow does by default (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, ``MLFLOW_HTTP_REQUEST_TIMEOUT``,
``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR``): MLflow reads those from the process environment at each request, so
evonas leaves them to you rather than change them for every MLflow client in the process.

MLflow itself sends anonymous usage data unless ``MLFLOW_DISABLE_TELEMETRY=true`` (or ``DO_NOT_TRACK=true``) is
set; evonas leaves that setting to you.

View it (the UI needs the full package: ``pip install mlflow``; the ``evonas[mlflow]`` extra installs
``mlflow-skinny``, which logs and reads but has no UI: ``mlflow ui`` then fails with ``No module named 'flask'``)::

    pip install mlflow
    mlflow ui --backend-store-uri sqlite:///runs/quickstart-20261201-101500/mlruns/mlflow.db

From Python (``mlflow-skinny`` is enough),
``mlflow.tracking.MlflowClient(tracking_uri="sqlite:///RUN/mlruns/mlflow.db").search_runs(...)`` reads it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import queue
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence
from urllib.parse import urlparse

from evonas.loggers import LOGGERS, Logger, RunInfo, genome_params, json_text, logbook_step, scalar_metrics

if TYPE_CHECKING:
    from evonas.engine.journal import Record
    from evonas.engine.runner import RunSummary

__all__ = ["MLflowFailed", "MLflowLogger", "PARENT_FILE"]

#: the folder of the default store in a run folder, and the file there naming the run's parent MLflow run
STORE_DIR = "mlruns"
PARENT_FILE = "evonas_parent_run.json"
#: MLflow's limits (mlflow.utils.validation): entries per log_batch, key and value lengths
_BATCH_PARAMS = 100
_BATCH_METRICS = 1000
_MAX_KEY = 250
_MAX_PARAM = 6000
_MAX_TAG = 8000
#: seconds close() waits for the MLflow thread without it finishing a call before giving up
_STALLED_S = 120.0
#: seconds the first request to a tracking server may take (asked once, no retries)
_PROBE_TIMEOUT_S = 10
#: the statuses of an ended MLflow run (the others: RUNNING, SCHEDULED)
_ENDED = frozenset({"FINISHED", "FAILED", "KILLED"})
#: an evaluation's status as the status of its MLflow run
_RUN_STATUS = {"ok": "FINISHED", "violated": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}


class MLflowFailed(RuntimeError):
    """A call to MLflow failed in the logger's thread; raised by the run's next call to the logger."""

    @classmethod
    def of(cls, what: str, exc: BaseException) -> "MLflowFailed":
        error = cls(f"{what}: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error


@LOGGERS.register("mlflow")
class MLflowLogger(Logger):
    """One MLflow parent run per evonas run; each evaluation a nested child run with its metrics and genome.

    Parameters:
        tracking_uri: the MLflow store: a server (``http://host:5000``) or a database (``sqlite:///mlflow.db``).
            Default (none): a SQLite store in the run folder, ``mlruns/mlflow.db`` (MLflow 3 refuses the old
            folder store ``./mlruns`` unless ``MLFLOW_ALLOW_FILE_STORE=true``; SQLite is what it recommends).
        experiment_name: the MLflow experiment the runs go to (made if missing). Default: the experiment's name.
        log_every_evaluation: a child run per evaluation (``true``); ``false``: the parent run only, with the
            settings, the logbook and the result.
        tags: tags set on the parent run and on each child run (``{team: vision, ticket: NAS-12}``).
    """

    requires = ("mlflow", "sqlalchemy", "alembic")  # the SQL stores (the default: SQLite in the run folder) need both
    extra = "mlflow"

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
        log_every_evaluation: bool = True,
        tags: dict[str, str] | None = None,
    ) -> None:
        if tracking_uri is not None:
            if not isinstance(tracking_uri, str) or not tracking_uri.strip():
                raise ValueError(
                    f"tracking_uri: expected a tracking URI such as sqlite:///mlflow.db, got {tracking_uri!r}"
                )
            allowed = os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() in ("1", "true")
            if _is_file_store(tracking_uri) and not allowed:
                raise ValueError(
                    f"tracking_uri: '{tracking_uri}' is a folder store, which MLflow 3 refuses (maintenance mode); "
                    "use a database such as sqlite:///mlflow.db, a server URL, or leave it out for a store in the "
                    "run folder"
                )
        if experiment_name is not None and (not isinstance(experiment_name, str) or not experiment_name.strip()):
            raise ValueError(f"experiment_name: expected a non-empty name, got {experiment_name!r}")
        if not isinstance(log_every_evaluation, bool):
            raise ValueError(f"log_every_evaluation: expected true or false, got {log_every_evaluation!r}")
        if tags is not None and not isinstance(tags, dict):
            raise ValueError(f"tags: expected a mapping of tag names to values, got {tags!r}")
        for name, value in (tags or {}).items():
            if not isinstance(name, str) or not name.strip() or len(name) > _MAX_KEY:
                raise ValueError(f"tags: expected tag names of 1 to {_MAX_KEY} characters, got {name!r}")
            if not isinstance(value, (str, int, float, bool)):
                raise ValueError(f"tags.{name}: expected text or a number, got {value!r}")
        self.tags = {k: v if isinstance(v, str) else json_text(v) for k, v in (tags or {}).items()}
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.log_every_evaluation = log_every_evaluation
        self.client: Any = None
        self.experiment_id: str | None = None
        self.parent_id: str | None = None
        #: seconds the MLflow thread spent in MLflow's calls, and the evaluations it logged
        self.spent_s = 0.0
        self.logged = 0
        self._rows = 0
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._reported = False
        self._stop = False
        self._done = 0

    # -- the MLflow thread ------------------------------------------------------------------------
    # MLflow's calls go through one thread of their own, in order: a slow store (a new SQLite database takes
    # seconds to set up, a server a round trip per call) never holds up the search. What failed there is raised by
    # the next call from the run (one line, and the logger is off); close() waits for what is queued.
    def _send(self, what: str, call: Any, *args: Any) -> None:
        self._raise()
        if self._error is None:  # failed: nothing more is queued
            self._queue.put((what, call, args))

    def _raise(self) -> None:
        if self._error is not None and not self._reported:
            self._reported = True
            raise self._error

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            what, call, args = item
            if call == self._finish and not self._stop:  # the parent run is ended even after a failure (FAILED)
                try:
                    self._finish(*args)
                except BaseException as exc:
                    self._error = self._error or MLflowFailed.of(what, exc)
            elif self._error is None and not self._stop:
                began = time.perf_counter()
                try:
                    call(*args)
                except BaseException as exc:  # kept for the run's next call: the rest of the queue is dropped
                    self._error = MLflowFailed.of(what, exc)
                self.spent_s += time.perf_counter() - began
            self._done += 1

    # -- the run ----------------------------------------------------------------------------------
    def setup(self, info: RunInfo) -> None:
        super().setup(info)
        # one logger object may serve several runs in turn (a Built reused): each starts afresh
        self.client, self.experiment_id, self.parent_id = None, None, None
        self._queue, self._error, self._reported, self._stop = queue.Queue(), None, False, False
        self._done = self._rows = 0
        settings = self._settings(info)
        earlier = self._journalled(info) if info.resumed and self.log_every_evaluation else []
        self._thread = threading.Thread(target=self._work, name="evonas-mlflow", daemon=True)
        self._thread.start()
        where = self.tracking_uri or f"{Path(info.run_dir) / STORE_DIR / 'mlflow.db'}"
        self._send(f"opening the MLflow store {where}", self._open, info, settings, earlier)

    @staticmethod
    def _journalled(info: RunInfo) -> list[dict[str, Any]]:
        """A resume: the evaluations the journal held when it started, as child runs, for :meth:`_open` to log those
        the first session journalled but never got to log."""
        return [_child(r) for r in info.journalled if r.status != "infeasible"]

    def _open(self, info: RunInfo, settings: dict[str, str], earlier: Sequence[dict[str, Any]] = ()) -> None:
        """In the MLflow thread: the store, the experiment and the parent run (a resume's own, or a new one)."""
        from mlflow.tracking import MlflowClient  # here, never at import: the package is optional

        store = Path(info.run_dir) / STORE_DIR
        if self.tracking_uri is None:
            store.mkdir(parents=True, exist_ok=True)
            uri = _sqlite_uri(store / "mlflow.db")
            artifacts: str | None = (store / "artifacts").resolve().as_uri()
        else:
            uri, artifacts = self.tracking_uri, None
        name = self.experiment_name or info.experiment.name or "evonas"
        with _quiet():  # MLflow says INFO lines while it creates a new database's tables
            self.client = MlflowClient(tracking_uri=uri)
            self._probe(uri, name)
            self.experiment_id = self._experiment(name, artifacts)
        parent = self._reuse_parent(store, uri) if info.resumed else None
        if parent is not None:
            self.client.update_run(parent, status="RUNNING")
            for name, value in self.tags.items():
                self.client.set_tag(parent, name, value)
            have = dict(self.client.get_run(parent).data.params)
            # a resume may differ in settings that do not change the search (workers): parameters are kept
            self._log_params(parent, {k: v for k, v in settings.items() if k not in have})
        else:
            parent = self._new_parent(info, settings)
        self.parent_id = parent
        self._keep_parent(store, uri)
        if info.resumed and self.log_every_evaluation:
            # stopped between journalling an evaluation and logging it (Ctrl-C, a kill): logged now
            logged = self._logged_trials(parent)
            for child in earlier:
                if child["params"]["trial"] not in logged:
                    self._log_child(child)
                    logged.add(child["params"]["trial"])

    def _probe(self, uri: str, experiment: str) -> None:
        """A server's first contact: one request, no retries, a short timeout, so that a wrong URI or a server
        that is down fails in seconds rather than after MLflow's retries (minutes). Any answer will do."""
        if urlparse(uri).scheme not in ("http", "https"):
            return
        try:
            from mlflow.utils.rest_utils import http_request

            creds = self.client._tracking_client.store.get_host_creds()
        except Exception:  # another MLflow's insides: its own first call says what is wrong, in its own time
            return
        try:
            http_request(
                creds, "/api/2.0/mlflow/experiments/get-by-name", "GET", max_retries=0, backoff_factor=0,
                backoff_jitter=0, timeout=_PROBE_TIMEOUT_S, raise_on_status=False,
                params={"experiment_name": experiment},
            )  # fmt: skip
        except Exception as exc:
            found = re.search(r"\[Errno -?\d+\][^'\")]*|timed? ?out|Name or service not known", str(exc))
            why = found.group(0).strip() if found else " ".join(str(exc).split())[-160:] or type(exc).__name__
            raise ConnectionError(
                f"no answer from the tracking server ({why}; asked once, {_PROBE_TIMEOUT_S} s timeout)"
            ) from exc

    def _logged_trials(self, parent: str) -> set[str]:
        """The ``trial`` parameters of the parent run's complete children. A child a killed session left half
        made (not ended, or without the parameters and metrics every child gets) is ended KILLED and deleted, and
        a second complete child of one trial (logged twice by an older evonas) is deleted: the caller logs each
        trial missing here once, so each evaluation has exactly one child."""
        out: set[str] = set()
        stale: list[tuple[str, bool]] = []
        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent}'",
                order_by=["attributes.start_time ASC"], max_results=1000, page_token=token,
            )  # fmt: skip
            for run in page:
                trial = run.data.params.get("trial")
                complete = (
                    run.info.status in _ENDED and run.info.end_time is not None and bool(trial)
                    and "fidelity" in run.data.metrics and "status" in run.data.params
                )  # fmt: skip
                if complete and trial not in out:
                    out.add(str(trial))
                else:
                    stale.append((run.info.run_id, run.info.status in _ENDED))
            token = page.token
            if not token:
                break
        for run_id, ended in stale:
            if not ended:  # no longer RUNNING, even among the deleted runs
                self.client.set_terminated(run_id, "KILLED")
            self.client.delete_run(run_id)
        return out

    def _experiment(self, name: str, artifacts: str | None) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is None:
            try:
                return str(self.client.create_experiment(name, artifact_location=artifacts))
            except MlflowException:  # another run made it in the meantime
                found = self.client.get_experiment_by_name(name)
                if found is None:
                    raise
        if found.lifecycle_stage != "active":
            raise RuntimeError(f"the MLflow experiment '{name}' is deleted: restore it (mlflow experiments restore "
                               f"--experiment-id {found.experiment_id}) or set experiment_name")  # fmt: skip
        return str(found.experiment_id)

    @staticmethod
    def _settings(info: RunInfo) -> dict[str, str]:
        """The run's settings (``config.yaml``) flattened as parameters (``strategy.params.population_size``: ``16``)."""
        out = {}
        for key, value in genome_params(info.settings()).items():
            out[_key(key)] = value if isinstance(value, str) else json_text(value)
        return out

    def _new_parent(self, info: RunInfo, settings: dict[str, str]) -> str:
        from evonas import __version__

        tags = {
            "evonas.run_dir": str(Path(info.run_dir).resolve()),
            "evonas.experiment": info.experiment.name or "",
            "evonas.space": info.space.name,
            "evonas.version": __version__,
            "mlflow.source.name": "evonas",
            **self.tags,
        }
        run = self.client.create_run(self.experiment_id, run_name=info.name, tags=tags)
        self._log_params(run.info.run_id, settings)
        return str(run.info.run_id)

    def _reuse_parent(self, store: Path, uri: str) -> str | None:
        """The parent run of the session this one resumes: the one the pointer file names, else the one tagged
        with this run folder; ``None`` if MLflow has neither (a new one is made)."""
        from mlflow.exceptions import MlflowException

        try:
            kept = json.loads((store / PARENT_FILE).read_text())
        except (OSError, ValueError):
            kept = None
        if isinstance(kept, dict) and kept.get("store") == self._store_id(uri) and isinstance(kept.get("run_id"), str):
            try:
                run = self.client.get_run(kept["run_id"])
            except MlflowException:
                run = None
            if run is not None and run.info.lifecycle_stage == "active":
                if str(run.info.experiment_id) == self.experiment_id:
                    return str(run.info.run_id)
        run_dir = str(Path(self.info.run_dir).resolve())
        if "'" in run_dir:  # not expressible in MLflow's filter syntax
            return None
        found = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`evonas.run_dir` = '{run_dir}'",
            order_by=["attributes.start_time DESC"], max_results=20,
        )  # fmt: skip
        parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
        return str(parents[0].info.run_id) if parents else None

    def _store_id(self, uri: str) -> str:
        """How the pointer file names the store: ``default`` for the run folder's own (wherever the folder moved)."""
        return "default" if self.tracking_uri is None else uri

    def _keep_parent(self, store: Path, uri: str) -> None:
        from evonas.engine.outputs import atomic_write

        kept = {"store": self._store_id(uri), "experiment_id": self.experiment_id, "run_id": self.parent_id}
        atomic_write(store / PARENT_FILE, json.dumps(kept, indent=1) + "\n")

    def _log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k[:_MAX_KEY], str(v)[:_MAX_PARAM]) for k, v in params.items()]
        for chunk in _chunks(items, _BATCH_PARAMS):
            self.client.log_batch(run_id, params=chunk)

    def _log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int, when_ms: int) -> None:
        from mlflow.entities import Metric

        items = [Metric(k[:_MAX_KEY], float(v), when_ms, step) for k, v in metrics.items()]
        for chunk in _chunks(items, _BATCH_METRICS):
            self.client.log_batch(run_id, metrics=chunk)

    # -- what the run tells ------------------------------------------------------------------------
    def log_result(self, record: Record) -> None:
        self._raise()
        if not self.log_every_evaluation or record.status == "infeasible":
            return
        self._send(f"logging trial {record.trial}", self._log_child, _child(record))

    def _log_child(self, child: dict[str, Any]) -> None:
        """In the MLflow thread: one evaluation's run: made, filled with one ``log_batch``, ended."""
        from mlflow.entities import Metric, Param, RunTag

        tags = {"mlflow.parentRunId": self.parent_id, "evonas.status": child["tags"]["evonas.status"]}
        start, name = child["start_ms"], child["name"]
        run = self.client.create_run(self.experiment_id, start_time=start, tags=tags, run_name=name)
        run_id = run.info.run_id
        end_ms = child["end_ms"]
        metrics = [Metric(k[:_MAX_KEY], v, end_ms, 0) for k, v in child["metrics"].items()]
        params = [Param(k[:_MAX_KEY], str(v)[:_MAX_PARAM]) for k, v in child["params"].items()]
        more_tags = [RunTag(k, str(v)[:_MAX_TAG]) for k, v in {**self.tags, **child["tags"]}.items() if k not in tags]
        # one call for all of it while it fits MLflow's batch limits (100 params and tags, 1000 entries)
        self.client.log_batch(run_id, metrics=metrics[:_BATCH_METRICS], params=params[:_BATCH_PARAMS], tags=more_tags)
        for chunk in _chunks(params[_BATCH_PARAMS:], _BATCH_PARAMS):
            self.client.log_batch(run_id, params=chunk)
        for chunk in _chunks(metrics[_BATCH_METRICS:], _BATCH_METRICS):
            self.client.log_batch(run_id, metrics=chunk)
        self.client.set_terminated(run_id, child["status"], end_time=end_ms)
        self.logged += 1

    def log_generation(self, row: Mapping[str, Any]) -> None:
        step = logbook_step(row, self._rows)
        self._rows += 1
        metrics = {f"generation/{_key(k)}": v for k, v in scalar_metrics(genome_params(row)).items() if k != "gen"}
        if metrics:
            when = int(time.time() * 1000)
            self._send(f"logging generation {step}", self._log_row, metrics, step, when)

    def _log_row(self, metrics: Mapping[str, float], step: int, when_ms: int) -> None:
        """In the MLflow thread: one logbook row, as metrics of the parent run."""
        if self.parent_id is not None:
            self._log_metrics(self.parent_id, metrics, step, when_ms)

    def close(self, summary: RunSummary | None) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        status = "FAILED" if summary is None else "KILLED" if summary.interrupted else "FINISHED"
        end: dict[str, Any] = {"status": status}
        if summary is not None:
            metrics = {"evaluations": float(summary.evaluations)}
            best = summary.best if isinstance(summary.best, Mapping) else {}
            found = best.get("metrics")
            for key, value in scalar_metrics(found if isinstance(found, Mapping) else {}).items():
                metrics[f"best_{_key(key)}"] = value
            end.update(metrics=metrics, step=int(summary.evaluations), trial=best.get("trial"), key=best.get("key"))
        self._queue.put(("ending the parent run", self._finish, (end,)))
        self._queue.put(None)
        # wait for what is queued while MLflow makes progress; a store that answers nothing for a while is left
        if self._error is not None:  # it failed already: the parent run is marked FAILED if MLflow answers soon
            thread.join(timeout=5.0)
            self._stop = True
            self._raise()
            return
        done, since = self._done, time.monotonic()
        while thread.is_alive():
            thread.join(timeout=1.0)
            if self._done != done:
                done, since = self._done, time.monotonic()
            elif time.monotonic() - since > _STALLED_S:
                self._stop = True
                left = self._queue.qsize()
                raise MLflowFailed(f"MLflow answered nothing for {_STALLED_S:.0f} s; gave up with {left} calls unsent")
        self._raise()

    def _finish(self, end: dict[str, Any]) -> None:
        """In the MLflow thread: the parent run's result and status (as ``mlflow.start_run`` ends a run: an
        exception FAILED, Ctrl-C KILLED)."""
        if self.parent_id is None or self.client is None:
            return
        if self._error is not None:  # logging failed on the way: say so, the rest is not trusted
            self.client.set_terminated(self.parent_id, "FAILED")
            return
        if "metrics" in end:
            self._log_metrics(self.parent_id, end["metrics"], end["step"], int(time.time() * 1000))
            if end.get("trial") is not None:
                self.client.set_tag(self.parent_id, "evonas.best_trial", str(end["trial"]))
                self.client.set_tag(self.parent_id, "evonas.best_key", str(end["key"]))
        self.client.set_terminated(self.parent_id, end["status"])


def _child(record: Record) -> dict[str, Any]:
    """What the child run of one evaluation holds, as plain data (made in the run's thread, sent to MLflow's)."""
    end = record.finished_at if record.finished_at is not None else time.time()
    wall = record.wall_s if record.wall_s is not None and math.isfinite(record.wall_s) else None
    metrics = {_key(k): v for k, v in scalar_metrics(record.metrics).items()}
    if wall is not None:
        metrics["wall_s"] = float(wall)
    metrics["fidelity"] = 1.0 if record.fidelity is None else float(record.fidelity)
    genome = genome_params(record.genome)
    params = {f"genome.{_key(k)}": v if isinstance(v, str) else json_text(v) for k, v in genome.items()}
    params.update({
        "trial": str(record.trial), "key": record.key, "generation": str(record.generation),
        "origin": record.origin or "", "status": record.status, "worker": record.worker or "",
        "fidelity": "1.0" if record.fidelity is None else repr(float(record.fidelity)),
        "cached": "true" if record.cached else "false",
    })  # fmt: skip
    if record.inherited:
        params["inherited"] = record.inherited
    tags = {"evonas.status": record.status}
    if record.error:
        tags["evonas.error"] = record.error[:_MAX_TAG]
    return {
        "name": f"trial-{record.trial}", "start_ms": int((end - (wall or 0.0)) * 1000), "end_ms": int(end * 1000),
        "metrics": metrics, "params": params, "tags": tags, "status": _RUN_STATUS.get(record.status, "FINISHED"),
    }  # fmt: skip


def _is_file_store(uri: str) -> bool:
    """A URI MLflow reads as its folder store: a plain path (``./mlruns``, ``C:\\mlruns``) or ``file:``."""
    scheme = urlparse(uri).scheme
    return scheme in ("", "file") or len(scheme) == 1


def _sqlite_uri(path: Path) -> str:
    try:
        from mlflow.utils.file_utils import path_to_local_sqlite_uri

        return str(path_to_local_sqlite_uri(str(path.resolve())))
    except ImportError:
        return "sqlite:///" + str(path.resolve())


_BAD = re.compile(r"[^/\w.\- ]")


def _key(name: str) -> str:
    """A name as an MLflow key: ``layers[0].width`` -> ``layers.0.width``; other characters MLflow refuses
    become ``_``, and no ``/`` leads, doubles or ends it."""
    out = re.sub(r"\[(\d+)\]", r".\1", str(name)).lstrip(".")
    out = _BAD.sub("_", out)
    out = re.sub(r"/+", "/", out).strip("/")
    parts = [p if p not in ("", ".", "..") else "_" for p in out.split("/")]
    return "/".join(parts) or "_"


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow's and Alembic's INFO lines (a new store's tables) and retry warnings (several lines each) kept off
    the run's terminal while the store opens: what fails is said in one line by the run."""
    names = ("mlflow", "alembic")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(max(logging.ERROR, levels[n]))
    try:
        yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)
