"""The ``wandb`` logger: one Weights & Biases run per evonas run, each evaluation a point of its charts.

Install it with ``pip install "evonas[wandb]"`` (the ``wandb`` package, 0.19.10 or later). In an experiment::

    loggers: [wandb]
    # or, with parameters:
    loggers:
      - name: wandb
        params: {project: cifar-search, entity: vision-team, group: sweep-3, tags: [nb201, ga], mode: offline}

Parameters (see :class:`WandbLogger`):

- ``project`` (default: the experiment's ``name``) and ``entity`` (default: none, W&B's default entity of the
  API key): where the run goes;
- ``group`` (default none): W&B's run group (runs of one study side by side); ``tags`` (default none): a list
  of tags, each 1 to 64 characters;
- ``mode`` (default: none, W&B's own choice: the ``WANDB_MODE`` environment variable, else ``online``):
  ``online``, ``offline`` (everything written to the run folder, uploaded later with ``wandb sync``) or
  ``disabled``;
- ``dir`` (default: the run folder): W&B's files go in ``<dir>/wandb/``;
- ``init_timeout`` (default: none, W&B's own: 90 s, or ``WANDB_INIT_TIMEOUT``): how long an online run waits for
  the W&B server when it starts;
- ``finish_timeout`` (default 120 s): how long the run's end waits for W&B to upload what it holds.

What it logs (the run is named after the run folder, its config is the run's settings as ``config.yaml``
records them, every default filled in):

- each evaluation as it is journalled, as one row: ``trial`` (its trial number), ``eval/<metric>`` for each
  finite numeric metric, ``eval/wall_s``, ``eval/fidelity`` (1.0 for a full evaluation) and ``best/<metric>``:
  the best value so far of each objective over complete evaluations (successful, full training, from scratch:
  those ``best.json`` reads). ``trial`` is the x axis of the ``eval/*`` and ``best/*`` charts
  (``define_metric``), so results that arrive out of order (parallel workers) land at their trial; no explicit
  ``step`` is given (W&B drops a row whose step goes back);
- each row of the strategy's logbook: ``generation/<key>`` for each numeric entry (``generation/val_acc_max``,
  ``generation/nevals``, ...), with ``gen`` as their x axis;
- when the run ends: summary entries ``evaluations``, ``best_<metric>`` for each numeric metric of its best
  evaluation (``best.json``), ``best_trial``, ``best_key`` and ``interrupted``, and the table
  ``evaluations_table``: one row per complete evaluation (``trial``, ``key``, ``generation``, ``status``,
  ``wall_s``, the genome flattened as :func:`~evonas.loggers.genome_params` names it (``layers[0].width``,
  ``lr``, ...; a genome entry named like another column is ``genome.<name>``) and its metrics), which W&B's
  parallel coordinates and scatter plots read (at most ``wandb.Table.MAX_ROWS`` rows, 10,000: the best ones by
  the first objective). The W&B run then ends with exit code 0, or 1 when the run crashed (or the logger failed).

Evaluations never trained because they broke a cheap limit (status ``infeasible``) are not logged: the journal
keeps them.

A resumed run goes on in the same W&B run: its id is kept in ``RUN/wandb/evonas_run.json``, and the resume
calls ``wandb.init(id=..., resume="allow")``. Nothing is logged twice: a resume logs only the results it
evaluates itself. An evaluation the stopped session journalled but never got to log (Ctrl-C between the two)
is not logged to W&B (``best/``, the summary and the table still count it). Offline, each session writes its
own ``RUN/wandb/offline-run-*`` folder under the one run id; ``wandb sync RUN/wandb/offline-run-*`` uploads
them to that run.

The logger uses the W&B run it makes only (``wandb.init(..., reinit="create_new")``: never ``wandb.run``, never
the global ``wandb.log``), so a script's own W&B run in the same process is left alone, and W&B's console
output is off (``silent``, ``console="off"``): it writes nothing over the run's progress bar and captures none
of the run's output.

W&B never asks for an API key on the terminal, and a W&B server that is down never costs the run more than
``init_timeout``: when the run would be online and W&B finds no credentials (the ``WANDB_API_KEY`` variable,
``wandb login``'s ``~/.netrc``), when the W&B server does not answer (asked once, with a 10 s timeout, before W&B
starts the run: W&B would retry for ``init_timeout``), or when W&B fails to start the run online (an API key it
refuses, a server that answers errors until ``init_timeout``), the logger says so in one line and logs offline
instead, under a new run id if W&B had tried; ``wandb sync`` uploads it later, and the run goes on either way. When
the run ends the logger waits at most ``finish_timeout`` for W&B's upload (from W&B 0.27, W&B's own
``finish_timeout`` setting stops W&B there too; before, W&B goes on uploading as the process exits); what is not
uploaded then stays in ``RUN/wandb/run-*`` for ``wandb sync``. (W&B before 0.28.2 keeps a run it failed to start
online waiting until the process exits.)
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping, get_args

from evonas.checks import check_choice, check_number, one_line
from evonas.loggers import LOGGERS, Logger, RunInfo, genome_params, improve_best, logbook_step, scalar_metrics

if TYPE_CHECKING:
    from evonas.engine.journal import Record
    from evonas.engine.runner import RunSummary

__all__ = ["WandbLogger", "RUN_FILE", "TABLE_KEY", "MIN_VERSION"]

#: the file in ``RUN/wandb/`` naming the run's W&B run (what a resume goes on with)
RUN_FILE = "evonas_run.json"
#: the key of the table of complete evaluations logged when the run ends
TABLE_KEY = "evaluations_table"
#: the oldest W&B that has what the logger uses (``reinit="create_new"``: several runs in one process)
MIN_VERSION = (0, 19, 10)
#: W&B's limits on tags and project names (``wandb.Settings``)
_MAX_TAG = 64
_MAX_PROJECT = 128
_PROJECT_BAD = "/\\#?%:"
#: the modes that talk to a server, so need credentials
_ONLINE = ("online", "run", "shared")
#: seconds close() waits beyond ``finish_timeout`` for W&B's own timeout to take effect
_FINISH_SLACK_S = 10.0
#: seconds the first request to the W&B server may take (asked once, before W&B starts an online run)
_PROBE_S = 10.0

Mode = Literal["online", "offline", "disabled"]


@LOGGERS.register("wandb")
class WandbLogger(Logger):
    """One Weights & Biases run per evonas run: each evaluation, each logbook row, the result and a table of
    every complete evaluation.

    Parameters:
        project: the W&B project. Default (none): the experiment's name (characters W&B refuses, ``/\\#?%:``,
            become ``-``).
        entity: the W&B user or team the run belongs to. Default (none): the API key's default entity.
        group: W&B's run group: runs of one study shown together (``group: cifar-sweep-3``).
        tags: tags of the W&B run (``[nb201, ga]``), each 1 to 64 characters.
        mode: ``online``, ``offline`` (written to the run folder; ``wandb sync`` uploads it later) or
            ``disabled``. Default (none): W&B's own choice (``WANDB_MODE``, else ``online``).
        dir: the folder W&B writes into (``<dir>/wandb/``). Default (none): the run folder.
        init_timeout: seconds an online run waits for the W&B server as it starts; then it logs offline.
            Default (none): W&B's own (90 s, or ``WANDB_INIT_TIMEOUT``).
        finish_timeout: seconds the run's end waits for W&B to upload what it holds; what is left stays in
            ``RUN/wandb/run-*`` for ``wandb sync``.
    """

    requires = ("wandb",)
    extra = "wandb"

    def __init__(
        self,
        project: str | None = None,
        entity: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        mode: Mode | None = None,
        dir: str | None = None,
        init_timeout: float | None = None,
        finish_timeout: float = 120.0,
    ) -> None:
        if project is not None:
            if not isinstance(project, str) or not project.strip() or len(project) > _MAX_PROJECT:
                raise ValueError(f"project: expected a name of 1 to {_MAX_PROJECT} characters, got {project!r}")
            bad = sorted({c for c in project if c in _PROJECT_BAD})
            if bad:
                raise ValueError(f"project: W&B refuses the characters {''.join(bad)!r} in a project name, "
                                 f"got {project!r}")
        for key, value in (("entity", entity), ("group", group), ("dir", dir)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{key}: expected a non-empty string, got {value!r}")
        if tags is not None:
            if not isinstance(tags, (list, tuple)):
                raise ValueError(f"tags: expected a list of tags, got {tags!r}")
            for tag in tags:
                if not isinstance(tag, str) or not tag or len(tag) > _MAX_TAG:
                    raise ValueError(f"tags: expected tags of 1 to {_MAX_TAG} characters, got {tag!r}")
        if mode is not None:
            check_choice("mode", mode, get_args(Mode))
        self.project = project
        self.entity = entity
        self.group = group
        self.tags = list(tags) if tags is not None else None
        self.mode = mode
        self.dir = dir
        self.init_timeout = None if init_timeout is None else check_number("init_timeout", init_timeout, above=0)
        self.finish_timeout = check_number("finish_timeout", finish_timeout, above=0)
        self.run: Any = None
        #: why the run logs offline although it was meant to be online (``None``: it is not)
        self.fallback: str | None = None
        #: objective metric -> weight (+1 max, -1 min), and the best value so far of each over complete evaluations
        self._objectives: dict[str, float] = {}
        self.best: dict[str, float] = {}
        #: the complete evaluations, for the table logged when the run ends
        self._complete: list[dict[str, Any]] = []
        self._rows = 0

    # -- the run ----------------------------------------------------------------------------------
    def setup(self, info: RunInfo) -> None:
        super().setup(info)
        import wandb  # here, never at import: the package is optional

        _check_version(str(getattr(wandb, "__version__", "")))
        # one logger object may serve several runs in turn (a Built reused): each starts afresh
        self.run, self.fallback, self.best, self._complete, self._rows = None, None, {}, [], 0
        self._objectives = {o.metric: o.weight for o in info.experiment.objectives}
        if info.resumed:  # the best so far and the table's rows from the journal (what the first session saw)
            for rec in info.journalled:
                if rec.complete:
                    self._improve(rec)
        root = Path(self.dir).expanduser() if self.dir is not None else Path(info.run_dir)
        root.mkdir(parents=True, exist_ok=True)  # W&B writes to a temporary folder when this one is missing
        pointer = Path(info.run_dir) / "wandb" / RUN_FILE
        kept = _read_pointer(pointer) if info.resumed else None
        init: dict[str, Any] = {
            "project": self.project or _project_name(info.experiment.name),
            "entity": self.entity,
            "group": self.group,
            "tags": self.tags,
            "dir": str(root),
            "id": kept["id"] if kept else _new_id(wandb),
            "resume": "allow" if kept else None,
            "name": info.name,
            "config": info.settings(),
            "allow_val_change": True,  # a resume may change settings that do not change the search (workers)
            "reinit": "create_new",  # a run of its own: wandb.run (a script's own run) is never touched
        }
        wb_settings = wandb.setup().settings
        mode = self.mode or str(getattr(wb_settings, "mode", None) or os.environ.get("WANDB_MODE") or "online")
        if mode in _ONLINE and not _has_credentials(wandb, wb_settings):
            self.fallback = "W&B finds no API key (run `wandb login` or set WANDB_API_KEY)"
        elif mode in _ONLINE and (silent := _no_answer(wb_settings, min(self.init_timeout or _PROBE_S, _PROBE_S))):
            self.fallback = f"no answer from the W&B server ({silent})"
        else:
            try:
                self.run = wandb.init(mode=self.mode, settings=self._settings(wandb), **init)
            except Exception as exc:
                if mode not in _ONLINE:
                    raise
                self.fallback = f"W&B did not start the run online ({_line(exc)})"
                init["id"] = _new_id(wandb)  # W&B keeps the id of the run it gave up on in use
        if self.run is None:
            self.run = wandb.init(mode="offline", settings=self._settings(wandb), **init)
            # <dir>/wandb/offline-run-<time>-<id>/files; a resumed run has one such folder per session
            where = Path(str(self.run.dir)).parent.parent / f"offline-run-*-{self.run.id}"
            print(f"evonas: logger '{self.name or 'wandb'}' logs offline: {self.fallback}; upload it later with "
                  f"`wandb sync {where}`", file=sys.stderr, flush=True)  # fmt: skip
        run = self.run
        run.define_metric("trial", hidden=True)
        run.define_metric("eval/*", step_metric="trial")
        run.define_metric("best/*", step_metric="trial")
        run.define_metric("gen", hidden=True)
        run.define_metric("generation/*", step_metric="gen")
        if not _disabled(run):
            online = mode in _ONLINE and not self.fallback
            _write_pointer(pointer, {"id": run.id, "project": run.project, "entity": run.entity or None,
                                     "mode": "online" if online else "offline"})  # fmt: skip

    def _settings(self, wandb: Any) -> Any:
        """The run's W&B settings: no console output, the timeouts (``finish_timeout`` where W&B has it)."""
        known = getattr(wandb.Settings, "model_fields", {})
        given: dict[str, Any] = {"silent": True, "console": "off"}
        if self.init_timeout is not None:
            given["init_timeout"] = self.init_timeout
        if "finish_timeout" in known:
            given["finish_timeout"] = self.finish_timeout
        return wandb.Settings(**given)

    def _improve(self, record: Record) -> None:
        """A complete evaluation: the best so far of each objective, and its row of the table."""
        metrics = scalar_metrics(record.metrics)
        improve_best(self.best, self._objectives, metrics)
        wall = float(record.wall_s) if record.wall_s is not None and math.isfinite(record.wall_s) else None
        self._complete.append({
            "trial": int(record.trial), "key": record.key, "generation": record.generation, "status": record.status,
            "wall_s": wall, "genome": genome_params(record.genome), "metrics": metrics,
        })  # fmt: skip

    def log_result(self, record: Record) -> None:
        if self.run is None or record.status == "infeasible":  # never trained: not an evaluation
            return
        data: dict[str, Any] = {"trial": int(record.trial)}
        for key, value in scalar_metrics(record.metrics).items():
            data[f"eval/{key}"] = value
        if record.wall_s is not None and math.isfinite(record.wall_s):
            data["eval/wall_s"] = float(record.wall_s)
        data["eval/fidelity"] = 1.0 if record.fidelity is None else float(record.fidelity)
        if record.complete:
            self._improve(record)
        for metric, value in self.best.items():
            data[f"best/{metric}"] = value
        self.run.log(data)  # no step: W&B's own counter, trial the x axis (define_metric)

    def log_generation(self, row: Mapping[str, Any]) -> None:
        step = logbook_step(row, self._rows)
        self._rows += 1
        if self.run is None:
            return
        numbers = scalar_metrics(genome_params(row))
        data: dict[str, Any] = {f"generation/{k}": v for k, v in numbers.items() if k != "gen"}
        if data:
            data["gen"] = step
            self.run.log(data)

    def close(self, summary: RunSummary | None) -> None:
        run, self.run = self.run, None
        if run is None:
            return
        try:
            if summary is not None:
                import wandb

                if self._complete:
                    run.log({TABLE_KEY: self._table(wandb)})
                result: dict[str, Any] = {"evaluations": int(summary.evaluations),
                                          "interrupted": bool(summary.interrupted)}  # fmt: skip
                best = summary.best if isinstance(summary.best, Mapping) else {}
                found = best.get("metrics")
                for key, value in scalar_metrics(found if isinstance(found, Mapping) else {}).items():
                    result[f"best_{key}"] = value
                if best.get("trial") is not None:
                    result.update(best_trial=best.get("trial"), best_key=best.get("key"))
                run.summary.update(result)
        finally:
            self._finish(run, 0 if summary is not None else 1)

    def _table(self, wandb: Any) -> Any:
        """The complete evaluations as a ``wandb.Table`` (the best ``MAX_ROWS`` by the first objective if more)."""
        rows = self._complete
        limit = int(getattr(wandb.Table, "MAX_ROWS", 10000))
        if len(rows) > limit and self._objectives:
            metric, weight = next(iter(self._objectives.items()))
            ranked = sorted(rows, key=lambda r: -weight * r["metrics"].get(metric, -weight * math.inf))
            rows = sorted(ranked[:limit], key=lambda r: r["trial"])
        fixed = ["trial", "key", "generation", "status", "wall_s"]
        metrics = list(dict.fromkeys(k for r in rows for k in r["metrics"]))
        genome = list(dict.fromkeys(k for r in rows for k in r["genome"]))
        taken = set(fixed) | set(metrics)
        names = {g: f"genome.{g}" if g in taken else g for g in genome}
        columns = fixed + [names[g] for g in genome] + metrics
        data = [
            [r[k] for k in fixed] + [r["genome"].get(g) for g in genome] + [r["metrics"].get(m) for m in metrics]
            for r in rows[:limit]
        ]
        return wandb.Table(columns=columns, data=data, allow_mixed_types=True)

    def _finish(self, run: Any, exit_code: int) -> None:
        """``run.finish(exit_code)``, waiting at most ``finish_timeout`` (and a little) for it: W&B's upload may
        hang on a network that went away."""
        failed: list[BaseException] = []

        def finish() -> None:
            try:
                run.finish(exit_code=exit_code)
            except BaseException as exc:  # said by close() in the run's thread
                failed.append(exc)

        thread = threading.Thread(target=finish, name="evonas-wandb-finish", daemon=True)
        thread.start()
        thread.join(self.finish_timeout + _FINISH_SLACK_S)
        if thread.is_alive():
            where = Path(str(run.dir)).parent if getattr(run, "dir", None) else "RUN/wandb"
            raise TimeoutError(f"W&B did not finish uploading within {self.finish_timeout:g} s; what is left is in "
                               f"{where} (`wandb sync {where}` uploads it)")  # fmt: skip
        if failed:
            raise failed[0]


