"""The ``optuna`` logger: each evaluation a trial of an Optuna study, so ``optuna-dashboard`` shows the search live.

Each journalled evaluation becomes one trial (added with ``study.add_trial``), in the order results arrived:

- **parameters**: the genome's categorical view (``space.categorical()``: ``edge[1<-0]``, ``layers[0].width``,
  ...), the active choices only (a layer slot the genome does not use is no parameter of its trial, as in a
  define-by-run Optuna study), each a ``CategoricalDistribution`` of the choice's options, except a number range
  (a define-by-run ``arch.float``/large ``arch.int``, a layer-list space's ``lr``): the genome's own value in a
  ``FloatDistribution``/``IntDistribution`` over the range (log-scaled as the space's), never the view's nearest
  grid point, so ``study.best_params`` are the values trained. A space without a
  categorical view (a plug-in) gives the genome's own flat values (``genome_params``): numbers as int/float
  ranges of the values seen, other values as categories of the values seen; a value a category cannot take
  (its choices are fixed once stored) is kept as the user attribute ``param.<name>`` instead;
- **values**: the run's objectives (``study.directions`` from ``objectives:``, one per objective);
- **state**: ``ok`` is ``COMPLETE``; ``violated`` (trained, broke a limit) is ``COMPLETE`` with the constraint
  ``[1.0]`` (Optuna's and the dashboard's "infeasible"; the other complete trials of a run with limits carry
  ``[0.0]``); ``pruned``, and an ``ok`` at a lower fidelity (multi-fidelity), are ``PRUNED`` with their
  learning curve as intermediate values (step: percent of the full training); ``failed`` and ``infeasible``
  are ``FAIL``, and so is a complete evaluation whose objective is missing or not finite (the user attribute
  ``note`` says which);
- **user attributes**: ``evonas_trial`` (the journal's trial number: what makes adding idempotent), ``seq``,
  ``key``, ``generation``, ``origin``, ``status``, ``worker``, ``wall_s``, ``fidelity``, ``inherited``,
  ``cached``, ``error``, ``genome`` (JSON), ``describe`` and every metric as ``metrics.<name>``; the study's
  own: ``evonas_run_dir``, ``evonas_experiment``, ``evonas_objectives``, ``evonas_strategy``, ``evonas_space``.

The trials' start and end times are the evaluation's (``finished_at - wall_s``, ``finished_at``). A trial the
study holds already (same ``evonas_trial``) is never added twice: a resume first adds what the journal has and
the study lacks, then goes on; ``evonas export-optuna`` adds only new trials each time it is run. A study holding
trials of another run (the same trial numbers with other genomes) is refused, except that a run started over in
the same folder (``--restart``, ``--overwrite``) starts its study over too. The study records the form of its
parameters (user attribute ``evonas_params``: ``space`` or ``genome``); trials of the other form (an export with
other ``--plugins``) are refused, and so is a parameter whose distribution conflicts with the study's: never a
parameter dropped. The storage URL is checked as the logger is configured: a malformed one, or an in-memory
SQLite database (``sqlite://``), is refused before the run starts.

Example (experiment file)::

    loggers: [optuna]                                           # <run>/optuna.db, study named after the run
    loggers:
      - {name: optuna, params: {storage: "sqlite:///runs.db"}}  # one file for many runs, one study each

then ``optuna-dashboard sqlite:///runs.db``. A finished (or running) run: ``evonas export-optuna RUN_DIR
--storage sqlite:///runs.db`` (:mod:`evonas.optuna_export`).
"""

from __future__ import annotations

import datetime as _dt
import math
import random
import re
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from evonas.loggers import LOGGERS, Logger, RunInfo, genome_params, json_text

if TYPE_CHECKING:
    from evonas.engine.journal import Record
    from evonas.engine.runner import RunSummary

__all__ = ["OptunaLogger", "StudyWriter", "StudyError", "ParamView", "open_storage", "storage_problem",
           "default_storage", "storage_file"]

