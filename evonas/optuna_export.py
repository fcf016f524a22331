"""``evonas export-optuna``: a run folder's evaluations as the trials of an Optuna study, for ``optuna-dashboard``.

The run folder is only read (through :class:`~evonas.runfolder.RunFolder`, so a run that is still running is
read as it stands, without disturbing it); each evaluation the study does not hold yet is added as a trial, as the
``optuna`` logger would have (:class:`evonas.loggers.optuna.StudyWriter`). Run it again later to add only what is
new. The storage is named explicitly (``--storage``): a reading command writes into the run folder only when told
to, and then only its ``optuna.db`` of a run that is not running.

Example::

    evonas export-optuna runs/quickstart --storage sqlite:///runs.db
    optuna-dashboard sqlite:///runs.db
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any, Sequence

__all__ = ["OptunaExport", "OptunaExportError", "export_to_optuna", "cmd_export_optuna"]


class OptunaExportError(RuntimeError):
    """A run folder, storage or study that cannot be exported to; one line."""


@dataclasses.dataclass(frozen=True)
class OptunaExport:
    """What :func:`export_to_optuna` did."""

    storage: str
    study_name: str
    #: trials added now, and those the study held already
    added: int
    already: int
    #: the journal's readable records, and its damaged rows skipped
    records: int
    damaged: int
    #: the run was still running (more trials come: export again later)
    live: bool
    #: why the trials' parameters are the genome's own values, not the space's categorical view ("" if they are)
    flat_reason: str = ""


def export_to_optuna(
    run_dir: str | Path,
    storage: str,
    study_name: str | None = None,
    *,
    plugins: Sequence[str] | None = None,
    trust: bool = False,
) -> OptunaExport:
    """Add the evaluations of ``run_dir`` (finished or running) that the study lacks to the Optuna study
    ``study_name`` (default: the run folder's name) in ``storage`` (an Optuna storage URL such as
    ``sqlite:///runs.db``); returns what was done. Raises :class:`OptunaExportError` or
    :class:`~evonas.runfolder.RunFolderError` (one line). ``plugins``/``trust``: as for the other reading commands
    (a plug-in space not imported gives the genome's own values as parameters)."""
    from evonas.diagnostics import run_space
    from evonas.runfolder import LOCK_NAME, RunFolder, _writer_holds, missing_plugins

    from evonas.loggers.optuna import StudyError, StudyWriter, _optuna

    try:
        _optuna()
    except StudyError as exc:
        raise OptunaExportError(str(exc)) from None

    folder = RunFolder(run_dir)
    live = _writer_holds(folder.path) if (folder.path / LOCK_NAME).exists() else False
    _check_target(folder, storage, live)
    exp = folder.experiment(plugins=plugins, trust=trust)
    records = folder.records("seq")
    space, problem = run_space(exp)
    reason = ""
    if space is None:
        imported = list(exp.plugins)
        reason = problem + missing_plugins(folder.config(), [Path(p).stem for p in imported] + imported)
    name = study_name or Path(os.path.realpath(folder.path)).name
    try:
        writer = StudyWriter(storage, name, exp, space, folder.path)
    except StudyError as exc:
        raise OptunaExportError(str(exc)) from None
    try:
        before = len(writer.known)
        added = writer.catch_up(records)
    except StudyError as exc:
        raise OptunaExportError(str(exc)) from None
    except Exception as exc:  # the database went away, a disk filled up: one line
        raise OptunaExportError(f"{storage}: cannot write the study '{name}' ({type(exc).__name__}: "
                                f"{' '.join(str(exc).split())[:300]})") from None  # fmt: skip
    finally:
        writer.close()
    return OptunaExport(storage, name, added, before, len(records), folder.damaged, live, reason)


def _check_target(folder: Any, storage: str, live: bool) -> None:
    """A storage file inside the run folder may only be its ``optuna.db``, and not while the run is running (the
    run's own ``optuna`` logger may be writing it: two writers would add the same trials)."""
    from evonas.loggers.optuna import storage_file, storage_problem

    problem = storage_problem(storage)
    if problem is not None:
        raise OptunaExportError(f"--storage: {problem}")
    file = storage_file(storage)
    if file is None:
        return
    root = os.path.realpath(folder.path)
    real = os.path.realpath(file)
    if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
        if os.path.dirname(real) != root or os.path.basename(real) != "optuna.db":
            raise OptunaExportError(f"--storage {storage}: inside the run folder; only its optuna.db may be written "
                                    "there (or name a file outside it, e.g. sqlite:///runs.db)")  # fmt: skip
        if live:
            raise OptunaExportError(f"--storage {storage}: the run is still running and owns its folder; name a "
                                    "file outside it, e.g. sqlite:///runs.db")  # fmt: skip


def cmd_export_optuna(args: argparse.Namespace) -> int:
    """``evonas export-optuna RUN_DIR --storage URL [--study-name NAME] [--plugins ...] [--trust]``."""
    from evonas.commands import _fail, _plugin_files
    from evonas.runfolder import RunFolderError

    if not args.storage:
        return _fail("export-optuna: --storage is required: an Optuna storage URL such as sqlite:///runs.db (a reading "
                     "command writes into the run folder only when told: sqlite:///RUN_DIR/optuna.db)")  # fmt: skip
    try:
        result = export_to_optuna(args.run_dir, args.storage, args.study_name,
                                  plugins=_plugin_files(args.plugins), trust=args.trust)  # fmt: skip
    except (OptunaExportError, RunFolderError) as exc:
        return _fail(f"export-optuna: {' '.join(str(exc).split())}")
    if result.flat_reason:
        print(f"evonas: export-optuna: the search space cannot be built here ({' '.join(result.flat_reason.split())}); "
              "the trials' parameters are the genomes' own values", file=sys.stderr)  # fmt: skip
    if result.damaged:
        print(f"evonas: export-optuna: {result.damaged} damaged journal rows skipped", file=sys.stderr)
    state = "still running: export again to add what comes" if result.live else "not running"
    print(f"added     {result.added} trials to study '{result.study_name}' ({result.already} there already, "
          f"{result.records} evaluations in the journal; the run is {state})")  # fmt: skip
    print(f"view      optuna-dashboard {_quoted(result.storage)}")
    return 0


def _quoted(text: str) -> str:
    import shlex

    return shlex.quote(text)