def _check_version(version: str) -> None:
    found = tuple(int(n) for n in re.findall(r"\d+", version)[:3])
    if found and found < MIN_VERSION:
        need = ".".join(map(str, MIN_VERSION))
        raise RuntimeError(f"needs wandb>={need}, found {version}: pip install -U \"evonas[wandb]\"")


def _has_credentials(wandb: Any, settings: Any) -> bool:
    """Whether W&B finds credentials without asking on the terminal (``WANDB_API_KEY``, ``~/.netrc``, its settings,
    an identity token). A key W&B refuses counts as found: ``wandb.init`` then says what is wrong with it."""
    try:
        from wandb.sdk.lib import wbauth  # W&B's own check, where it has one: what wandb.init would find
    except ImportError:
        check = None
    else:
        check = getattr(wbauth, "authenticate_session", None)
    if check is not None:
        try:
            found = check(host=settings.base_url, source="evonas", prompt=False, update_session=False)
        except TypeError:  # another signature: the older checks below
            pass
        except Exception:
            return True
        else:
            return found is not None
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    try:
        return bool(wandb.api.api_key)  # W&B before its wbauth module: the environment, settings and ~/.netrc
    except Exception:
        return False


def _no_answer(settings: Any, timeout: float) -> str | None:
    """Why the W&B server does not answer (``None``: it does; any HTTP reply counts, an error status too), asked
    once: W&B itself would retry for ``init_timeout`` and, where the server never answers, keep the run it gave up
    on waiting until the process exits."""
    import ssl
    import urllib.error
    import urllib.request

    url = str(getattr(settings, "base_url", "") or "https://api.wandb.ai")
    proxies = {k: str(v) for k in ("http", "https") if (v := getattr(settings, f"{k}_proxy", None))}
    handlers = [urllib.request.ProxyHandler(proxies)] if proxies else []
    try:
        with urllib.request.build_opener(*handlers).open(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLError):  # W&B may trust certificates Python does not: let it try
            return None
        why = exc.reason
    except (OSError, ValueError) as exc:  # a timeout, a reset connection, a malformed URL
        why = exc
    return f"{url}: {' '.join(str(why).split()) or type(why).__name__}; asked once, {timeout:g} s timeout"