#: the user attribute holding the journal's trial number (what makes adding idempotent)
TRIAL_ATTR = "evonas_trial"
#: the study's user attribute naming the run folder its trials came from
RUN_ATTR = "evonas_run_dir"
#: the study's user attribute naming the form of its trials' parameters (``ParamView.form``: space or genome)
FORM_ATTR = "evonas_params"
#: each form in words (for the message refusing a study written in the other one)
FORMS = {"space": "the search space's choices (its plug-ins imported)",
         "genome": "the genomes' own values (the space not built: its plug-ins not imported)"}  # fmt: skip
#: longest text kept in a user attribute (an error's message, a genome's JSON)
MAX_TEXT = 2000
#: genomes sampled from a space without a categorical view to learn the values of its flat parameters
FALLBACK_SAMPLES = 64


class StudyError(RuntimeError):
    """A storage that cannot be opened, or a study that cannot take this run's trials; one line."""


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise StudyError('needs the package optuna: pip install "evonas[optuna]"') from None
    return optuna


def _line(exc: BaseException) -> str:
    """An exception as one short line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text.split(" (Background on this error")[0]  # SQLAlchemy's link to its docs
    return text[:300]


def default_storage(run_dir: str | Path) -> str:
    """The logger's default storage: ``sqlite:///<run_dir>/optuna.db`` (an absolute path)."""
    return "sqlite:///" + str(Path(run_dir).resolve() / "optuna.db")