def _new_id(wandb: Any) -> str:
    try:
        return str(wandb.util.generate_id())
    except Exception:
        import secrets

        return secrets.token_hex(4)


def _project_name(name: str | None) -> str:
    """The experiment's name as a W&B project: at most 128 characters, none of ``/\\#?%:``."""
    out = "".join("-" if c in _PROJECT_BAD else c for c in (name or "").strip())[:_MAX_PROJECT].strip()
    return out or "evonas"


def _disabled(run: Any) -> bool:
    settings = getattr(run, "settings", None)
    return bool(getattr(run, "disabled", False) or getattr(settings, "mode", None) == "disabled")


def _read_pointer(path: Path) -> dict[str, Any] | None:
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(kept, dict) and isinstance(kept.get("id"), str) and re.fullmatch(r"[\w\-]{1,128}", kept["id"]):
        return kept
    return None


def _write_pointer(path: Path, kept: Mapping[str, Any]) -> None:
    from evonas.engine.outputs import atomic_write

    atomic_write(path, json.dumps(dict(kept), indent=1) + "\n")


def _line(exc: BaseException) -> str:
    """An exception as one short line (without W&B's advice on its own settings: the logger's parameters set them)."""
    text = " ".join(str(exc).split()).split(" Consider increasing")[0] or type(exc).__name__
    return one_line(f"{type(exc).__name__}: {text}", 300)