def storage_file(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` storage URL (``None`` for another database or an in-memory one)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


def storage_problem(url: Any) -> str | None:
    """Why ``url`` cannot be an Optuna storage URL (``None`` if it can be one): not of the form
    ``dialect[+driver]://...`` (read by SQLAlchemy's ``make_url`` where it is installed, else by its form), or an
    in-memory SQLite database (its trials would be lost when the process exits). Opens nothing."""
    if not isinstance(url, str) or not url.strip():
        return "expected an Optuna storage URL such as sqlite:///runs.db"
    backend, database = None, None
    make_url: Any = None
    try:
        from sqlalchemy.engine import make_url
    except ImportError:
        pass
    if make_url is not None:
        try:
            parsed = make_url(url)
            backend, database = parsed.get_backend_name(), parsed.database
        except Exception:
            backend = None
    else:
        match = re.match(r"^([A-Za-z][A-Za-z0-9.\-]*)(\+[A-Za-z0-9_.\-]+)?://(.*)$", url)
        if match:
            backend, rest = match.group(1), match.group(3)
            database = rest.split("/", 1)[1].split("?", 1)[0] if "/" in rest else ""
    if not backend:
        return f"'{url}' is not a database URL; expected dialect://..., such as sqlite:///runs.db"
    if backend == "sqlite" and (not database or database == ":memory:" or "mode=memory" in url):
        return (f"'{url}' is an in-memory SQLite database: the trials would be lost when evonas exits; name a file, "
                "such as sqlite:///runs.db")  # fmt: skip
    return None


def open_storage(url: str) -> Any:
    """An Optuna ``RDBStorage`` for ``url``; a bad URL, a missing driver or an unreachable database is a
    :class:`StudyError` (one line). SQLite waits up to a minute for a reader (the dashboard) to let it write."""
    optuna = _optuna()
    problem = storage_problem(url)
    if problem is not None:
        raise StudyError(problem)
    file = storage_file(url)
    if file is not None:
        if file.is_dir():
            raise StudyError(f"{url}: {file} is a folder; expected a database file such as sqlite:///runs.db")
        if not file.parent.is_dir():
            raise StudyError(f"{url}: no folder {file.parent} for the database file")
        if file.name.startswith("journal.sqlite"):
            raise StudyError(f"{url}: an evonas journal; name another file, such as sqlite:///runs.db")
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    try:
        with _quiet(optuna):
            return optuna.storages.RDBStorage(url, **kwargs)
    except Exception as exc:
        raise StudyError(f"{url}: cannot open the Optuna storage ({type(exc).__name__}: {_line(exc)})") from None


class _quiet:
    """Optuna's INFO lines ("A new study created ...") and experimental warnings silenced for a block."""

    def __init__(self, optuna: Any) -> None:
        self.optuna = optuna

    def __enter__(self) -> None:
        self.level = self.optuna.logging.get_verbosity()
        self.optuna.logging.set_verbosity(self.optuna.logging.WARNING)
        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()
        warnings.simplefilter("ignore", self.optuna.exceptions.ExperimentalWarning)

    def __exit__(self, *exc: Any) -> None:
        self.warnings.__exit__(*exc)
        self.optuna.logging.set_verbosity(self.level)


# -- parameters --------------------------------------------------------------------------------------------------


def _plain(value: Any) -> bool:
    """A value Optuna stores as a category as it is (``None``, a boolean, a string, a finite number)."""
    return value is None or isinstance(value, (bool, str)) or _number(value)


def _choices(options: Sequence[Any]) -> tuple[Any, ...]:
    """A choice's options as Optuna category values: themselves when plain and told apart by ``==`` (Optuna finds
    a value by ``choices.index``: ``1`` and ``True`` would be one), else each as JSON text."""
    values = list(options)
    if all(_plain(v) for v in values) and not _clash(values):
        return tuple(values)
    texts = [v if isinstance(v, str) else json_text(v) for v in values]
    if len(set(texts)) == len(texts):
        return tuple(texts)
    return tuple(f"{i}:{t}" for i, t in enumerate(texts))


def _clash(values: Sequence[Any]) -> bool:
    """Whether two of ``values`` are equal (``1 == 1.0 == True``), so that ``choices.index`` would mix them up."""
    for i, a in enumerate(values):
        for b in values[i + 1:]:
            if a == b:
                return True
    return False


def _number(value: Any) -> bool:
    """A finite number Optuna can hold exactly (a boolean is not one; an int beyond 2**53 neither)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) <= 2**53
    return isinstance(value, float) and math.isfinite(value)


def _sort_key(value: Any) -> tuple[str, Any]:
    if _number(value):
        return ("0", float(value))
    return ("1" + type(value).__name__, str(value))


def _dist_text(dist: Any) -> str:
    """A distribution in a few words (for a message)."""
    name = type(dist).__name__.replace("Distribution", "").lower()
    if hasattr(dist, "choices"):
        return f"a category of {list(dist.choices)[:8]}"
    return f"{'a log-scaled ' if getattr(dist, 'log', False) else 'an '}{name} range [{dist.low}, {dist.high}]"


def _ranges(space: Any, view: Sequence[Any], D: Any) -> list[Any]:
    """Per choice of the categorical view, the Optuna number range of a choice that is a number range in the space
    (a define-by-run ``arch.float``/``arch.int`` of many values, a layer-list space's ``lr``), else ``None`` (a
    category: its options are all the genome can hold)."""
    out: list[Any] = [None] * len(view)
    explored = getattr(space, "_explored", None)
    if callable(explored):  # the function space: its choices' own distributions
        found = explored()
        by_name: dict[str, Any] = dict(zip(getattr(found, "names", ()), getattr(found, "dists", ())))
        for i, choice in enumerate(view):
            d: Any = by_name.get(choice.name)
            kind = getattr(d, "kind", "")
            if kind == "float":
                out[i] = D.FloatDistribution(float(d.low), float(d.high), log=bool(d.log))
            elif kind == "int" and tuple(choice.options) != tuple(range(d.low, d.high + 1, d.step)):
                step = 1 if d.log else int(d.step)  # a grid of a large int range: the range itself
                out[i] = D.IntDistribution(int(d.low), int(d.high), log=bool(d.log), step=step)
        return out
    hp = getattr(space, "hp", None)
    low: Any = getattr(hp, "lr_low", None)
    high: Any = getattr(hp, "lr_high", None)
    if _number(low) and _number(high) and 0 < low <= high:  # a layer-list space: lr is a log-scaled float
        for i, choice in enumerate(view):
            if choice.name == "lr":
                out[i] = D.FloatDistribution(float(low), float(high), log=True)
    return out


class ParamView:
    """A genome (as journalled) as Optuna parameters and their distributions.

    With a categorical view: its active choices. Without one (``space`` is ``None`` or has none, or a genome the
    space cannot read): the flat genome values, whose distributions come from the values :meth:`learn` was given,
    those the study holds already (``existing``), and the values met since (a number outside its range widens
    it; a category is fixed once stored: another value becomes a user attribute).
    """

    def __init__(self, space: Any, existing: Mapping[str, Any] | None = None) -> None:
        optuna = _optuna()
        self.dist = optuna.distributions
        self.space = space
        self.existing = dict(existing or {})
        self.view: tuple[Any, ...] | None = None
        self.view_dists: list[Any] = []
        self.view_values: list[tuple[Any, ...]] = []
        if space is not None:
            try:
                self.view = tuple(space.categorical())
                ranges = _ranges(space, self.view, self.dist)
                self.view_dists = [
                    r if r is not None else self.dist.CategoricalDistribution(_choices(c.options))
                    for c, r in zip(self.view, ranges)
                ]
                self.view_values = [_choices(c.options) for c in self.view]
            except Exception:  # NotImplementedError: a plug-in space without one; any other: the flat values
                self.view = None
        self.seen: dict[str, set[Any]] = {}
        self.flat: dict[str, Any] = {}

    @property
    def categorical(self) -> bool:
        return self.view is not None

    @property
    def form(self) -> str:
        """The parameters' form: ``space`` (the space's choices) or ``genome`` (the genome's own flat values)."""
        return "space" if self.view is not None else "genome"

    def learn(self, genomes: Iterable[Mapping[str, Any]]) -> None:
        """Values the flat parameters take (a run's genomes, or samples of its space), for their distributions."""
        for genome in genomes:
            for name, value in genome_params(genome).items():
                if _plain(value):
                    self.seen.setdefault(name, set()).add(value)

    def learn_from_space(self, n: int = FALLBACK_SAMPLES, seconds: float = 2.0) -> None:
        """Without a categorical view: sample the space (seeded, at most ``seconds``) to learn its values."""
        if self.view is not None or self.space is None:
            return
        rng, start, out = random.Random(0), time.monotonic(), []
        for _ in range(n):
            try:
                out.append(self.space.to_dict(self.space.sample(rng=rng)))
            except Exception:
                break
            if time.monotonic() - start > seconds:
                break
        self.learn(out)

    def __call__(self, genome: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """``(params, distributions, user attributes)`` of one genome."""
        if self.view is not None:
            try:
                return self._categorical(genome)
            except StudyError:
                raise
            except Exception:  # a genome the space cannot read (an older space's): its own values
                pass
        return self._flat(genome)

    def _categorical(self, genome: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        space, view = self.space, self.view or ()
        parsed = space.from_dict(dict(genome))
        indices = tuple(space.to_categorical(parsed))
        active = tuple(space.categorical_active(indices))
        own: dict[str, Any] | None = None
        params: dict[str, Any] = {}
        dists: dict[str, Any] = {}
        attrs: dict[str, Any] = {}
        for choice, index, on, dist, values in zip(view, indices, active, self.view_dists, self.view_values):
            if not on:
                continue
            if isinstance(dist, self.dist.CategoricalDistribution):
                value = values[index]
            else:  # a number range: the genome's own value, not the view's nearest grid point
                if own is None:
                    own = genome_params(space.to_dict(parsed))
                value, dist = self._number(choice.name, own.get(choice.name), dist)
            stored = self.existing.get(choice.name)
            if stored is not None:
                try:
                    self.dist.check_distribution_compatibility(stored, dist)
                except ValueError:  # the study holds this name with other options: never drop it silently
                    raise StudyError(f"parameter '{choice.name}': the study holds it as {_dist_text(stored)}, this "
                                     f"run's space gives {_dist_text(dist)}; name another study") from None  # fmt: skip
            params[choice.name], dists[choice.name] = value, dist
        return params, dists, attrs

    def _number(self, name: str, value: Any, dist: Any) -> tuple[Any, Any]:
        """A number choice's genome value and its range (widened to hold the value if it lies outside)."""
        D = self.dist
        if isinstance(dist, D.IntDistribution):
            if not (_number(value) and isinstance(value, int)):
                raise ValueError(f"parameter '{name}': the genome holds {value!r}, not an integer")
            if not dist.low <= value <= dist.high:
                dist = D.IntDistribution(min(dist.low, value), max(dist.high, value), log=dist.log, step=1)
            return value, dist
        if not _number(value) or (dist.log and value <= 0):
            raise ValueError(f"parameter '{name}': the genome holds {value!r}, not a number of its range")
        value = float(value)
        if not dist.low <= value <= dist.high:
            dist = D.FloatDistribution(min(dist.low, value), max(dist.high, value), log=dist.log)
        return value, dist

    def _flat(self, genome: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        params, dists, attrs = {}, {}, {}
        for name, value in genome_params(genome).items():
            dist = self._distribution(name, value)
            if dist is None:
                attrs[f"param.{name}"] = value if _plain(value) else json_text(value)
            else:
                params[name], dists[name] = value, dist
        return params, dists, attrs

    def _distribution(self, name: str, value: Any) -> Any:
        """The distribution ``value`` of flat parameter ``name`` is stored with (``None``: not as a parameter)."""
        D = self.dist
        if not _plain(value):
            return None
        dist = self.flat.get(name)
        if dist is None:
            dist = self.existing.get(name)
        if dist is None:
            seen = self.seen.get(name, set()) | {value}
            if all(_number(v) for v in seen):
                low, high = min(seen), max(seen)
                if all(isinstance(v, int) for v in seen):
                    dist = D.IntDistribution(int(low), int(high))
                else:
                    dist = D.FloatDistribution(float(low), float(high))
            else:
                dist = D.CategoricalDistribution(tuple(sorted(seen, key=_sort_key)))
                if _clash(dist.choices):
                    return None
        if isinstance(dist, D.CategoricalDistribution):
            ok = any(value == c and type(value) is type(c) for c in dist.choices)
            dist = dist if ok else None
        elif isinstance(dist, D.IntDistribution):
            if not (_number(value) and isinstance(value, int)) or dist.log or dist.step != 1:
                return None
            if not dist.low <= value <= dist.high:
                dist = D.IntDistribution(min(dist.low, value), max(dist.high, value))
        elif isinstance(dist, D.FloatDistribution):
            if not _number(value) or dist.log or dist.step is not None:
                return None
            if not dist.low <= value <= dist.high:
                dist = D.FloatDistribution(min(dist.low, float(value)), max(dist.high, float(value)))
        else:
            return None
        if dist is not None:
            self.flat[name] = dist
        return dist


# -- trials ------------------------------------------------------------------------------------------------------


def _finite(value: Any) -> float | None:
    """``value`` as a finite float, or ``None`` (not a number, a boolean, infinite, NaN, too large)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _step(share: Any) -> int | None:
    """A share of the training as an intermediate value's step: percent (0.25 -> 25)."""
    share = _finite(share)
    return None if share is None or share < 0 else int(round(share * 100))


def _time(stamp: Any) -> _dt.datetime:
    value = _finite(stamp)
    try:
        return _dt.datetime.fromtimestamp(value) if value is not None else _dt.datetime.now()
    except (OverflowError, OSError, ValueError):
        return _dt.datetime.now()


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json_text(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _attr(value: Any) -> Any:
    """A metric as a user attribute: a finite number as a float, anything else as text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value)
    number = _finite(value)
    if number is not None:
        return number
    return str(value) if isinstance(value, float) else _text(value)


class StudyWriter:
    """The Optuna study of one run, opened (created if needed) in ``storage``; :meth:`add` adds one journal record
    as a trial unless the study holds it already. Shared by :class:`OptunaLogger` and ``evonas export-optuna``.

    ``experiment``: the run's :class:`~evonas.config.Experiment` (its objectives give the study's directions);
    ``space``: its search space (``None``: one that cannot be built here; the flat genome values are used).
    Raises :class:`StudyError` (one line) for a storage that cannot be opened, a study with other directions or
    trials evonas did not write.
    """

    def __init__(self, storage: str, study_name: str, experiment: Any, space: Any, run_dir: str | Path) -> None:
        self.optuna = _optuna()
        self.url, self.study_name, self.experiment = storage, study_name, experiment
        self.run_dir = str(Path(run_dir).resolve())
        self.objectives = tuple(experiment.objectives)
        self.directions = ["maximize" if o.direction == "max" else "minimize" for o in self.objectives]
        self.constrained = bool(getattr(experiment, "constraints", ()))
        self.storage = open_storage(storage)
        self.study = self._open()
        self.known: dict[int, str] = {}  #: journal trial number -> genome key, of the trials the study holds
        existing: dict[str, Any] = {}
        for t in self.study.get_trials(deepcopy=False):
            number = t.user_attrs.get(TRIAL_ATTR)
            if not isinstance(number, int):
                raise StudyError(f"study '{study_name}' in {storage} holds trials evonas did not write (trial "
                                 f"{t.number}); name another study")  # fmt: skip
            self.known[number] = str(t.user_attrs.get("key"))
            existing.update(t.distributions)
        self.params = ParamView(space, existing)
        self.space = space
        self.conflict = self._form_conflict(existing)

    def _form_conflict(self, existing: Mapping[str, Any]) -> str | None:
        """Why the study cannot take this writer's trials: it was written with parameters of the other form."""
        form = self.params.form
        stored = self.study.user_attrs.get(FORM_ATTR)
        if stored is None and existing and self.params.view is not None:  # a study written before the attribute
            names = {c.name for c in self.params.view}
            stored = "space" if set(existing) <= names else "genome"
        if stored is None or stored == form:
            return None
        return (f"study '{self.study_name}' in {self.url} holds trials whose parameters are "
                f"{FORMS.get(str(stored), str(stored))}; these would be {FORMS[form]}: export with the same "
                "--plugins/--trust as before, or name another study (--study-name; the optuna logger's "
                "study_name)")  # fmt: skip

    def check_form(self) -> None:
        """Refuse (:class:`StudyError`) a study whose trials have parameters of the other form."""
        if self.conflict is not None:
            raise StudyError(self.conflict)

    def _open(self) -> Any:
        optuna = self.optuna
        try:
            with _quiet(optuna):
                study = optuna.create_study(
                    storage=self.storage, study_name=self.study_name, directions=self.directions, load_if_exists=True
                )  # fmt: skip
        except StudyError:
            raise
        except Exception as exc:
            raise StudyError(f"{self.url}: cannot open the study '{self.study_name}' ({type(exc).__name__}: "
                             f"{_line(exc)})") from None  # fmt: skip
        found = [d.name.lower() for d in study.directions]
        if found != self.directions:
            raise StudyError(f"study '{self.study_name}' in {self.url} exists with the directions {', '.join(found)}; "
                             f"this run's objectives are {self._objectives_text()}: name another study")  # fmt: skip
        return study

    def _objectives_text(self) -> str:
        return ", ".join(f"{o.metric} ({o.direction})" for o in self.objectives)

    def describe_study(self) -> None:
        """The study's user attributes (the run, its experiment) and its objectives' names."""
        self.check_form()
        exp = self.experiment
        attrs = {
            RUN_ATTR: self.run_dir,
            FORM_ATTR: self.params.form,
            "evonas_experiment": str(getattr(exp, "name", "")),
            "evonas_objectives": [f"{o.metric} ({o.direction})" for o in self.objectives],
            "evonas_strategy": str(getattr(getattr(exp, "strategy", None), "name", "")),
            "evonas_space": str(getattr(getattr(exp, "space", None), "name", "")),
        }
        with _quiet(self.optuna):
            current = self.study.user_attrs
            for key, value in attrs.items():
                if current.get(key) != value:
                    self.study.set_user_attr(key, value)
            try:  # the dashboard's axis titles: the metrics' names instead of "Objective 0"
                if self.study.metric_names != [o.metric for o in self.objectives]:
                    self.study.set_metric_names([o.metric for o in self.objectives])
            except Exception:
                pass

    def start_over(self) -> int:
        """Delete the study and create it again, empty (a run started over in the same folder); returns how many
        trials it held."""
        n = len(self.known)
        with _quiet(self.optuna):
            self.optuna.delete_study(study_name=self.study_name, storage=self.storage)
        self.study = self._open()
        self.known.clear()
        self.params = ParamView(self.space, {})
        self.conflict = None
        return n

    def check_same_run(self, records: Iterable[Record]) -> None:
        """Refuse (:class:`StudyError`) a study whose trials are another run's: a trial number this run's journal
        holds with another genome."""
        for rec in records:
            key = self.known.get(rec.trial)
            if key is not None and key != rec.key:
                raise StudyError(f"study '{self.study_name}' in {self.url} holds trials of another run (its trial "
                                 f"{rec.trial} is genome {key}, this run's is {rec.key}); name another study")  # fmt: skip

    def catch_up(self, records: Sequence[Record]) -> int:
        """Add what ``records`` hold and the study lacks (a resume, an export); returns how many were added. A study
        holding another run's trials is refused before anything is written; the study's attributes are written
        before the first trial."""
        self.check_same_run(records)
        if not self.params.categorical:
            self.params.learn(r.genome for r in records)
        self.describe_study()
        return sum(self.add(rec) for rec in records)

    def add(self, rec: Record) -> bool:
        """Add ``rec`` as a trial unless the study holds it already; ``True`` if added."""
        if rec.trial in self.known:
            return False
        self.check_form()
        trial = self.trial(rec)
        with _quiet(self.optuna):
            self.study.add_trial(trial)
        self.known[rec.trial] = rec.key
        return True

    def trial(self, rec: Record) -> Any:
        """The ``FrozenTrial`` of one journal record (see the module for the mapping)."""
        optuna = self.optuna
        State = optuna.trial.TrialState
        params, dists, attrs = self.params(rec.genome)
        values = [_finite(rec.metrics.get(o.metric)) for o in self.objectives]
        sign = self.objectives[0].weight if self.objectives else 1.0
        intermediate: dict[int, float] = {}
        for point in rec.curve or ():
            try:
                share, reported = point
            except (TypeError, ValueError):
                continue
            step, value = _step(share), _finite(reported)
            if step is not None and value is not None:
                intermediate[step] = value * (1.0 if sign > 0 else -1.0)  # the curve is "higher is better"
        lower = rec.fidelity is not None and _finite(rec.fidelity) is not None and rec.fidelity < 1
        note = None
        system_attrs: dict[str, Any] = {}
        if rec.status == "pruned" or (rec.status == "ok" and lower):
            state = State.PRUNED
            at = rec.fidelity if rec.status == "ok" else rec.metrics.get("pruned_at", rec.fidelity)
            step = _step(at)
            if step is not None and values and values[0] is not None and (rec.status == "ok" or not intermediate):
                intermediate.setdefault(step, values[0])
        elif rec.status in ("ok", "violated"):
            missing = [o.metric for o, v in zip(self.objectives, values) if v is None]
            if missing:
                state, note = State.FAIL, f"objective {', '.join(missing)} missing or not finite"
            else:
                state = State.COMPLETE
                if rec.status == "violated":
                    system_attrs["constraints"] = [1.0]
                elif self.constrained:
                    system_attrs["constraints"] = [0.0]
        else:  # failed, infeasible
            state = State.FAIL
        user: dict[str, Any] = {
            TRIAL_ATTR: int(rec.trial), "seq": rec.seq, "key": rec.key, "generation": rec.generation,
            "origin": rec.origin, "status": rec.status, "worker": rec.worker, "wall_s": _finite(rec.wall_s),
            "fidelity": _finite(rec.fidelity), "inherited": rec.inherited, "cached": bool(rec.cached) or None,
            "error": _text(rec.error) if rec.error else None, "note": note, "genome": _text(rec.genome),
        }  # fmt: skip
        if self.space is not None:
            try:
                user["describe"] = _text(self.space.describe(self.space.from_dict(dict(rec.genome))))
            except Exception:
                pass
        user = {k: v for k, v in user.items() if v is not None and v != ""}
        for name, value in rec.metrics.items():
            user[f"metrics.{name}"] = _attr(value)
        user.update(attrs)
        with _quiet(optuna):
            trial = optuna.trial.create_trial(
                state=state, values=values if state == State.COMPLETE else None, params=params,
                distributions=dists, user_attrs=user, system_attrs=system_attrs, intermediate_values=intermediate,
            )  # fmt: skip
        end = _time(rec.finished_at)
        wall = _finite(rec.wall_s) or 0.0
        trial.datetime_complete = end
        try:
            trial.datetime_start = end - _dt.timedelta(seconds=max(0.0, wall))
        except OverflowError:
            trial.datetime_start = end
        return trial

    def close(self) -> None:
        """Release the storage's connections."""
        storage = getattr(self, "storage", None)
        if storage is None:
            return
        try:
            storage.remove_session()
        except Exception:
            pass
        engine = getattr(storage, "engine", None)
        if engine is not None:
            try:
                engine.dispose()
            except Exception:
                pass


@LOGGERS.register("optuna")
class OptunaLogger(Logger):
    """Each evaluation a trial of an Optuna study (see :mod:`evonas.loggers.optuna`); ``optuna-dashboard STORAGE``
    shows the search live: history, parallel coordinates, parameter importances, the Pareto front.

    ``storage``: an Optuna storage URL (``sqlite:///runs.db``, ``postgresql://...``); default
    ``sqlite:///<run folder>/optuna.db``. ``study_name``: default the run folder's name.
    """

    requires = ("optuna",)
    extra = "optuna"

    def __init__(self, storage: str | None = None, study_name: str | None = None) -> None:
        if storage is not None:
            problem = storage_problem(storage)
            if problem is not None:
                raise ValueError(f"storage: {problem}")
        if study_name is not None and (not isinstance(study_name, str) or not study_name.strip()):
            raise ValueError("study_name: expected a non-empty name")
        self.storage, self.study_name = storage, study_name
        self.writer: StudyWriter | None = None

    def setup(self, info: RunInfo) -> None:
        super().setup(info)
        url = self.storage or default_storage(info.run_dir)
        name = self.study_name or info.name
        writer = StudyWriter(url, name, info.experiment, info.space, info.run_dir)
        self.writer = writer
        if not writer.params.categorical:
            writer.params.learn_from_space()
        if not info.resumed and writer.known:  # a fresh run; the study holds trials already
            owner = writer.study.user_attrs.get(RUN_ATTR)
            if owner != writer.run_dir:
                raise StudyError(f"study '{name}' in {url} holds {len(writer.known)} trials of another run "
                                 f"({owner or 'unknown'}); give the optuna logger another study_name")  # fmt: skip
            n = writer.start_over()
            print(f"evonas: optuna: study '{name}' held {n} trials of an earlier start of this run folder; it starts "
                  "over with the run", file=sys.stderr)  # fmt: skip
        if info.resumed:  # what the journal holds and the study lacks (results journalled as the run stopped)
            writer.catch_up(info.journalled)
        else:
            writer.describe_study()

    def log_result(self, record: Record) -> None:
        if self.writer is not None:
            self.writer.add(record)

    def close(self, summary: RunSummary | None) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
